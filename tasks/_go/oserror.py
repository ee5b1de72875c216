"""How Go words an OS error: "stat /x: no such file or directory" (a *PathError)."""

from __future__ import annotations

__all__ = ["path_error", "reason"]


def reason(err: OSError) -> str:
    """The errno text, lower-case, as Go's syscall.Errno prints it."""
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


def path_error(op: str, path: str, err: OSError) -> str:
    """A *PathError as Go prints it: operation, path, reason."""
    return f"{op} {path}: {reason(err)}"
