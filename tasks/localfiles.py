"""Files this package writes: replaced atomically, and the machine-local caches.

The caches under .doit-ollama/ (the checked lock, its per-model summary, the dependencies
of each Modelfile) are never committed and only ever read back by doit-ollama on the same
machine; each is a speed-up that is made again when it is missing. They are written with
marshal, the format of Python's own .pyc files: on the caches of 1000 models it reads 2-3x
and writes 5-10x faster than json (docs/performance.md). Its format may change between
Python versions, so every file starts with a tag naming the Python that wrote it; a file
from another Python, a damaged one or a missing one reads as None. (Like a .pyc file, a
cache is trusted as much as the folder it lives in: whoever can write there can also
change dodo.py.)
"""

from __future__ import annotations

import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

__all__ = ["load_cache", "store_cache", "write_atomic"]

_TAG: Final = (f"doit-ollama cache; marshal {marshal.version}; "
               f"python {sys.version_info[0]}.{sys.version_info[1]}\n").encode()


def write_atomic(path: str | os.PathLike[str], data: bytes, *, durable: bool = True,
                 mode: int = 0o644) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a mix."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); a committed lock is an ordinary file
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_cache(path: str | os.PathLike[str]) -> Any:
    """What `store_cache` wrote at `path`, or None if there is nothing usable there."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    if not data.startswith(_TAG):
        return None
    try:
        return marshal.loads(memoryview(data)[len(_TAG):])
    except (ValueError, EOFError, TypeError):
        return None


def store_cache(path: str | os.PathLike[str], value: Any) -> None:
    """Write a cache file (plain values only); a failure only costs speed next time."""
    try:
        write_atomic(path, _TAG + marshal.dumps(value), durable=False)
    except (OSError, ValueError):
        pass
