"""Go's strconv where a create request depends on it: ParseFloat (32 bits), ParseInt, ParseBool.

Ollama types each PARAMETER with strconv and sends float32 values, so `0.1` travels as the
float32 nearest to 0.1, written with the shortest digits that read back as it (Go's
Dragonbox). Python's float is 64 bits; the rounding and the digits are worked out exactly
here, with fractions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Final

__all__ = [
    "as_float32", "parse_bool", "parse_float32", "parse_int64", "round_float32",
    "shortest_float32",
]

_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_GO_BOOLS: Final[Mapping[str, bool]] = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64); None where Go returns an error."""
    # Check the length first: a huge int64 overflow is still an int error, and Python
    # refuses to convert digit strings beyond a few thousand digits.
    digits = text.lstrip("+-").lstrip("0")
    if _GO_INT.fullmatch(text) is None or len(digits) > 19:
        return None
    whole = int(text)
    return whole if _INT64_MIN <= whole <= _INT64_MAX else None


def parse_bool(text: str) -> bool | None:
    """strconv.ParseBool; None where Go returns an error."""
    return _GO_BOOLS.get(text)


def _underscores_ok(text: str) -> bool:
    """strconv's underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    at = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        at, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[at:]:
        if char.isascii() and (char.isdigit() or hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
# float32 midpoints have well under 200 significant digits (decimal or hexadecimal).
_MAX_DIGITS: Final = 800


def parse_float32(text: str) -> float | None:
    """strconv.ParseFloat(text, 32) as a Python float; None where Go returns an error."""
    lowered = text.lower()
    if lowered in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    if lowered == "nan":
        return math.nan
    at, size = 0, len(text)
    negative = False
    if at < size and text[at] in "+-":
        negative = text[at] == "-"
        at += 1
    base = 10
    if at + 2 < size and text[at] == "0" and text[at + 1] in "xX":
        base = 16
        at += 2
    digits: list[str] = []
    fraction_digits = 0
    seen_dot = False
    while at < size:
        char = text[at]
        if char == "_":
            pass
        elif char == "." and not seen_dot:
            seen_dot = True
        elif char.isascii() and (char.isdigit() or base == 16 and char in _HEX_DIGITS):
            digits.append(char)
            fraction_digits += seen_dot
        else:
            break
        at += 1
    if not digits:
        return None
    exponent = 0
    marker = "p" if base == 16 else "e"
    if at < size and text[at].lower() == marker:
        at += 1
        sign = 1
        if at < size and text[at] in "+-":
            sign = -1 if text[at] == "-" else 1
            at += 1
        if at >= size or not ("0" <= text[at] <= "9"):
            return None
        while at < size and ("0" <= text[at] <= "9" or text[at] == "_"):
            if text[at] != "_" and exponent < 10000:  # Go stops growing it here too
                exponent = exponent * 10 + int(text[at])
            at += 1
        exponent *= sign
    elif base == 16:
        return None  # hexadecimal floats need a p exponent
    if at != size or ("_" in text and not _underscores_ok(text)):
        return None
    significant = "".join(digits).lstrip("0")
    dropped = 0
    if len(significant) > _MAX_DIGITS:
        # Keep enough digits to decide every float32 rounding exactly; a final 1 stands
        # for whatever nonzero digits were cut (a sticky digit, as Go's decimal keeps).
        tail = significant[_MAX_DIGITS:]
        dropped = len(tail) - 1
        significant = significant[:_MAX_DIGITS] + ("1" if tail.strip("0") else "0")
    mantissa = int(significant or "0", base)
    if base == 16:
        value = _exact(mantissa, 2, exponent + 4 * (dropped - fraction_digits))
    else:
        value = _exact(mantissa, 10, exponent + dropped - fraction_digits)
    if value is None:
        return None
    rounded = round_float32(value)
    if rounded is None:
        return None
    return -rounded if negative else rounded


def _exact(mantissa: int, base: int, exponent: int) -> Fraction | None:
    """mantissa * base**exponent, or None when it is far beyond float32's range."""
    if mantissa == 0:
        return Fraction(0)
    # Decide huge and tiny magnitudes without building huge numbers.
    magnitude = mantissa.bit_length() + exponent * (math.log2(base))
    if magnitude > 200:
        return None
    if magnitude < -200:
        return Fraction(0)
    if exponent >= 0:
        return Fraction(mantissa * base**exponent)
    return Fraction(mantissa, base**-exponent)


_FLOAT32_MIN_SCALE: Final = -149  # the exponent of float32's smallest subnormal


def round_float32(value: Fraction) -> float | None:
    """The float32 nearest to value >= 0 (ties to even), as a float; None if it overflows."""
    if value == 0:
        return 0.0
    top, bottom = value.numerator, value.denominator
    power = top.bit_length() - bottom.bit_length()
    if (top if power >= 0 else top << -power) < (bottom << power if power >= 0 else bottom):
        power -= 1  # now 2**power <= value < 2**(power + 1)
    scale = max(power - 23, _FLOAT32_MIN_SCALE)
    if scale >= 0:
        whole, rest = divmod(top, bottom << scale)
        twice, divisor = 2 * rest, bottom << scale
    else:
        whole, rest = divmod(top << -scale, bottom)
        twice, divisor = 2 * rest, bottom
    if twice > divisor or (twice == divisor and whole & 1):
        whole += 1
    if whole.bit_length() + scale > 128:
        return None
    return math.ldexp(whole, scale)


def _float32_parts(value: float) -> tuple[int, int]:
    """A positive float32 value as (mantissa, exponent): value == mantissa * 2**exponent."""
    _, power = math.frexp(value)
    scale = max(power - 24, _FLOAT32_MIN_SCALE)
    return int(math.ldexp(value, -scale)), scale


def shortest_float32(value: float) -> tuple[str, int]:
    """Shortest digits that read back as this float32, and where the point goes.

    Returns (digits, point): value ~ 0.digits * 10**point. Among the shortest candidates
    the one nearest the value wins; a tie goes to the even one, except just above a power
    of two (where the gap below is half the gap above), where Go's Dragonbox rounds up.
    """
    mantissa, scale = _float32_parts(value)
    exact = Fraction(mantissa) * Fraction(2) ** scale
    half_gap = Fraction(2) ** scale / 2
    boundary = mantissa == 1 << 23 and scale > _FLOAT32_MIN_SCALE
    low = exact - (half_gap / 2 if boundary else half_gap)
    high = exact + half_gap
    inclusive = mantissa % 2 == 0  # a decimal exactly halfway reads back as the even one
    magnitude = math.floor(math.log10(value))
    for power in range(magnitude + 2, magnitude - 11, -1):  # log10 may be off by one
        unit = Fraction(10) ** power
        first = math.ceil(low / unit)
        if first * unit == low and not inclusive:
            first += 1
        last = math.floor(high / unit)
        if last * unit == high and not inclusive:
            last -= 1
        if first > last:
            continue
        ratio = exact / unit
        nearest = math.floor(ratio)
        remainder = ratio - nearest
        if remainder > Fraction(1, 2) or (
            remainder == Fraction(1, 2) and (boundary or nearest % 2 == 1)
        ):
            nearest += 1
        chosen = min(max(nearest, first), last)
        digits = str(chosen)
        stripped = digits.rstrip("0")
        return stripped, len(digits) + power
    raise AssertionError("no decimal found for a float32")  # pragma: no cover


def as_float32(value: float) -> float:
    """A Python float holding a float32 (possibly rounded via its decimal text) back to it."""
    if not math.isfinite(value) or value == 0:
        return value
    rounded = round_float32(Fraction(abs(value)))
    if rounded is None:
        return math.copysign(math.inf, value)
    return math.copysign(rounded, value)
