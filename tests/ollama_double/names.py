"""Ollama's model-name rules, server side (after types/model/name.go and internal/modelref)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TAG",
    "MISSING",
    "Name",
    "NameRefError",
    "parse",
    "parse_bare",
    "parse_ref",
]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"
# Ollama marks a part "promised" by a separator but empty with this value; it never validates.
MISSING = "!MISSING!"

_HOST, _NAMESPACE, _MODEL, _TAG = range(4)
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class NameRefError(ValueError):
    """A model reference that Ollama rejects before name validation (empty, :local:cloud)."""


@dataclass(frozen=True)
class Name:
    """A model name split into Ollama's four parts; not necessarily valid."""

    host: str = ""
    namespace: str = ""
    model: str = ""
    tag: str = ""
    scheme: str = ""

    def is_valid(self) -> bool:
        """True if every part is present and valid (Ollama's IsFullyQualified)."""
        parts = (self.host, self.namespace, self.model, self.tag)
        return all(_valid_part(kind, part) for kind, part in enumerate(parts))

    def display_shortest(self) -> str:
        """Ollama's DisplayShortest: drop default host/namespace, always keep the tag."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    def __str__(self) -> str:
        out = ""
        if self.host:
            out += self.host + "/"
        if self.namespace:
            out += self.namespace + "/"
        out += self.model
        if self.tag:
            out += ":" + self.tag
        return out

    def parts(self) -> tuple[str, str, str, str]:
        """(host, namespace, model, tag): the manifest path below manifests/."""
        return (self.host, self.namespace, self.model, self.tag)

    def fold(self) -> tuple[str, str, str, str]:
        """A case-folded key for Ollama's case-insensitive comparisons."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())


def _valid_part(kind: int, part: str) -> bool:
    raw = part.encode("utf-8", "surrogatepass")  # Go measures and indexes bytes
    limit = 350 if kind == _HOST else 80
    if not 1 <= len(raw) <= limit:
        return False
    if raw[0] not in _WORD:
        return False
    for byte in raw[1:]:
        if byte in _WORD or byte in b"_-":
            continue
        if byte == ord(".") and kind != _NAMESPACE:
            continue
        if byte == ord(":") and kind == _HOST:
            continue
        return False
    return True


def _cut_promised(text: str, sep: str) -> tuple[str, str, bool]:
    index = text.rfind(sep)
    if index < 0:
        return text, "", False
    before, after = text[:index], text[index + len(sep):]
    return before or MISSING, after or MISSING, True


def parse_bare(text: str) -> Name:
    """Split a name string without applying defaults (ParseNameBare)."""
    tag = ""
    if text.rfind(":") > text.rfind("/"):
        text, tag, _ = _cut_promised(text, ":")
    text, model, promised = _cut_promised(text, "/")
    if not promised:
        return Name(model=text, tag=tag)
    text, namespace, promised = _cut_promised(text, "/")
    if not promised:
        return Name(namespace=text, model=model, tag=tag)
    scheme, sep, host = text.partition("://")
    if not sep:
        scheme, host = "", scheme
    return Name(host=host, namespace=namespace, model=model, tag=tag, scheme=scheme)


def parse(text: str) -> Name:
    """Parse a name and fill in Ollama's defaults (ParseName)."""
    bare = parse_bare(text)
    return Name(
        host=bare.host or DEFAULT_HOST,
        namespace=bare.namespace or DEFAULT_NAMESPACE,
        model=bare.model,
        tag=bare.tag or DEFAULT_TAG,
        scheme=bare.scheme or DEFAULT_SCHEME,
    )


def parse_ref(raw: str) -> tuple[str, str]:
    """Strip a ':local'/':cloud' source suffix (modelref.ParseRef): (base, source)."""
    raw = raw.strip()
    if not raw:
        raise NameRefError("model is required")
    base, source = _source_suffix(raw)
    if source and _source_suffix(base)[1]:
        raise NameRefError(f"use either :local or :cloud, not both: {raw!r}")
    return base, source


def _source_suffix(raw: str) -> tuple[str, str]:
    index = raw.rfind(":")
    if index < 0:
        return raw, ""
    suffix_raw = raw[index + 1:].strip()
    suffix = suffix_raw.lower()
    if suffix in ("cloud", "local"):
        return raw[:index], suffix
    if "/" not in suffix_raw and suffix.endswith("-cloud"):
        return raw[: index + 1] + suffix_raw[: -len("-cloud")], "cloud"
    return raw, ""
