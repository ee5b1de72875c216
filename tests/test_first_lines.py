"""The README's first commands on a fresh machine whose system Python refuses `pip install`
outside a virtual environment (Debian's externally-managed Python, PEP 668), the files a
release needs (LICENSE, CHANGELOG.md), and what a wheel installs (issue 14, item 16)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's and Ubuntu's


def readme_first_commands() -> list[str]:
    """The commands of the README's first fenced `sh` block, without their comments."""
    block = re.search(r"^```sh\n(.*?)^```$", (ROOT / "README.md").read_text(), re.S | re.M)
    assert block is not None, "README.md starts with a ```sh block of commands"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def fresh_clone(target: Path) -> Path:
    """The repository's files as a clone has them (tracked, and new ones not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_readme_first_commands_work_with_an_externally_managed_python(tmp_path: Path) -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"no system Python at {SYSTEM_PYTHON} to try the README's first lines with")
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith("OLLAMA_")}
    env["PATH"] = "/usr/bin:/bin"  # python3 and pip are the system's
    refused = subprocess.run(["pip", "install", "--no-index", "--no-deps", "doit-ollama"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    if "externally-managed-environment" not in refused.stderr:
        pytest.skip(f"{SYSTEM_PYTHON} is not externally managed here: {refused.stderr[-300:]}")

    clone = fresh_clone(tmp_path / "clone")
    demo, test = readme_first_commands()
    ran = subprocess.run(["bash", "-c", demo], cwd=clone, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert ran.returncode == 0, f"{demo}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    assert "$ doit graph" in ran.stdout  # the demo ran to its end
    assert (clone / ".venv/bin/doit").exists()

    # The test command, narrowed to one small file: the suite must not run itself here.
    env["PYTEST_ADDOPTS"] = "tests/test_names.py -q -p no:cacheprovider"
    ran = subprocess.run(["bash", "-c", test], cwd=clone, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert ran.returncode == 0, f"{test}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    assert re.search(r"\d+ passed", ran.stdout), ran.stdout


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    _demo, test = readme_first_commands()
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands[-1] == test


def test_the_license_pyproject_names_and_a_changelog_ship() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in license_text
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "\n## Unreleased\n" in changelog
    assert f"\n## {project['version']}\n" in changelog


def test_a_wheel_carries_the_license_and_the_startup_hook(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(tmp_path), str(fresh_clone(tmp_path / "clone"))],
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("doit_ollama-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "doit_ollama.pth" in names  # at the top of site-packages (tests/test_config_errors.py)
    assert "doit_ollama/startup.py" in names
    assert any(re.fullmatch(r"doit_ollama-[^/]+\.dist-info/(licenses/)?LICENSE", n) for n in names), names
