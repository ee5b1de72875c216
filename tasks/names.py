"""Ollama's model names: `[host/][namespace/]model[:tag]`, checked as Ollama checks them.

Facts from Ollama's types/model/name.go: the tag is cut at the last ':' when it comes after
the last '/'; the rest splits on '/'; missing parts take the defaults registry.ollama.ai,
library and latest. Every part starts with a letter, digit or '_' and continues with
those, '-' and '_'; '.' is allowed except in the namespace; ':' only in the host (a port).
The host may be 1-350 characters long, the other parts 1-80. Comparison ignores ASCII case.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field
from typing import Final

from .errors import ModelNameError

__all__ = ["DEFAULT_HOST", "DEFAULT_NAMESPACE", "DEFAULT_TAG", "ModelName"]

DEFAULT_HOST: Final = "registry.ollama.ai"
DEFAULT_NAMESPACE: Final = "library"
DEFAULT_TAG: Final = "latest"

_FIRST: Final = frozenset(string.ascii_letters + string.digits + "_")
_REST: Final = _FIRST | {"-"}
_EXTRA: Final = {"host": ".:", "namespace": "", "model": ".", "tag": "."}
_MAX_LEN: Final = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


# The whole rule for a part as one expression: the fast path when nothing is wrong.
_VALID: Final = {
    kind: re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_\-{re.escape(extra)}]{{0,{_MAX_LEN[kind] - 1}}}")
    for kind, extra in _EXTRA.items()
}


def _check_part(kind: str, value: str, text: str) -> None:
    """Raise ModelNameError naming the part of `text` that Ollama would refuse."""
    if _VALID[kind].fullmatch(value):
        return
    if value == "":
        raise ModelNameError(f"invalid model name {text!r}: the {kind} is empty")
    if len(value) > _MAX_LEN[kind]:
        raise ModelNameError(
            f"invalid model name {text!r}: the {kind} is {len(value)} characters long, "
            f"Ollama allows at most {_MAX_LEN[kind]}"
        )
    if value[0] not in _FIRST:
        raise ModelNameError(
            f"invalid model name {text!r}: the {kind} {value!r} must start with a letter, "
            "a digit or '_'"
        )
    allowed = _REST | set(_EXTRA[kind])
    for char in value[1:]:
        if char not in allowed:
            extra = "".join(f", '{c}'" for c in _EXTRA[kind])
            raise ModelNameError(
                f"invalid model name {text!r}: the {kind} {value!r} may not contain {char!r}"
                f" (allowed: letters, digits, '_', '-'{extra})"
            )


# The common shape, `[namespace/]model[:tag]` with every part valid, in one expression: a
# name that matches it parses exactly as the general rule below would parse it.
_SHORT: Final = re.compile(
    r"(?:([A-Za-z0-9_][A-Za-z0-9_\-]{0,79})/)?"  # namespace (no '.')
    r"([A-Za-z0-9_][A-Za-z0-9_\-.]{0,79})"  # model
    r"(?::([A-Za-z0-9_][A-Za-z0-9_\-.]{0,79}))?"  # tag
)


@dataclass(frozen=True)
class ModelName:
    """A valid, fully qualified Ollama model name (case kept as written)."""

    host: str
    namespace: str
    model: str
    tag: str
    # Derived once, when the name is made: every name is indexed and shown (1000s per run).
    display: str = field(init=False, repr=False, compare=False)
    key: tuple[str, str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The shortest form, as /api/tags shows it: `llama3.2:latest`, `team/bot:v1`.
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        object.__setattr__(self, "display", f"{prefix}{self.model}:{self.tag}")
        # A case-insensitive identity, for comparing and indexing names as Ollama does.
        object.__setattr__(self, "key", (self.host.lower(), self.namespace.lower(),
                                         self.model.lower(), self.tag.lower()))

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse `text` the way Ollama does, filling defaults; raise ModelNameError if invalid."""
        return _parse(text)

    @classmethod
    def _parse(cls, text: str) -> ModelName:
        rest = text
        tag = ""
        if rest.rfind(":") > rest.rfind("/"):
            rest, _, tag = rest.rpartition(":")
            if tag == "":
                raise ModelNameError(f"invalid model name {text!r}: the tag after ':' is empty")
        parts = rest.split("/")
        if len(parts) > 3:
            # Ollama keeps everything before the namespace as the host, so the extra
            # '/' ends up in the host, where it is not allowed.
            host = "/".join(parts[:-2])
            namespace, model = parts[-2:]
        elif len(parts) == 3:
            host, namespace, model = parts
        elif len(parts) == 2:
            host, (namespace, model) = "", parts
            if namespace == "":
                raise ModelNameError(f"invalid model name {text!r}: the namespace is empty")
        else:
            host, namespace, model = "", "", parts[0]
        if "://" in host:
            host = host.split("://", 1)[1]
        name = cls(
            host or DEFAULT_HOST,
            namespace or DEFAULT_NAMESPACE,
            model,
            tag or DEFAULT_TAG,
        )
        if len(parts) == 3 and host == "":
            raise ModelNameError(f"invalid model name {text!r}: the host is empty")
        for kind in ("host", "namespace", "model", "tag"):
            _check_part(kind, getattr(name, kind), text)
        return name

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """True if Ollama would accept `text` as a model name."""
        try:
            cls.parse(text)
        except ModelNameError:
            return False
        return True

    @property
    def repository(self) -> str:
        """The display form without the tag: `my-bot`, `team/bot`."""
        return self.display.rsplit(":", 1)[0]

    def with_tag(self, tag: str) -> ModelName:
        """The same repository with another tag (validated)."""
        return ModelName.parse(f"{self.repository}:{tag}")

    def same(self, other: ModelName) -> bool:
        """True if both name the same model, ignoring case as Ollama does."""
        return self.key == other.key

    def __str__(self) -> str:
        return self.display


# Names are parsed over and over (discovery, /api/tags, every up-to-date check); a parsed name
# is immutable, so the result is remembered.
@functools.lru_cache(maxsize=65536)
def _parse(text: str) -> ModelName:
    short = _SHORT.fullmatch(text)
    if short is not None:
        namespace, model, tag = short.groups()
        return ModelName(DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)
    return ModelName._parse(text)
