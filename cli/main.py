"""The ``raftsman`` command: one entry point, a subcommand per component and verb."""

from __future__ import annotations

from importlib import metadata

import click


def _version() -> str:
    try:
        return metadata.version("raftsman")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="raftsman")
def main() -> None:
    """Raftsman: a Kubernetes-style cluster manager on an etcd-compatible Raft store."""


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"raftsman {_version()}")


def _register() -> None:
    from cli.store import store

    main.add_command(store)

    from cli.apiserver import apiserver

    main.add_command(apiserver)

    from cli.scheduler import scheduler

    main.add_command(scheduler)

    from cli.controller_manager import controller_manager

    main.add_command(controller_manager)

    from cli.node_agent import node_agent

    main.add_command(node_agent)

    from cli.launcher.commands import down, status, supervise, up

    for command in (up, down, status, supervise):
        main.add_command(command)

    from cli.kubectl import commands

    for command in commands():
        main.add_command(command)

    from cli.chaos import chaos

    main.add_command(chaos)


_register()

if __name__ == "__main__":
    # `python -m cli.main` (how the launcher starts components) names itself like the
    # installed script, so usage lines and shell completion read the same.
    main(prog_name="raftsman", complete_var="_RAFTSMAN_COMPLETE")
