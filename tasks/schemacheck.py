"""The common subset of JSON Schema that smoke tests need, without a dependency.

Keywords: type, properties, required, additionalProperties, items, enum, const, minimum,
maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, minItems,
maxItems, plus the annotations $schema, $id, title, description, examples and default.
`check_schema` rejects any other keyword by name, so a test never relies on a check that
silently does not happen. `validate` returns every violation with its JSON path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["KEYWORDS", "SchemaError", "check_schema", "validate"]

_TYPES: Final = ("object", "array", "string", "number", "integer", "boolean", "null")
_ANNOTATIONS: Final = frozenset({"$schema", "$id", "title", "description", "examples", "default"})
_NUMBER_KEYS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNT_KEYS: Final = ("minLength", "maxLength", "minItems", "maxItems")
KEYWORDS: Final = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "pattern", *_NUMBER_KEYS, *_COUNT_KEYS,
}) | _ANNOTATIONS


class SchemaError(ValueError):
    """A schema this subset cannot use; the message names the keyword and its path."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_schema(schema: Any, path: str = "schema") -> None:
    """Raise SchemaError if `schema` uses anything outside the supported subset."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{path} must be a table (a JSON Schema object)")
    unknown = sorted(set(schema) - KEYWORDS)
    if unknown:
        raise SchemaError(f"{path}: unsupported keyword(s) {', '.join(unknown)} "
                          f"(supported: {', '.join(sorted(KEYWORDS - _ANNOTATIONS))})")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        bad = [k for k in kinds if k not in _TYPES]
        if bad or not kinds:
            raise SchemaError(f"{path}.type must be one of {', '.join(_TYPES)} (or a list), "
                              f"got {kind!r}")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise SchemaError(f"{path}.properties must be a table of schemas")
    for name, sub in properties.items():
        check_schema(sub, f"{path}.properties.{name}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaError(f"{path}.required must be a list of property names")
    extra = schema.get("additionalProperties", True)
    if not isinstance(extra, bool):
        check_schema(extra, f"{path}.additionalProperties")
    if "items" in schema:
        check_schema(schema["items"], f"{path}.items")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise SchemaError(f"{path}.enum must be a non-empty list")
    for key in _NUMBER_KEYS:
        if key in schema and not _is_number(schema[key]):
            raise SchemaError(f"{path}.{key} must be a number")
    for key in _COUNT_KEYS:
        value = schema.get(key)
        if key in schema and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SchemaError(f"{path}.{key} must be a non-negative integer")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, TypeError) as err:
            raise SchemaError(f"{path}.pattern is not a regular expression: {err}") from None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, kind: str) -> bool:
    found = _type_of(value)
    if kind == "number":
        return found in ("integer", "number")
    if kind == "integer":  # JSON Schema: 1.0 is an integer
        return found == "integer" or (found == "number" and math.isfinite(value)
                                      and float(value).is_integer())
    return found == kind


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def validate(instance: Any, schema: Any, path: str = "$") -> list[str]:
    """Every way `instance` (decoded JSON) violates `schema`; empty when it matches."""
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_has_type(instance, k) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, got {_type_of(instance)}"]
    if "const" in schema and not _equal(instance, schema["const"]):
        errors.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and not any(_equal(instance, option) for option in schema["enum"]):
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']!r}")
    if _is_number(instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} is more than the maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: {instance} must be more than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
            errors.append(f"{path}: {instance} must be less than {schema['exclusiveMaximum']}")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{path}: does not match the pattern {schema['pattern']!r}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(instance):
                errors += validate(item, schema["items"], f"{path}[{index}]")
    if isinstance(instance, Mapping):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{path}: required property {name!r} is missing")
        extra = schema.get("additionalProperties", True)
        for name, value in instance.items():
            if name in properties:
                errors += validate(value, properties[name], f"{path}.{name}")
            elif extra is False:
                errors.append(f"{path}: property {name!r} is not allowed "
                              "(additionalProperties is false)")
            elif extra is not True:
                errors += validate(value, extra, f"{path}.{name}")
    return errors
