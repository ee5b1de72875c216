"""Everything is in pyproject.toml except one file setuptools cannot declare: doit_ollama.pth.

doit reads pyproject.toml itself before it loads a dodo.py, and shows a traceback when the
file is not valid TOML; the .pth file makes Python import doit_ollama.startup at start-up,
which turns that into doit's one-line "ERROR: ..." and exit 3 (see tasks/startup.py).
A .pth file is installed at the top of site-packages: in a wheel it sits beside the package;
an editable install (pip install -e) ships what is in install_lib, not build_lib.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "doit_ollama.pth"
PTH_LINE = "import doit_ollama.startup; doit_ollama.startup.install()\n"


class BuildPyWithPth(build_py):
    """build_py, plus doit_ollama.pth at the top of what is installed."""

    def run(self) -> None:
        super().run()
        folder = self.build_lib
        if getattr(self, "editable_mode", False):
            folder = self.get_finalized_command("install").install_lib
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, PTH_NAME), "w", encoding="utf-8") as file:
            file.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs  # the .pth went straight into the wheel, not into build_lib
        return [*outputs, os.path.join(self.build_lib, PTH_NAME)]


setup(cmdclass={"build_py": BuildPyWithPth})
