"""A parsed Modelfile made concrete: the /api/create body `ollama create -f <Modelfile>` sends.

`resolve` follows Ollama's Modelfile.CreateRequest (parser/parser.go of ollama/ollama at
fb30760) and then the CLI's re-keying of local files: a FROM, ADAPTER or DRAFT path is
expanded (`~`, `~user`, relative to the Modelfile's folder); a file is hashed, a folder is
searched for its model files (`files_for_model`, in Ollama's order, each checked by content
type); a FROM that names nothing on disk is a model name; each PARAMETER is typed by
Ollama's table, floats rounded to float32 as they travel. `wire_json` is the exact text the
CLI POSTs. Error texts are Ollama's (and Go's, where Ollama passes Go's on).

Go's own behaviour (filepath, Glob, content sniffing, strconv, encoding/json) comes from the
private package `_go`.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._go import filepath, glob, oserror, semver, sniff, strconv
from ._go import json as gojson
from .errors import ModelfileError
from .hashing import sha256_file
from .modelfile import DEPRECATED_PARAMETERS, PARAMETER_TYPES, Modelfile

try:  # pwd is Unix-only; elsewhere `~` falls back to $HOME
    import pwd
except ImportError:  # pragma: no cover
    pwd = None  # type: ignore[assignment]

__all__ = [
    "DigestFn",
    "LocalFile",
    "ResolvedRequest",
    "current_user_home",
    "expand_path",
    "file_not_found",
    "files_for_model",
    "names_a_file",
    "parameter_hint",
    "resolve",
    "user_home",
    "wire_json",
]

# --- error and warning texts, verbatim from Ollama (and from Go where Ollama passes Go's on) --

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
WARN_DEPRECATED: Final = "warning: parameter {name} is deprecated"

# The request fields that name local files, in the order LocalFile entries are sorted.
_FILE_FIELDS: Final = ("files", "adapters", "draft_files")
# api.CreateRequest's JSON fields in struct order; "model" and "name" carry no omitempty.
_WIRE_FIELDS: Final = (
    "model", "stream", "quantize", "draft_quantize", "from", "remote_host", "files",
    "draft_files", "adapters", "template", "license", "system", "parameters", "messages",
    "renderer", "parser", "requires", "info", "name", "quantization",
)
_FLOAT32_PARAMETERS: Final = frozenset(
    name for name, kind in PARAMETER_TYPES.items() if kind == "float32"
)

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


def resolve(
    modelfile: Modelfile,
    base_dir: str | os.PathLike[str] | None = None,
    digest: DigestFn | None = None,
) -> ResolvedRequest:
    """The create request against the file system; base_dir defaults to the file's folder."""
    try:
        if base_dir is None:
            if modelfile.path is None:
                raise ModelfileError("resolve() needs base_dir for a Modelfile without a path")
            base_dir = modelfile.path.parent
        return _Resolver(modelfile, os.fspath(base_dir), digest or sha256_file).run()
    except ModelfileError as err:
        if modelfile.path is not None and err.path is None:
            raise err.with_path(str(modelfile.path)) from None
        raise


# --- the resolver ------------------------------------------------------------------------------


class _MissingPath(ModelfileError):
    """An error caused by a path that does not exist (Go's os.ErrNotExist)."""


def _os_error(op: str, path: str, err: OSError) -> ModelfileError:
    """A *PathError as Go prints it; _MissingPath when the path does not exist."""
    kind = _MissingPath if err.errno == errno.ENOENT else ModelfileError
    return kind(oserror.path_error(op, path, err))


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
        lines = self.modelfile.lines
        for index, (name, args) in enumerate(self.modelfile.instructions):
            line = lines[index] if index < len(lines) else None
            try:
                self._apply(name, args, line)
            except ModelfileError as err:
                raise ModelfileError(err.msg, err.line or line, hint=err.hint) from None
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
            if not semver.is_valid(version):
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
            if name in _FLOAT32_PARAMETERS:
                if not math.isfinite(value):
                    unsupported = gojson.UnsupportedValue(value)
                    raise ModelfileError(str(unsupported), self.parameter_lines.get(name))
                value = float(gojson.float32_text(value))
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
                relative = filepath.rel(path, real)
                if not filepath.is_local(relative):
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


def _typed_parameter(name: str, value: str) -> Any:
    """api.FormatParams for one PARAMETER line."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise ModelfileError(ERR_UNKNOWN_PARAMETER.format(name=name),
                             hint=parameter_hint(name, value))
    if kind == "list":
        return [value]
    if kind == "float32":
        number = strconv.parse_float32(value)
        if number is None:
            raise ModelfileError(ERR_INVALID_VALUE.format(kind="float", value=value))
        return number
    if kind == "int":
        whole = strconv.parse_int64(value)
        if whole is None:
            raise ModelfileError(ERR_INVALID_VALUE.format(kind="int", value=value))
        return whole
    flag = strconv.parse_bool(value)
    if flag is None:
        raise ModelfileError(ERR_INVALID_VALUE.format(kind="bool", value=value))
    return flag


def parameter_hint(name: str, value: str) -> str | None:
    """What a PARAMETER name Ollama does not know probably meant (None if nothing is close)."""
    if not name:  # Ollama's reader ends the name at the second space
        return ("more than one space after PARAMETER leaves the name empty: "
                f"write `PARAMETER {value}`")
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(name, list(PARAMETER_TYPES), 1)
    return f"did you mean PARAMETER {close[0]}?" if close else None


# --- the names local files travel under ---------------------------------------------------------


def _wire_names(paths: list[str]) -> dict[str, str]:
    """createRequestFileNames: one file is keyed by its name, several relative to their root."""
    root = _common_root(paths)
    names: dict[str, str] = {}
    for path in paths:
        name = path[path.rfind("/") + 1 :] or path
        if root is not None:
            relative = filepath.rel(root, filepath.abs_path(path))
            if relative not in (".", "..") and not relative.startswith("../"):
                name = relative
        names[path] = filepath.clean(name)
    return names


def _common_root(paths: list[str]) -> str | None:
    """commonFileRoot: the deepest folder holding every path (for two paths or more)."""
    if len(paths) < 2:
        return None
    root: str | None = None
    for path in paths:
        folder = filepath.dir_name(filepath.abs_path(path))
        if root is None:
            root = folder
            continue
        while True:
            relative = filepath.rel(root, folder)
            if relative == "." or (relative != ".." and not relative.startswith("../")):
                break
            parent = filepath.dir_name(root)
            if parent == root:
                return None
            root = parent
    return root


def wire_json(request: Mapping[str, Any], model: str = "") -> str:
    """The exact JSON text `ollama create` POSTs for this request (Go's encoding/json)."""
    body = {"model": model, "name": "", **request}
    parts = []
    for name in _WIRE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if name == "messages":  # api.Message: role, then content
            text = "[" + ",".join(
                "{" + f'"role":{gojson.string(m["role"])},'
                f'"content":{gojson.string(m["content"])}' + "}"
                for m in value
            ) + "]"
        else:
            try:
                text = gojson.encode(value, _FLOAT32_PARAMETERS)
            except gojson.UnsupportedValue as err:
                raise ModelfileError(str(err)) from None
        parts.append(f"{gojson.string(name)}:{text}")
    return "{" + ",".join(parts) + "}"


# --- paths: `~`, `~user`, relative to the Modelfile ----------------------------------------------


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
    if path.startswith(("/", "\\")):
        return filepath.abs_path(path)
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
        return filepath.abs_path(filepath.join(home, rest))
    return filepath.abs_path(filepath.join(os.fspath(relative_dir), path))


# --- where doit-ollama reads a FROM more strictly than Ollama ------------------------------------

# Ollama reads a FROM that names nothing on disk as a model name, so `FROM ./weights/bot.gguf`
# with the file missing becomes a pull of "./weights/bot.gguf" and `FROM weights.gguf` one of
# weights.gguf:latest. A value shaped like this can only have meant a file: build and lint
# both call it a missing file.
_FILE_SHAPED: Final = re.compile(r"^(\.{1,2}/|/|~)|\.(gguf|bin|safetensors)$", re.IGNORECASE)


def names_a_file(args: str) -> bool:
    """True when a FROM value can only mean a local file: it starts with `./`, `../`, `/` or
    `~`, or ends in .gguf, .bin or .safetensors."""
    return _FILE_SHAPED.search(args) is not None


def file_not_found(what: str, args: str, looked_for: str) -> str:
    """The message for a FROM, ADAPTER or DRAFT whose file is not there (build and lint)."""
    return f"{what} {args}: file not found (looked for {looked_for})"


# --- a model folder's files (filesForModel) ------------------------------------------------------


def files_for_model(directory: str) -> list[str]:
    """The files of a model folder, in Ollama's order (weights by priority, then config)."""
    try:
        return _files_for_model(directory)
    except glob.BadPattern:  # pragma: no cover - a bad folder name fails in the weight globs
        raise ModelfileError("syntax error in pattern") from None


def _files_for_model(directory: str) -> list[str]:
    files: list[str] = []
    for index, (pattern, content_type) in enumerate(_WEIGHT_PATTERNS):
        files = _first_or_none(filepath.join(directory, pattern), content_type)
        if files:
            if index == 0:
                files += _glob_checked(filepath.join(directory, _NESTED_SAFETENSORS), "")
            break
    else:
        raise ModelfileError(ERR_NO_MODEL_FILES)
    for pattern, content_type in _CONFIG_PATTERNS:
        files += _glob_checked(filepath.join(directory, pattern), content_type)
    for pattern, content_type in _TOKENIZER_PATTERNS:
        found = _first_or_none(filepath.join(directory, pattern), content_type)
        if found:
            files += found
            break
    return files


def _glob_checked(pattern: str, content_type: str) -> list[str]:
    """filesForModel's glob: matches, each of which must sniff as content_type (if given)."""
    matches = glob.glob(pattern)
    for match in matches:
        found = _content_type(match)
        if content_type and found != content_type:
            raise ModelfileError(ERR_CONTENT_TYPE.format(found=found, path=match))
    return matches


def _first_or_none(pattern: str, content_type: str) -> list[str]:
    """A glob whose errors Ollama ignores (`st, _ := glob(...)`)."""
    try:
        return _glob_checked(pattern, content_type)
    except (ModelfileError, glob.BadPattern):
        return []


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
    return sniff.detect_content_type(head).partition(";")[0]
