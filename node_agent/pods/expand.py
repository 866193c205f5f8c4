"""``$(VAR)`` references in a container's command, args and env values, as Kubernetes expands them.

The rules (Kubernetes' ``third_party/forked/golang/expansion``), which this module
reproduces exactly:

* ``$(NAME)`` is replaced by the value of ``NAME`` when it is defined; an undefined
  reference is left as written, ``$(NAME)`` and all;
* ``$$`` is an escaped ``$``: ``$$(NAME)`` yields the literal text ``$(NAME)``;
* a ``$`` followed by anything else, or ``$(`` with no closing ``)``, is kept as is;
  a ``$`` at the very end is kept;
* the text between ``$(`` and the first ``)`` is the name, whatever it contains;
  expansion is a single pass (a value containing ``$(X)`` is not expanded again).

Where it applies (the kubelet's order): an env var's ``value`` is expanded against the
variables defined before it in the container's ``env`` (plus those from ``envFrom`` and
the service links); ``command`` and ``args`` against the container's final environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["expand", "expand_all", "mapping_for"]

Mapping_ = Callable[[str], str]


def mapping_for(*contexts: Mapping[str, str]) -> Mapping_:
    """Look a name up in ``contexts`` in order; an unknown name maps to ``$(name)``."""

    def lookup(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    return lookup


def _read_name(rest: str) -> tuple[str, bool, int]:
    """After a ``$``: (text, is a reference, characters consumed)."""
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        close = rest.find(")", 1)
        if close != -1:
            return rest[1:close], True, close + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1


def expand(text: str, mapping: Mapping_ | Mapping[str, str]) -> str:
    """``text`` with its ``$(VAR)`` references expanded through ``mapping``."""
    lookup = mapping_for(mapping) if isinstance(mapping, Mapping) else mapping
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_reference, advance = _read_name(text[cursor + 1 :])
            out.append(lookup(read) if is_reference else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def expand_all(values: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Each of ``values`` expanded against ``env`` (command or args of a container)."""
    lookup = mapping_for(env)
    return [expand(value, lookup) for value in values]
