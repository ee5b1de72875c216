"""`doit-ollama`: the same tasks as `doit` with `from doit_ollama.doit_tasks import *`, in a
repository that has no dodo.py (doit's own DoitMain with our tasks as the loader)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run doit with doit-ollama's tasks; returns doit's exit code."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from . import doit_tasks

    tasks = {name: getattr(doit_tasks, name) for name in doit_tasks.__all__}
    try:
        runner = DoitMain(ModuleTaskLoader(tasks), config_filenames=("pyproject.toml",))
    except ValueError as err:  # doit reads pyproject.toml first, and lets its error escape
        if type(err).__name__ != "TOMLDecodeError":
            raise
        from .project import toml_error

        path = Path("pyproject.toml").resolve()
        text = path.read_text(encoding="utf-8", errors="replace")
        print(f"ERROR: {toml_error(path, text, err)}", file=sys.stderr)
        return 3  # doit's code for a project that cannot be loaded
    runner.BIN_NAME = "doit-ollama"
    return int(runner.run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
