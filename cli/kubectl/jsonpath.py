"""kubectl's JSONPath templates for ``-o jsonpath=...``, over plain JSON documents.

A template is text with ``{expressions}``::

    {.metadata.name}                         a field
    {.items[*].metadata.name}                every item's name, space-separated
    {.items[0].spec.containers[-1].image}    indexes (negative from the end), [1:3] slices
    {.status.conditions[?(@.type=="Ready")].status}   filters: == != < <= > >=, or @.x (exists)
    {..image}                                recursive descent
    {.metadata.labels['app\\.kubernetes\\.io/name']}  quoted keys
    {range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}
    {"literal"}                              text, with \\n \\t escapes

Results print as kubectl prints them: strings bare, numbers and booleans as JSON, maps and
lists as JSON. A field that is missing yields nothing (kubectl's ``--allow-missing-template-keys``
default); a malformed template raises :class:`JsonPathError` naming the offending text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPathError", "render"]


class JsonPathError(ValueError):
    pass


# --------------------------------------------------------------------------- template


@dataclass
class _Text:
    text: str


@dataclass
class _Expr:
    steps: list[Any]


@dataclass
class _Range:
    steps: list[Any]
    body: list[Any]


def _split(template: str) -> list[tuple[str, str]]:
    """("text", s) and ("expr", s) pieces; braces inside quotes do not count."""
    out: list[tuple[str, str]] = []
    i = 0
    text = ""
    while i < len(template):
        ch = template[i]
        if ch != "{":
            text += ch
            i += 1
            continue
        if text:
            out.append(("text", text))
            text = ""
        j = i + 1
        quote = ""
        while j < len(template):
            c = template[j]
            if quote:
                if c == "\\":
                    j += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'":
                quote = c
            elif c == "}":
                break
            j += 1
        if j >= len(template):
            raise JsonPathError(f"unclosed action in template {template!r}")
        out.append(("expr", template[i + 1 : j].strip()))
        i = j + 1
    if text:
        out.append(("text", text))
    return out


def _parse(template: str) -> list[Any]:
    root: list[Any] = []
    stack = [root]
    for kind, piece in _split(template):
        if kind == "text":
            stack[-1].append(_Text(piece))
        elif piece.startswith("range "):
            node = _Range(_steps(piece[6:].strip()), [])
            stack[-1].append(node)
            stack.append(node.body)
        elif piece == "end":
            if len(stack) == 1:
                raise JsonPathError(f"{{end}} without {{range}} in {template!r}")
            stack.pop()
        elif piece[:1] in "\"'":
            stack[-1].append(_Text(_unquote(piece)))
        else:
            stack[-1].append(_Expr(_steps(piece)))
    if len(stack) != 1:
        raise JsonPathError(f"{{range}} without {{end}} in {template!r}")
    return root


def _unquote(literal: str) -> str:
    if len(literal) < 2 or literal[-1] != literal[0]:
        raise JsonPathError(f"unterminated string {literal!r}")
    body = literal[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), body)


# --------------------------------------------------------------------------- expressions

_NAME = re.compile(r"[A-Za-z_][-A-Za-z0-9_]*")
_FILTER = re.compile(r"^@((?:\.[-A-Za-z0-9_]+|\['[^']*'\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$")


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Recurse:
    name: str | None


@dataclass(frozen=True)
class _Index:
    start: int | None
    stop: int | None
    single: bool


@dataclass(frozen=True)
class _All:
    pass


@dataclass(frozen=True)
class _Filter:
    path: list[Any]
    op: str | None
    value: Any


def _steps(expr: str) -> list[Any]:
    steps: list[Any] = []
    i = 0
    if expr.startswith("$"):
        i = 1
    while i < len(expr):
        if expr.startswith("..", i):
            i += 2
            m = _NAME.match(expr, i)
            if m:
                steps.append(_Recurse(m.group()))
                i = m.end()
            else:
                steps.append(_Recurse(None))
        elif expr[i] == ".":
            i += 1
            if i == len(expr):
                break  # "{.}" is the current object
            m = _NAME.match(expr, i)
            if not m:
                raise JsonPathError(f"bad field name at {expr[i:]!r} in {expr!r}")
            steps.append(_Field(m.group()))
            i = m.end()
        elif expr[i] == "[":
            j = _closing(expr, i)
            steps.append(_bracket(expr[i + 1 : j], expr))
            i = j + 1
        else:
            m = _NAME.match(expr, i)
            if not m or i != 0:
                raise JsonPathError(f"unexpected {expr[i:]!r} in {expr!r}")
            steps.append(_Field(m.group()))
            i = m.end()
    return steps


def _closing(expr: str, start: int) -> int:
    depth = 0
    quote = ""
    for j in range(start, len(expr)):
        c = expr[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JsonPathError(f"unclosed [ in {expr!r}")


def _bracket(inner: str, expr: str) -> Any:
    inner = inner.strip()
    if inner == "*":
        return _All()
    if inner[:1] in "'\"":
        return _Field(_unquote(inner).replace("\\.", "."))
    if inner.startswith("?(") and inner.endswith(")"):
        m = _FILTER.match(inner[2:-1].strip())
        if not m:
            raise JsonPathError(f"bad filter [{inner}] in {expr!r}")
        path = _steps(m.group(1)) if m.group(1) else []
        value: Any = None
        if m.group(2):
            raw = m.group(3).strip()
            value = _unquote(raw) if raw[:1] in "'\"" else json.loads(raw)
        return _Filter(path, m.group(2), value)
    try:
        if ":" in inner:
            a, _, b = inner.partition(":")
            return _Index(int(a) if a.strip() else None, int(b) if b.strip() else None, False)
        return _Index(int(inner), None, True)
    except ValueError:
        raise JsonPathError(f"bad index [{inner}] in {expr!r}") from None


def _walk(nodes: list[Any], steps: list[Any]) -> list[Any]:
    for step in steps:
        out: list[Any] = []
        for node in nodes:
            out.extend(_apply(node, step))
        nodes = out
    return nodes


def _descend(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _descend(child)


def _apply(node: Any, step: Any) -> list[Any]:
    if isinstance(step, _Field):
        return [node[step.name]] if isinstance(node, dict) and step.name in node else []
    if isinstance(step, _All):
        if isinstance(node, list):
            return list(node)
        return list(node.values()) if isinstance(node, dict) else []
    if isinstance(step, _Index):
        if not isinstance(node, list):
            return []
        if step.single:
            assert step.start is not None
            index = step.start
            return [node[index]] if -len(node) <= index < len(node) else []
        return node[step.start : step.stop]
    if isinstance(step, _Recurse):
        found = list(_descend(node))
        if step.name is None:
            return found
        return [n[step.name] for n in found if isinstance(n, dict) and step.name in n]
    if isinstance(step, _Filter):
        items = node if isinstance(node, list) else [node]
        return [item for item in items if _keep(item, step)]
    raise AssertionError(step)  # pragma: no cover


def _keep(item: Any, f: _Filter) -> bool:
    found = _walk([item], f.path)
    if f.op is None:
        return bool(found)
    for value in found:
        try:
            if (
                (f.op == "==" and value == f.value)
                or (f.op == "!=" and value != f.value)
                or (f.op == "<" and value < f.value)
                or (f.op == "<=" and value <= f.value)
                or (f.op == ">" and value > f.value)
                or (f.op == ">=" and value >= f.value)
            ):
                return True
        except TypeError:
            continue
    return False


# --------------------------------------------------------------------------- output


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    return (
        json.dumps(value, separators=(",", ":"))
        if isinstance(value, dict | list)
        else json.dumps(value)
    )


def _render(nodes: list[Any], current: Any) -> str:
    out = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Expr):
            out.append(" ".join(_format(v) for v in _walk([current], node.steps)))
        else:
            for item in _walk([current], node.steps):
                out.append(_render(node.body, item))
    return "".join(out)


def render(template: str, document: Any) -> str:
    """``template`` evaluated against ``document`` (a JSON value)."""
    return _render(_parse(template), document)
