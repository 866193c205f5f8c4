"""``$(VAR)`` expansion, case by case as Kubernetes' expansion package defines it."""

from __future__ import annotations

import pytest

from node_agent.pods.expand import expand, expand_all, mapping_for

CONTEXT = {
    "VAR_A": "A",
    "VAR_B": "B",
    "VAR_C": "C",
    "VAR_REF": "$(VAR_A)",
    "VAR_EMPTY": "",
    "VAR_SPACE": " ",
    "VAR_ÄÖ": "umlaut",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_C)$(VAR_A)", "CA"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
        ("$(VAR_A) $(VAR_B)", "A B"),
        ("$(VAR_EMPTY)", ""),
        ("$(VAR_A)$(VAR_EMPTY)$(VAR_B)", "AB"),
        ("x$(VAR_SPACE)y", "x y"),
        ("$(VAR_ÄÖ)", "umlaut"),
        # Undefined references stay as written.
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("before $(VAR_DNE) after $(VAR_A)", "before $(VAR_DNE) after A"),
        ("$()", "$()"),
        # No recursion: a value that looks like a reference is not expanded again.
        ("$(VAR_REF)", "$(VAR_A)"),
        # $$ escapes.
        ("$$", "$"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$$$$$$$(BIG_MONEY)", "$$$$(BIG_MONEY)"),
        ("$$(VAR_A)$(VAR_A)", "$(VAR_A)A"),
        # A $ that starts nothing is kept.
        ("$VAR_A", "$VAR_A"),
        ("$", "$"),
        ("foo$", "foo$"),
        ("$ (VAR_A)", "$ (VAR_A)"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        # Incomplete references.
        ("$(VAR_A", "$(VAR_A"),
        ("$(", "$("),
        ("$(VAR_A))", "A)"),
        ("$((VAR_A))", "$((VAR_A))"),
        ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
        ("no references at all", "no references at all"),
        ("", ""),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, CONTEXT) == expected


def test_contexts_are_searched_in_order() -> None:
    lookup = mapping_for({"X": "first"}, {"X": "second", "Y": "y"})
    assert expand("$(X)$(Y)$(Z)", lookup) == "firsty$(Z)"


def test_expand_all_keeps_the_list_shape() -> None:
    assert expand_all(["echo", "$(VAR_A)", "$$(VAR_A)", ""], CONTEXT) == [
        "echo",
        "A",
        "$(VAR_A)",
        "",
    ]
