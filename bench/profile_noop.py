"""Where the time of a no-op and of a one-edit `doit build` goes, at N models, next to
doit's own floor.

    python bench/profile_noop.py [--n 1000] [--reps 5]

Builds a repository of N models against the test double (a cold build: about two minutes
at N=1000) and the floor repository of bench_scale.py (N trivial tasks, one file_dep each,
doit's defaults). Then, interleaved --reps times: the floor, a no-op `doit build`, and a
`doit build` after one SYSTEM edit of a `dev` tag. Each runs in a child process that wraps
the interesting functions with wall-clock timers (not cProfile, whose per-call overhead
would inflate the function-heavy parts several times) and calls `DoitMain().run(ARGS)`
exactly as `python -m doit ARGS` does. The table gives medians in ms; its rows add up to
the wall time of the child:

  interpreter start      spawn until the child's first statement (includes site.py and,
                         for an editable install, its import finder)
  interpreter exit       the child's last statement until the parent has reaped it
  doit import and setup  until doit imports dodo.py
  dodo.py import         doit_ollama and everything it imports (nothing in the floor)
  ours: ...              Run() (configuration, discovery of models/), the dependency cache,
                         the single /api/tags, the lock read, the up-to-date rule
  task creator ...       each generator task creator's own code (Task objects it builds
                         itself included; Run() and the dependency cache excluded)
  doit: ...              Task objects, per-task status (inspect.signature of the uptodate
                         callable, file checks, database reads), runner, reporter, database
  build: ...             the one build step of the edit: imports, ollama client, create,
                         /api/tags and /api/version reads, the lock write
"""

from __future__ import annotations

import time

_EPOCH_START, _P0 = time.time(), time.perf_counter()  # the child's first statement

import functools
import json
import os
import sys
from collections import defaultdict
from typing import Any

# --- the child: one instrumented `doit build` --------------------------------------------

_T_MODULE = time.perf_counter()  # after this module's own imports
_ACC: dict[str, float] = defaultdict(float)
_CALLS: dict[str, int] = defaultdict(int)
_MARK: dict[str, float] = {}


def _wrap(owner: Any, attr: str, label: str) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)  # keeps the signature: doit inspects uptodate callables
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _ACC[label] += time.perf_counter() - start
            _CALLS[label] += 1

    setattr(owner, attr, timed)


def _wrap_property(owner: Any, attr: str, label: str) -> None:
    original = getattr(owner, attr)

    def getter(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return original.fget(self)
        finally:
            _ACC[label] += time.perf_counter() - start
            _CALLS[label] += 1

    setattr(owner, attr, property(getter))


_CREATOR: list[str | None] = [None]  # the task creator running now, if any


def _timed_generator(gen: Any, name: str) -> Any:
    while True:
        start = time.perf_counter()
        _CREATOR[0] = name
        try:
            item = next(gen)
        except StopIteration:
            return
        finally:
            _CREATOR[0] = None
            _ACC[f"creator:{name}"] += time.perf_counter() - start
        yield item


def _nested(label: str, original: Any) -> Any:
    """Time `original` under `label`, and remember it inside the running creator too."""

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            _ACC[label] += spent
            _CALLS[label] += 1
            _ACC[f"nested:{_CREATOR[0]}"] += spent

    return timed


# The build step's parts nest (the ollama import happens inside the first create, the
# client inside a request...): each timed part records its inclusive time and adds it to
# its parent's "inner" time, so every row can be shown exclusive.
_BUILD_STACK: list[str] = []


def _build_part(label: str, original: Any) -> Any:
    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        return _run_part(label, original, *args, **kwargs)

    return timed


def _run_part(label: str, original: Any, *args: Any, **kwargs: Any) -> Any:
    parent = _BUILD_STACK[-1] if _BUILD_STACK else None
    _BUILD_STACK.append(label)
    start = time.perf_counter()
    try:
        return original(*args, **kwargs)
    finally:
        spent = time.perf_counter() - start
        _BUILD_STACK.pop()
        _ACC[label] += spent
        _CALLS[label] += 1
        if parent is not None:
            _ACC[f"inner:{parent}"] += spent


class _ImportTimer:
    """A sys.meta_path finder that times the execution of one module (and everything it
    imports) when a build step imports it, e.g. the ollama client."""

    def __init__(self, name: str, label: str):
        self.name, self.label, self.busy = name, label, False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or self.busy or not _BUILD_STACK:
            return None
        import importlib.util

        self.busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.busy = False
        if spec is not None and spec.loader is not None:
            original = spec.loader.exec_module
            label = self.label

            def exec_module(module: Any) -> None:
                _run_part(label, original, module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_BUILD_PARTS = (
    ("build: import of the build step", None),
    ("build: import of the ollama client (pydantic, httpx)", None),
    ("build: ollama client setup (httpx, SSL context)", None),
    ("build: inputs (parse, resolve, fingerprint)", ("inputs", "gather")),
    ("build: /api/tags reads", ("server.Server", "tags")),
    ("build: /api/version read", ("server.Server", "version")),
    ("build: blob HEADs", ("server.Server", "has_blob")),
    ("build: blob uploads", ("server.Server", "upload_blob")),
    ("build: create request (HTTP, streamed)", ("server.Server", "create")),
    ("build: lock write (update)", ("lockfile", "update")),
)


def _instrument_product() -> None:
    """Wrap doit_ollama's functions once dodo.py has imported them."""
    from doit_ollama import doit_build, doit_plumbing

    # Run() is made by whichever task creator asks first; both are timed apart from the
    # creator that calls them
    doit_plumbing.Run.__init__ = _nested("ours: project, discovery, caches (Run())",
                                         doit_plumbing.Run.__init__)
    doit_build._dependencies = _nested("ours: file_dep/task_dep (dependency cache)",
                                       doit_build._dependencies)
    _wrap(doit_plumbing.Run, "tags", "ours: the single /api/tags")
    _wrap(doit_plumbing.Run, "lock", "ours: lock read")
    # Run.is_current, not _UpToDate.__call__: a wrapped __call__ would change what doit's
    # inspect.signature has to do (unwrap) and so the time of the row it is shown in
    _wrap(doit_plumbing.Run, "is_current", "ours: up-to-date check (total)")
    sys.meta_path.insert(0, _ImportTimer("ollama", "build: import of the ollama client (pydantic, httpx)"))
    original_action = doit_build._build_action
    state = {"done": False}

    def instrument_build_step() -> None:
        from doit_ollama import build, inputs, lockfile, server

        modules = {"inputs": inputs, "lockfile": lockfile, "server.Server": server.Server}
        for label, where in _BUILD_PARTS:
            if where is not None and hasattr(modules[where[0]], where[1]):
                owner = modules[where[0]]
                setattr(owner, where[1], _build_part(label, getattr(owner, where[1])))
        client = getattr(server.Server, "client", None)
        if isinstance(client, property) and client.fget is not None:
            server.Server.client = property(  # type: ignore[method-assign,assignment]
                _build_part("build: ollama client setup (httpx, SSL context)", client.fget))
        build.gather = inputs.gather  # build.py imported the name itself

    def action(*args: Any, **kwargs: Any) -> Any:
        def step() -> Any:
            if not state["done"]:
                state["done"] = True
                _run_part("build: import of the build step", instrument_build_step)
            return original_action(*args, **kwargs)

        return _run_part("build: action", step)

    doit_build._build_action = action


def child(out_path: str, argv: list[str]) -> int:
    start = time.perf_counter()
    import inspect

    from doit import dependency, loader, runner
    from doit.doit_cmd import DoitMain

    original_get_module = loader.get_module

    def get_module(*args: Any, **kwargs: Any) -> Any:
        _MARK["dodo import start"] = time.perf_counter()
        module = original_get_module(*args, **kwargs)
        _MARK["dodo import end"] = time.perf_counter()
        if "doit_ollama.doit_build" in sys.modules:  # not in doit's floor
            _instrument_product()
        return module

    loader.get_module = get_module
    original_generate = loader.generate_tasks

    def generate_tasks(name: str, gen_result: Any, gen_doc: Any = None) -> Any:
        if inspect.isgenerator(gen_result):
            gen_result = _timed_generator(gen_result, name)
        return original_generate(name, gen_result, gen_doc)

    loader.generate_tasks = generate_tasks
    _wrap(loader, "load_tasks", "doit: load_tasks (total)")
    _wrap(dependency.Dependency, "get_status", "doit: get_status (total)")
    _wrap(dependency.Dependency, "close", "doit: database close")
    _wrap(runner.Runner, "run_all", "doit: run_all (total)")
    _wrap(inspect, "signature", "doit: inspect.signature of uptodate callables")
    code = DoitMain().run(argv)
    end = time.perf_counter()
    result = {"inside": end - start, "code": code, "acc": dict(_ACC), "calls": dict(_CALLS),
              "epoch start": _EPOCH_START, "epoch end": time.time(),
              "module imports": _T_MODULE - _P0,
              "doit setup": _MARK.get("dodo import start", end) - start,
              "dodo import": _MARK.get("dodo import end", end) - _MARK.get("dodo import start", end)}
    with open(out_path, "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    return int(code)


# --- the driver ------------------------------------------------------------------------------


def breakdown(child_wall: float, r: dict[str, Any], spawned: float, reaped: float) -> dict[str, float]:
    """Exclusive rows, in seconds, that add up to the child's wall time (`spawned` and
    `reaped` are the parent's time.time() around the child)."""
    a = r["acc"]
    get = a.get
    rows: dict[str, float] = {}
    rows["interpreter start (incl. site and the editable-install finder)"] = r["epoch start"] - spawned
    rows["profiler's own imports (json, functools, typing)"] = r["module imports"]
    rows["interpreter exit (finalization)"] = reaped - r["epoch end"]
    rows["doit import and command setup"] = r["doit setup"]
    rows["dodo.py import (doit_ollama and its imports)"] = r["dodo import"]
    per_creator = {k.split(":", 1)[1]: v - get(f"nested:{k.split(':', 1)[1]}", 0.0)
                   for k, v in a.items() if k.startswith("creator:")}
    run_init = get("ours: project, discovery, caches (Run())", 0.0)
    deps = get("ours: file_dep/task_dep (dependency cache)", 0.0)
    rows["ours: Run(): configuration, discovery of models/"] = run_init
    rows["ours: file_dep/task_dep from the dependency cache"] = deps
    for name in sorted(per_creator):
        rows[f"task creator task_{name} (its own code)"] = per_creator[name]
    creators = sum(per_creator.values()) + run_init + deps
    rows["doit: Task objects from the task dicts"] = get("doit: load_tasks (total)", 0.0) - creators
    utd = get("ours: up-to-date check (total)", 0.0)
    tags = get("ours: the single /api/tags", 0.0)
    lock = get("ours: lock read", 0.0)
    rows["ours: /api/tags (one request, parse)"] = tags
    rows["ours: lock read (+ a stat per check, again after a write)"] = lock
    rows["ours: up-to-date rule itself"] = utd - tags - lock
    status = get("doit: get_status (total)", 0.0)
    signature = get("doit: inspect.signature of uptodate callables", 0.0)
    rows["doit: inspect.signature of the uptodate callable"] = signature
    rows["doit: rest of the per-task status (file checks, db reads)"] = status - utd - signature
    action = get("build: action", 0.0)
    if action:
        for label, _ in _BUILD_PARTS:
            if label in a:
                rows[label] = a[label] - get(f"inner:{label}", 0.0)
        rows["build: rest of the build step (its own lock read, output)"] = \
            action - get("inner:build: action", 0.0)
    run_all = get("doit: run_all (total)", 0.0)
    rows["doit: runner, reporter, database close"] = run_all - status - action
    known = sum(rows.values())
    rows["rest (doit command plumbing between phases)"] = child_wall - known
    return rows


def profiled_run(repo: Any, env: dict[str, str], out: Any, *doit_args: str) -> dict[str, float]:
    """One instrumented `doit ARGS` in `repo`: its rows, in seconds, and its wall time."""
    import subprocess

    spawned, start = time.time(), time.perf_counter()
    code = subprocess.call([sys.executable, os.path.abspath(__file__), "--child", str(out), *doit_args],
                           cwd=repo, env=env, stdout=subprocess.DEVNULL)
    wall, reaped = time.perf_counter() - start, time.time()
    if code != 0:
        raise RuntimeError(f"the profiled doit in {repo} exited {code}")
    with open(out, encoding="utf-8") as stream:
        return {"wall": wall, **breakdown(wall, json.load(stream), spawned, reaped)}


def table(columns: dict[str, list[dict[str, float]]]) -> str:
    """Medians in ms, one column per configuration, rows in first-seen order."""
    import statistics

    keys: list[str] = []
    for runs in sorted(columns.values(), key=lambda rs: -max(len(r) for r in rs)):
        for run in runs:  # in the order of the configuration with the most rows
            keys += [k for k in run if k not in keys and k != "wall"]
    lines = [f"{'':66}" + "".join(f"{label:>12}" for label in columns)]
    for key in keys:
        cells = []
        for runs in columns.values():
            values = [r[key] for r in runs if key in r]
            cells.append(f"{1000 * statistics.median(values):12.1f}" if values else f"{'-':>12}")
        lines.append(f"  {key:<64}" + "".join(cells))
    lines.append(f"  {'wall time of the profiled process (median)':<64}" + "".join(
        f"{1000 * statistics.median(r['wall'] for r in runs):12.1f}" for runs in columns.values()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import statistics
    import subprocess

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_scale import make_floor, model_name, system_prompt
    from common import (
        Double,
        clean_env,
        doit,
        make_repo,
        model_text,
        publish_base,
        temp_dir,
        use_bytecode_cache,
        write_model,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)

    with temp_dir("profile") as work:
        use_bytecode_cache(work / "pycache")
        publish_base(work / "registry", work)
        double = Double(work / "server", work / "registry")
        repo = make_repo(work / "repo")
        for i in range(args.n):
            write_model(repo, model_name(i), model_text(model_name(i), system_prompt(i)))
        floor = make_floor(work / "floor", args.n, None)
        try:
            double.start()
            double.pull("base:1b")
            env = clean_env(OLLAMA_HOST=double.host)
            print(f"# cold build of {args.n} models ...", flush=True)
            doit(repo, "build", env=env).check("cold build")
            doit(repo, "build", env=env).check("warm-up no-op")
            doit(floor, env=clean_env()).check("floor, first run")
            doit(floor, env=clean_env()).check("floor, warm-up")
            columns: dict[str, list[dict[str, float]]] = {"doit floor": [], "no-op": [], "one edit": []}
            edited = (args.n // 2) // 10 * 10  # a dev tag
            for rep in range(args.reps):
                columns["doit floor"].append(profiled_run(floor, clean_env(), work / "floor.json"))
                columns["no-op"].append(profiled_run(repo, env, work / "noop.json", "build"))
                write_model(repo, model_name(edited),
                            model_text(model_name(edited), system_prompt(edited, rep + 1)))
                columns["one edit"].append(profiled_run(repo, env, work / "edit.json", "build"))
            print(f"\n# where the time goes, N={args.n}, medians of {args.reps} interleaved runs (ms)")
            print(table(columns))
            plain = []
            for _ in range(args.reps):
                began = time.perf_counter()
                subprocess.call([sys.executable, "-c", "pass"], env=clean_env())
                plain.append(time.perf_counter() - began)
            print(f"\n# bare `python -c pass`: {1000 * statistics.median(plain):.1f} ms")
        finally:
            double.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
