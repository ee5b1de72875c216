"""A small check of Go text/template syntax, enough to reject what Ollama's create rejects.

Covers unclosed actions, comments and strings, block structure (if/range/with/define/
block ... end, else), empty actions and undefined functions; errors read like Go's,
e.g. `template: :1: unclosed action`. It does not type-check pipelines.
"""

from __future__ import annotations

import re

__all__ = ["TemplateError", "check", "variables"]

_FUNCS = frozenset(
    "and call html index slice js len not or print printf println urlquery eq ge gt le lt ne"
    " json currentDate yesterdayDate toTypeScriptType".split()
)
_KEYWORDS = frozenset("if range with define block end else template break continue true false nil".split())
_OPENERS = frozenset(("if", "range", "with", "define", "block"))
_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|\'(?:[^\'\\]|\\.)+\'|:=|=|\||\(|\)|,'
    r"|[$.]?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[-+]?[0-9][0-9a-fA-FxXoObBeEpP_.+-]*|\.|\S"
)


class TemplateError(ValueError):
    """A template Go's parser would reject; str() is Go's message."""


def _err(line: int, msg: str) -> TemplateError:
    return TemplateError(f"template: :{line}: {msg}")


def _actions(text: str) -> list[tuple[int, str]]:
    """(line, inner text) for every action; raises TemplateError on lexing errors."""
    out = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return out
        line = text.count("\n", 0, start) + 1
        i = start + 2
        if text.startswith("- ", i) or text.startswith("-\t", i) or text.startswith("-\n", i):
            i += 1
        stripped = text[i:].lstrip(" \t\r\n")
        if stripped.startswith("/*"):
            i = text.index("/*", i)
            end = text.find("*/", i + 2)
            if end < 0:
                raise _err(line, "unclosed comment")
            close = end + 2
            rest = text[close:]
            trimmed = rest.lstrip(" \t\r\n")
            if trimmed.startswith("-}}"):
                pos = close + (len(rest) - len(trimmed)) + 3
            elif rest.startswith("}}"):
                pos = close + 2
            else:
                raise _err(line, "comment ends before closing delimiter")
            continue
        j = i
        while True:
            if j >= len(text):
                raise _err(line, "unclosed action")
            ch = text[j]
            if text.startswith("}}", j):
                inner = text[i:j]
                if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
                    inner = inner[:-1]
                out.append((line, inner))
                pos = j + 2
                break
            if ch in "\"'`":
                end = _string_end(text, j)
                if end < 0:
                    kind = "raw quoted string" if ch == "`" else "quoted string" if ch == '"' else "character constant"
                    raise _err(line, f"unterminated {kind}")
                j = end
                continue
            j += 1


def _string_end(text: str, start: int) -> int:
    quote = text[start]
    j = start + 1
    while j < len(text):
        ch = text[j]
        if quote != "`" and ch == "\\":
            j += 2
            continue
        if quote != "`" and ch == "\n":
            return -1
        if ch == quote:
            return j + 1
        j += 1
    return -1


def check(text: str) -> None:
    """Raise TemplateError if Go's text/template would not parse `text`."""
    stack: list[str] = []
    for line, inner in _actions(text):
        tokens = _TOKEN.findall(inner)
        if not tokens:
            raise _err(line, "missing value for command")
        head = tokens[0]
        if head in _OPENERS:
            if len(tokens) == 1:
                raise _err(line, f"missing value for {head}")
            stack.append(head)
        elif head == "end":
            if not stack:
                raise _err(line, "unexpected {{end}}")
            stack.pop()
        elif head == "else":
            if not stack or stack[-1] not in ("if", "range", "with"):
                raise _err(line, "unexpected {{else}}")
        elif head in ("break", "continue") and "range" not in stack:
            raise _err(line, f"{{{{{head}}}}} outside {{{{range}}}}")
        for token in tokens:
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token) and token not in _KEYWORDS and token not in _FUNCS:
                raise _err(line, f'function "{token}" not defined')
    if stack:
        raise _err(text.count("\n") + 1, "unexpected EOF")


def variables(text: str) -> set[str]:
    """Lower-cased field names used in actions (template.Vars, roughly): {"prompt", "tools"}."""
    found: set[str] = set()
    try:
        actions = _actions(text)
    except TemplateError:
        return found
    for _line, inner in actions:
        for match in re.finditer(r"(?<![A-Za-z0-9_$])\.([A-Za-z_][A-Za-z0-9_]*)", inner):
            found.add(match.group(1).lower())
    return found
