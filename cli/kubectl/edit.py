"""``raftsman edit KIND NAME``: edit an object in ``$EDITOR`` and write it back.

The object is written to a temporary YAML file and the editor opened on it (``$RAFTSMAN_EDITOR``,
then ``$EDITOR``, then ``vi``; the value may carry arguments). On save:

* no change -- ``Edit cancelled, no changes made.``;
* a change -- the object is replaced with the resourceVersion it was read at, so an
  edit never silently overwrites someone else's change (a conflict is reported like
  any other error);
* an error (bad YAML, validation, conflict) -- the editor re-opens on the file with the
  error as a comment at the top; saving it unchanged gives up, exits 1 and keeps a copy
  of the edit in a temporary file whose path is printed, as kubectl does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click
import trio
import yaml

from actors.client import ApiClient, ApiError
from proto.k8s import codec

from . import printers, session, targets

HEADER = (
    "# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
    "# and an empty file will abort the edit. If an error occurs while saving this file\n"
    "# will be reopened with the relevant failures.\n#\n"
)


def editor_argv() -> list[str]:
    command = os.environ.get("RAFTSMAN_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(command)


def open_editor(path: Path) -> str:
    """Run the editor on ``path`` (blocking) and return what was saved, comments dropped."""
    subprocess.run([*editor_argv(), str(path)], check=False)
    return _strip_comments(path.read_text())


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@click.command("edit")
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default="default", show_default=True)
@session.common_options
def edit(
    args: tuple[str, ...],
    namespace: str,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Edit an object in your editor and apply it on save: raftsman edit deploy/web."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> bool:
        found = await targets.resolve(api, args, namespace=namespace, verb="edit")
        ok = True
        for target in found:
            obj = await api.get(target.info, target.name, namespace=target.namespace)
            original = printers.to_yaml(printers.manifest(obj)) + "\n"
            with tempfile.NamedTemporaryFile(
                "w", suffix=".yaml", prefix=f"{target.name}-edit-", delete=False
            ) as f:
                f.write(HEADER + original)
                path = Path(f.name)
            last_text = original
            error = ""
            while True:
                edited = await trio.to_thread.run_sync(open_editor, path)
                if not edited.strip():
                    click.echo("Edit cancelled, saved file was empty.")
                    break
                if edited.strip() == _strip_comments(last_text).strip():
                    if error:
                        click.echo(f"error: {error}", err=True)
                        click.echo(
                            f"A copy of your changes has been stored to {str(path)!r}", err=True
                        )
                        ok = False
                    else:
                        click.echo("Edit cancelled, no changes made.")
                        await trio.Path(path).unlink(missing_ok=True)
                    break
                try:
                    doc = yaml.safe_load(edited)
                    new: Any = codec.decode(doc).obj
                    if new.metadata.name != target.name:
                        raise session.UsageProblem(
                            f"the name of the object cannot be changed (was {target.name!r}, now {new.metadata.name!r})"
                        )
                    await api.update(new)
                    click.echo(f"{target.display} edited")
                    await trio.Path(path).unlink(missing_ok=True)
                    break
                except (yaml.YAMLError, codec.DecodeError, session.UsageProblem, ApiError) as exc:
                    error = session.server_error(exc) if isinstance(exc, ApiError) else str(exc)
                    error = " ".join(error.split())
                    last_text = edited
                    await trio.Path(path).write_text(f"# {error}\n#\n" + HEADER + edited + "\n")
        return ok

    session.run(options, run)
