"""A small syntax check for Go text/template, the language of a Modelfile's TEMPLATE.

Not a full Go template parser: it finds what breaks a template before Ollama loads it
(an unterminated `{{`, an `{{end}}` with no block, an unclosed `{{if}}`, `{{range}}`,
`{{with}}`, `{{block}}` or `{{define}}`, an action Go's lexer rejects, Jinja delimiters
pasted from a Hugging Face chat template). It follows Go's lexer where it matters: the trim
markers `{{- ` and ` -}}` need a space beside the dash, comments `{{/* */}}` must close
right before the delimiter, strings and raw strings may hold `}}`, actions may span lines
(Go >= 1.16). Function names are not checked: Ollama adds its own.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Final

__all__ = ["TemplateError", "check"]

_LEFT: Final = "{{"
_RIGHT: Final = "}}"
_TRIM_SPACE: Final = frozenset(" \t\r\n")
_WORD_START: Final = frozenset(string.ascii_letters + "_")
_WORD: Final = _WORD_START | frozenset(string.digits)
_NUMBER: Final = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|"
                            r"(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)i?")
# Characters Go's lexer accepts inside an action besides words, numbers, strings and spaces.
_PUNCTUATION: Final = frozenset("$.()|=:,")
_OPENERS: Final = frozenset({"if", "range", "with", "block", "define"})
_NAMED: Final = frozenset({"block", "define", "template"})
# Jinja's delimiters, which Go reads as plain text: the template would print them verbatim.
_JINJA: Final = re.compile(r"\{%-?\s*(?:for|if|set|endfor|endif|else|elif|macro)\b|\{#.*?#\}",
                           re.DOTALL)


@dataclass(frozen=True)
class TemplateError:
    """Why a template does not parse, and where: `offset` into the text, 1-based `line`."""

    offset: int
    line: int
    message: str


@dataclass
class _Block:
    keyword: str
    offset: int
    has_else: bool = False


class _Checker:
    """One pass over the text: actions are lexed, block keywords kept on a stack."""

    def __init__(self, text: str):
        self.text = text
        self.stack: list[_Block] = []

    def line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def fail(self, offset: int, message: str) -> TemplateError:
        return TemplateError(offset, self.line(offset), message)

    def run(self) -> TemplateError | None:
        text = self.text
        at = 0
        while True:
            start = text.find(_LEFT, at)
            if start < 0:
                break
            found = self.action(start)
            if isinstance(found, TemplateError):
                return found
            at = found
        if self.stack:
            block = self.stack[-1]
            return self.fail(block.offset, f"unclosed {{{{{block.keyword}}}}}: no {{{{end}}}} "
                                           "before the end of the template")
        jinja = _JINJA.search(text)
        if jinja:
            return self.fail(jinja.start(), f"{jinja.group()[:12]!r} is Jinja syntax; Ollama "
                                            "templates use Go's {{ }} (see docs/template.md in ollama/ollama)")
        return None

    def action(self, start: int) -> int | TemplateError:
        """Check the action at `start` ("{{"); return the offset after its "}}"."""
        text = self.text
        at = start + len(_LEFT)
        if text.startswith("-", at) and at + 1 < len(text) and text[at + 1] in _TRIM_SPACE:
            at += 2
        if text.startswith("/*", at):
            return self.comment(start, at)
        tokens: list[tuple[str, str, int]] = []  # (kind, text, offset)
        depth = 0
        while True:
            if at >= len(text):
                return self.fail(start, "unclosed action: '{{' without '}}'")
            char = text[at]
            if char in _TRIM_SPACE:
                if text.startswith("-" + _RIGHT, at + 1):
                    at += 1 + len("-" + _RIGHT)
                    break
                at += 1
                continue
            if text.startswith(_RIGHT, at):
                at += len(_RIGHT)
                break
            if char == '"' or char == "'":
                end = self.quoted(at, char)
                if isinstance(end, TemplateError):
                    return end
                tokens.append(("string", text[at:end], at))
                at = end
            elif char == "`":
                end = text.find("`", at + 1)
                if end < 0:
                    return self.fail(at, "unterminated raw quoted string")
                tokens.append(("string", text[at : end + 1], at))
                at = end + 1
            elif char in _WORD_START:
                end = at
                while end < len(text) and text[end] in _WORD:
                    end += 1
                tokens.append(("word", text[at:end], at))
                at = end
            elif char.isdigit() or char in "+-" or (char == "." and text[at + 1 : at + 2].isdigit()):
                match = _NUMBER.match(text, at)
                end = match.end() if match else at
                if end == at or (end < len(text) and text[end] in _WORD):
                    return self.fail(at, f"bad number syntax: {text[at:max(end, at + 1)]!r}")
                tokens.append(("number", text[at:end], at))
                at = end
            elif char in _PUNCTUATION:
                if char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                    if depth < 0:
                        return self.fail(at, "unexpected right paren ')'")
                tokens.append(("punct", char, at))
                at += 1
            elif char.isalpha():  # Go identifiers may hold any Unicode letter
                tokens.append(("word", char, at))
                at += 1
            elif char.isprintable():
                return self.fail(at, f"unexpected {char!r} in action")
            else:
                return self.fail(at, f"unrecognized character in action: U+{ord(char):04X}")
        if depth > 0:
            return self.fail(start, "unclosed left paren '(' in action")
        problem = self.keyword(tokens, start)
        return problem if problem is not None else at

    def quoted(self, at: int, quote: str) -> int | TemplateError:
        """The offset after a "string" or 'c' starting at `at`."""
        text = self.text
        end = at + 1
        while end < len(text):
            char = text[end]
            if char == "\\":
                end += 2
                continue
            if char == "\n":
                break
            if char == quote:
                return end + 1
            end += 1
        what = "quoted string" if quote == '"' else "character constant"
        return self.fail(at, f"unterminated {what}")

    def comment(self, start: int, at: int) -> int | TemplateError:
        """A comment action; it must end with "*/" right before the closing delimiter."""
        text = self.text
        close = text.find("*/", at + 2)
        if close < 0:
            return self.fail(start, "unclosed comment: '/*' without '*/'")
        after = close + 2
        if text.startswith(_RIGHT, after):
            return after + len(_RIGHT)
        if text[after : after + 1] in _TRIM_SPACE and text.startswith("-" + _RIGHT, after + 1):
            return after + 1 + len("-" + _RIGHT)
        return self.fail(close, "comment ends before closing delimiter: write '*/}}'")

    def keyword(self, tokens: list[tuple[str, str, int]], start: int) -> TemplateError | None:
        """Block structure: openers, else, end, break/continue; empty actions."""
        if not tokens:
            return self.fail(start, "missing value for command: empty action '{{ }}'")
        kind, word, offset = tokens[0]
        word = word if kind == "word" else ""
        rest = tokens[1:]
        if word in _OPENERS:
            if word == "define" and self.stack:
                return self.fail(offset, "{{define}} is only allowed at the top level")
            if word in _NAMED and (not rest or rest[0][0] != "string"):
                return self.fail(offset, f"{{{{{word}}}}} needs a quoted template name")
            if word in ("if", "range", "with") and not rest:
                return self.fail(offset, f"missing value for {word}")
            self.stack.append(_Block(word, start))
        elif word == "end":
            if rest:
                return self.fail(offset, "unexpected words after {{end}}")
            if not self.stack:
                return self.fail(offset, "unexpected {{end}}: no {{if}}, {{range}}, {{with}}, "
                                         "{{block}} or {{define}} is open")
            self.stack.pop()
        elif word == "else":
            block = self.stack[-1] if self.stack else None
            if block is None or block.keyword not in ("if", "range", "with"):
                return self.fail(offset, "unexpected {{else}}: no {{if}}, {{range}} or {{with}} is open")
            if block.has_else:
                return self.fail(offset, "{{else}} after the final {{else}} of this block")
            chained = rest[0][1] if rest and rest[0][0] == "word" else ""
            if chained in ("if", "with"):
                if len(rest) == 1:
                    return self.fail(offset, f"missing value for else {chained}")
            elif rest:
                return self.fail(offset, "unexpected words after {{else}}")
            else:
                block.has_else = True
        elif word in ("break", "continue") and not any(b.keyword == "range" for b in self.stack):
            return self.fail(offset, f"{{{{{word}}}}} outside {{{{range}}}}")
        return None


def check(text: str) -> TemplateError | None:
    """The first syntax error of a Go text/template, or None when it looks well formed."""
    return _Checker(text).run()
