"""doit-ollama benchmarks: a build costs what changed, not what exists.

    python bench/run.py [--quick] [--only NAME[,NAME]] [--list]

Benchmarks (see each module's docstring for what it does and why):
    scale     no-op build at 10/100/1000 models vs doit's floor; one SYSTEM edit among 1000
    weights   2 GiB of local weights: hashed once at sha256sum's speed, never again;
              a blob the server already has is not sent again
    parallel  8 slow creates: `doit -n 4 build` vs `doit -n 1 build`

Each figure is one line:  name  value  unit  target  PASS|FAIL|INFO
(INFO: a reference value without a target). Lines starting with # are context.

--quick uses small sizes (10/20/25/30 models, a 64 MiB file, 0.2 s create delay) and takes
well under a minute. It reports every figure but fails only on count targets (request
counts, bytes hashed or uploaded, lock completeness), never on timing or memory, because
shared CI machines are noisy. Exit status: 0 if every enforced figure passes, 1 otherwise.

The Ollama test double runs as a subprocess of each benchmark (bench/common.py says why);
every server and build it starts is stopped by PID, and temporary folders are removed.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_parallel
import bench_scale
import bench_weights
from common import REPO_ROOT, Figure, Report

BENCHMARKS: dict[str, Callable[..., None]] = {
    "scale": bench_scale.run,
    "weights": bench_weights.run,
    "parallel": bench_parallel.run,
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}"


def revision() -> str:
    """The git revision of the doit_ollama being measured (the one subprocesses import)."""
    found = subprocess.run([sys.executable, "-c", "import doit_ollama; print(doit_ollama.__file__)"],
                           capture_output=True, text=True, check=False).stdout.strip()
    package = Path(found).resolve().parent if found else None
    if package is not None and package != (REPO_ROOT / "tasks").resolve():
        return f"doit_ollama from {package} (not this checkout's tasks/)"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tasks"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{head}{' with uncommitted changes in tasks/' if dirty else ''}"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; fail only on counts")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these benchmarks ({', '.join(BENCHMARKS)}); repeatable "
                             "or comma-separated")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(name)
        return 0
    selected = [n for item in args.only for n in item.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")

    # SIGTERM ends the run like Ctrl-C: every finally block stops its servers and builds.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    report = Report()
    mode = "quick" if args.quick else "full"
    report.note(f"doit-ollama benchmarks ({mode}): {' '.join(selected)}")
    report.note(f"machine: {machine()}; revision {revision()}; load average {load()}")
    started = time.perf_counter()
    for name in selected:
        began = time.perf_counter()
        try:
            BENCHMARKS[name](report, quick=args.quick)
        except Exception as exc:  # noqa: BLE001 (a broken benchmark is a failed figure; the rest still run)
            traceback.print_exc()
            report.add(Figure(f"{name}_completed", 0, "bool", "==1", False, "count"))
            report.note(f"{name} stopped: {type(exc).__name__}: {exc}")
        report.note(f"{name} took {time.perf_counter() - began:.0f} s; load average {load()}")

    enforced = [f for f in report.figures if f.ok is not None and (f.kind == "count" or not args.quick)]
    failed = [f for f in enforced if not f.ok]
    passed = sum(1 for f in enforced if f.ok)
    report.note(f"{passed} passed, {len(failed)} failed, "
                f"{sum(1 for f in report.figures if f.ok is None)} for reference "
                f"in {time.perf_counter() - started:.0f} s")
    if args.quick:
        missed = [f.name for f in report.figures if f.kind == "timing" and f.ok is False]
        report.note("--quick: timing and memory targets are reported, not enforced"
                    + (f" (missed here: {', '.join(missed)})" if missed else ""))
    if failed:
        report.note(f"FAILED: {', '.join(f.name for f in failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
