"""``raftsman completion bash|zsh|fish``: print the shell's completion script.

Load it with ``source <(raftsman completion bash)`` (or add that line to ``~/.bashrc``);
for zsh ``source <(raftsman completion zsh)``; for fish
``raftsman completion fish | source``. Commands, subcommands and options complete.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print a shell completion script: source <(raftsman completion bash)."""
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(root, {}, "raftsman", "_RAFTSMAN_COMPLETE").source())
