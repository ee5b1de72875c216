"""What a user's dodo.py imports, in one line:

    from doit_ollama.doit_tasks import *

It brings DOIT_CONFIG (doit's sqlite3 database under .doit-ollama/, which survives a killed
run; a file checker sharing the build's sha256 cache; a reporter that keeps reports clean)
and the task creators: build, verify, status, the checklist's lint, test, promote, fmt, and
the team registry's publish, deploy, outdated.
"""

from __future__ import annotations

from .doit_build import task_build
from .doit_checklist import task_fmt, task_lint, task_promote, task_test
from .doit_plumbing import DOIT_CONFIG
from .doit_registry import task_deploy, task_outdated, task_publish
from .doit_report import task_status, task_verify

__all__ = [
    "DOIT_CONFIG", "task_build", "task_deploy", "task_fmt", "task_lint", "task_outdated",
    "task_promote", "task_publish", "task_status", "task_test", "task_verify",
]
