"""Streaming sha256 of local files, and a stat cache so an unchanged file is never re-hashed.

Ollama names every blob by the sha256 of its bytes. Model weights can be many GiB, so a
file is always read in fixed-size chunks (memory does not grow with the file) and the
result is remembered under the file's identity (path, size, mtime, inode, ctime): as long
as none of those change, asking again costs one stat() and one small database read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from . import stats

__all__ = ["CHUNK_SIZE", "DigestCache", "sha256_file"]

# 1 MiB: large enough that the per-call overhead of read() vanishes next to hashing,
# small enough to be irrelevant to the process's memory.
CHUNK_SIZE = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return "sha256:<hex>" of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while True:
            count = stream.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return f"sha256:{digest.hexdigest()}"


class DigestCache:
    """sha256 of files, remembered by stat identity in a small SQLite file.

    SQLite (in WAL mode) is used because several build processes (`doit -n 4`) may read and
    write the cache at once; a lost write only costs one extra hash later.
    """

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path is not None else None
        self.bytes_hashed = 0
        self._local = threading.local()

    def _db(self) -> Any:
        if self.path is None:
            return None
        import sqlite3  # only when a file must be hashed or looked up; a no-op build never does

        conn = getattr(self._local, "conn", None)
        # A connection must not cross a fork (doit -n N starts worker processes).
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS digests ("
                " path TEXT PRIMARY KEY, identity TEXT NOT NULL, digest TEXT NOT NULL)"
            )
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (a process that ends need not call this)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _identity(st: os.stat_result) -> str:
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"

    def digest(self, path: str | os.PathLike[str]) -> str:
        """Return "sha256:<hex>" of the file, hashing it only if it changed since last time."""
        real = os.path.realpath(path)
        st = os.stat(real)
        identity = self._identity(st)
        db = self._db()
        if db is not None:
            import sqlite3

            try:
                row = db.execute(
                    "SELECT digest FROM digests WHERE path = ? AND identity = ?",
                    (real, identity),
                ).fetchone()
            except sqlite3.Error:
                row = None  # a broken cache is only a slower build
            if row:
                return str(row[0])
        result = sha256_file(real)
        self.bytes_hashed += st.st_size
        stats.record("hashed", st.st_size)
        if db is not None:
            import sqlite3

            try:
                db.execute(
                    "INSERT OR REPLACE INTO digests (path, identity, digest) VALUES (?, ?, ?)",
                    (real, identity, result),
                )
            except sqlite3.Error:
                pass
        return result
