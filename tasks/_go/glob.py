"""Go's filepath.Glob and the Match patterns it takes.

Unlike Python's glob, `**` is just `*` (one path element), hidden files match `*`, a
malformed pattern is an error even where nothing would match, and each folder's matches come
sorted by their bytes.
"""

from __future__ import annotations

import os
import re
import stat

from .filepath import join

__all__ = ["BadPattern", "glob"]


class BadPattern(Exception):
    """filepath.ErrBadPattern."""


def glob(pattern: str) -> list[str]:
    """filepath.Glob: matches sorted per folder; BadPattern for a malformed pattern."""
    elements = [_compile(part) for part in pattern.split("/")]  # validates everything
    if not _has_meta(pattern):
        try:
            os.lstat(pattern)
        except (OSError, ValueError):
            return []
        return [pattern]
    cut = pattern.rfind("/") + 1
    folder = pattern[:cut]
    folder = "." if not folder else folder if folder == "/" else folder[:-1]
    matcher = elements[-1]
    if not _has_meta(folder):
        return _glob_in(folder, matcher)
    if folder == pattern:
        raise BadPattern
    found: list[str] = []
    for each in glob(folder):
        found += _glob_in(each, matcher)
    return found


def _glob_in(folder: str, matcher: re.Pattern[str]) -> list[str]:
    try:
        if not stat.S_ISDIR(os.stat(folder).st_mode):
            return []
        names = os.listdir(folder)
    except (OSError, ValueError):
        return []
    names.sort(key=os.fsencode)  # Go sorts the raw bytes
    return [join(folder, name) for name in names if matcher.fullmatch(name)]


def _has_meta(path: str) -> bool:
    return any(char in path for char in "*?[\\")


def _compile(pattern: str) -> re.Pattern[str]:
    """Compile one path element of a filepath.Match pattern; BadPattern if malformed."""
    out: list[str] = []
    at, size = 0, len(pattern)
    while at < size:
        char = pattern[at]
        at += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if at >= size:
                raise BadPattern
            out.append(re.escape(pattern[at]))
            at += 1
        elif char == "[":
            negated = at < size and pattern[at] == "^"
            at += negated
            ranges: list[str] = []
            count = 0
            while True:
                if at < size and pattern[at] == "]" and count > 0:
                    at += 1
                    break
                low, at = _class_char(pattern, at)
                high = low
                if pattern[at] == "-":
                    high, at = _class_char(pattern, at + 1)
                if low <= high:  # Go accepts reversed ranges; they match nothing
                    ranges.append(f"{re.escape(low)}-{re.escape(high)}")
                count += 1
            if ranges:
                out.append(f"[{'^' if negated else ''}{''.join(ranges)}]")
            else:
                out.append("[\\s\\S]" if negated else "(?!)")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, at: int) -> tuple[str, int]:
    """One (possibly escaped) character of a [class]; it must be followed by more pattern."""
    if at >= len(pattern) or pattern[at] in "-]":
        raise BadPattern
    if pattern[at] == "\\":
        at += 1
        if at >= len(pattern):
            raise BadPattern
    if at + 1 >= len(pattern):
        raise BadPattern
    return pattern[at], at + 1
