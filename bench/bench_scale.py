"""No-op and one-edit builds of many models, side by side with doit's own floor.

    python bench/bench_scale.py [--quick] [--reps R]

Targets 1 and 2 of issue 7:
  * a no-op `doit build` makes exactly one /api/tags request and no create or blob request,
    at every size; at the largest size its wall time is within 1.5x of doit's floor (a
    dodo.py of as many trivial up-to-date tasks, one file_dep each, on doit's defaults; the
    same with backend=sqlite3 is printed as a second reference), and it grows linearly:
    the cost of one more model between 550 and 1000 models is at most 1.5x its cost between
    100 and 550 (per repetition the fastest of 5 back-to-back no-ops of each size, 23
    repetitions, differences within the repetition, then the median). The two intervals are equally
    wide on purpose: the 90 models between 10 and 100 cost ~8 ms, less than single runs
    scatter on a shared machine, so that marginal is printed for reference only;
  * editing one SYSTEM line of a mutable `dev` tag among them makes exactly one create, and
    that build's wall time is within 1.5x of the no-op.

Every size gets its own repository and its own double (so /api/tags lists only that
repository's models). The repositories are first built from cold (not timed as a target,
but printed), then every configuration is run once untimed, then the timed repetitions are
interleaved (the order rotates each repetition) and medians are reported.
"""

from __future__ import annotations

import argparse
import dbm
import functools
import sys
from collections.abc import Callable
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

# The counts are checked at every size. Linear growth is judged on the last three: the cost
# of one more model in the upper half of 100..1000 against the lower half (450 models each).
FULL_SIZES = (10, 100, 550, 1000)
QUICK_SIZES = (10, 20, 25, 30)

FLOOR_DODO = '''"""doit's floor: {n} trivial tasks, each with one file_dep{extra}."""
{config}

def _ok():
    return True


def task_t():
    for i in range({n}):
        yield {{"name": f"f{{i:04d}}", "actions": [_ok], "file_dep": [f"files/f{{i:04d}}.txt"]}}
'''


def model_name(i: int) -> str:
    """bot0000:dev, bot0001:v1, ...: every tenth model is a mutable dev tag."""
    return f"bot{i:04d}:{'dev' if i % 10 == 0 else 'v1'}"


def system_prompt(i: int, edit: int | None = None) -> str:
    text = f"You are bot number {i}. Answer briefly."
    return text if edit is None else f"{text} (edit {edit})"


def make_floor(root: Path, n: int, backend: str | None) -> Path:
    make_repo(root)
    config = "" if backend is None else f'DOIT_CONFIG = {{"backend": "{backend}", "dep_file": ".doit.{backend}"}}'
    extra = "" if backend is None else f", backend={backend}"
    (root / "dodo.py").write_text(FLOOR_DODO.format(n=n, config=config, extra=extra))
    files = root / "files"
    files.mkdir()
    for i in range(n):
        (files / f"f{i:04d}.txt").write_text(f"input {i}\n")
    return root


class Sized:
    """One size: its double, its repository, and the checks of each run."""

    def __init__(self, n: int, work: Path, registry: Path):
        self.n = n
        self.double = Double(work / f"server-{n}", registry)
        self.repo = make_repo(work / f"repo-{n}")
        for i in range(n):
            write_model(self.repo, model_name(i), model_text(model_name(i), system_prompt(i)))
        self.edit_index = (n // 2) // 10 * 10  # a dev tag in the middle
        self.edits = 0
        self.noop_tags: list[int] = []
        self.noop_other: list[int] = []  # create and blob requests
        self.edit_creates: list[int] = []

    def env(self) -> dict[str, str]:
        return clean_env(OLLAMA_HOST=self.double.host)

    def cold(self) -> tuple[float, list[dict[str, object]]]:
        self.double.reset_requests()
        run = doit(self.repo, "build", env=self.env()).check(f"cold build of {self.n} models")
        return run.seconds, self.double.requests()

    def noop(self) -> float:
        self.double.reset_requests()
        run = doit(self.repo, "build", env=self.env()).check(f"no-op build of {self.n} models")
        log = self.double.requests()
        self.noop_tags.append(count(log, "GET", "/api/tags"))
        self.noop_other.append(count(log, "POST", "/api/create") + count(log, None, "/api/blobs/*"))
        return run.seconds

    def edit(self) -> float:
        self.edits += 1
        i = self.edit_index
        write_model(self.repo, model_name(i), model_text(model_name(i), system_prompt(i, self.edits)))
        self.double.reset_requests()
        run = doit(self.repo, "build", env=self.env()).check(f"one-edit build of {self.n} models")
        self.edit_creates.append(count(self.double.requests(), "POST", "/api/create"))
        return run.seconds


def floor_run(root: Path, label: str) -> float:
    return doit(root, env=clean_env()).check(label).seconds


def worst(values: list[int], expected: int) -> int:
    """The value furthest from `expected` (so one bad repetition shows)."""
    return max(values, key=lambda v: abs(v - expected))


def run(report: Report, *, quick: bool, reps: int | None = None) -> None:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    reps = reps or (3 if quick else 11)
    largest = sizes[-1]
    with temp_dir("scale") as work:
        use_bytecode_cache(work / "pycache")
        registry = work / "registry"
        publish_base(registry, work)
        sized = {n: Sized(n, work, registry) for n in sizes}
        try:
            for s in sized.values():
                s.double.start()
                s.double.pull(BASE_MODEL)  # the base is on the server, as on a user's machine
            for n, s in sized.items():
                seconds, log = s.cold()
                if n == largest:
                    report.info(f"cold_build_wall_n{n}", seconds, "s")
                    report.info(f"cold_build_tags_requests_n{n}", count(log, "GET", "/api/tags"), "requests")
                report.count(f"cold_build_locked_models_n{n}", len(locked_models(s.repo)), "models",
                             equals=n)

            floors = {
                "floor": make_floor(work / "floor-default", largest, None),
                "floor_sqlite3": make_floor(work / "floor-sqlite3", largest, "sqlite3"),
            }
            for label, root in floors.items():
                doit(root, env=clean_env()).check(f"{label} first run")
            db = floors["floor"] / ".doit.db"
            flavour = dbm.whichdb(str(db)) or "unknown"
            report.note(f"doit's default backend here is dbm, which Python resolves to {flavour}")

            # Configurations, each a callable returning its wall time; run each once untimed.
            configs: dict[str, Callable[[], float]] = {}
            for label, root in floors.items():
                configs[label] = functools.partial(floor_run, root, label)
            for n, s in sized.items():
                configs[f"noop{n}"] = s.noop
            configs["edit"] = sized[largest].edit
            for fn in configs.values():
                fn()
            for s in sized.values():
                s.noop_tags.clear()
                s.noop_other.clear()
                s.edit_creates.clear()

            times: dict[str, list[float]] = {label: [] for label in configs}
            order = list(configs)
            for rep in range(reps):
                shift = rep % len(order)
                for label in order[shift:] + order[:shift]:
                    times[label].append(configs[label]())
            # For the growth figure: per repetition, the fastest of several back-to-back
            # no-ops of each size (bursts of other work on the machine only ever add time).
            # A difference of 450 models is worth only 30-70 ms, so the full run takes more
            # repetitions here than above (three full runs gave 0.48, 0.82 and 1.41 with 11
            # repetitions of the fastest of 3).
            fastest: dict[int, list[float]] = {n: [] for n in sizes}
            growth_reps, tries = (reps, 3) if quick else (2 * reps + 1, 5)
            for rep in range(growth_reps):
                for n in (sizes if rep % 2 == 0 else sizes[::-1]):
                    fastest[n].append(min(sized[n].noop() for _ in range(tries)))
        finally:
            for s in sized.values():
                s.double.stop()

    for n, s in sized.items():
        report.count(f"noop_tags_requests_n{n}", worst(s.noop_tags, 1), "requests", equals=1)
        report.count(f"noop_create_blob_requests_n{n}", worst(s.noop_other, 0), "requests", equals=0)
    walls = {n: median(times[f"noop{n}"]) for n in sizes}
    for n in sizes:
        report.info(f"noop_wall_n{n}", walls[n], "s")
        report.info(f"noop_per_model_n{n}", 1000 * walls[n] / n, "ms/model")
    # Linear growth: one more model costs no more in the upper interval than in the lower
    # one. Each repetition takes the fastest of several back-to-back runs per size,
    # differences between sizes are taken within the repetition, then the median.
    def marginal(a: int, b: int) -> float:
        return median([y - x for x, y in zip(fastest[a], fastest[b])]) / (b - a)

    for a, b in zip(sizes, sizes[1:]):
        report.info(f"noop_marginal_per_model_{a}_{b}", 1000 * marginal(a, b), "ms/model")
    small, mid, big = sizes[-3:]
    low, high = marginal(small, mid), marginal(mid, big)
    report.at_most("noop_growth_ratio", high / low if low > 0 else float("inf"), "x", 1.5)

    floor, floor_sqlite = median(times["floor"]), median(times["floor_sqlite3"])
    report.info(f"floor_wall_n{largest}", floor, "s")
    report.info(f"floor_sqlite3_wall_n{largest}", floor_sqlite, "s")
    report.at_most(f"noop_vs_floor_n{largest}", walls[largest] / floor, "x", 1.5)
    report.info(f"noop_vs_floor_sqlite3_n{largest}", walls[largest] / floor_sqlite, "x")

    s = sized[largest]
    report.count(f"edit_create_requests_n{largest}", worst(s.edit_creates, 1), "requests", equals=1)
    edit = median(times["edit"])
    report.info(f"edit_wall_n{largest}", edit, "s")
    report.at_most(f"edit_vs_noop_n{largest}", edit / walls[largest], "x", 1.5)
    report.note(f"medians of {reps} interleaved runs; sizes {', '.join(map(str, sizes))}")
    for label, values in times.items():
        report.note(f"raw {label} (ms, in run order): {' '.join(f'{1000 * v:.0f}' for v in values)}")
    for n, values in fastest.items():
        report.note(f"growth: fastest of {tries} no-ops at {n} (ms, per repetition): "
                    f"{' '.join(f'{1000 * v:.0f}' for v in values)}")


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
