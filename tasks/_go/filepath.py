"""Go's path/filepath on Unix (Clean, Join, Abs, Dir, Rel, IsLocal) and os.Getwd.

Python's os.path differs in the corners Ollama's answers depend on: Clean keeps no trailing
slash and folds `..` lexically, Abs starts from $PWD when it names the working directory.
"""

from __future__ import annotations

import os

__all__ = ["abs_path", "clean", "dir_name", "getwd", "is_local", "join", "rel"]


def clean(path: str) -> str:
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


def join(*parts: str) -> str:
    """filepath.Join."""
    kept = [part for part in parts if part]
    return clean("/".join(kept)) if kept else ""


def getwd() -> str:
    """os.Getwd: $PWD when it names the working directory, else the real path."""
    candidate = os.environ.get("PWD", "")
    if candidate.startswith("/"):
        try:
            if os.path.samestat(os.stat(candidate), os.stat(".")):
                return candidate
        except (OSError, ValueError):
            pass
    return os.getcwd()


def abs_path(path: str) -> str:
    """filepath.Abs."""
    if path.startswith("/"):
        return clean(path)
    return join(getwd(), path)


def dir_name(path: str) -> str:
    """filepath.Dir."""
    return clean(path[: path.rfind("/") + 1])


def rel(base: str, target: str) -> str:
    """filepath.Rel for two absolute paths."""
    base_parts = [p for p in clean(base).split("/") if p]
    target_parts = [p for p in clean(target).split("/") if p]
    common = 0
    while (
        common < min(len(base_parts), len(target_parts))
        and base_parts[common] == target_parts[common]
    ):
        common += 1
    parts = [".."] * (len(base_parts) - common) + target_parts[common:]
    return "/".join(parts) or "."


def is_local(path: str) -> bool:
    """filepath.IsLocal on Unix."""
    if not path or path.startswith("/"):
        return False
    if any(part in (".", "..") for part in path.split("/")):
        path = clean(path)
    return not (path == ".." or path.startswith("../"))
