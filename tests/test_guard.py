"""The file guard that serialises builds of one model and writers of the lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from doit_ollama.guard import Guard, GuardTimeout

HOLD = """
import sys, time
from doit_ollama.guard import Guard
with Guard(sys.argv[1], timeout=5):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(path: Path, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_held_guard_makes_others_wait_then_gives_up_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    child = hold_in_another_process(path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(GuardTimeout):
            with Guard(path, timeout=0.3):
                pass
        assert 0.25 <= time.monotonic() - started < 5
    finally:
        child.kill()
        child.communicate(timeout=10)
    with Guard(path, timeout=5):  # the holder is gone: its lock went with it
        pass


def test_the_waiter_gets_the_guard_when_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    child = hold_in_another_process(path, 0.5)
    try:
        started = time.monotonic()
        with Guard(path, timeout=10):
            waited = time.monotonic() - started
        assert 0.2 < waited < 10
    finally:
        child.communicate(timeout=10)


def test_a_guard_is_released_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError):
        with Guard(path, timeout=1):
            raise RuntimeError("boom")
    with Guard(path, timeout=0.1):
        pass
