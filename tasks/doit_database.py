"""doit's sqlite3 database, read in one query instead of one query per task.

doit's own sqlite3 backend reads a task's row when doit first checks that task: a no-op of
1000 models asks sqlite 1000 times, which cost ~25 ms of a 0.25 s run (docs/performance.md).
This backend reads every row when doit opens the database and answers from memory. The
file, its table and what doit writes are unchanged, so the two backends can take turns on
the same `.doit-ollama/doit.sqlite3`. doit finds it as the backend "doit-ollama" through
the `doit.BACKEND` entry point of this package.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from doit.dependency import SqliteDB

__all__ = ["NAME", "Database"]

NAME = "doit-ollama"


class Database(SqliteDB):  # type: ignore[misc]
    """SqliteDB with every task's saved state loaded at open."""

    desc = "sqlite3, loaded whole at start (doit-ollama)"

    def __init__(self, name: str, codec: Any, **options: Any) -> None:
        super().__init__(name, codec, **options)
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples: doit's dict per row would cost more than the rows
        try:
            rows = cursor.execute("select task_id, task_data from doit").fetchall()
        except sqlite3.DatabaseError:
            return  # doit's own reads, task by task, will report a damaged file
        self._cache = {task_id: data for task_id, data in rows if data is not None}
