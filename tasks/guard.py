"""An exclusive lock on a file, held while a model is built or the lock is rewritten.

On POSIX this is `flock` on the guard file, polled until a timeout: what the filelock
package does there too, without its import, which costs ~16 ms of every build process
(filelock 4.3, measured in docs/performance.md; a one-edit build spends ~150 ms in all).
Elsewhere (Windows) filelock does the work.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any, Final

__all__ = ["Guard", "GuardTimeout"]

_POLL_SECONDS: Final = 0.05


class GuardTimeout(Exception):
    """Another process held the guard for longer than the timeout."""


class Guard:
    """`with Guard(path, timeout):` waits for the file's lock, holds it, then lets go."""

    def __init__(self, path: str | os.PathLike[str], timeout: float):
        self.path = os.fspath(path)
        self.timeout = timeout
        self._fd: int | None = None
        self._other: Any = None  # filelock's lock where there is no fcntl

    def __enter__(self) -> Guard:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            self._enter_with_filelock()
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise GuardTimeout(self.path) from None
                time.sleep(_POLL_SECONDS)
            except BaseException:
                os.close(fd)
                raise

    def _enter_with_filelock(self) -> None:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        self._other = FileLock(self.path, timeout=self.timeout)
        try:
            self._other.acquire()
        except Timeout:
            raise GuardTimeout(self.path) from None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases its flock
            self._fd = None
        if self._other is not None:  # pragma: no cover - Windows
            self._other.release()
            self._other = None
