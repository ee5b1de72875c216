"""Ollama Modelfiles: read them exactly as Ollama does, write them back, turn them into create requests.

`parse` and `load` follow Ollama's own parser (parser/parser.go of ollama/ollama): the same
state machine, the same error texts, the same line numbers (every CR and every LF counts, so
CR LF counts twice), the same decoding (UTF-8, or UTF-16 LE/BE when a byte order mark says
so; invalid bytes become U+FFFD) and the same silent dropping of characters Go does not call
printable. `Modelfile.resolve` / `Modelfile.create_request` build the JSON body that
`ollama create -f <Modelfile>` POSTs to /api/create: local files found, hashed and keyed as
the CLI keys them, parameters typed by Ollama's table, floats rounded to float32.

Where Ollama's behaviour depends on Go itself, this module reproduces Go 1.26:
`strconv.IsPrint` (Unicode 15.0.0), `strconv.ParseFloat`/`ParseInt`/`ParseBool`,
`filepath.Glob`, `http.DetectContentType`, `encoding/json` and x/mod's semver check.
Paths follow Go's rules on Unix.

Run `python -m doit_ollama.modelfile PATH` to print the create request of one Modelfile.
"""

from __future__ import annotations

import bisect
import codecs
import enum
import errno
import json
import math
import os
import re
import stat
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, NamedTuple

from .errors import ModelfileError
from .hashing import sha256_file

try:  # pwd is Unix-only; elsewhere `~` falls back to $HOME
    import pwd
except ImportError:  # pragma: no cover
    pwd = None  # type: ignore[assignment]

__all__ = [
    "COMMANDS",
    "DEPRECATED_PARAMETERS",
    "PARAMETER_TYPES",
    "ROLES",
    "Comment",
    "LocalFile",
    "Modelfile",
    "ResolvedRequest",
    "current_user_home",
    "expand_path",
    "files_for_model",
    "load",
    "main",
    "parse",
    "user_home",
    "wire_json",
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

# --- error and warning texts, verbatim from Ollama (and from Go where Ollama passes Go's on) --

ERR_NO_FROM: Final = "no FROM line"
ERR_EOF: Final = "unexpected EOF"
ERR_ROLE: Final = 'message role must be one of "system", "user", or "assistant"'
ERR_COMMAND: Final = (
    "command must be one of "
    + ", ".join(f'"{name}"' for name in COMMANDS[:-1])
    + f', or "{COMMANDS[-1]}"'
)
ERR_NO_MODEL_FILES: Final = "no Modelfile or safetensors files found"
ERR_REQUIRES: Final = "requires must be a valid semver (e.g. 0.14.0)"
ERR_DRAFT_SAME: Final = "DRAFT must not reference the same local path as FROM: {path}"
ERR_INSECURE: Final = "insecure path: {rel}"
ERR_INSECURE_CACHE: Final = (
    ERR_INSECURE + "\n\nUse --local-dir <dir> when downloading model to disable caching"
)
ERR_CONTENT_TYPE: Final = "invalid content type: expected {found} for {path}"
ERR_UNKNOWN_PARAMETER: Final = "unknown parameter '{name}'"
ERR_INVALID_VALUE: Final = "invalid {kind} value [{value}]"
ERR_UNKNOWN_USER: Final = "failed to find user '{name}': user: unknown user {name}"
ERR_CURRENT_USER: Final = "failed to get current user: {reason}"
ERR_UNSUPPORTED_VALUE: Final = "json: unsupported value: {value}"
WARN_DEPRECATED: Final = "warning: parameter {name} is deprecated"
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
# The runes Go's strconv.IsPrint accepts are listed in _PRINTABLE at the end of this module.

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16LE_BOM: Final = b"\xff\xfe"
_UTF16BE_BOM: Final = b"\xfe\xff"

# golang.org/x/mod/semver.IsValid
_SEMVER_IDENT: Final = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER: Final = re.compile(
    r"v(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)"
    rf"(?:-{_SEMVER_IDENT}(?:\.{_SEMVER_IDENT})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_GO_BOOLS: Final[Mapping[str, bool]] = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1

# filesForModel: weights in priority order (the first pattern that matches wins), then extras.
# Each pattern: (glob relative to the model directory, content type it must sniff as or "").
_WEIGHT_PATTERNS: Final = (
    ("model*.safetensors", ""),
    ("consolidated*.safetensors", ""),
    ("pytorch_model*.bin", "application/zip"),
    ("consolidated*.pth", "application/zip"),
    ("*.gguf", "application/octet-stream"),
    ("*.bin", "application/octet-stream"),
)
_NESTED_SAFETENSORS: Final = "*/model*.safetensors"
_CONFIG_PATTERNS: Final = (
    ("*.json", "text/plain"),
    ("**/*.json", "text/plain"),  # Go's Glob reads ** as *: one level down
    ("chat_template.jinja", "text/plain"),
)
_TOKENIZER_PATTERNS: Final = (
    ("tokenizer.model", "application/octet-stream"),
    ("**/tokenizer.model", "text/plain"),
)

# The request fields that name local files, in the order LocalFile entries are sorted.
_FILE_FIELDS: Final = ("files", "adapters", "draft_files")


# --- public types --------------------------------------------------------------------------


class Comment(NamedTuple):
    """A comment line: `text` ("# ...") stands before instruction number `before`."""

    before: int
    text: str


@dataclass(frozen=True)
class LocalFile:
    """One local file a create request needs: upload it as a blob, record it in the lock."""

    field: str  # "files", "adapters" or "draft_files"
    key: str  # its name in that field of the request, as `ollama create` sends it
    path: Path  # absolute path on this machine
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class ResolvedRequest:
    """A Modelfile made concrete against the file system.

    `request`: the /api/create body without "model"/"name"/"stream".
    `local_files`: every local file named in it, sorted by field then key.
    `base`: the model name sent as `from` (None when the model comes from local files).
    `warnings`: what `ollama create` would print as warnings (deprecated parameters).
    """

    request: dict[str, Any]
    local_files: list[LocalFile]
    base: str | None
    warnings: list[str]


DigestFn = Callable[[str], str]


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
            out.append(_render(name, args, self._line(index)) + "\n")
        out.extend(c.text + "\n" for c in pending[at:])
        return "".join(out)

    def resolve(
        self, base_dir: str | os.PathLike[str] | None = None, digest: DigestFn = sha256_file
    ) -> ResolvedRequest:
        """The create request against the file system; base_dir defaults to the file's folder."""
        try:
            if base_dir is None:
                if self.path is None:
                    raise ModelfileError("resolve() needs base_dir for a Modelfile without a path")
                base_dir = self.path.parent
            return _Resolver(self, os.fspath(base_dir), digest).run()
        except ModelfileError as err:
            if self.path is not None and err.path is None:
                raise err.with_path(str(self.path)) from None
            raise

    def create_request(
        self, base_dir: str | os.PathLike[str] | None = None, digest: DigestFn = sha256_file
    ) -> dict[str, Any]:
        """The JSON body `ollama create` POSTs to /api/create (without model/name/stream)."""
        return self.resolve(base_dir, digest).request

    def _line(self, index: int) -> int | None:
        return self.lines[index] if index < len(self.lines) else None


# --- reading: decoding -----------------------------------------------------------------------


def _one_replacement_per_byte(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: one U+FFFD per bad byte, as Go's bufio.ReadRune does."""
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd", exc.start + 1


_PER_BYTE: Final = "doit_ollama.modelfile.per-byte"
codecs.register_error(_PER_BYTE, _one_replacement_per_byte)


def _decode(data: bytes) -> str:
    """Bytes to text as unicode.BOMOverride(UTF8) followed by bufio.ReadRune does it."""
    if data.startswith(_UTF16LE_BOM):
        return _decode_utf16(data[2:], "little")
    if data.startswith(_UTF16BE_BOM):
        return _decode_utf16(data[2:], "big")
    if data.startswith(_UTF8_BOM):
        # After a UTF-8 BOM, x/text passes the bytes through unchecked, so every bad byte
        # becomes its own U+FFFD; without a BOM its UTF-8 decoder replaces each maximal
        # ill-formed subpart with one, which is what Python's "replace" does.
        return data[3:].decode("utf-8", _PER_BYTE)
    return data.decode("utf-8", "replace")


def _decode_utf16(data: bytes, byteorder: str) -> str:
    """UTF-16 as x/text decodes it: bad surrogates and an odd last byte become U+FFFD."""
    try:
        return data.decode("utf-16-le" if byteorder == "little" else "utf-16-be")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    at, size = 0, len(data)
    while at < size:
        if at + 1 >= size:  # a single trailing byte
            out.append("\ufffd")
            break
        unit = int.from_bytes(data[at : at + 2], byteorder)  # type: ignore[arg-type]
        step = 2
        if 0xD800 <= unit <= 0xDFFF and at + 3 < size:
            after = int.from_bytes(data[at + 2 : at + 4], byteorder)  # type: ignore[arg-type]
            # x/text consumes any surrogate followed by a low surrogate as one pair,
            # so two low surrogates make a single U+FFFD.
            if 0xDC00 <= after <= 0xDFFF:
                step = 4
                unit = (
                    0x10000 + ((unit - 0xD800) << 10) + (after - 0xDC00)
                    if unit <= 0xDBFF
                    else 0xFFFD
                )
        if 0xD800 <= unit <= 0xDFFF:
            unit = 0xFFFD
        out.append(chr(unit))
        at += step
    return "".join(out)


def _is_print(char: str) -> bool:
    """Go's strconv.IsPrint (Go 1.26, Unicode 15.0.0)."""
    if " " <= char <= "~":
        return True
    code = ord(char)
    at = bisect.bisect_right(_PRINT_STARTS, code) - 1
    return at >= 0 and code <= _PRINT_ENDS[at]


# --- reading: the state machine --------------------------------------------------------------


class State(enum.Enum):
    """Where the parser is inside an instruction (parser.go's state enum)."""

    NIL = enum.auto()  # between instructions
    NAME = enum.auto()  # reading a command name
    VALUE = enum.auto()  # reading a value, up to a newline that completes it
    PARAMETER = enum.auto()  # reading a PARAMETER's name
    MESSAGE = enum.auto()  # reading a MESSAGE's role
    COMMENT = enum.auto()  # skipping a comment line


class _Fault(enum.Enum):
    """What a transition can go wrong with."""

    COMMAND = enum.auto()  # ParserError: invalid command, with a line number
    EOF = enum.auto()  # io.ErrUnexpectedEOF: reported with the buffer, without a line


def _transition(char: str, state: State) -> tuple[State, str, _Fault | None]:
    """Pure transition: next state, the character to keep ("" for none), or a fault."""
    if state is State.NIL:
        if char == "#":
            return State.COMMENT, "", None
        if char in SPACES or char in NEWLINES:
            return State.NIL, "", None
        return State.NAME, char, None
    if state is State.NAME:
        if char in LETTERS:
            return State.NAME, char, None
        if char in SPACES:
            return State.VALUE, "", None
        return State.NIL, "", _Fault.COMMAND
    if state is State.VALUE:
        # A space or newline only *proposes* the end of the value; the driver decides.
        if char in NEWLINES or char in SPACES:
            return State.NIL, char, None
        return State.VALUE, char, None
    if state is State.PARAMETER:
        if char in PARAMETER_NAME_CHARS:
            return State.PARAMETER, char, None
        if char in SPACES:
            return State.VALUE, "", None
        return State.NIL, "", _Fault.EOF
    if state is State.MESSAGE:
        if char in LETTERS:
            return State.MESSAGE, char, None
        if char in SPACES:
            return State.VALUE, "", None
        return State.NIL, "", _Fault.EOF
    if char in NEWLINES:  # State.COMMENT
        return State.NIL, "", None
    return State.COMMENT, "", None


def _complete_value(buffer: list[str]) -> str | None:
    """The value if the trimmed buffer is complete (unquoted or fully quoted), else None."""
    start, end = 0, len(buffer)
    while start < end and buffer[start] in _TRIM:
        start += 1
    while end > start and buffer[end - 1] in _TRIM:
        end -= 1
    size = end - start
    if size >= 3 and buffer[start] == buffer[start + 1] == buffer[start + 2] == '"':
        if size >= 6 and buffer[end - 1] == buffer[end - 2] == buffer[end - 3] == '"':
            return "".join(buffer[start + 3 : end - 3])
        return None
    if size >= 1 and buffer[start] == '"':
        if size >= 2 and buffer[end - 1] == '"':
            return "".join(buffer[start + 1 : end - 1])
        return None
    return "".join(buffer[start:end])


class _Scan(NamedTuple):
    instructions: list[tuple[str, str]]
    lines: list[int]
    comments: list[Comment]


def _scan(text: str) -> _Scan:
    """Run the state machine over decoded text; counts lines as Ollama does."""
    instructions: list[tuple[str, str]] = []
    starts: list[int] = []
    comments: list[Comment] = []
    state = State.NIL
    buffer: list[str] = []
    name = role = ""
    line = 1  # Ollama's count: every CR and every LF
    editor_line = 1  # an editor's count: CR LF is one line end
    start_line = comment_start = 0
    previous = ""
    at, size = 0, len(text)
    while at < size:
        if state is State.VALUE or state is State.COMMENT:
            # Shortcut, same outcome as one character at a time: up to the next line end,
            # a value keeps every space and tab and every printable character (no other
            # transition can happen there), and a comment keeps going.
            newline = _NEWLINE.search(text, at)
            end = newline.start() if newline else size
            if end > at:
                if state is State.VALUE:
                    run = text[at:end]
                    if _PLAIN_RUN.fullmatch(run):
                        buffer.extend(run)
                    else:
                        buffer.extend(c for c in run if c in SPACES or _is_print(c))
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
        following, keep, fault = _transition(char, state)
        if fault is _Fault.EOF:
            raise ModelfileError(f"{ERR_EOF}: {''.join(buffer)}")
        if fault is _Fault.COMMAND:
            raise ModelfileError(ERR_COMMAND, line, editor_line=editor_line)
        if following is not state:
            if state is State.NAME:
                word = "".join(buffer)
                command = word.lower() if word.isascii() else ""
                if command not in COMMANDS:
                    raise ModelfileError(ERR_COMMAND, line, editor_line=editor_line)
                if command == "from":
                    name = "model"
                elif command == "parameter":
                    following = State.PARAMETER  # the parameter's own name comes next
                elif command == "message":
                    following = State.MESSAGE  # the role comes next
                    name = command
                else:
                    name = command
            elif state is State.PARAMETER:
                name = "".join(buffer)
            elif state is State.MESSAGE:
                role = "".join(buffer)
                if role not in ROLES:
                    raise ModelfileError(ERR_ROLE, line, editor_line=editor_line)
            elif state is State.VALUE:
                # Spaces never end a value, and a newline ends it only once the value is
                # complete: an open quote keeps collecting lines (newlines included).
                value = None if char in SPACES else _complete_value(buffer)
                if value is None:
                    buffer.append(char)
                    continue
                if role:
                    value = f"{role}: {value}"
                    role = ""
                instructions.append((name, value))
                starts.append(start_line)
            elif state is State.COMMENT:
                comments.append(Comment(len(instructions), text[comment_start : at - 1]))
            elif following is State.NAME:
                start_line = editor_line
            elif following is State.COMMENT:
                comment_start = at - 1
            buffer.clear()
            state = following
        if keep and _is_print(keep):
            buffer.append(keep)

    if state is State.VALUE:
        value = _complete_value(buffer)
        if value is None:
            raise ModelfileError(ERR_EOF)
        if role:
            value = f"{role}: {value}"
        instructions.append((name, value))
        starts.append(start_line)
    elif state is State.COMMENT:
        comments.append(Comment(len(instructions), text[comment_start:]))
    elif state is not State.NIL:
        raise ModelfileError(ERR_EOF)
    return _Scan(instructions, starts, comments)


def _from_decoded(text: str) -> Modelfile:
    """Parse text that is already decoded (no byte order mark handling)."""
    scan = _scan(text)
    if not any(name == "model" for name, _ in scan.instructions):
        raise ModelfileError(ERR_NO_FROM)
    return Modelfile(scan.instructions, scan.lines, scan.comments)


_SURROGATES: Final = re.compile("[\ud800-\udfff]")


def parse(text: str | bytes) -> Modelfile:
    """Parse a Modelfile as Ollama does; bytes are decoded as Ollama decodes a file."""
    if isinstance(text, (bytes, bytearray)):
        return _from_decoded(_decode(bytes(text)))
    # Ollama reads bytes: a str stands for its UTF-8 encoding, whose leading BOM Go strips.
    # Lone surrogates have no UTF-8 form; Go would have read such bytes as U+FFFD.
    return _from_decoded(_SURROGATES.sub("\ufffd", text.removeprefix("\ufeff")))


def load(path: str | os.PathLike[str]) -> Modelfile:
    """Read and parse a Modelfile; errors name the file."""
    where = Path(path)
    try:
        data = where.read_bytes()
    except OSError as err:
        raise ModelfileError(ERR_READ.format(reason=_reason(err)), path=str(path)) from None
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
        if char not in _TRIM and not _is_print(char):
            return ERR_UNWRITABLE.format(
                what=what, why=f"its value holds U+{ord(char):04X}, which Ollama's parser drops"
            )
    return ERR_UNWRITABLE.format(
        what=what,
        why='a line inside its value ends with """, which ends every quoting Ollama knows',
    )


# --- paths, the way Go's path/filepath does them on Unix -------------------------------------


def _go_clean(path: str) -> str:
    """filepath.Clean."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def _go_join(*parts: str) -> str:
    """filepath.Join."""
    kept = [part for part in parts if part]
    return _go_clean("/".join(kept)) if kept else ""


def _go_getwd() -> str:
    """os.Getwd: $PWD when it names the working directory, else the real path."""
    candidate = os.environ.get("PWD", "")
    if candidate.startswith("/"):
        try:
            if os.path.samestat(os.stat(candidate), os.stat(".")):
                return candidate
        except (OSError, ValueError):
            pass
    return os.getcwd()


def _go_abs(path: str) -> str:
    """filepath.Abs."""
    if path.startswith("/"):
        return _go_clean(path)
    return _go_join(_go_getwd(), path)


def _go_dir(path: str) -> str:
    """filepath.Dir."""
    return _go_clean(path[: path.rfind("/") + 1])


def _go_rel(base: str, target: str) -> str:
    """filepath.Rel for two absolute paths."""
    base_parts = [p for p in _go_clean(base).split("/") if p]
    target_parts = [p for p in _go_clean(target).split("/") if p]
    common = 0
    while (
        common < min(len(base_parts), len(target_parts))
        and base_parts[common] == target_parts[common]
    ):
        common += 1
    parts = [".."] * (len(base_parts) - common) + target_parts[common:]
    return "/".join(parts) or "."


def _go_is_local(path: str) -> bool:
    """filepath.IsLocal on Unix."""
    if not path or path.startswith("/"):
        return False
    if any(part in (".", "..") for part in path.split("/")):
        path = _go_clean(path)
    return not (path == ".." or path.startswith("../"))


def _reason(err: OSError) -> str:
    """An OS error as Go words it: the errno text, lower-case."""
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


class _MissingPath(ModelfileError):
    """An error caused by a path that does not exist (Go's os.ErrNotExist)."""


def _os_error(op: str, path: str, err: OSError) -> ModelfileError:
    """A *PathError as Go prints it, e.g. "stat /x: no such file or directory"."""
    kind = _MissingPath if err.errno == errno.ENOENT else ModelfileError
    return kind(f"{op} {path}: {_reason(err)}")


def current_user_home() -> str:
    """Home folder of the current user (what `~` means); tests replace this function."""
    if pwd is not None:
        try:
            return pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            pass
    home = os.environ.get("HOME")
    if home:
        return home
    raise LookupError(f"user: unknown userid {os.getuid() if hasattr(os, 'getuid') else '?'}")


def user_home(name: str) -> str:
    """Home folder of user `name` (what `~name` means); KeyError if unknown."""
    if pwd is None:  # pragma: no cover
        raise KeyError(name)
    try:
        return pwd.getpwnam(name).pw_dir
    except (KeyError, ValueError):
        raise KeyError(name) from None


def expand_path(path: str, relative_dir: str | os.PathLike[str]) -> str:
    """An instruction's path made absolute as Ollama does (`~`, `~user`, relative_dir)."""
    if path.startswith("/") or path.startswith("\\"):
        return _go_abs(path)
    if path.startswith("~"):
        if path == "~" or path.startswith("~/"):
            try:
                home = current_user_home()
            except LookupError as err:
                raise ModelfileError(ERR_CURRENT_USER.format(reason=err.args[0])) from None
            rest = path[1:]
        else:
            user, slash, tail = path[1:].partition("/")
            try:
                home = user_home(user)
            except KeyError:
                raise ModelfileError(ERR_UNKNOWN_USER.format(name=user)) from None
            rest = "/" + tail if slash else ""
        return _go_abs(_go_join(home, rest))
    return _go_abs(_go_join(os.fspath(relative_dir), path))


# --- finding a model's files (filesForModel, filepath.Glob, http.DetectContentType) ---------


class _BadPattern(Exception):
    """filepath.ErrBadPattern."""


def _go_pattern(pattern: str) -> re.Pattern[str]:
    """Compile one path element of a filepath.Match pattern; _BadPattern if malformed."""
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
                raise _BadPattern
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
        raise _BadPattern
    if pattern[at] == "\\":
        at += 1
        if at >= len(pattern):
            raise _BadPattern
    if at + 1 >= len(pattern):
        raise _BadPattern
    return pattern[at], at + 1


def _has_meta(path: str) -> bool:
    return any(char in path for char in "*?[\\")


def _go_glob(pattern: str) -> list[str]:
    """filepath.Glob: matches sorted per folder; _BadPattern for a malformed pattern."""
    elements = [_go_pattern(part) for part in pattern.split("/")]  # validates everything
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
        raise _BadPattern
    found: list[str] = []
    for each in _go_glob(folder):
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
    return [_go_join(folder, name) for name in names if matcher.fullmatch(name)]


# http.DetectContentType's table (Go 1.26, net/http/sniff.go), as data. After the HTML tags,
# each signature is (pattern, mask or None for an exact prefix, skip leading whitespace,
# content type); the mp4 check sits between the two tuples.
_SNIFF_HTML: Final = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT",
    b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
)
_RIFF_MASK: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff"
_Signature = tuple[bytes, bytes | None, bool, str]
_SNIFF_BEFORE_MP4: Final[tuple[_Signature, ...]] = (
    (b"<?xml", b"\xff" * 5, True, "text/xml; charset=utf-8"),
    (b"%PDF-", None, False, "application/pdf"),
    (b"%!PS-Adobe-", None, False, "application/postscript"),
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", False, "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", None, False, "image/x-icon"),
    (b"\x00\x00\x02\x00", None, False, "image/x-icon"),
    (b"BM", None, False, "image/bmp"),
    (b"GIF87a", None, False, "image/gif"),
    (b"GIF89a", None, False, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", _RIFF_MASK + b"\xff\xff", False, "image/webp"),
    (b"\x89PNG\r\n\x1a\n", None, False, "image/png"),
    (b"\xff\xd8\xff", None, False, "image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", _RIFF_MASK, False, "audio/aiff"),
    (b"ID3", None, False, "audio/mpeg"),
    (b"OggS\x00", None, False, "application/ogg"),
    (b"MThd\x00\x00\x00\x06", None, False, "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", _RIFF_MASK, False, "video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", _RIFF_MASK, False, "audio/wave"),
)
_SNIFF_AFTER_MP4: Final[tuple[_Signature, ...]] = (
    (b"\x1a\x45\xdf\xa3", None, False, "video/webm"),
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", False, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", None, False, "font/ttf"),
    (b"OTTO", None, False, "font/otf"),
    (b"ttcf", None, False, "font/collection"),
    (b"wOFF", None, False, "font/woff"),
    (b"wOF2", None, False, "font/woff2"),
    (b"\x1f\x8b\x08", None, False, "application/x-gzip"),
    (b"PK\x03\x04", None, False, "application/zip"),
    (b"Rar!\x1a\x07\x00", None, False, "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", None, False, "application/x-rar-compressed"),
    (b"\x00asm", None, False, "application/wasm"),
)
_SNIFF_WHITESPACE: Final = b"\t\n\x0c\r "
_BINARY_BYTES: Final = frozenset(
    [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)]
)


def _sniff(data: bytes) -> str:
    """http.DetectContentType of (at most) the first 512 bytes."""
    data = data[:512]
    body = data.lstrip(_SNIFF_WHITESPACE)
    for tag in _SNIFF_HTML:
        if len(body) > len(tag) and body[len(tag)] in b" >" and all(
            (byte & 0xDF if 0x41 <= want <= 0x5A else byte) == want
            for byte, want in zip(body, tag)
        ):
            return "text/html; charset=utf-8"
    found = _match_signatures(data, body, _SNIFF_BEFORE_MP4)
    if found:
        return found
    if _is_mp4(data):
        return "video/mp4"
    found = _match_signatures(data, body, _SNIFF_AFTER_MP4)
    if found:
        return found
    if not _BINARY_BYTES.intersection(body):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _match_signatures(data: bytes, body: bytes, table: tuple[_Signature, ...]) -> str:
    for pattern, mask, skip_ws, content_type in table:
        subject = body if skip_ws else data
        if mask is None:
            if subject.startswith(pattern):
                return content_type
        elif len(subject) >= len(pattern) and all(
            subject[i] & mask[i] == pattern[i] for i in range(len(pattern))
        ):
            return content_type
    return ""


def _is_mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 or data[4:8] != b"ftyp":
        return False
    return any(data[at : at + 3] == b"mp4" for at in range(8, box, 4) if at != 12)


def _content_type(path: str) -> str:
    """filesForModel's detectContentType: the sniffed type without parameters."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(512)
    except IsADirectoryError as err:  # Go opens a folder fine and fails on read
        raise _os_error("read", path, err) from None
    except OSError as err:
        raise _os_error("open", path, err) from None
    except ValueError:
        raise ModelfileError(f"open {path}: invalid argument") from None
    return _sniff(head).partition(";")[0]


def _glob_checked(pattern: str, content_type: str) -> list[str]:
    """filesForModel's glob: matches, each of which must sniff as content_type (if given)."""
    matches = _go_glob(pattern)
    for match in matches:
        found = _content_type(match)
        if content_type and found != content_type:
            raise ModelfileError(ERR_CONTENT_TYPE.format(found=found, path=match))
    return matches


def _first_or_none(pattern: str, content_type: str) -> list[str]:
    """A glob whose errors Ollama ignores (`st, _ := glob(...)`)."""
    try:
        return _glob_checked(pattern, content_type)
    except (ModelfileError, _BadPattern):
        return []


def files_for_model(directory: str) -> list[str]:
    """The files of a model folder, in Ollama's order (weights by priority, then config)."""
    try:
        return _files_for_model(directory)
    except _BadPattern:  # pragma: no cover - a bad folder name fails in the weight globs
        raise ModelfileError("syntax error in pattern") from None


def _files_for_model(directory: str) -> list[str]:
    files: list[str] = []
    for index, (pattern, content_type) in enumerate(_WEIGHT_PATTERNS):
        files = _first_or_none(_go_join(directory, pattern), content_type)
        if files:
            if index == 0:
                files += _glob_checked(_go_join(directory, _NESTED_SAFETENSORS), "")
            break
    else:
        raise ModelfileError(ERR_NO_MODEL_FILES)
    for pattern, content_type in _CONFIG_PATTERNS:
        files += _glob_checked(_go_join(directory, pattern), content_type)
    for pattern, content_type in _TOKENIZER_PATTERNS:
        found = _first_or_none(_go_join(directory, pattern), content_type)
        if found:
            files += found
            break
    return files


# --- numbers, the way Go's strconv reads and writes them -------------------------------------


def _underscores_ok(text: str) -> bool:
    """strconv's underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    at = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        at, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[at:]:
        if char.isascii() and (char.isdigit() or hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
# float32 midpoints have well under 200 significant digits (decimal or hexadecimal).
_MAX_DIGITS: Final = 800


def _parse_float32(text: str) -> float | None:
    """strconv.ParseFloat(text, 32) as a Python float; None where Go returns an error."""
    lowered = text.lower()
    if lowered in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    if lowered == "nan":
        return math.nan
    at, size = 0, len(text)
    negative = False
    if at < size and text[at] in "+-":
        negative = text[at] == "-"
        at += 1
    base = 10
    if at + 2 < size and text[at] == "0" and text[at + 1] in "xX":
        base = 16
        at += 2
    digits: list[str] = []
    fraction_digits = 0
    seen_dot = False
    while at < size:
        char = text[at]
        if char == "_":
            pass
        elif char == "." and not seen_dot:
            seen_dot = True
        elif char.isascii() and (char.isdigit() or base == 16 and char in _HEX_DIGITS):
            digits.append(char)
            fraction_digits += seen_dot
        else:
            break
        at += 1
    if not digits:
        return None
    exponent = 0
    marker = "p" if base == 16 else "e"
    if at < size and text[at].lower() == marker:
        at += 1
        sign = 1
        if at < size and text[at] in "+-":
            sign = -1 if text[at] == "-" else 1
            at += 1
        if at >= size or not ("0" <= text[at] <= "9"):
            return None
        while at < size and ("0" <= text[at] <= "9" or text[at] == "_"):
            if text[at] != "_" and exponent < 10000:  # Go stops growing it here too
                exponent = exponent * 10 + int(text[at])
            at += 1
        exponent *= sign
    elif base == 16:
        return None  # hexadecimal floats need a p exponent
    if at != size or ("_" in text and not _underscores_ok(text)):
        return None
    significant = "".join(digits).lstrip("0")
    dropped = 0
    if len(significant) > _MAX_DIGITS:
        # Keep enough digits to decide every float32 rounding exactly; a final 1 stands
        # for whatever nonzero digits were cut (a sticky digit, as Go's decimal keeps).
        tail = significant[_MAX_DIGITS:]
        dropped = len(tail) - 1
        significant = significant[:_MAX_DIGITS] + ("1" if tail.strip("0") else "0")
    mantissa = int(significant or "0", base)
    if base == 16:
        value = _exact(mantissa, 2, exponent + 4 * (dropped - fraction_digits))
    else:
        value = _exact(mantissa, 10, exponent + dropped - fraction_digits)
    if value is None:
        return None
    rounded = _round_float32(value)
    if rounded is None:
        return None
    return -rounded if negative else rounded


def _exact(mantissa: int, base: int, exponent: int) -> Fraction | None:
    """mantissa * base**exponent, or None when it is far beyond float32's range."""
    if mantissa == 0:
        return Fraction(0)
    # Decide huge and tiny magnitudes without building huge numbers.
    magnitude = mantissa.bit_length() + exponent * (math.log2(base))
    if magnitude > 200:
        return None
    if magnitude < -200:
        return Fraction(0)
    if exponent >= 0:
        return Fraction(mantissa * base**exponent)
    return Fraction(mantissa, base**-exponent)


_FLOAT32_MIN_SCALE: Final = -149  # the exponent of float32's smallest subnormal


def _round_float32(value: Fraction) -> float | None:
    """The float32 nearest to value >= 0 (ties to even), as a float; None if it overflows."""
    if value == 0:
        return 0.0
    top, bottom = value.numerator, value.denominator
    power = top.bit_length() - bottom.bit_length()
    if (top if power >= 0 else top << -power) < (bottom << power if power >= 0 else bottom):
        power -= 1  # now 2**power <= value < 2**(power + 1)
    scale = max(power - 23, _FLOAT32_MIN_SCALE)
    if scale >= 0:
        whole, rest = divmod(top, bottom << scale)
        twice, divisor = 2 * rest, bottom << scale
    else:
        whole, rest = divmod(top << -scale, bottom)
        twice, divisor = 2 * rest, bottom
    if twice > divisor or (twice == divisor and whole & 1):
        whole += 1
    if whole.bit_length() + scale > 128:
        return None
    return math.ldexp(whole, scale)


def _float32_parts(value: float) -> tuple[int, int]:
    """A positive float32 value as (mantissa, exponent): value == mantissa * 2**exponent."""
    _, power = math.frexp(value)
    scale = max(power - 24, _FLOAT32_MIN_SCALE)
    return int(math.ldexp(value, -scale)), scale


def _shortest_float32(value: float) -> tuple[str, int]:
    """Shortest digits that read back as this float32, and where the point goes.

    Returns (digits, point): value ~ 0.digits * 10**point. Among the shortest candidates
    the one nearest the value wins; a tie goes to the even one, except just above a power
    of two (where the gap below is half the gap above), where Go's Dragonbox rounds up.
    """
    mantissa, scale = _float32_parts(value)
    exact = Fraction(mantissa) * Fraction(2) ** scale
    half_gap = Fraction(2) ** scale / 2
    boundary = mantissa == 1 << 23 and scale > _FLOAT32_MIN_SCALE
    low = exact - (half_gap / 2 if boundary else half_gap)
    high = exact + half_gap
    inclusive = mantissa % 2 == 0  # a decimal exactly halfway reads back as the even one
    magnitude = math.floor(math.log10(value))
    for power in range(magnitude + 2, magnitude - 11, -1):  # log10 may be off by one
        unit = Fraction(10) ** power
        first = math.ceil(low / unit)
        if first * unit == low and not inclusive:
            first += 1
        last = math.floor(high / unit)
        if last * unit == high and not inclusive:
            last -= 1
        if first > last:
            continue
        ratio = exact / unit
        nearest = math.floor(ratio)
        remainder = ratio - nearest
        if remainder > Fraction(1, 2) or (
            remainder == Fraction(1, 2) and (boundary or nearest % 2 == 1)
        ):
            nearest += 1
        chosen = min(max(nearest, first), last)
        digits = str(chosen)
        stripped = digits.rstrip("0")
        return stripped, len(digits) + power
    raise AssertionError("no decimal found for a float32")  # pragma: no cover


def _go_float32_json(value: float) -> str:
    """encoding/json's text for a float32 value (ES6 style: 1e-7, 0.1, 16777216, 1e+21)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _shortest_float32(abs(value))
    if abs(value) < _FLOAT32_E_BELOW or abs(value) >= _FLOAT32_E_FROM:
        exponent = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}".replace(
            "e-0", "e-"
        )
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


# Go compares with float32(1e-6) and float32(1e21) to pick the exponent form.
_FLOAT32_E_BELOW: Final = _round_float32(Fraction(1, 10**6)) or 0.0
_FLOAT32_E_FROM: Final = _round_float32(Fraction(10**21)) or 0.0


def _as_float32(value: float) -> float:
    """A Python float holding a float32 (possibly rounded via its decimal text) back to it."""
    if not math.isfinite(value) or value == 0:
        return value
    rounded = _round_float32(Fraction(abs(value)))
    if rounded is None:
        return math.copysign(math.inf, value)
    return math.copysign(rounded, value)


def _go_float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32) for the non-finite values json refuses."""
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _typed_parameter(name: str, value: str) -> Any:
    """api.FormatParams for one PARAMETER line."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise ModelfileError(ERR_UNKNOWN_PARAMETER.format(name=name))
    if kind == "list":
        return [value]
    if kind == "float32":
        number = _parse_float32(value)
        if number is None:
            raise ModelfileError(ERR_INVALID_VALUE.format(kind="float", value=value))
        return number
    if kind == "int":
        # Check the length first: a huge int64 overflow is still an int error, and Python
        # refuses to convert digit strings beyond a few thousand digits.
        digits = value.lstrip("+-").lstrip("0")
        fits = _GO_INT.fullmatch(value) is not None and len(digits) <= 19
        whole = int(value) if fits else None
        if whole is None or not _INT64_MIN <= whole <= _INT64_MAX:
            raise ModelfileError(ERR_INVALID_VALUE.format(kind="int", value=value))
        return whole
    if value not in _GO_BOOLS:
        raise ModelfileError(ERR_INVALID_VALUE.format(kind="bool", value=value))
    return _GO_BOOLS[value]


# --- the create request ----------------------------------------------------------------------


class _Resolver:
    """Modelfile.CreateRequest followed by the CLI's re-keying of local files."""

    def __init__(self, modelfile: Modelfile, base_dir: str, digest: DigestFn):
        self.modelfile = modelfile
        self.base_dir = base_dir
        self.digest = digest
        self.base = ""  # the last FROM that is not a local path
        self.local: dict[str, dict[str, str]] = {name: {} for name in _FILE_FIELDS}
        self.model_paths: list[str] = []
        self.draft_paths: list[str] = []
        self.texts: dict[str, str] = {}  # template, system, renderer, parser, requires
        self.licenses: list[str] = []
        self.messages: list[dict[str, str]] = []
        self.parameters: dict[str, Any] = {}
        self.parameter_lines: dict[str, int | None] = {}
        self.warnings: list[str] = []

    def run(self) -> ResolvedRequest:
        for index, (name, args) in enumerate(self.modelfile.instructions):
            line = self.modelfile._line(index)
            try:
                self._apply(name, args, line)
            except ModelfileError as err:
                raise ModelfileError(err.msg, err.line or line) from None
        return self._assemble()

    def _apply(self, name: str, args: str, line: int | None) -> None:
        """One instruction, as the switch in Modelfile.CreateRequest handles it."""
        if name == "model":
            path = expand_path(args, self.base_dir)
            try:
                digests = self._digest_map(path)
            except _MissingPath:
                self.base = args  # not a local path, so a model name
                return
            self._reject_same(path, self.draft_paths)
            self.model_paths.append(path)
            self.local["files"].update(digests)
        elif name == "draft":
            path = expand_path(args, self.base_dir)
            digests = self._digest_map(path)
            self._reject_same(path, self.model_paths)
            self.draft_paths.append(path)
            self.local["draft_files"].update(digests)
        elif name == "adapter":
            # Each ADAPTER replaces the previous one.
            self.local["adapters"] = self._digest_map(expand_path(args, self.base_dir))
        elif name in ("template", "system", "renderer", "parser"):
            self.texts[name] = args
        elif name == "license":
            self.licenses.append(args)
        elif name == "requires":
            version = args if args.startswith("v") else "v" + args
            if not _SEMVER.fullmatch(version):
                raise ModelfileError(ERR_REQUIRES)
            self.texts[name] = version[1:]
        elif name == "message":
            role, _, content = args.partition(": ")
            self.messages.append({"role": role, "content": content})
        elif name in DEPRECATED_PARAMETERS:
            self.warnings.append(WARN_DEPRECATED.format(name=name))
        else:
            value = _typed_parameter(name, args)
            previous = self.parameters.get(name)
            # stop accumulates over lines; any other parameter keeps its last value.
            self.parameters[name] = previous + value if isinstance(previous, list) else value
            self.parameter_lines[name] = line

    def _assemble(self) -> ResolvedRequest:
        """The request in api.CreateRequest's field order, empty fields left out."""
        parameters = self._float32_as_sent(self.parameters)
        request: dict[str, Any] = {}
        if self.base:
            request["from"] = self.base
        local_files: list[LocalFile] = []
        for field_name in ("files", "draft_files", "adapters"):
            keys = _wire_names(list(self.local[field_name]))
            entries = sorted(
                (
                    LocalFile(field_name, keys[path], Path(path), digest)
                    for path, digest in self.local[field_name].items()
                ),
                key=lambda entry: entry.key,
            )
            if entries:
                request[field_name] = {entry.key: entry.digest for entry in entries}
            local_files += entries
        local_files.sort(key=lambda entry: (_FILE_FIELDS.index(entry.field), entry.key))
        if self.texts.get("template"):
            request["template"] = self.texts["template"]
        if self.licenses:
            request["license"] = self.licenses
        if self.texts.get("system"):
            request["system"] = self.texts["system"]
        if parameters:
            request["parameters"] = parameters
        if self.messages:
            request["messages"] = self.messages
        for name in ("renderer", "parser", "requires"):
            if self.texts.get(name):
                request[name] = self.texts[name]
        return ResolvedRequest(request, local_files, self.base or None, self.warnings)

    def _float32_as_sent(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """float32 values as the CLI's JSON carries them; Inf and NaN cannot be sent."""
        out: dict[str, Any] = {}
        for name in sorted(parameters):  # json.Marshal meets them in sorted order
            value = parameters[name]
            if PARAMETER_TYPES.get(name) == "float32":
                if not math.isfinite(value):
                    raise ModelfileError(
                        ERR_UNSUPPORTED_VALUE.format(value=_go_float32_text(value)),
                        self.parameter_lines.get(name),
                    )
                value = float(_go_float32_json(value))
            out[name] = value
        return out

    def _digest_map(self, path: str) -> dict[str, str]:
        """fileDigestMap: {absolute path: digest} for a file, or for a model folder."""
        try:
            info = os.stat(path)
        except OSError as err:
            raise _os_error("stat", path, err) from None
        except ValueError:
            raise ModelfileError(f"stat {path}: invalid argument") from None
        if stat.S_ISDIR(info.st_mode):
            files = []
            for found in files_for_model(path):
                real = os.path.realpath(found)
                relative = _go_rel(path, real)
                if not _go_is_local(relative):
                    template = ERR_INSECURE_CACHE if ".cache" in relative else ERR_INSECURE
                    raise ModelfileError(template.format(rel=relative))
                files.append(real)
        else:
            files = [path]
        digests: dict[str, str] = {}
        for file in files:
            try:
                digests[file] = self.digest(file)
            except OSError as err:
                raise _os_error("open", file, err) from None
        return digests

    @staticmethod
    def _reject_same(path: str, others: list[str]) -> None:
        """DRAFT and FROM must not name the same local file or folder."""
        mine = os.path.realpath(path)
        if any(os.path.realpath(other) == mine for other in others):
            raise ModelfileError(ERR_DRAFT_SAME.format(path=path))


def _wire_names(paths: list[str]) -> dict[str, str]:
    """createRequestFileNames: one file is keyed by its name, several relative to their root."""
    root = _common_root(paths)
    names: dict[str, str] = {}
    for path in paths:
        name = path[path.rfind("/") + 1 :] or path
        if root is not None:
            relative = _go_rel(root, _go_abs(path))
            if relative not in (".", "..") and not relative.startswith("../"):
                name = relative
        names[path] = _go_clean(name)
    return names


def _common_root(paths: list[str]) -> str | None:
    """commonFileRoot: the deepest folder holding every path (for two paths or more)."""
    if len(paths) < 2:
        return None
    root: str | None = None
    for path in paths:
        folder = _go_dir(_go_abs(path))
        if root is None:
            root = folder
            continue
        while True:
            relative = _go_rel(root, folder)
            if relative == "." or (relative != ".." and not relative.startswith("../")):
                break
            parent = _go_dir(root)
            if parent == root:
                return None
            root = parent
    return root


# --- the bytes `ollama create` sends -----------------------------------------------------------

# api.CreateRequest's JSON fields in struct order; "model" and "name" carry no omitempty.
_WIRE_FIELDS: Final = (
    "model", "stream", "quantize", "draft_quantize", "from", "remote_host", "files",
    "draft_files", "adapters", "template", "license", "system", "parameters", "messages",
    "renderer", "parser", "requires", "info", "name", "quantization",
)
_JSON_ESCAPES: Final[Mapping[str, str]] = {
    '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
}
_JSON_NEEDS_ESCAPE: Final = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')


def _go_json_string(text: str) -> str:
    return '"' + _JSON_NEEDS_ESCAPE.sub(
        lambda m: _JSON_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text
    ) + '"'


def _go_json(value: Any, key: str | None = None) -> str:
    """encoding/json for the values a create request holds (maps sorted by key)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if PARAMETER_TYPES.get(key or "") == "float32":
            value = _as_float32(value)
            if not math.isfinite(value):
                raise ModelfileError(ERR_UNSUPPORTED_VALUE.format(value=_go_float32_text(value)))
            return _go_float32_json(value)
        return json.dumps(value)  # pragma: no cover - a create request has no float64
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, Mapping):
        items = sorted(value.items())
        return "{" + ",".join(f"{_go_json_string(k)}:{_go_json(v, k)}" for k, v in items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def wire_json(request: Mapping[str, Any], model: str = "") -> str:
    """The exact JSON text `ollama create` POSTs for this request (Go's encoding/json)."""
    body = {"model": model, "name": "", **request}
    parts = []
    for name in _WIRE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if name == "messages":
            text = "[" + ",".join(
                "{" + f'"role":{_go_json_string(m["role"])},'
                f'"content":{_go_json_string(m["content"])}' + "}"
                for m in value
            ) + "]"
        else:
            text = _go_json(value)
        parts.append(f"{_go_json_string(name)}:{text}")
    return "{" + ",".join(parts) + "}"


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


# --- data --------------------------------------------------------------------------------------

# The runes Go 1.26's strconv.IsPrint accepts (letters, marks, numbers, punctuation,
# symbols and U+0020, Unicode 15.0.0), as hexadecimal ranges "start-end" or single points.
# Produced by asking Go itself for every code point; Python's unicodedata differs by version.
_PRINTABLE: Final = """
20-7e a1-ac ae-377 37a-37f 384-38a 38c 38e-3a1 3a3-52f 531-556 559-58a 58d-58f 591-5c7
5d0-5ea 5ef-5f4 606-61b 61d-6dc 6de-70d 710-74a 74d-7b1 7c0-7fa 7fd-82d 830-83e 840-85b 85e
860-86a 870-88e 898-8e1 8e3-983 985-98c 98f-990 993-9a8 9aa-9b0 9b2 9b6-9b9 9bc-9c4 9c7-9c8
9cb-9ce 9d7 9dc-9dd 9df-9e3 9e6-9fe a01-a03 a05-a0a a0f-a10 a13-a28 a2a-a30 a32-a33 a35-a36
a38-a39 a3c a3e-a42 a47-a48 a4b-a4d a51 a59-a5c a5e a66-a76 a81-a83 a85-a8d a8f-a91 a93-aa8
aaa-ab0 ab2-ab3 ab5-ab9 abc-ac5 ac7-ac9 acb-acd ad0 ae0-ae3 ae6-af1 af9-aff b01-b03 b05-b0c
b0f-b10 b13-b28 b2a-b30 b32-b33 b35-b39 b3c-b44 b47-b48 b4b-b4d b55-b57 b5c-b5d b5f-b63
b66-b77 b82-b83 b85-b8a b8e-b90 b92-b95 b99-b9a b9c b9e-b9f ba3-ba4 ba8-baa bae-bb9 bbe-bc2
bc6-bc8 bca-bcd bd0 bd7 be6-bfa c00-c0c c0e-c10 c12-c28 c2a-c39 c3c-c44 c46-c48 c4a-c4d
c55-c56 c58-c5a c5d c60-c63 c66-c6f c77-c8c c8e-c90 c92-ca8 caa-cb3 cb5-cb9 cbc-cc4 cc6-cc8
cca-ccd cd5-cd6 cdd-cde ce0-ce3 ce6-cef cf1-cf3 d00-d0c d0e-d10 d12-d44 d46-d48 d4a-d4f
d54-d63 d66-d7f d81-d83 d85-d96 d9a-db1 db3-dbb dbd dc0-dc6 dca dcf-dd4 dd6 dd8-ddf de6-def
df2-df4 e01-e3a e3f-e5b e81-e82 e84 e86-e8a e8c-ea3 ea5 ea7-ebd ec0-ec4 ec6 ec8-ece ed0-ed9
edc-edf f00-f47 f49-f6c f71-f97 f99-fbc fbe-fcc fce-fda 1000-10c5 10c7 10cd 10d0-1248
124a-124d 1250-1256 1258 125a-125d 1260-1288 128a-128d 1290-12b0 12b2-12b5 12b8-12be 12c0
12c2-12c5 12c8-12d6 12d8-1310 1312-1315 1318-135a 135d-137c 1380-1399 13a0-13f5 13f8-13fd
1400-167f 1681-169c 16a0-16f8 1700-1715 171f-1736 1740-1753 1760-176c 176e-1770 1772-1773
1780-17dd 17e0-17e9 17f0-17f9 1800-180d 180f-1819 1820-1878 1880-18aa 18b0-18f5 1900-191e
1920-192b 1930-193b 1940 1944-196d 1970-1974 1980-19ab 19b0-19c9 19d0-19da 19de-1a1b
1a1e-1a5e 1a60-1a7c 1a7f-1a89 1a90-1a99 1aa0-1aad 1ab0-1ace 1b00-1b4c 1b50-1b7e 1b80-1bf3
1bfc-1c37 1c3b-1c49 1c4d-1c88 1c90-1cba 1cbd-1cc7 1cd0-1cfa 1d00-1f15 1f18-1f1d 1f20-1f45
1f48-1f4d 1f50-1f57 1f59 1f5b 1f5d 1f5f-1f7d 1f80-1fb4 1fb6-1fc4 1fc6-1fd3 1fd6-1fdb
1fdd-1fef 1ff2-1ff4 1ff6-1ffe 2010-2027 2030-205e 2070-2071 2074-208e 2090-209c 20a0-20c0
20d0-20f0 2100-218b 2190-2426 2440-244a 2460-2b73 2b76-2b95 2b97-2cf3 2cf9-2d25 2d27 2d2d
2d30-2d67 2d6f-2d70 2d7f-2d96 2da0-2da6 2da8-2dae 2db0-2db6 2db8-2dbe 2dc0-2dc6 2dc8-2dce
2dd0-2dd6 2dd8-2dde 2de0-2e5d 2e80-2e99 2e9b-2ef3 2f00-2fd5 2ff0-2ffb 3001-303f 3041-3096
3099-30ff 3105-312f 3131-318e 3190-31e3 31f0-321e 3220-a48c a490-a4c6 a4d0-a62b a640-a6f7
a700-a7ca a7d0-a7d1 a7d3 a7d5-a7d9 a7f2-a82c a830-a839 a840-a877 a880-a8c5 a8ce-a8d9
a8e0-a953 a95f-a97c a980-a9cd a9cf-a9d9 a9de-a9fe aa00-aa36 aa40-aa4d aa50-aa59 aa5c-aac2
aadb-aaf6 ab01-ab06 ab09-ab0e ab11-ab16 ab20-ab26 ab28-ab2e ab30-ab6b ab70-abed abf0-abf9
ac00-d7a3 d7b0-d7c6 d7cb-d7fb f900-fa6d fa70-fad9 fb00-fb06 fb13-fb17 fb1d-fb36 fb38-fb3c
fb3e fb40-fb41 fb43-fb44 fb46-fbc2 fbd3-fd8f fd92-fdc7 fdcf fdf0-fe19 fe20-fe52 fe54-fe66
fe68-fe6b fe70-fe74 fe76-fefc ff01-ffbe ffc2-ffc7 ffca-ffcf ffd2-ffd7 ffda-ffdc ffe0-ffe6
ffe8-ffee fffc-fffd 10000-1000b 1000d-10026 10028-1003a 1003c-1003d 1003f-1004d 10050-1005d
10080-100fa 10100-10102 10107-10133 10137-1018e 10190-1019c 101a0 101d0-101fd 10280-1029c
102a0-102d0 102e0-102fb 10300-10323 1032d-1034a 10350-1037a 10380-1039d 1039f-103c3
103c8-103d5 10400-1049d 104a0-104a9 104b0-104d3 104d8-104fb 10500-10527 10530-10563
1056f-1057a 1057c-1058a 1058c-10592 10594-10595 10597-105a1 105a3-105b1 105b3-105b9
105bb-105bc 10600-10736 10740-10755 10760-10767 10780-10785 10787-107b0 107b2-107ba
10800-10805 10808 1080a-10835 10837-10838 1083c 1083f-10855 10857-1089e 108a7-108af
108e0-108f2 108f4-108f5 108fb-1091b 1091f-10939 1093f 10980-109b7 109bc-109cf 109d2-10a03
10a05-10a06 10a0c-10a13 10a15-10a17 10a19-10a35 10a38-10a3a 10a3f-10a48 10a50-10a58
10a60-10a9f 10ac0-10ae6 10aeb-10af6 10b00-10b35 10b39-10b55 10b58-10b72 10b78-10b91
10b99-10b9c 10ba9-10baf 10c00-10c48 10c80-10cb2 10cc0-10cf2 10cfa-10d27 10d30-10d39
10e60-10e7e 10e80-10ea9 10eab-10ead 10eb0-10eb1 10efd-10f27 10f30-10f59 10f70-10f89
10fb0-10fcb 10fe0-10ff6 11000-1104d 11052-11075 1107f-110bc 110be-110c2 110d0-110e8
110f0-110f9 11100-11134 11136-11147 11150-11176 11180-111df 111e1-111f4 11200-11211
11213-11241 11280-11286 11288 1128a-1128d 1128f-1129d 1129f-112a9 112b0-112ea 112f0-112f9
11300-11303 11305-1130c 1130f-11310 11313-11328 1132a-11330 11332-11333 11335-11339
1133b-11344 11347-11348 1134b-1134d 11350 11357 1135d-11363 11366-1136c 11370-11374
11400-1145b 1145d-11461 11480-114c7 114d0-114d9 11580-115b5 115b8-115dd 11600-11644
11650-11659 11660-1166c 11680-116b9 116c0-116c9 11700-1171a 1171d-1172b 11730-11746
11800-1183b 118a0-118f2 118ff-11906 11909 1190c-11913 11915-11916 11918-11935 11937-11938
1193b-11946 11950-11959 119a0-119a7 119aa-119d7 119da-119e4 11a00-11a47 11a50-11aa2
11ab0-11af8 11b00-11b09 11c00-11c08 11c0a-11c36 11c38-11c45 11c50-11c6c 11c70-11c8f
11c92-11ca7 11ca9-11cb6 11d00-11d06 11d08-11d09 11d0b-11d36 11d3a 11d3c-11d3d 11d3f-11d47
11d50-11d59 11d60-11d65 11d67-11d68 11d6a-11d8e 11d90-11d91 11d93-11d98 11da0-11da9
11ee0-11ef8 11f00-11f10 11f12-11f3a 11f3e-11f59 11fb0 11fc0-11ff1 11fff-12399 12400-1246e
12470-12474 12480-12543 12f90-12ff2 13000-1342f 13440-13455 14400-14646 16800-16a38
16a40-16a5e 16a60-16a69 16a6e-16abe 16ac0-16ac9 16ad0-16aed 16af0-16af5 16b00-16b45
16b50-16b59 16b5b-16b61 16b63-16b77 16b7d-16b8f 16e40-16e9a 16f00-16f4a 16f4f-16f87
16f8f-16f9f 16fe0-16fe4 16ff0-16ff1 17000-187f7 18800-18cd5 18d00-18d08 1aff0-1aff3
1aff5-1affb 1affd-1affe 1b000-1b122 1b132 1b150-1b152 1b155 1b164-1b167 1b170-1b2fb
1bc00-1bc6a 1bc70-1bc7c 1bc80-1bc88 1bc90-1bc99 1bc9c-1bc9f 1cf00-1cf2d 1cf30-1cf46
1cf50-1cfc3 1d000-1d0f5 1d100-1d126 1d129-1d172 1d17b-1d1ea 1d200-1d245 1d2c0-1d2d3
1d2e0-1d2f3 1d300-1d356 1d360-1d378 1d400-1d454 1d456-1d49c 1d49e-1d49f 1d4a2 1d4a5-1d4a6
1d4a9-1d4ac 1d4ae-1d4b9 1d4bb 1d4bd-1d4c3 1d4c5-1d505 1d507-1d50a 1d50d-1d514 1d516-1d51c
1d51e-1d539 1d53b-1d53e 1d540-1d544 1d546 1d54a-1d550 1d552-1d6a5 1d6a8-1d7cb 1d7ce-1da8b
1da9b-1da9f 1daa1-1daaf 1df00-1df1e 1df25-1df2a 1e000-1e006 1e008-1e018 1e01b-1e021
1e023-1e024 1e026-1e02a 1e030-1e06d 1e08f 1e100-1e12c 1e130-1e13d 1e140-1e149 1e14e-1e14f
1e290-1e2ae 1e2c0-1e2f9 1e2ff 1e4d0-1e4f9 1e7e0-1e7e6 1e7e8-1e7eb 1e7ed-1e7ee 1e7f0-1e7fe
1e800-1e8c4 1e8c7-1e8d6 1e900-1e94b 1e950-1e959 1e95e-1e95f 1ec71-1ecb4 1ed01-1ed3d
1ee00-1ee03 1ee05-1ee1f 1ee21-1ee22 1ee24 1ee27 1ee29-1ee32 1ee34-1ee37 1ee39 1ee3b 1ee42
1ee47 1ee49 1ee4b 1ee4d-1ee4f 1ee51-1ee52 1ee54 1ee57 1ee59 1ee5b 1ee5d 1ee5f 1ee61-1ee62
1ee64 1ee67-1ee6a 1ee6c-1ee72 1ee74-1ee77 1ee79-1ee7c 1ee7e 1ee80-1ee89 1ee8b-1ee9b
1eea1-1eea3 1eea5-1eea9 1eeab-1eebb 1eef0-1eef1 1f000-1f02b 1f030-1f093 1f0a0-1f0ae
1f0b1-1f0bf 1f0c1-1f0cf 1f0d1-1f0f5 1f100-1f1ad 1f1e6-1f202 1f210-1f23b 1f240-1f248
1f250-1f251 1f260-1f265 1f300-1f6d7 1f6dc-1f6ec 1f6f0-1f6fc 1f700-1f776 1f77b-1f7d9
1f7e0-1f7eb 1f7f0 1f800-1f80b 1f810-1f847 1f850-1f859 1f860-1f887 1f890-1f8ad 1f8b0-1f8b1
1f900-1fa53 1fa60-1fa6d 1fa70-1fa7c 1fa80-1fa88 1fa90-1fabd 1fabf-1fac5 1face-1fadb
1fae0-1fae8 1faf0-1faf8 1fb00-1fb92 1fb94-1fbca 1fbf0-1fbf9 20000-2a6df 2a700-2b739
2b740-2b81d 2b820-2cea1 2ceb0-2ebe0 2f800-2fa1d 30000-3134a 31350-323af e0100-e01ef
"""


def _ranges(table: str) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for token in table.split():
        low, _, high = token.partition("-")
        starts.append(int(low, 16))
        ends.append(int(high or low, 16))
    return starts, ends


_PRINT_STARTS, _PRINT_ENDS = _ranges(_PRINTABLE)


if __name__ == "__main__":
    sys.exit(main())
