"""The ``raftsman`` entry point: every verb in the lazy command table resolves to the
command of that name, and a verb runs without importing the other components."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, main
from tests.cli.conftest import ROOT


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_verb_resolves_to_its_command(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_lists_every_verb_and_version_answers() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"]).output
    for name in (*COMMANDS, "version"):
        assert f"\n  {name} " in listed
    assert runner.invoke(main, ["--version"]).output.startswith("raftsman, version ")


def test_a_verb_imports_only_what_it_needs() -> None:
    probe = (
        "import sys, runpy; sys.argv = ['raftsman', 'version'];\n"
        "try:\n    runpy.run_module('cli.main', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('raftstore', 'node_agent', 'chaos', 'trio', 'grpc')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_cluster_flags_before_the_verb_mean_the_same(tmp_path, monkeypatch) -> None:
    from cli.launcher.layout import cluster_dir

    # Set (empty means unset) rather than deleted, so that monkeypatch restores them even
    # after the group's flags exported them into this process.
    for variable in ("RAFTSMAN_DIR", "RAFTSMAN_CLUSTER", "RAFTSMAN_SERVER"):
        monkeypatch.setenv(variable, "")
    monkeypatch.setenv("HOME", str(tmp_path))
    runner = CliRunner()
    where = tmp_path / "elsewhere"
    before = runner.invoke(main, ["--dir", str(where), "get", "pods"])
    after = runner.invoke(main, ["get", "pods", "--dir", str(where)])
    assert before.exit_code == after.exit_code == 1
    assert f"no cluster config at {where}/config" in before.output
    assert before.output == after.output
    status = runner.invoke(main, ["--dir", str(where), "status"])
    assert status.output == f"error: no cluster at {where} (no state.json)\n"

    # First match wins: --dir, --name, $RAFTSMAN_DIR, $RAFTSMAN_CLUSTER, local.
    monkeypatch.setenv("RAFTSMAN_DIR", "")  # exported by the group's --dir above
    home = tmp_path / ".raftsman"
    assert cluster_dir(None, None) == (home / "local", "local")
    monkeypatch.setenv("RAFTSMAN_CLUSTER", "blue")
    assert cluster_dir(None, None) == (home / "blue", "blue")
    monkeypatch.setenv("RAFTSMAN_DIR", str(where))
    assert cluster_dir(None, None) == (where, "elsewhere")
    assert cluster_dir(None, "red") == (home / "red", "red")
    assert cluster_dir(tmp_path / "x", None) == (tmp_path / "x", "x")
