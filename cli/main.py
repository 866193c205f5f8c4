"""The ``raftsman`` command: one entry point, a subcommand per component and verb.

Every subcommand lives in its own module and is imported only when it runs (or when
``--help`` lists them all): ``raftsman get`` does not pay for importing the store, the
launcher or the chaos harness. The table below is the whole command set.

Which cluster to talk to can also be said before the verb, as with kubectl's global
flags: ``raftsman --dir DIR get pods`` is ``raftsman get pods --dir DIR``. The group's
``--dir``, ``--name`` and ``--server`` set ``$RAFTSMAN_DIR``, ``$RAFTSMAN_CLUSTER`` and
``$RAFTSMAN_SERVER`` for the verb, which a verb's own flags still override.
"""

from __future__ import annotations

import importlib
import os

import click

from cli.kubectl import COMMANDS as KUBECTL_COMMANDS
from cli.launcher.layout import CLUSTER_ENV, DIR_ENV, SERVER_ENV

COMMANDS: dict[str, str] = {
    "store": "cli.store:store",
    "apiserver": "cli.apiserver:apiserver",
    "scheduler": "cli.scheduler:scheduler",
    "controller-manager": "cli.controller_manager:controller_manager",
    "node-agent": "cli.node_agent:node_agent",
    "up": "cli.launcher.commands:up",
    "down": "cli.launcher.commands:down",
    "status": "cli.launcher.commands:status",
    "supervise": "cli.launcher.commands:supervise",
    "chaos": "cli.chaos:chaos",
    **KUBECTL_COMMANDS,
}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("raftsman")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class LazyGroup(click.Group):
    """A group whose subcommands (:data:`COMMANDS`) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="raftsman", prog_name="raftsman")
@click.option(
    "--dir", "dir_", default=None, metavar="DIR", help="Cluster directory, for every verb."
)
@click.option("--name", default=None, metavar="CLUSTER", help="Cluster name, for every verb.")
@click.option("--server", "-s", default=None, metavar="HOST:PORT", help="API server address(es).")
def main(dir_: str | None, name: str | None, server: str | None) -> None:
    """Raftsman: a Kubernetes-style cluster manager on an etcd-compatible Raft store."""
    for variable, value in ((DIR_ENV, dir_), (CLUSTER_ENV, name), (SERVER_ENV, server)):
        if value:
            os.environ[variable] = value


@main.command()
def version() -> None:
    """Print the client version."""
    click.echo(f"raftsman {_version()}")


if __name__ == "__main__":
    # `python -m cli.main` (how the launcher starts components) names itself like the
    # installed script, so usage lines and shell completion read the same.
    main(prog_name="raftsman", complete_var="_RAFTSMAN_COMPLETE")
