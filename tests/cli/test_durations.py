"""Durations on the command line (``--timeout 60s``, ``--since 5m``), as kubectl takes them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.kubectl.durations import DURATION
from cli.main import main


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("30", 30)]
)
def test_timeout_takes_go_durations_and_plain_seconds(text: str, seconds: float) -> None:
    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize(
    "verb", [["rollout", "status", "deploy/web"], ["delete", "pod", "x"], ["drain", "n"]]
)
def test_a_bad_timeout_names_the_option_and_the_syntax(verb: list[str]) -> None:
    result = CliRunner().invoke(main, [*verb, "--timeout", "5x"])
    assert result.exit_code == 2
    assert "Invalid value for '--timeout'" in result.output
    assert "use a number with a unit, e.g. 30s, 5m, 1h" in result.output
