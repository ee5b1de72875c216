"""The shell commands a document shows, for tests that run them as a user would.

Every fenced block whose info string starts with `sh` is a Block; each of its lines (a `\\`
at the end joins the next) is a Command. A comment after a command may declare the exit code
the user is told to expect, as `(exit N)`; any other command must exit 0. Text in double
quotes in the comment is what the command prints (a part of its output):

    doit build      # ...refused (exit 1): "my-bot:v1.1 is a released tag and its inputs changed"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "Command", "blocks", "split_comment"]

_FENCE = re.compile(r"^(`{3,})(\S*)[^\n]*$")
_EXIT = re.compile(r"\(exit (\d+)\)")
_QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in the document, 1-based
    text: str  # the command, without its comment
    comment: str
    expect: int  # the exit code the comment declares, else 0
    says: tuple[str, ...] = ()  # what the comment quotes of the command's output


@dataclass(frozen=True)
class Block:
    doc: str  # the document's path, relative to the repository
    line: int  # the line of the opening fence
    commands: tuple[Command, ...]

    @property
    def first(self) -> str:
        return self.commands[0].text if self.commands else ""

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): a `#` that starts a word outside quotes starts the comment."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1:].strip()
    return line.rstrip(), ""


def _commands(lines: list[tuple[int, str]]) -> tuple[Command, ...]:
    found = []
    pending: list[str] = []
    start = 0
    for number, raw in lines:
        text, comment = split_comment(raw)
        if not pending:
            start = number
        if text.endswith("\\"):
            pending.append(text[:-1].rstrip())
            continue
        pending.append(text.strip())
        command = " ".join(part for part in pending if part)
        pending = []
        if command:
            match = _EXIT.search(comment)
            found.append(Command(start, command, comment, int(match.group(1)) if match else 0,
                                 tuple(_QUOTED.findall(comment))))
    return tuple(found)


def blocks(root: Path, doc: str, language: str = "sh") -> list[Block]:
    """Every fenced `language` block of `root/doc`, in order."""
    found = []
    fence = ""
    body: list[tuple[int, str]] = []
    opened = 0
    for number, line in enumerate((root / doc).read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if not fence:
            if match:
                fence, kind, opened, body = match.group(1), match.group(2), number, []
                if kind != language:
                    fence = "skip:" + fence
            continue
        if line.strip() == fence.removeprefix("skip:"):
            if not fence.startswith("skip:"):
                found.append(Block(doc, opened, _commands(body)))
            fence = ""
            continue
        body.append((number, line))
    return found
