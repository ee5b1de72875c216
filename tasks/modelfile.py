"""Ollama Modelfiles: read them exactly as Ollama does, and write them back.

`parse` and `load` follow Ollama's own parser (parser/parser.go of ollama/ollama at
fb30760): the same states, the same error texts, the same line numbers (every CR and every
LF counts, so CR LF counts twice), the same decoding (UTF-8, or UTF-16 LE/BE when a byte
order mark says so; invalid bytes become U+FFFD) and the same silent dropping of characters
Go does not call printable. `Modelfile.format` writes text that Ollama reads back to the
same instructions.

How to read this module: the vocabulary and the character sets come first, then
`_transition`, which is the whole grammar (one character, the state and what the current
word holds so far -> the next state and what to keep), then `_scan`, which runs it and
collects instructions, lines and comments, then the writer.

`Modelfile.resolve` / `Modelfile.create_request` turn a Modelfile into the body `ollama
create` POSTs; that lives in doit_ollama.createrequest. Go's own behaviour (IsPrint,
decoding) comes from the private package `_go`.

Run `python -m doit_ollama.modelfile PATH` to print the create request of one Modelfile.
"""

from __future__ import annotations

import enum
import json
import os
import re
import string
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ._go.isprint import is_print
from ._go.oserror import reason
from ._go.textdecode import decode
from .errors import ModelfileError

if TYPE_CHECKING:
    from .createrequest import DigestFn, ResolvedRequest

__all__ = [
    "COMMANDS",
    "DEPRECATED_PARAMETERS",
    "PARAMETER_TYPES",
    "ROLES",
    "Comment",
    "Modelfile",
    "load",
    "main",
    "parse",
]

# --- Ollama's vocabulary -------------------------------------------------------------------

# In the order Ollama's error message lists them.
COMMANDS: Final = (
    "from", "license", "template", "system", "adapter", "draft",
    "renderer", "parser", "parameter", "message", "requires",
)
ROLES: Final = ("system", "user", "assistant")
# Commands written back as `NAME value` (FROM, MESSAGE and PARAMETER have their own forms).
_VALUE_COMMANDS: Final = frozenset(
    {"license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"}
)

# api.Options and api.Runner at Ollama fb30760: JSON name -> how FormatParams reads it.
PARAMETER_TYPES: Final[Mapping[str, str]] = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int",
    "use_mmap": "bool", "num_thread": "int", "draft_num_predict": "int",
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int",
    "top_p": "float32", "min_p": "float32", "typical_p": "float32", "repeat_last_n": "int",
    "temperature": "float32", "repeat_penalty": "float32", "presence_penalty": "float32",
    "frequency_penalty": "float32", "stop": "list",
}
# Removed in 2025: `ollama create` prints a warning and drops them.
DEPRECATED_PARAMETERS: Final = (
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
    "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta",
)

# --- error texts, verbatim from Ollama's parser ----------------------------------------------

ERR_NO_FROM: Final = "no FROM line"
ERR_EOF: Final = "unexpected EOF"
ERR_ROLE: Final = 'message role must be one of "system", "user", or "assistant"'
ERR_COMMAND: Final = (
    "command must be one of "
    + ", ".join(f'"{name}"' for name in COMMANDS[:-1])
    + f', or "{COMMANDS[-1]}"'
)
# Our own texts (no Ollama counterpart).
ERR_READ: Final = "cannot read Modelfile: {reason}"
ERR_UNWRITABLE: Final = "cannot write {what} so that Ollama reads it back: {why}"

# --- character sets of the grammar ---------------------------------------------------------

SPACES: Final = frozenset(" \t")
NEWLINES: Final = frozenset("\r\n")
LETTERS: Final = frozenset(string.ascii_letters)
PARAMETER_NAME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_")
# strings.TrimSpace on the value buffer: only these whitespace characters can reach it.
_TRIM: Final = " \t\r\n"
_PARAMETER_NAME: Final = re.compile(r"[A-Za-z0-9_]*")
_NEWLINE: Final = re.compile("[\r\n]")
_PLAIN_RUN: Final = re.compile("[\t -~]*")  # tabs and printable ASCII: all kept in a value
_SURROGATES: Final = re.compile("[\ud800-\udfff]")


# --- the parsed Modelfile ----------------------------------------------------------------------


class Comment(NamedTuple):
    """A comment line: `text` ("# ...") stands before instruction number `before`."""

    before: int
    text: str


@dataclass(eq=False)
class Modelfile:
    """A parsed Modelfile.

    `instructions`: (name, args) in file order, named as Ollama stores them: FROM is
    "model", a PARAMETER goes under its own name, MESSAGE is ("message", "role: content").
    `lines`: for each instruction, the 1-based line it starts on, as an editor counts
    (CR LF ends one line; Ollama's error messages count it as two).
    `comments`: each comment line with the instruction it stands before.
    `path`: the file it was loaded from, if any.

    Two Modelfiles are equal when their instructions are: comments, spacing, quoting and
    line numbers do not count.
    """

    instructions: list[tuple[str, str]]
    lines: list[int] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    path: Path | None = None

    def __post_init__(self) -> None:
        self.instructions = [(str(name), str(args)) for name, args in self.instructions]
        self.comments = [Comment(int(before), str(text)) for before, text in self.comments]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Modelfile):
            return NotImplemented
        return self.instructions == other.instructions

    __hash__ = None  # type: ignore[assignment]

    def format(self, keep_comments: bool = False) -> str:
        """Canonical text: one instruction a line, quoted only where needed."""
        out: list[str] = []
        pending = sorted(self.comments, key=lambda c: c.before) if keep_comments else []
        for text in (c.text for c in pending):
            if not text.startswith("#") or NEWLINES.intersection(text):
                raise ModelfileError(f"a comment must start with # and fit on one line: {text!r}")
        at = 0
        for index, (name, args) in enumerate(self.instructions):
            while at < len(pending) and pending[at].before <= index:
                out.append(pending[at].text + "\n")
                at += 1
            line = self.lines[index] if index < len(self.lines) else None
            out.append(_render(name, args, line) + "\n")
        out.extend(c.text + "\n" for c in pending[at:])
        return "".join(out)

    def resolve(
        self, base_dir: str | os.PathLike[str] | None = None, digest: DigestFn | None = None
    ) -> ResolvedRequest:
        """The create request against the file system; base_dir defaults to the file's folder.

        `digest` hashes one local file (default: sha256 of its bytes).
        """
        # Imported here: the resolver reads Modelfiles, and parsing alone (lint, fmt, the
        # dependency scan) need not load it.
        from .createrequest import resolve

        return resolve(self, base_dir, digest)

    def create_request(
        self, base_dir: str | os.PathLike[str] | None = None, digest: DigestFn | None = None
    ) -> dict[str, Any]:
        """The JSON body `ollama create` POSTs to /api/create (without model/name/stream)."""
        return self.resolve(base_dir, digest).request


# --- reading: the grammar ----------------------------------------------------------------------


class State(enum.Enum):
    """Where the reader is inside an instruction (parser.go's state enum)."""

    NIL = enum.auto()  # between instructions
    NAME = enum.auto()  # reading a command name
    VALUE = enum.auto()  # reading a value, up to a newline that completes it
    PARAMETER = enum.auto()  # reading a PARAMETER's name
    MESSAGE = enum.auto()  # reading a MESSAGE's role
    COMMENT = enum.auto()  # skipping a comment line


class _Fault(enum.Enum):
    """What a character can be wrong as (each becomes Ollama's error in _scan)."""

    COMMAND = enum.auto()  # not a command: ParserError, with a line number
    ROLE = enum.auto()  # not a MESSAGE role: ParserError, with a line number
    EOF = enum.auto()  # a PARAMETER name or role cut short: io.ErrUnexpectedEOF, no line


# After a command's name: PARAMETER reads the parameter's name next, MESSAGE the role.
_AFTER_COMMAND: Final[Mapping[str, State]] = {
    "parameter": State.PARAMETER, "message": State.MESSAGE,
}


def _transition(char: str, state: State, word: list[str]) -> tuple[State, str, _Fault | None]:
    """The grammar: what `char` does in `state`, where `word` is what the state read so far.

    Returns the next state, the text to add to the word ("" for none: leaving a state
    starts an empty word) and a fault, if the character is not allowed here. Ollama keeps
    only printable characters (Go's strconv.IsPrint), except the spaces, tabs and newlines
    that belong to a value.
    """
    if state is State.NIL:
        if char == "#":
            return State.COMMENT, "", None
        if char in SPACES or char in NEWLINES:
            return State.NIL, "", None
        return State.NAME, char if is_print(char) else "", None
    if state is State.NAME:
        if char in LETTERS:
            return State.NAME, char, None
        command = _command(word) if char in SPACES else None
        if command is None:
            return State.NIL, "", _Fault.COMMAND
        return _AFTER_COMMAND.get(command, State.VALUE), "", None
    if state is State.PARAMETER:
        if char in PARAMETER_NAME_CHARS:
            return State.PARAMETER, char, None
        if char in SPACES:
            return State.VALUE, "", None
        return State.NIL, "", _Fault.EOF
    if state is State.MESSAGE:
        if char in LETTERS:
            return State.MESSAGE, char, None
        if char not in SPACES:
            return State.NIL, "", _Fault.EOF
        if "".join(word) not in ROLES:
            return State.NIL, "", _Fault.ROLE
        return State.VALUE, "", None
    if state is State.VALUE:
        # Spaces never end a value, and a newline ends it only once the value is complete:
        # an open quote keeps collecting lines, newlines included.
        if char in SPACES:
            return State.VALUE, char, None
        if char in NEWLINES:
            if _unquoted_bounds(word) is None:
                return State.VALUE, char, None
            return State.NIL, "", None
        return State.VALUE, char if is_print(char) else "", None
    if char in NEWLINES:  # State.COMMENT
        return State.NIL, "", None
    return State.COMMENT, "", None


def _command(word: list[str]) -> str | None:
    """The command a NAME word spells (any letter case), or None."""
    text = "".join(word)
    command = text.lower() if text.isascii() else ""
    return command if command in COMMANDS else None


def _unquoted_bounds(word: list[str]) -> tuple[int, int] | None:
    """Where a value's text lies in its word once trimmed and unquoted; None while a quote
    ("..." or \"\"\"...\"\"\") is still open."""
    start, end = 0, len(word)
    while start < end and word[start] in _TRIM:
        start += 1
    while end > start and word[end - 1] in _TRIM:
        end -= 1
    size = end - start
    if size >= 3 and word[start] == word[start + 1] == word[start + 2] == '"':
        if size >= 6 and word[end - 1] == word[end - 2] == word[end - 3] == '"':
            return start + 3, end - 3
        return None
    if size >= 1 and word[start] == '"':
        if size >= 2 and word[end - 1] == '"':
            return start + 1, end - 1
        return None
    return start, end


class _Scan(NamedTuple):
    instructions: list[tuple[str, str]]
    lines: list[int]
    comments: list[Comment]


def _scan(text: str) -> _Scan:
    """Run the grammar over decoded text, collecting what each finished word means."""
    instructions: list[tuple[str, str]] = []
    starts: list[int] = []
    comments: list[Comment] = []
    state = State.NIL
    word: list[str] = []
    name = role = ""
    line = 1  # Ollama's count: every CR and every LF
    editor_line = 1  # an editor's count: CR LF is one line end
    start_line = comment_start = 0
    previous = ""
    at, size = 0, len(text)
    while at < size:
        if state is State.VALUE or state is State.COMMENT:
            # Shortcut, same outcome as one character at a time: up to the next line end,
            # a value keeps every space and tab and every printable character, and a
            # comment keeps going.
            newline = _NEWLINE.search(text, at)
            end = newline.start() if newline else size
            if end > at:
                if state is State.VALUE:
                    run = text[at:end]
                    if _PLAIN_RUN.fullmatch(run):
                        word.extend(run)
                    else:
                        word.extend(c for c in run if c in SPACES or is_print(c))
                previous = text[end - 1]
                at = end
                continue
        char = text[at]
        at += 1
        if char in NEWLINES:
            line += 1
            if not (char == "\n" and previous == "\r"):
                editor_line += 1
        previous = char
        following, keep, fault = _transition(char, state, word)
        if fault is _Fault.EOF:  # Ollama gives no line; ours is where the name started
            raise ModelfileError(f"{ERR_EOF}: {''.join(word)}", editor_line=start_line,
                                 hint=_cut_short(state, char))
        if fault is _Fault.COMMAND:
            raise ModelfileError(ERR_COMMAND, line, editor_line=editor_line)
        if fault is _Fault.ROLE:
            hint = None if word else "more than one space after MESSAGE leaves the role empty"
            raise ModelfileError(ERR_ROLE, line, editor_line=editor_line, hint=hint)
        if following is not state:
            # The word just finished: record what it was.
            if state is State.NAME:
                command = _command(word)
                name = "model" if command == "from" else command or ""
            elif state is State.PARAMETER:
                name = "".join(word)
            elif state is State.MESSAGE:
                role = "".join(word)
            elif state is State.VALUE:
                instructions.append((name, _value(word, role)))
                starts.append(start_line)
                role = ""
            elif state is State.COMMENT:
                comments.append(Comment(len(instructions), text[comment_start : at - 1]))
            elif following is State.NAME:
                start_line = editor_line
            elif following is State.COMMENT:
                comment_start = at - 1
            word.clear()
            state = following
        if keep:
            word.append(keep)

    if state is State.VALUE:
        if _unquoted_bounds(word) is None:
            # Ollama says only "unexpected EOF"; the quote that never closed opened on the
            # instruction's first line (a value cannot start on a later one).
            quote = '"""' if "".join(word).lstrip(_TRIM).startswith('"""') else '"'
            opened = f"the {quote} that opens the {_keyword(name, role)} value here"
            raise ModelfileError(ERR_EOF, editor_line=start_line, hint=f"{opened} is never closed")
        instructions.append((name, _value(word, role)))
        starts.append(start_line)
    elif state is State.COMMENT:
        comments.append(Comment(len(instructions), text[comment_start:]))
    elif state is not State.NIL:
        raise ModelfileError(ERR_EOF, editor_line=start_line,
                             hint="the file ends before this instruction has a value")
    return _Scan(instructions, starts, comments)


def _keyword(name: str, role: str) -> str:
    """How the instruction named `name` is written, for messages (FROM, PARAMETER stop)."""
    if role:
        return "MESSAGE"
    if name == "model":
        return "FROM"
    return name.upper() if name in _VALUE_COMMANDS else f"PARAMETER {name}"


def _cut_short(state: State, char: str) -> str:
    """Why a PARAMETER name or a MESSAGE role ended where Ollama stops reading."""
    if char in NEWLINES:
        return "the line ends before the value"
    if state is State.PARAMETER:
        return f"a PARAMETER name holds only letters, digits and _, so {char!r} ends it"
    return f"a MESSAGE role holds only letters, so {char!r} ends it"


def _value(word: list[str], role: str) -> str:
    """A complete value's text; a MESSAGE's is "role: content"."""
    bounds = _unquoted_bounds(word)
    assert bounds is not None  # the grammar ends a value only once it is complete
    value = "".join(word[bounds[0] : bounds[1]])
    return f"{role}: {value}" if role else value


def _from_decoded(text: str) -> Modelfile:
    """Parse text that is already decoded (no byte order mark handling)."""
    scan = _scan(text)
    if not any(name == "model" for name, _ in scan.instructions):
        raise ModelfileError(ERR_NO_FROM)
    return Modelfile(scan.instructions, scan.lines, scan.comments)


def parse(text: str | bytes) -> Modelfile:
    """Parse a Modelfile as Ollama does; bytes are decoded as Ollama decodes a file."""
    if isinstance(text, (bytes, bytearray)):
        return _from_decoded(decode(bytes(text)))
    # Ollama reads bytes: a str stands for its UTF-8 encoding, whose leading BOM Go strips.
    # Lone surrogates have no UTF-8 form; Go would have read such bytes as U+FFFD.
    return _from_decoded(_SURROGATES.sub("\ufffd", text.removeprefix("\ufeff")))


def load(path: str | os.PathLike[str]) -> Modelfile:
    """Read and parse a Modelfile; errors name the file."""
    where = Path(path)
    try:
        data = where.read_bytes()
    except OSError as err:
        raise ModelfileError(ERR_READ.format(reason=reason(err)), path=str(path)) from None
    try:
        modelfile = parse(data)
    except ModelfileError as err:
        raise err.with_path(str(path)) from None
    modelfile.path = where
    return modelfile


# --- writing ---------------------------------------------------------------------------------


def _ollama_quote(value: str) -> str:
    """Modelfile.String()'s quoting: only values with a newline or edge spaces get quotes."""
    if "\n" in value or value.startswith(" ") or value.endswith(" "):
        return f'"""{value}"""' if '"' in value else f'"{value}"'
    return value


def _quotings(value: str) -> tuple[str, ...]:
    return (value, f'"{value}"', f'"""{value}"""')


def _reads_back(line: str, instruction: tuple[str, str]) -> bool:
    try:
        return _scan(line + "\n").instructions == [instruction]
    except ModelfileError:
        return False


def _render(name: str, args: str, line: int | None) -> str:
    """One instruction as text that Ollama's parser reads back to the same instruction.

    Ollama's own form comes first (so the output matches `Modelfile.String()` wherever
    that round-trips), then plain, "quoted" and \"\"\"quoted\"\"\" alternatives.
    """
    candidates: list[str] = []
    if name == "model":
        candidates += [f"FROM {q}" for q in (args, *_quotings(args))]
    elif name in _VALUE_COMMANDS:
        candidates += [f"{name.upper()} {q}" for q in (_ollama_quote(args), *_quotings(args))]
    else:
        role, separator, content = args.partition(": ")
        if name == "message" and separator and role in ROLES:
            candidates += [
                f"MESSAGE {role} {q}" for q in (_ollama_quote(content), *_quotings(content))
            ]
        if _PARAMETER_NAME.fullmatch(name):
            # Also the way to write a message whose role MESSAGE cannot express.
            candidates += [
                f"PARAMETER {name} {q}" for q in (_ollama_quote(args), *_quotings(args))
            ]
    for candidate in dict.fromkeys(candidates):
        if _reads_back(candidate, (name, args)):
            return candidate
    raise ModelfileError(_unwritable(name, args), line)


def _unwritable(name: str, args: str) -> str:
    """Say why no text makes Ollama read back (name, args)."""
    what = f"instruction {name!r}"
    known = name == "model" or name == "message" or name in _VALUE_COMMANDS
    if not known and not _PARAMETER_NAME.fullmatch(name):
        return ERR_UNWRITABLE.format(
            what=what, why="a PARAMETER name may hold only ASCII letters, digits and _"
        )
    for char in args:
        if char not in _TRIM and not is_print(char):
            return ERR_UNWRITABLE.format(
                what=what, why=f"its value holds U+{ord(char):04X}, which Ollama's parser drops"
            )
    return ERR_UNWRITABLE.format(
        what=what,
        why='a line inside its value ends with """, which ends every quoting Ollama knows',
    )


# --- command line ------------------------------------------------------------------------------

_USAGE: Final = "usage: python -m doit_ollama.modelfile PATH\n" \
    "Print the /api/create request `ollama create -f PATH` would send, as JSON."


def main(argv: Sequence[str] | None = None) -> int:
    """Print one Modelfile's create request as JSON; exit 1 on an invalid Modelfile."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        print(_USAGE)
        return 0
    if len(args) != 1:
        print(_USAGE, file=sys.stderr)
        return 2
    path = args[0]
    try:
        resolved = load(path).resolve()
    except ModelfileError as err:
        print(str(err if err.path else err.with_path(path)), file=sys.stderr)
        return 1
    for warning in resolved.warnings:
        print(f"{path}: {warning}", file=sys.stderr)
    try:
        print(json.dumps(resolved.request, sort_keys=True, indent=2))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
