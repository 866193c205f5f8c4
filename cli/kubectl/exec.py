"""``raftsman exec``: run a command in a running container, as ``kubectl exec`` does.

``raftsman exec web-1 -- ls /`` prints the command's stdout and stderr as they come and
exits with its exit code; a non-zero code is also reported on stderr
(``command terminated with exit code 3``), as kubectl reports it. With ``-i`` this
process's stdin is passed to the command until it ends (Ctrl-D on a terminal); the call
returns as soon as the command exits, even if stdin is still open. Terminals (``-t``) are
not supported: the node agent runs commands without a pty.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TextIO

import click
import trio

from actors.client import ApiClient

from . import podref, session
from .logs import default_container_note

_READ = 64 * 1024


async def _stdin_chunks() -> AsyncIterator[bytes]:
    """This process's stdin, read in a worker thread (a terminal stays in blocking mode)."""
    fd = sys.stdin.fileno()
    while True:
        chunk = await trio.to_thread.run_sync(os.read, fd, _READ, abandon_on_cancel=True)
        if not chunk:
            return
        yield chunk


def _writer(stream: TextIO) -> Callable[[bytes], Awaitable[None]]:
    buffer = stream.buffer

    async def write(chunk: bytes) -> None:
        buffer.write(chunk)
        buffer.flush()

    return write


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-c", "--container", default="", help="The container (default: the first).")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, hidden=True)
@session.common_options
def exec_(
    pod: str,
    command: tuple[str, ...],
    container: str,
    namespace: str,
    interactive: bool,
    tty: bool,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Run a command in a container: raftsman exec POD [-c C] [-i] -- COMMAND [ARGS...]."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)
    if tty:
        raise click.UsageError("-t/--tty is not supported: commands run without a terminal")
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("name the command after --, e.g. raftsman exec web-1 -- ls /")
    result: list[int] = []

    async def run(api: ApiClient) -> None:
        name = await podref.resolve_pod(api, pod, namespace)
        if not container:
            await default_container_note(api, name, namespace)
        code = await api.exec(
            name,
            list(command),
            namespace=namespace,
            container=container,
            stdin=_stdin_chunks() if interactive else None,
            stdout=_writer(sys.stdout),
            stderr=_writer(sys.stderr),
        )
        result.append(code)

    try:
        session.run(options, run)
    except KeyboardInterrupt:
        sys.exit(130)
    code = result[0]
    if code != 0:
        click.echo(f"command terminated with exit code {code}", err=True)
    sys.exit(code)
