"""`doit fmt`: Modelfiles rewritten in one canonical form, comments kept, meaning unchanged.

The canonical form is `Modelfile.format(keep_comments=True)` (one instruction a line,
keywords upper-case, quoted only where needed) except that prose (SYSTEM, TEMPLATE, LICENSE,
MESSAGE) is always in triple quotes, with one blank line wherever the original
had one or more between two instructions or comments, and LF line ends in UTF-8. Before a
file is rewritten the new text is parsed again: if its instructions or comments differ in
any way from the original's, the file is left alone and the refusal says why.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from . import lockfile, modelfile
from .errors import ModelfileError
from .modelfile import Modelfile

__all__ = ["FmtReport", "Formatted", "canonical", "fmt_files", "format_file", "write_file"]

_LINE_END: Final = re.compile(r"\r\n|\r|\n")
# Instructions whose value is prose: always written in triple quotes, which keeps long
# prompts readable and their diffs small (Ollama's own form quotes only where needed).
_PROSE: Final = frozenset({"system", "template", "license", "message"})


def _render(name: str, args: str, line: int) -> str:
    """One instruction in canonical form."""
    plain = Modelfile([(name, args)], [line]).format()
    if name not in _PROSE:
        return plain
    if name == "message":
        role, _, value = args.partition(": ")
        head = f"MESSAGE {role}"
    else:
        head, value = name.upper(), args
    quoted = f'{head} """{value}"""\n'
    try:
        if modelfile.parse("FROM x\n" + quoted).instructions[1:] == [(name, args)]:
            return quoted
    except ModelfileError:
        pass
    return plain  # a value triple quotes cannot hold as it is


def _decoded(data: bytes) -> str:
    """The text as an editor shows it (for finding comment lines and blank lines)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")


def _comment_lines(text: str, mf: Modelfile) -> list[int] | None:
    """The editor line of each comment, or None when they cannot be told apart for sure."""
    covered: set[int] = set()
    for (_, args), start in zip(mf.instructions, mf.lines):
        covered.update(range(start, start + len(_LINE_END.findall(args)) + 1))
    lines = _LINE_END.split(text)
    found = [number for number, line in enumerate(lines, start=1)
             if number not in covered and line.lstrip(" \t").startswith("#")]
    texts = [lines[n - 1].lstrip(" \t") for n in found]
    if texts != [c.text for c in mf.comments]:
        return None
    return found


def _items(mf: Modelfile, comment_lines: list[int] | None) -> list[tuple[str, int | None, int]]:
    """Comments and instructions in file order: (canonical text, first line, last line)."""
    items: list[tuple[str, int | None, int]] = []
    comments = sorted(enumerate(mf.comments), key=lambda pair: (pair[1].before, pair[0]))
    at = 0
    for index, (name, args) in enumerate([*mf.instructions, ("", "")]):
        while at < len(comments) and comments[at][1].before <= index:
            number, comment = comments[at]
            line = comment_lines[number] if comment_lines is not None else None
            items.append((comment.text.rstrip() + "\n", line, line or 0))
            at += 1
        if index == len(mf.instructions):
            break
        start = mf.lines[index] if comment_lines is not None else None
        text = _render(name, args, mf.lines[index])
        items.append((text, start, (start or 0) + len(_LINE_END.findall(args))))
    return items


def canonical(data: bytes, path: str | None = None) -> str:
    """The canonical text of a Modelfile; ModelfileError if it does not parse or the
    canonical form would not mean exactly the same."""
    try:
        original = modelfile.parse(data)
    except ModelfileError as err:
        raise err.with_path(path) if path else err from None
    comment_lines = _comment_lines(_decoded(data), original)
    out: list[str] = []
    previous_end: int | None = None
    for text, start, end in _items(original, comment_lines):
        if out and start is not None and previous_end is not None and start > previous_end + 1:
            out.append("\n")  # the original had blank lines here: keep one
        out.append(text)
        previous_end = end if start is not None else None
    result = "".join(out)
    _refuse_changes(original, result, path)
    return result


def _refuse_changes(original: Modelfile, result: str, path: str | None) -> None:
    """Raise unless `result` parses to the same instructions and comments as `original`."""
    where = f"{path}: " if path else ""
    try:
        again = modelfile.parse(result)
    except ModelfileError as err:
        raise ModelfileError(f"{where}refusing to rewrite: the canonical form would not parse "
                             f"({err})") from None
    for index, (before, after) in enumerate(zip(original.instructions, again.instructions)):
        if before != after:
            raise ModelfileError(f"{where}refusing to rewrite: instruction {index + 1} "
                                 f"({before[0]}) would change meaning",
                                 original.lines[index] if index < len(original.lines) else None)
    if len(original.instructions) != len(again.instructions):
        raise ModelfileError(f"{where}refusing to rewrite: the canonical form would have "
                             f"{len(again.instructions)} instructions instead of "
                             f"{len(original.instructions)}")
    kept = [(c.before, c.text.rstrip()) for c in original.comments]
    if kept != [(c.before, c.text) for c in again.comments]:
        raise ModelfileError(f"{where}refusing to rewrite: a comment would move or change")


@dataclass(frozen=True)
class Formatted:
    """One file and its canonical text."""

    path: Path
    relpath: str
    text: str
    changed: bool


def format_file(path: Path, relpath: str | None = None) -> Formatted:
    """Read a Modelfile and compute its canonical form (nothing is written)."""
    shown = relpath or str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelfileError(f"cannot read Modelfile: {err.strerror}", path=shown) from None
    text = canonical(data, shown)
    return Formatted(path, shown, text, text.encode("utf-8") != data)


def write_file(path: Path, text: str) -> None:
    """Replace the file (through a symlink, if it is one) atomically, keeping its mode."""
    target = path.resolve()
    lockfile.write_atomic(target, text.encode("utf-8"), mode=stat.S_IMODE(target.stat().st_mode))


@dataclass
class FmtReport:
    """Files rewritten (or that would be, with --check), unchanged, refused."""

    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def render(self, check: bool) -> str:
        lines = [f"{'would reformat' if check else 'reformatted'} {p}" for p in self.changed]
        lines += [f"error: {e}" for e in self.errors]
        verb = "would be reformatted" if check else "reformatted"
        lines.append(f"fmt: {len(self.changed)} file{'s' * (len(self.changed) != 1)} {verb}, "
                     f"{self.unchanged} unchanged"
                     + (f", {len(self.errors)} refused" if self.errors else ""))
        return "\n".join(lines) + "\n"

    def ok(self, check: bool) -> bool:
        return not self.errors and not (check and self.changed)


def fmt_files(files: Iterable[tuple[Path, str]], *, check: bool) -> FmtReport:
    """Format each (path, relpath); with `check`, only report what would change."""
    report = FmtReport()
    for path, relpath in files:
        try:
            formatted = format_file(path, relpath)
        except ModelfileError as err:
            report.errors.append(str(err))
            continue
        if not formatted.changed:
            report.unchanged += 1
            continue
        if not check:
            try:
                write_file(path, formatted.text)
            except OSError as err:
                report.errors.append(f"{relpath}: cannot write: {err.strerror}")
                continue
        report.changed.append(relpath)
    return report
