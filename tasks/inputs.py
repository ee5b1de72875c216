"""What goes into a model tag, and its fingerprints.

A model's inputs are the meaning of its Modelfile (the create request `ollama create`
would send, which already carries the sha256 of every local file), the local files
themselves, and the model it is built FROM. Fingerprints are sha256 of canonical JSON, so
comments and spacing never change them, and per-field fingerprints let a report say
*what* changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import createrequest, modelfile
from .errors import ModelfileError, ModelNameError
from .names import ModelName
from .project import ModelSource, Project

__all__ = ["FIELDS", "Inputs", "LocalFile", "fingerprint", "gather"]

# The create-request fields a lock fingerprints one by one, in report order.
FIELDS: Final = (
    "from", "files", "adapters", "draft_files", "template", "system", "license",
    "parameters", "messages", "renderer", "parser", "requires",
)


def fingerprint(value: Any) -> str:
    """sha256 of the canonical JSON of `value`, as "sha256:<hex>"."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LocalFile:
    """A local file the Modelfile names, as it will be uploaded."""

    field: str  # "files", "adapters" or "draft_files"
    key: str  # the name it has in the create request
    path: Path  # absolute
    relpath: str  # as the lock records it
    digest: str


@dataclass(frozen=True)
class Inputs:
    """Everything a build of one model depends on, resolved and fingerprinted."""

    request: Mapping[str, Any]  # the /api/create body, without model and stream
    inputs: str  # fingerprint of the request
    fields: Mapping[str, str]  # per-field fingerprints
    files: Mapping[str, str]  # relpath -> digest
    local: tuple[LocalFile, ...]
    base: ModelName | None  # the model it is built FROM, when FROM names a model
    warnings: tuple[str, ...]


def _check_outside(project: Project, source: ModelSource, mf: modelfile.Modelfile,
                   path: Path) -> None:
    """Refuse a local file outside the repository unless the project allows it."""
    if project.allow_outside_paths:
        return
    real = Path(os.path.realpath(path))
    if real.is_relative_to(project.root.resolve()):
        return
    raise ModelfileError(
        f"{path} is outside the repository (it resolves to {real}); other machines will "
        "not have it. Move the file into the repository, or set "
        "`allow-outside-paths = true` in [tool.doit-ollama] if that is intended",
        line=_line_naming(mf, path),
        path=source.relpath,
    )


def _line_naming(mf: modelfile.Modelfile, path: Path) -> int | None:
    """The line of the FROM/ADAPTER/DRAFT instruction most likely naming `path`."""
    for (name, args), line in zip(mf.instructions, mf.lines):
        if name in ("model", "adapter", "draft") and (args.rstrip("/") and (
                path.name in args or Path(args).name == path.name or path.as_posix().startswith(args))):
            return line
    for (name, _), line in zip(mf.instructions, mf.lines):
        if name in ("model", "adapter", "draft"):
            return line
    return None


def _resolve(source: ModelSource, digest: Callable[[str | os.PathLike[str]], str]) -> Any:
    try:
        mf = modelfile.load(source.modelfile)
        return mf, mf.resolve(source.modelfile.parent, digest=digest)
    except ModelfileError as err:
        raise err.with_path(source.relpath) from None  # messages name the file as the user sees it


def gather(project: Project, source: ModelSource,
           digest: Callable[[str | os.PathLike[str]], str]) -> Inputs:
    """Read, resolve and fingerprint one model's inputs; raise ModelfileError on bad input."""
    mf, resolved = _resolve(source, digest)
    request = dict(resolved.request)
    base = None
    if resolved.base is not None:
        line = next((ln for (n, _), ln in zip(mf.instructions, mf.lines) if n == "model"), None)
        if createrequest.names_a_file(resolved.base):  # Ollama would take it for a model name
            looked_for = Path(createrequest.expand_path(resolved.base, source.modelfile.parent))
            message = createrequest.file_not_found("FROM", resolved.base,
                                                   project.relative(looked_for))
            raise ModelfileError(message, line=line, path=source.relpath)
        try:
            base = ModelName.parse(resolved.base)
        except ModelNameError as exc:
            raise ModelfileError(
                f"FROM {resolved.base!r} is neither an existing file (relative to "
                f"{project.relative(source.modelfile.parent)}/) nor a valid model name ({exc})",
                line=line, path=source.relpath,
            ) from None
    local = []
    for entry in resolved.local_files:
        path = Path(entry.path)
        _check_outside(project, source, mf, path)
        local.append(LocalFile(entry.field, entry.key, path, project.relative(path), entry.digest))
    fields = {name: fingerprint(request[name]) for name in FIELDS if name in request}
    return Inputs(
        request=request,
        inputs=fingerprint(request),
        fields=fields,
        files={f.relpath: f.digest for f in local},
        local=tuple(local),
        base=base,
        warnings=tuple(resolved.warnings),
    )
