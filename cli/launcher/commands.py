"""The launcher's click commands: ``up``, ``down``, ``status`` and ``supervise``.

Thin: each parses its flags, finds the cluster directory, calls :mod:`.lifecycle` or
:mod:`.report`, and turns expected errors into one line on stderr and exit status 1.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click
import trio

from . import lifecycle, links, report
from .clientconfig import write_client_config
from .layout import DEFAULT_NAME, Layout, cluster_dir
from .plan import PlanError
from .readiness import cluster_ready
from .state import StateFileError, load

_dir_option = click.option(
    "--dir",
    "dir_",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cluster directory [default: ~/.raftsman/NAME].",
)
_name_option = click.option(
    "--name", default=None, help=f"Cluster name [default: {DEFAULT_NAME}, or the --dir's name]."
)


def _where(dir_: Path | None, name: str | None) -> tuple[Layout, str]:
    root, name = cluster_dir(dir_, name)
    return Layout.at(root), name


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures: their message on one line, exit status 1."""
    try:
        yield
    except (PlanError, StateFileError, lifecycle.LaunchError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.command("up")
@_dir_option
@_name_option
@click.option("--stores", type=click.IntRange(min=1), default=None, help="Store members [3].")
@click.option("--apiservers", type=click.IntRange(min=0), default=None, help="API servers [2].")
@click.option(
    "--schedulers", type=click.IntRange(min=0), default=None, help="Schedulers, leader-elected [2]."
)
@click.option(
    "--controller-managers",
    type=click.IntRange(min=0),
    default=None,
    help="Controller managers, leader-elected [2].",
)
@click.option(
    "--nodes", type=click.IntRange(min=0), default=None, help="Nodes (one node agent each) [3]."
)
@click.option(
    "--runtime",
    type=click.Choice(["process", "sim"]),
    default=None,
    help="Node agents' container runtime [process].",
)
@click.option(
    "--base-port",
    type=int,
    default=None,
    help="Use consecutive ports from N [default: free ports picked automatically].",
)
@click.option(
    "--foreground", is_flag=True, help="Stay attached, print every log line; Ctrl-C stops."
)
@click.option(
    "--no-restart", is_flag=True, help="Never restart a process that exits (for chaos tests)."
)
@click.option(
    "--fault-links",
    is_flag=True,
    help="Put a fault-injecting proxy on store links (for `raftsman chaos`); new clusters only.",
)
@click.option(
    "--timeout",
    type=float,
    default=lifecycle.READY_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the cluster to be ready.",
)
def up(
    dir_: Path | None,
    name: str | None,
    stores: int | None,
    apiservers: int | None,
    schedulers: int | None,
    controller_managers: int | None,
    nodes: int | None,
    runtime: str | None,
    base_port: int | None,
    foreground: bool,
    no_restart: bool,
    fault_links: bool,
    timeout: float,
) -> None:
    """Start a local cluster (stores, API servers, scheduler, controller manager, node
    agents) and wait until it is ready."""
    layout, name = _where(dir_, name)
    started = time.monotonic()
    with _errors():
        with layout.locked():
            existing = lifecycle.load_if_any(layout)
            if existing is not None and lifecycle.supervisor_running(existing):
                click.echo(
                    report.summary(
                        layout,
                        existing,
                        headline=f"Cluster {existing.name!r} is already running "
                        f"(supervisor pid {existing.supervisor.pid}); nothing changed.",
                    )
                )
                return
            if existing is not None:
                # Orphans of a supervisor that was killed hold the ports: stop them first.
                lifecycle.stop(layout, existing)
            state, new = lifecycle.prepare(
                layout,
                name=name,
                stores=stores,
                apiservers=apiservers,
                counts={
                    "scheduler": schedulers,
                    "controller-manager": controller_managers,
                    "node-agent": nodes,
                },
                runtime=runtime,
                base_port=base_port,
                restart=not no_restart,
            )
            if fault_links:
                links.enable(layout, state, new=new)
            write_client_config(layout.config_file, state)
            if not foreground:
                supervisor = lifecycle.spawn_supervisor(layout)
                try:
                    took = lifecycle.wait_ready(
                        layout, state, timeout=timeout, supervisor_exited=supervisor.poll
                    )
                except lifecycle.LaunchError:
                    lifecycle.stop(layout, load(layout.state_file))
                    raise
        if foreground:
            _up_foreground(layout, state, timeout=timeout, started=started, new=new)
            return
    verb = "started" if new else "restarted with its data"
    click.echo(
        report.summary(
            layout,
            state,
            headline=f"Cluster {state.name!r} {verb}: {report.shape(state)}, "
            f"ready in {took:.1f}s (supervisor pid {supervisor.pid}).",
        )
    )


def _up_foreground(
    layout: Layout, state: lifecycle.ClusterState, *, timeout: float, started: float, new: bool
) -> None:
    from cli.process import setup_logging

    from .supervisor import supervise

    setup_logging("supervisor")
    endpoints, apis = lifecycle.store_endpoints(state), lifecycle.api_endpoints(state)
    nodes = lifecycle.node_names(state)

    async def announce_when_ready() -> None:
        with trio.move_on_after(timeout) as scope:
            while True:  # polling another process: there is no event to wait on
                if await trio.to_thread.run_sync(
                    partial(cluster_ready, endpoints, apis, nodes=nodes)
                ):
                    break
                await trio.sleep(0.05)
        if scope.cancelled_caught:
            click.echo(f"warning: cluster not ready after {timeout:g}s; still trying", err=True)
            return
        verb = "started" if new else "restarted with its data"
        headline = (
            f"Cluster {state.name!r} {verb}, ready in {time.monotonic() - started:.1f}s. "
            "Ctrl-C stops it."
        )
        click.echo(report.summary(layout, state, headline=headline))

    sys.exit(supervise(layout, echo=sys.stdout, on_running=announce_when_ready))


@click.command("down")
@_dir_option
@_name_option
@click.option("--purge", is_flag=True, help="Also delete the cluster directory and its data.")
def down(dir_: Path | None, name: str | None, purge: bool) -> None:
    """Stop a local cluster; its data stays unless --purge."""
    layout, name = _where(dir_, name)
    with _errors():
        if not layout.state_file.exists():
            click.echo(f"no cluster at {layout.root}; nothing to stop")
            return
        with layout.locked():
            state = load(layout.state_file)
            result = lifecycle.stop(layout, state)
            if result.leftover:
                pids = " ".join(map(str, result.leftover))
                raise lifecycle.LaunchError(f"processes still running after stop: {pids}")
            if purge:
                shutil.rmtree(layout.root)
    what = "stopped" if result.was_running else "was not running"
    forced = " (some processes had to be killed)" if result.forced else ""
    kept = f"deleted {layout.root}" if purge else f"data kept in {layout.data_root}/"
    click.echo(f"Cluster {state.name!r} {what}{forced}; {kept}.")


@click.command("status")
@_dir_option
@_name_option
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status(dir_: Path | None, name: str | None, output: str) -> None:
    """List the cluster's processes: role, pid, state, restarts, store leader."""
    layout, name = _where(dir_, name)
    with _errors():
        table = report.rows(load(layout.state_file))
    click.echo(report.rows_json(table) if output == "json" else report.rows_text(table))


@click.command("supervise")
@click.option(
    "--dir",
    "dir_",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Cluster directory, as planned by `raftsman up`.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def supervise(dir_: Path, verbose: bool) -> None:
    """Run a cluster's processes until SIGTERM (started by `raftsman up`)."""
    from cli.process import setup_logging

    from .supervisor import supervise as run

    setup_logging("supervisor", verbose=verbose)
    with _errors():
        sys.exit(run(Layout.at(dir_)))
