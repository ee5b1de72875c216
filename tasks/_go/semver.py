"""golang.org/x/mod/semver.IsValid: what REQUIRES accepts."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["is_valid"]

_IDENT: Final = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER: Final = re.compile(
    r"v(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)"
    rf"(?:-{_IDENT}(?:\.{_IDENT})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)


def is_valid(version: str) -> bool:
    """semver.IsValid: "v" then major[.minor[.patch[-pre][+build]]]."""
    return _SEMVER.fullmatch(version) is not None
