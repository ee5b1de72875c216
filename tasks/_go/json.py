"""Go's encoding/json text for the values a create request holds.

`ollama create` marshals the request with encoding/json: `<`, `>`, `&`, U+2028 and U+2029
are escaped, map keys are sorted, a float32 is written with its shortest digits in ES6
style (1e-7, 0.1, 16777216, 1e+21), and Inf or NaN is refused.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Container, Mapping, Sequence
from fractions import Fraction
from typing import Any, Final

from .strconv import as_float32, round_float32, shortest_float32

__all__ = ["UnsupportedValue", "encode", "float32_text", "string"]

_ESCAPES: Final[Mapping[str, str]] = {
    '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
}
_NEEDS_ESCAPE: Final = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')
# Go compares with float32(1e-6) and float32(1e21) to pick the exponent form.
_E_BELOW: Final = round_float32(Fraction(1, 10**6)) or 0.0
_E_FROM: Final = round_float32(Fraction(10**21)) or 0.0


class UnsupportedValue(ValueError):
    """json.UnsupportedValueError: Inf or NaN, which JSON cannot hold; str() is Go's text."""

    def __init__(self, value: float):
        # strconv.FormatFloat(value, 'g', -1, 32) of a non-finite value
        text = "NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf"
        super().__init__(f"json: unsupported value: {text}")


def string(text: str) -> str:
    """A JSON string as encoding/json writes it (HTML-safe escapes)."""
    return '"' + _NEEDS_ESCAPE.sub(
        lambda m: _ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text
    ) + '"'


def encode(value: Any, float32_keys: Container[str] = (), key: str | None = None) -> str:
    """encoding/json of value (maps sorted by key); a float under a key in float32_keys is a
    float32 field, so it is written as one. UnsupportedValue for Inf and NaN there."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if key is not None and key in float32_keys:
            value = as_float32(value)
            if not math.isfinite(value):
                raise UnsupportedValue(value)
            return float32_text(value)
        return json.dumps(value)  # pragma: no cover - a create request has no float64
    if isinstance(value, str):
        return string(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(
            f"{string(k)}:{encode(v, float32_keys, k)}" for k, v in sorted(value.items())
        ) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode(item, float32_keys) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def float32_text(value: float) -> str:
    """encoding/json's text for a finite float32 value (ES6 style)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = shortest_float32(abs(value))
    if abs(value) < _E_BELOW or abs(value) >= _E_FROM:
        exponent = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}".replace(
            "e-0", "e-"
        )
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
