"""Kubernetes resource quantities (``250m``, ``0.5``, ``64Mi``, ``1G``, ``1e3``), exactly.

A quantity is a decimal number with an optional suffix: a binary SI suffix (``Ki`` ... ``Ei``,
powers of 1024), a decimal SI suffix (``n``, ``u``, ``m``, ``k``, ``M``, ``G``, ``T``, ``P``,
``E``) or a decimal exponent (``e3``, ``E-2``). Kubernetes parses them into an arbitrary
precision value and rounds *up* when it needs an integer count of milli-units or units
(``0.1m`` of cpu is ``1`` milli-cpu, never ``0``). We do the same with :class:`~decimal.Decimal`,
which represents every such value exactly: no binary floating point anywhere.

Objects keep quantities as the strings their authors wrote; these functions are how the
API server validates them and how the scheduler and the node agent add them up.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

__all__ = ["QuantityError", "is_quantity", "milli_value", "parse_quantity", "value"]

_PATTERN = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?"
)

_SUFFIX = {
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
    "Ti": Decimal(1024**4),
    "Pi": Decimal(1024**5),
    "Ei": Decimal(1024**6),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}

# Far beyond anything real (Kubernetes caps values at 2^63-1 units), small enough that
# arithmetic on the result stays cheap.
_MAX_EXPONENT = 40

# Enough digits that no product or sum of parsed quantities is ever rounded.
_CONTEXT = decimal.Context(prec=200, Emax=999, Emin=-999, traps=[decimal.InvalidOperation])


class QuantityError(ValueError):
    """Text that is not a quantity; the message says why and quotes it."""


def parse_quantity(text: str) -> Decimal:
    """The exact value of the quantity ``text`` (``"250m"`` -> ``Decimal("0.250")``).

    Raises :class:`QuantityError` for anything that does not match Kubernetes' grammar, and
    for magnitudes beyond 10^40.
    """
    if not isinstance(text, str):
        raise QuantityError(f"quantities must be strings, not {type(text).__name__}")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {text!r}"
        )
    number = Decimal(match["number"])
    exponent = match["exponent"]
    if exponent is not None:
        if len(exponent.lstrip("+-")) > 4 or abs(int(exponent)) > _MAX_EXPONENT:
            raise QuantityError(f"quantity {text!r} is out of range")
        result = _CONTEXT.multiply(number, Decimal(1).scaleb(int(exponent)))
    else:
        suffix = match["suffix"] or ""
        result = _CONTEXT.multiply(number, _SUFFIX[suffix]) if suffix else number
    if result and result.adjusted() > _MAX_EXPONENT:
        raise QuantityError(f"quantity {text!r} is out of range")
    return result


def is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def milli_value(text: str) -> int:
    """The quantity in thousandths, rounded up (``"0.1m"`` -> 1, ``"1"`` -> 1000)."""
    return int(
        _CONTEXT.multiply(parse_quantity(text), Decimal(1000)).to_integral_value(
            rounding=decimal.ROUND_CEILING
        )
    )


def value(text: str) -> int:
    """The quantity in whole units, rounded up (``"1Ki"`` -> 1024, ``"100m"`` -> 1)."""
    return int(parse_quantity(text).to_integral_value(rounding=decimal.ROUND_CEILING))
