"""JSON the way Ollama's Go code writes and reads it.

Writing follows encoding/json: map keys sorted, struct fields in declaration order
(pass a `Struct`), `<`, `>`, `&`, U+2028/U+2029 escaped, float64 formatting
(`42`, `0.7`, `1e-7`, `1e+21`), and `Encoder.Encode` adds a trailing newline.
Reading follows gin's ShouldBindJSON: the first JSON value only, unknown fields
ignored, field names matched case-insensitively, Go's wording for errors.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, Callable

__all__ = [
    "BadRequestBody",
    "MissingBody",
    "Struct",
    "decode_body",
    "decode_struct",
    "dumps",
    "encode_line",
    "go_float",
    "go_quote",
    "go_verb_v",
]


class Struct(dict):  # type: ignore[type-arg]
    """A dict encoded in insertion order, like a Go struct (plain dicts are maps: sorted)."""


class MissingBody(ValueError):
    """The request had no JSON value at all (gin reports io.EOF)."""


class BadRequestBody(ValueError):
    """The body is not JSON, or a field has the wrong JSON type."""


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    if any(ch in out for ch in _HTML_ESCAPES):
        out = "".join(_HTML_ESCAPES.get(ch, ch) for ch in out)
    return out


def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of abs(value) and the decimal exponent of the first digit."""
    dec = Decimal(repr(abs(value))).normalize()
    sign, digits, exponent = dec.as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    return text, exponent + len(text) - 1


def go_float(value: float) -> str:
    """Format a float64 like encoding/json does."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, exp = _digits(value)
    sign = "-" if value < 0 else ""
    absval = abs(value)
    if absval < 1e-6 or absval >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_text = f"{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if exp_text.startswith("-0"):  # encoding/json trims e-07 to e-7
            exp_text = "-" + exp_text[2:]
        return f"{sign}{mantissa}e{exp_text}"
    return sign + _positional(digits, exp)


def _positional(digits: str, exp: int) -> str:
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return digits + "0" * (exp + 1 - len(digits))
    return digits[: exp + 1] + "." + digits[exp + 1:]


def go_verb_v(value: Any) -> str:
    """Go's %v / %#v for values decoded from JSON (float64 uses %g shortest)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        if number == 0:
            return "0"
        digits, exp = _digits(number)
        sign = "-" if number < 0 else ""
        if exp < -4 or exp >= 6:  # strconv 'g' with shortest precision
            mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        return sign + _positional(digits, exp)
    if value is None:
        return "<nil>"
    return str(value)


def go_quote(text: str) -> str:
    """strconv.Quote, as %#v prints a string."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _Slow(Exception):
    """A value the C encoder would print differently from Go (big ints, exponents, -0)."""


def _prepare(value: Any) -> Any:
    """Turn a value into what json.dumps prints the Go way, or raise _Slow."""
    if value is None or value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) >= 2**53:
            raise _Slow
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53 and not (value == 0 and math.copysign(1.0, value) < 0):
            return int(value)
        if math.isnan(value) or math.isinf(value) or "e" in repr(value):
            raise _Slow
        return value
    if isinstance(value, Struct):
        return {key: _prepare(item) for key, item in value.items()}
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: str(k).encode("utf-8", "surrogatepass"))
        return {str(key): _prepare(value[key]) for key in keys}
    if isinstance(value, (list, tuple)):
        return [_prepare(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Encode like json.Marshal (no trailing newline)."""
    try:
        out = json.dumps(_prepare(value), ensure_ascii=False, separators=(",", ":"))
    except _Slow:
        parts: list[str] = []
        _encode(value, parts.append)
        return "".join(parts)
    if any(ch in out for ch in _HTML_ESCAPES):  # these only ever occur inside strings
        for ch, escaped in _HTML_ESCAPES.items():
            out = out.replace(ch, escaped)
    return out


def encode_line(value: Any) -> bytes:
    """Encode like json.NewEncoder(w).Encode: compact, HTML-escaped, trailing newline."""
    return (dumps(value) + "\n").encode("utf-8")


def _encode(value: Any, put: Callable[[str], Any]) -> None:
    if value is None:
        put("null")
    elif value is True:
        put("true")
    elif value is False:
        put("false")
    elif isinstance(value, str):
        put(_string(value))
    elif isinstance(value, int):
        put(go_float(float(value)) if abs(value) >= 2**53 else str(value))
    elif isinstance(value, float):
        put(go_float(value))
    elif isinstance(value, Struct):
        put("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                put(",")
            put(_string(key))
            put(":")
            _encode(item, put)
        put("}")
    elif isinstance(value, dict):
        put("{")
        for index, key in enumerate(sorted(value, key=lambda k: str(k).encode("utf-8", "surrogatepass"))):
            if index:
                put(",")
            put(_string(str(key)))
            put(":")
            _encode(value[key], put)
        put("}")
    elif isinstance(value, (list, tuple)):
        put("[")
        for index, item in enumerate(value):
            if index:
                put(",")
            _encode(item, put)
        put("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# --- reading ---------------------------------------------------------------------------------

def _no_constants(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def decode_body(body: bytes) -> Any:
    """The first JSON value in a request body, as gin's ShouldBindJSON reads it."""
    text = body.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise MissingBody("missing request body")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise BadRequestBody(_go_syntax_message(exc, text)) from None
    except ValueError as exc:  # NaN / Infinity literals
        raise BadRequestBody(f"invalid character '{str(exc)[:1]}' looking for beginning of value") from None
    return value


def _go_syntax_message(exc: json.JSONDecodeError, text: str) -> str:
    if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = text[exc.pos]
    shown = "'\\''" if char == "'" else "'" + char.encode("unicode_escape").decode("ascii") + "'"
    if exc.msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif exc.msg.startswith("Expecting ':'"):
        where = "after object key"
    elif exc.msg.startswith("Expecting ',' delimiter"):
        where = "after object key:value pair" if _inside_object(text, exc.pos) else "after array element"
    elif exc.msg.startswith("Invalid control character"):
        where = "in string literal"
    else:
        where = "looking for beginning of value"
    return f"invalid character {shown} {where}"


def _inside_object(text: str, pos: int) -> bool:
    depth: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth.append(char)
        elif char in "}]" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "{"


_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
_GO_TYPE = {
    "string": "string",
    "bool": "bool",
    "strmap": "map[string]string",
    "anymap": "map[string]interface {}",
    "list": "[]interface {}",
    "ints": "[]int",
    "messages": "[]api.Message",
    "int": "int",
}


def _kind(value: Any) -> str:
    return _JSON_KIND.get(type(value), "value")


def decode_struct(value: Any, struct: str, fields: dict[str, str]) -> dict[str, Any]:
    """Bind a decoded JSON value to a Go struct description {json name: kind}.

    Kinds: string, bool, int, strmap, anymap, list, ints, messages, any. Absent or null
    fields come back as None; unknown fields are dropped; names match case-insensitively.
    """
    if value is None:
        return {name: None for name in fields}
    if not isinstance(value, dict):
        raise BadRequestBody(f"json: cannot unmarshal {_kind(value)} into Go value of type api.{struct}")
    out: dict[str, Any] = {name: None for name in fields}
    folded = {name.lower(): name for name in fields}
    for key, item in value.items():
        name = key if key in fields else folded.get(key.lower())
        if name is None:
            continue
        out[name] = _bind(item, fields[name], f"{struct}.{name}")
    return out


def _type_error(item: Any, where: str, kind: str) -> BadRequestBody:
    return BadRequestBody(
        f"json: cannot unmarshal {_kind(item)} into Go struct field {where} of type {_GO_TYPE.get(kind, kind)}"
    )


def _bind(item: Any, kind: str, where: str) -> Any:
    if item is None or kind == "any":
        return item
    if kind == "string":
        if not isinstance(item, str):
            raise _type_error(item, where, kind)
        return item
    if kind == "bool":
        if not isinstance(item, bool):
            raise _type_error(item, where, kind)
        return item
    if kind == "int":
        if isinstance(item, bool) or not isinstance(item, (int, float)) or float(item) != int(item):
            raise _type_error(item, where, kind)
        return int(item)
    if kind in ("strmap", "anymap"):
        if not isinstance(item, dict):
            raise _type_error(item, where, kind)
        if kind == "strmap":
            for key, sub in item.items():
                if sub is not None and not isinstance(sub, str):
                    raise _type_error(sub, f"{where}.{key}", "string")
            return {key: sub or "" for key, sub in item.items()}
        return dict(item)
    if kind == "list":
        if not isinstance(item, list):
            raise _type_error(item, where, kind)
        return item
    if kind == "ints":
        if not isinstance(item, list):
            raise _type_error(item, where, kind)
        return [_bind(sub, "int", where) for sub in item]
    if kind == "messages":
        if not isinstance(item, list):
            raise _type_error(item, where, kind)
        return [_message(sub, where) for sub in item]
    raise AssertionError(kind)


_MESSAGE_FIELDS = {
    "role": "string",
    "content": "string",
    "thinking": "string",
    "images": "list",
    "tool_calls": "list",
    "tool_name": "string",
    "tool_call_id": "string",
}


def _message(item: Any, where: str) -> Struct:
    """An api.Message as Go re-encodes it: field order, omitempty, role lower-cased."""
    if item is not None and not isinstance(item, dict):
        raise _type_error(item, where, "messages")
    fields = decode_struct(item, "Message", _MESSAGE_FIELDS)
    msg = Struct(role=(fields["role"] or "").lower(), content=fields["content"] or "")
    for name in ("thinking", "images", "tool_calls", "tool_name", "tool_call_id"):
        if fields[name]:
            msg[name] = fields[name]
    return msg
