"""One line and exit 3, instead of doit's traceback, when pyproject.toml is not valid TOML.

doit reads pyproject.toml (its [tool.doit] table) itself, in `DoitMain()`, before it loads
the dodo.py, and lets tomllib's TOMLDecodeError escape as a traceback. No code of a dodo.py
runs that early, so the package installs `doit_ollama.pth` (see setup.py), which imports this
module when Python starts. `install()` wraps `sys.excepthook`: the wrapper acts only on a
TOMLDecodeError raised by doit's configuration loader in doit's own command line (the `doit`
program, `python -m doit`); anything else goes to the previous hook unchanged. Importing this
module costs one function definition, nothing else (it runs in every Python of the
environment).
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

__all__ = ["install"]


def _doit_config_file(tb: TracebackType | None) -> str | None:
    """The file doit's configuration loader was reading when `tb` was raised, if it was
    doit's command line doing so; else None."""
    in_doit_main = False
    filename = None
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename.replace("\\", "/")
        if path.endswith("/doit/__main__.py"):
            in_doit_main = True
        elif path.endswith("/doit/doit_cmd.py") and code.co_name == "load_config_toml":
            filename = tb.tb_frame.f_locals.get("filename")
        tb = tb.tb_next
    return str(filename) if in_doit_main and filename else None


def _report(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> bool:
    """Print the one-line message and end the process with doit's exit code 3, if this is
    doit failing on a TOML file; False (do nothing) otherwise."""
    if kind.__name__ != "TOMLDecodeError" or not isinstance(value, ValueError):
        return False
    filename = _doit_config_file(tb)
    if filename is None:
        return False
    from .project import toml_error  # only now: this is the rare path

    path = os.path.abspath(filename)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        text = ""
    sys.stdout.flush()
    sys.stderr.write(f"ERROR: {toml_error(path, text, value)}\n")  # doit's own format
    sys.stderr.flush()
    os._exit(3)  # an excepthook cannot change the exit code; nothing else has started yet


def install() -> None:
    """Put the wrapper in front of the current `sys.excepthook` (once)."""
    previous = sys.excepthook
    if getattr(previous, "__module__", None) == __name__:
        return

    def excepthook(kind: type[BaseException], value: BaseException,
                   tb: TracebackType | None) -> None:
        if not _report(kind, value, tb):
            previous(kind, value, tb)

    sys.excepthook = excepthook
