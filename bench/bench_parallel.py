"""Parallel builds: `doit -n 4 build` against `doit -n 1 build` when creates are slow.

    python bench/bench_parallel.py [--quick] [--reps R]

Target 5 of issue 7: 8 independent models (FROM base:1b, each its own SYSTEM), the double
delaying every POST /api/create by 1 s (0.2 s with --quick). Each build starts from a fresh
double and a fresh repository; the base model is pulled onto the server before the clock
starts (as on a user's machine), so only the creates are measured. `-n 4` must finish at
least 3x faster than `-n 1`, and both must leave all 8 models in the lock with exactly
8 creates. Repetitions alternate -n 1 and -n 4; medians are reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BASE_MODEL,
    Double,
    Report,
    clean_env,
    count,
    doit,
    locked_models,
    make_repo,
    median,
    model_text,
    publish_base,
    temp_dir,
    use_bytecode_cache,
    write_model,
)

MODELS = 8


def one_build(work: Path, registry: Path, jobs: int, delay: float, rep: int) -> tuple[float, int, int]:
    """A fresh double and repository, then `doit -n JOBS build`: wall s, locked models, creates."""
    root = work / f"n{jobs}-{rep}"
    double = Double(root / "server", registry)
    repo = make_repo(root / "repo")
    names = [f"par{i}:v1" for i in range(MODELS)]
    for i, name in enumerate(names):
        write_model(repo, name, model_text(name, f"You are parallel bot {i}."))
    try:
        double.start()
        double.pull(BASE_MODEL)
        double.delay("POST", "/api/create", delay)
        double.reset_requests()
        run = doit(repo, "-n", str(jobs), "build", env=clean_env(OLLAMA_HOST=double.host))
        run.check(f"doit -n {jobs} build")
        creates = count(double.requests(), "POST", "/api/create")
    finally:
        double.stop()
    locked = len(locked_models(repo) & set(names))
    return run.seconds, locked, creates


def run(report: Report, *, quick: bool, reps: int | None = None) -> None:
    delay = 0.2 if quick else 1.0
    reps = reps or (1 if quick else 3)
    results: dict[int, list[tuple[float, int, int]]] = {1: [], 4: []}
    with temp_dir("parallel") as work:
        use_bytecode_cache(work / "pycache")
        registry = work / "registry"
        publish_base(registry, work)
        one_build(work, registry, 4, 0.0, -1)  # untimed: fills the bytecode cache
        for rep in range(reps):
            for jobs in ((1, 4) if rep % 2 == 0 else (4, 1)):
                results[jobs].append(one_build(work, registry, jobs, delay, rep))
    walls = {jobs: median([r[0] for r in rs]) for jobs, rs in results.items()}
    for jobs in (1, 4):
        report.info(f"parallel_n{jobs}_wall", walls[jobs], "s")
    report.at_least("parallel_speedup_n4_vs_n1", walls[1] / walls[4], "x", 3.0)
    for jobs in (1, 4):
        report.count(f"parallel_n{jobs}_locked_models", min(r[1] for r in results[jobs]), "models",
                     equals=MODELS)
        report.count(f"parallel_n{jobs}_create_requests",
                     max((r[2] for r in results[jobs]), key=lambda c: abs(c - MODELS)), "requests",
                     equals=MODELS)
    report.note(f"{MODELS} models, each create delayed {delay:g} s by the double; medians of {reps}")
    for jobs in (1, 4):
        report.note(f"raw -n {jobs} (s, in run order): {' '.join(f'{r[0]:.2f}' for r in results[jobs])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    report = Report()
    run(report, quick=args.quick, reps=args.reps)
    return 0 if all(f.ok is not False for f in report.figures) else 1


if __name__ == "__main__":
    sys.exit(main())
