"""Durations on the command line, as kubectl takes them: ``30s``, ``5m``, ``1h30m``,
``250ms`` (Go's duration syntax, without the rarer units). ``--timeout`` also takes a bare
number of seconds, as this CLI always has."""

from __future__ import annotations

import re
from typing import Any

import click

__all__ = ["DURATION", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as ``5m``, ``1h30m`` or ``90s``; ValueError if bad."""
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"invalid duration {text!r}: use a number with a unit, e.g. 30s, 5m, 1h")
    return total


class _Duration(click.ParamType):
    """A click option value in seconds, from ``30s`` / ``5m`` / ``1h30m`` or plain ``30``."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _Duration()
