"""Kubernetes quantities parse exactly and round up like Kubernetes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.apiserver.quantity import QuantityError, is_quantity, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("text", "exact", "milli", "units"),
    [
        ("250m", Decimal("0.25"), 250, 1),
        ("0.5", Decimal("0.5"), 500, 1),
        ("1", Decimal(1), 1000, 1),
        ("64Mi", Decimal(64 * 1024**2), 64 * 1024**2 * 1000, 64 * 1024**2),
        ("1Ki", Decimal(1024), 1024000, 1024),
        ("1G", Decimal(10**9), 10**12, 10**9),
        ("1e3", Decimal(1000), 10**6, 1000),
        ("1E3", Decimal(1000), 10**6, 1000),
        ("2E", Decimal(2 * 10**18), 2 * 10**21, 2 * 10**18),
        (".5", Decimal("0.5"), 500, 1),
        ("5.", Decimal(5), 5000, 5),
        ("+1k", Decimal(1000), 10**6, 1000),
        ("0.1m", Decimal("0.0001"), 1, 1),
        ("100n", Decimal("1e-7"), 1, 1),
        ("1.5Gi", Decimal(3 * 1024**3 // 2), 3 * 1024**3 // 2 * 1000, 3 * 1024**3 // 2),
        ("-1", Decimal(-1), -1000, -1),
        ("0", Decimal(0), 0, 0),
    ],
)
def test_parse(text, exact, milli, units):
    assert parse_quantity(text) == exact
    assert milli_value(text) == milli
    assert value(text) == units
    assert is_quantity(text)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1Kb", "1 Mi", "e3", "1.2.3", "Mi", "1ki", "1e", "१", " 1", "1e99999", "5e41"],
)
def test_rejects(text):
    assert not is_quantity(text)
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_message_quotes_the_text():
    with pytest.raises(QuantityError, match="'1x'"):
        parse_quantity("1x")


@given(st.text(max_size=12))
def test_never_raises_anything_else(text):
    try:
        parse_quantity(text)
    except QuantityError:
        pass


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "m", "k", "Ki", "Mi", "G"]))
def test_integers_with_suffixes(n, suffix):
    factor = {"": 1, "m": Decimal("0.001"), "k": 1000, "Ki": 1024, "Mi": 1024**2, "G": 10**9}[
        suffix
    ]
    assert parse_quantity(f"{n}{suffix}") == n * factor
