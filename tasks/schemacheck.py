"""JSON Schema for smoke tests, by the `jsonschema` library.

Draft 2020-12, or the draft a schema's `$schema` names (2019-09, 7, 6, 4, 3): every keyword
of that draft. `format` is asserted for the formats jsonschema can check with what is
installed (`date`, `email`, `ipv4`, `ipv6`, `regex`, `uuid`, ...; `FORMAT_CHECKER`); others
are annotations, as the drafts say. `$ref` resolves inside the schema only: nothing is
fetched over the network.

jsonschema (and the `referencing` library under it, ~60 ms) is imported on first use: only
reading a test file (`doit test`, `doit lint`, `doit promote`) needs it, never `doit build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["DEFAULT_DRAFT", "SchemaError", "check_schema", "validate"]

DEFAULT_DRAFT: Final = "draft 2020-12"
_DRAFTS: Final = {"Draft202012Validator": DEFAULT_DRAFT, "Draft201909Validator": "draft 2019-09",
                  "Draft7Validator": "draft 7", "Draft6Validator": "draft 6",
                  "Draft4Validator": "draft 4", "Draft3Validator": "draft 3"}
# Validation errors reported per answer; the rest are counted.
MAX_REPORTED: Final = 5


class SchemaError(ValueError):
    """A schema that cannot be used; the message says where in it and why. `.path`: the
    keys from the schema's root to the offending keyword, when known."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.path = path


def _validator_class(schema: Any) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    if not isinstance(schema, Mapping) or "$schema" not in schema:
        return Draft202012Validator
    found = validator_for(schema, default=None)  # None: a $schema jsonschema does not know
    if found is None:
        raise SchemaError(f"unknown $schema {schema['$schema']!r}; use a JSON Schema draft "
                          "URI such as https://json-schema.org/draft/2020-12/schema, or leave "
                          f"$schema out ({DEFAULT_DRAFT})", ("$schema",))
    return found


def check_schema(schema: Any, where: str) -> None:
    """Raise SchemaError unless `schema` is a valid JSON Schema of its draft; `where` names
    the schema in messages ("expect.schema")."""
    from jsonschema.exceptions import SchemaError as InvalidSchema

    if not isinstance(schema, (Mapping, bool)):
        raise SchemaError(f"{where} must be a table (a JSON Schema), got {schema!r}")
    cls = _validator_class(schema)
    try:
        cls.check_schema(schema)
    except InvalidSchema as err:
        path = tuple(err.path)
        at = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        raise SchemaError(f"{where} is not a valid JSON Schema "
                          f"({_DRAFTS.get(cls.__name__, cls.__name__)}): "
                          f"{err.message} (at {at})", path) from None


def validate(instance: Any, schema: Any) -> list[str]:
    """Every way `instance` (decoded JSON) violates `schema`, as "$.path: message"; empty
    when it matches. SchemaError if the schema cannot be applied (a `$ref` to nowhere)."""
    import referencing
    import referencing.exceptions

    cls = _validator_class(schema)
    # An empty registry: references resolve inside the schema (and to the drafts' own
    # meta-schemas, which jsonschema adds), never over the network.
    validator = cls(schema, registry=referencing.Registry(), format_checker=cls.FORMAT_CHECKER)
    try:
        # in the answer's order: by path, array indexes as numbers
        errors = sorted(validator.iter_errors(instance),
                        key=lambda e: [f"{p:012d}" if isinstance(p, int) else p for p in e.path])
    except referencing.exceptions.Unresolvable as err:
        raise SchemaError(f"a $ref in the schema cannot be resolved ({err}); references "
                          "must point inside the schema, e.g. #/$defs/name") from None
    messages = [f"{e.json_path}: {e.message}" for e in errors[:MAX_REPORTED]]
    if len(errors) > MAX_REPORTED:
        messages.append(f"and {len(errors) - MAX_REPORTED} more")
    return messages
