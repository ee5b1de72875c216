"""`doit build` against a real Ollama, side by side with what people do without it: a shell
loop of `ollama create NAME -f Modelfile`.

    python bench/real_server.py [--ollama PATH] [--models 50] [--runs 5]
    make bench-real OLLAMA=PATH

The `ollama` binary comes from --ollama or OLLAMA_TEST_BINARY. Every run starts two fresh
real servers on 127.0.0.1 (their own models folder and HOME, in a temporary folder; stopped
by PID at the end), creates the same base model on each from a tiny local GGUF (untimed), and
writes one repository of N Modelfiles FROM that base (bench/common.py's model_text). Then,
wall time from spawn to exit:
  * cold: `doit build` in the fresh repository against one server, and a bash loop running
    `ollama create NAME -f models/NAME/v1.Modelfile` for the same N files against the other;
  * again: the same `doit build` (a no-op) and the same loop (N creates that change nothing);
  * for reference, the cold build with `doit -n 4 build` on a third fresh server.
Runs alternate which side goes first; the figures are medians over the runs. Checked on
every run, as counts: doit locked N models, its digests equal the loop's (same Modelfile,
same model), and a no-op build makes exactly one request (/api/tags, seen by a recording
proxy in an extra untimed run).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BASE_MODEL,
    Report,
    clean_env,
    doit,
    make_repo,
    median,
    model_text,
    temp_dir,
    use_bytecode_cache,
    warm_bytecode,
    write_model,
)
from run import load, machine, revision

from tests.gguf_maker import make_gguf
from tests.real_ollama import RealOllama
from tests.recording_proxy import RecordingProxy

LOOP_TIMEOUT = 1800.0


@dataclass
class Times:
    """Seconds of each side of one comparison, one value per run."""

    doit_cold: list[float] = field(default_factory=list)
    doit_cold_n4: list[float] = field(default_factory=list)
    loop_cold: list[float] = field(default_factory=list)
    doit_again: list[float] = field(default_factory=list)
    loop_again: list[float] = field(default_factory=list)
    locked: list[int] = field(default_factory=list)
    same_digests: list[int] = field(default_factory=list)
    noop_requests: list[int] = field(default_factory=list)


def names(n: int) -> list[str]:
    return [f"bot{i:04d}:v1" for i in range(n)]


def write_repository(root: Path, n: int) -> Path:
    make_repo(root)
    for i, name in enumerate(names(n)):
        write_model(root, name, model_text(name, f"You are assistant number {i}. Answer briefly."))
    return root


def write_loop(root: Path, n: int) -> Path:
    """The shell loop a user writes without doit-ollama: one `ollama create` per Modelfile."""
    lines = ["set -e"]
    for name in names(n):
        repository, tag = name.split(":")
        lines.append(f'"$OLLAMA" create {name} -f {shlex.quote(f"models/{repository}/{tag}.Modelfile")} '
                     ">/dev/null 2>&1")
    script = root / "create-all.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def run_loop(script: Path, binary: Path, host: str) -> float:
    """The loop's wall time from spawn to exit; raises if a create failed."""
    env = clean_env(OLLAMA_HOST=host, OLLAMA=str(binary))
    start = time.perf_counter()
    done = subprocess.run(["bash", str(script)], cwd=script.parent, env=env, capture_output=True,
                          text=True, timeout=LOOP_TIMEOUT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the ollama create loop failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def create_base(binary: Path, server: RealOllama, work: Path) -> None:
    """The base every Modelfile names, created from a tiny GGUF (untimed, on both servers)."""
    folder = work / "base"
    folder.mkdir(exist_ok=True)
    if not (folder / "base.gguf").exists():
        make_gguf(folder / "base.gguf", 1)
        (folder / "Modelfile").write_text("FROM ./base.gguf\nPARAMETER temperature 0\n")
    subprocess.run([str(binary), "create", BASE_MODEL, "-f", "Modelfile"], cwd=folder,
                   env=clean_env(OLLAMA_HOST=server.host), capture_output=True, timeout=300, check=True)


def digests(host: str) -> dict[str, str]:
    import json

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{host}/api/tags", timeout=60) as response:
        return {m["name"]: f"sha256:{m['digest']}" for m in json.loads(response.read())["models"]}


def one_run(binary: Path, work: Path, n: int, rep: int, times: Times) -> None:
    """Fresh servers, a fresh repository; both sides cold, then both again."""
    repo = write_repository(work / f"repo-{rep}", n)
    script = write_loop(repo, n)
    with RealOllama(binary, work / f"ollama-doit-{rep}", name="doit") as for_doit, \
            RealOllama(binary, work / f"ollama-loop-{rep}", name="loop") as for_loop:
        create_base(binary, for_doit, work)
        create_base(binary, for_loop, work)
        env = clean_env(OLLAMA_HOST=for_doit.host)
        doit_first = rep % 2 == 0

        def doit_build() -> float:
            return doit(repo, "build", env=env).check(f"doit build (run {rep})").seconds

        for side in (("doit", "loop") if doit_first else ("loop", "doit")):
            if side == "doit":
                times.doit_cold.append(doit_build())
            else:
                times.loop_cold.append(run_loop(script, binary, for_loop.host))
        for side in (("doit", "loop") if doit_first else ("loop", "doit")):
            if side == "doit":
                times.doit_again.append(doit_build())
            else:
                times.loop_again.append(run_loop(script, binary, for_loop.host))
        check(repo, n, for_doit, for_loop, times)
    parallel = write_repository(work / f"repo-n4-{rep}", n)  # the same build with doit -n 4
    with RealOllama(binary, work / f"ollama-n4-{rep}", name="doit-n4") as for_parallel:
        create_base(binary, for_parallel, work)
        times.doit_cold_n4.append(doit(parallel, "-n", "4", "build", env=clean_env(OLLAMA_HOST=for_parallel.host))
                                  .check(f"doit -n 4 build (run {rep})").seconds)


def check(repo: Path, n: int, for_doit: RealOllama, for_loop: RealOllama, times: Times) -> None:
    """The counts: everything locked, the loop's digests, one request for a no-op."""
    from doit_ollama import lockfile

    lock = lockfile.read(repo / "lock" / "models.lock")
    times.locked.append(sum(1 for name in names(n) if name in lock.models))
    by_loop = digests(for_loop.host)
    times.same_digests.append(sum(1 for name in names(n)
                                  if name in lock.models and by_loop.get(name) == lock.models[name].digest))
    with RecordingProxy(for_doit.host) as proxy:  # untimed: what a no-op asks of the server
        doit(repo, "build", env=clean_env(OLLAMA_HOST=proxy.host)).check("doit build (proxied)")
        times.noop_requests.append(len(proxy.requests()))


def run(report: Report, binary: Path, n: int, runs: int) -> None:
    times = Times()
    with temp_dir("real") as work:
        use_bytecode_cache(work / "pycache")
        warm_bytecode(work)
        for rep in range(runs):
            one_run(binary, work, n, rep, times)
            report.note(f"run {rep + 1}/{runs}: doit {times.doit_cold[-1]:.2f} s cold, {times.doit_again[-1]:.2f} s "
                        f"again; loop {times.loop_cold[-1]:.2f} s cold, {times.loop_again[-1]:.2f} s again; "
                        f"load average {load()}")
    cold = (median(times.doit_cold), median(times.loop_cold))
    again = (median(times.doit_again), median(times.loop_again))
    report.info(f"real_cold_doit_build_{n}", cold[0], "s")
    report.info(f"real_cold_ollama_create_loop_{n}", cold[1], "s")
    report.info("real_cold_loop_over_doit", cold[1] / cold[0], "x")
    report.info(f"real_cold_doit_n4_build_{n}", median(times.doit_cold_n4), "s")
    report.info(f"real_noop_doit_build_{n}", again[0], "s")
    report.info(f"real_again_ollama_create_loop_{n}", again[1], "s")
    report.info("real_again_loop_over_doit", again[1] / again[0], "x")
    report.count("real_locked_models", min(times.locked), "models", equals=n)
    report.count("real_digests_equal_to_the_loops", min(times.same_digests), "models", equals=n)
    report.count("real_noop_requests", max(times.noop_requests), "requests", equals=1)
    report.note(f"medians of {runs} runs; raw cold doit {' '.join(f'{t:.2f}' for t in times.doit_cold)}, "
                f"cold loop {' '.join(f'{t:.2f}' for t in times.loop_cold)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ollama", default=os.environ.get("OLLAMA_TEST_BINARY", ""),
                        help="the ollama binary (default: $OLLAMA_TEST_BINARY)")
    parser.add_argument("--models", type=int, default=50, help="Modelfiles FROM one base (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="runs; figures are medians (default 5)")
    args = parser.parse_args(argv)
    if not args.ollama:
        parser.error("no ollama binary: pass --ollama PATH or set OLLAMA_TEST_BINARY")
    binary = Path(args.ollama).resolve()
    if not binary.is_file():
        parser.error(f"no ollama binary at {binary}")
    # SIGTERM ends the run like Ctrl-C: every finally block stops its servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    report = Report()
    # `ollama --version` without a server prints "Warning: client version is X"
    words = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout.split()
    report.note(f"doit build vs an ollama create loop on a real Ollama {words[-1] if words else binary}; "
                f"{args.models} models, {args.runs} runs")
    report.note(f"machine: {machine()}; revision {revision()}; load average {load()}")
    run(report, binary, args.models, args.runs)
    failed = [f.name for f in report.figures if f.ok is False]
    if failed:
        report.note(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
