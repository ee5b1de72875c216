"""Large local weights: hashed once at sha256sum's speed, never hashed or sent again.

    python bench/bench_weights.py [--quick] [--size-mib M]

Targets 3 and 4 of issue 7, on one GGUF of 2 GiB (64 MiB with --quick) next to
`models/big/v1.Modelfile` (`FROM ./model.gguf`):
  * hashing throughput of `doit_ollama.hashing.sha256_file` (timed inside a fresh process)
    is at least 90% of `sha256sum`'s on the same file (wall time of the command; both read
    from the page cache; runs interleaved, medians);
  * the first build hashes the file exactly once and uploads it once (DOIT_OLLAMA_STATS);
  * a second build hashes 0 bytes and uploads 0 bytes (no stats event at all) and sends no
    blob POST (the double's request log);
  * peak RSS of each build (doit and its children, measured by bench/rss_wrapper.py with
    getrusage(RUSAGE_CHILDREN)) stays under 150 MiB;
  * a second tag naming the same file (`models/big/v2.Modelfile`) is created after a HEAD
    answered 200, without a blob POST and without hashing; the same holds when `big:v1`
    is deleted on the server and rebuilt (v2 keeps the blob on the server, so it must
    not be sent again).
The temporary folder (the GGUF and the double's copy of it) is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    Double,
    GiB,
    MiB,
    Report,
    clean_env,
    count,
    doit,
    free_bytes,
    make_repo,
    median,
    read_stats,
    stat_bytes,
    temp_dir,
    use_bytecode_cache,
    warm_bytecode,
    write_model,
)

WRAPPER = str(Path(__file__).resolve().parent / "rss_wrapper.py")
RSS_LIMIT_MIB = 150

TIME_SHA256_FILE = (
    "import sys, time\n"
    "from doit_ollama.hashing import sha256_file\n"
    "start = time.perf_counter()\n"
    "digest = sha256_file(sys.argv[1])\n"
    "print(time.perf_counter() - start, digest)\n"
)


def hash_speeds(path: Path, reps: int) -> tuple[float, float, bool]:
    """Median seconds of `sha256sum` (whole command) and of sha256_file (the call, in a
    fresh process), interleaved; and whether both gave the same digest."""
    with open(path, "rb") as stream:  # into the page cache, so neither pays the first read
        while stream.read(8 * MiB):
            pass
    coreutils, ours, same = [], [], True
    for _ in range(reps):
        start = time.perf_counter()
        out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
        coreutils.append(time.perf_counter() - start)
        reply = subprocess.run([PYTHON, "-c", TIME_SHA256_FILE, str(path)], capture_output=True,
                               text=True, check=True).stdout.split()
        ours.append(float(reply[0]))
        same = same and reply[1] == "sha256:" + out.split()[0]
    return median(coreutils), median(ours), same


def hashes_of(stats: list[dict[str, object]], size: int) -> int:
    """How many times the weights were hashed (events of exactly their size; the
    Modelfiles are a few hundred bytes)."""
    return sum(1 for e in stats if e["event"] == "hashed" and e["bytes"] == size)


class Weights:
    def __init__(self, work: Path, size: int):
        self.work = work
        self.size = size
        self.double = Double(work / "server")
        self.repo = make_repo(work / "repo")
        self.runs = 0

    def build(self, what: str) -> tuple[float, int, list[dict[str, object]], list[dict[str, object]]]:
        """One `doit build` under the RSS wrapper: wall s, peak RSS KiB, stats, request log."""
        self.runs += 1
        stats = self.work / f"stats-{self.runs}.jsonl"
        rss = self.work / f"rss-{self.runs}.json"
        self.double.reset_requests()
        env = clean_env(OLLAMA_HOST=self.double.host, DOIT_OLLAMA_STATS=str(stats))
        run = doit(self.repo, "build", env=env, wrapper=[PYTHON, WRAPPER, str(rss), "--"])
        run.check(what)
        peak = json.loads(rss.read_text())["maxrss_kib"]
        return run.seconds, peak, read_stats(stats), self.double.requests()


def run(report: Report, *, quick: bool, size_mib: int | None = None) -> None:
    size = (size_mib * MiB) if size_mib else (64 * MiB if quick else 2 * GiB)
    label = f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"
    reps = 3
    with temp_dir("weights") as work:
        use_bytecode_cache(work / "pycache")
        need = 2 * size + 256 * MiB  # the file, the double's copy of it, slack
        if free_bytes(work) < need:
            report.count("weights_disk_space_mib", free_bytes(work) // MiB, "MiB",
                         at_least=need // MiB)
            report.note("not enough free disk space for the weights benchmark; skipped")
            return
        from tests.gguf_maker import make_gguf

        w = Weights(work, size)
        warm_bytecode(w.repo)
        gguf = w.repo / "models" / "big" / "model.gguf"
        gguf.parent.mkdir(parents=True)
        start = time.perf_counter()
        make_gguf(gguf, 7, pad_to_bytes=size)
        size = gguf.stat().st_size
        report.note(f"weights: a valid GGUF of {size} bytes ({label}) written in "
                    f"{time.perf_counter() - start:.1f} s")

        coreutils, ours, same = hash_speeds(gguf, reps)
        report.info("sha256sum_throughput", size / MiB / coreutils, "MiB/s")
        report.info("sha256_file_throughput", size / MiB / ours, "MiB/s")
        report.at_least("hash_throughput_vs_sha256sum", coreutils / ours, "x", 0.9)
        report.count("sha256_file_equals_sha256sum", int(same), "bool", equals=1)

        write_model(w.repo, "big:v1", "# big:v1: a model from local weights\nFROM ./model.gguf\n"
                                      "SYSTEM \"\"\"You answer from big weights.\"\"\"\n")
        try:
            w.double.start()
            seconds, peak, stats, log = w.build("first build")
            report.info("weights_first_build_wall", seconds, "s")
            report.count("weights_first_build_weights_hashes", hashes_of(stats, size), "hashes",
                         equals=1)
            report.count("weights_first_build_hashed_mib", stat_bytes(stats, "hashed") // MiB, "MiB",
                         equals=size // MiB)
            report.count("weights_first_build_blob_posts", count(log, "POST", "/api/blobs/*"),
                         "requests", equals=1)
            report.count("weights_first_build_uploaded_mib", stat_bytes(stats, "uploaded") // MiB,
                         "MiB", equals=size // MiB)
            report.below("weights_first_build_peak_rss", peak / 1024, "MiB", RSS_LIMIT_MIB)

            seconds, peak, stats, log = w.build("second build")
            report.info("weights_second_build_wall", seconds, "s")
            report.count("weights_second_build_stats_events", len(stats), "events", equals=0)
            report.count("weights_second_build_hashed_bytes", stat_bytes(stats, "hashed"), "bytes",
                         equals=0)
            report.count("weights_second_build_uploaded_bytes", stat_bytes(stats, "uploaded"),
                         "bytes", equals=0)
            report.count("weights_second_build_blob_posts", count(log, "POST", "/api/blobs/*"),
                         "requests", equals=0)
            report.count("weights_second_build_create_requests", count(log, "POST", "/api/create"),
                         "requests", equals=0)
            report.below("weights_second_build_peak_rss", peak / 1024, "MiB", RSS_LIMIT_MIB)

            # Target 4: the server already has the blob.
            write_model(w.repo, "big:v2", "# big:v2: the same weights, another prompt\n"
                                          "FROM ./model.gguf\nSYSTEM \"\"\"You answer tersely.\"\"\"\n")
            seconds, peak_reuse, stats, log = w.build("build of a second tag naming the same file")
            report.info("reuse_second_tag_wall", seconds, "s")
            report.count("reuse_second_tag_blob_head_200", count(log, "HEAD", "/api/blobs/*", 200),
                         "requests", at_least=1)
            report.count("reuse_second_tag_blob_posts", count(log, "POST", "/api/blobs/*"),
                         "requests", equals=0)
            report.count("reuse_second_tag_create_requests", count(log, "POST", "/api/create"),
                         "requests", equals=1)
            report.count("reuse_second_tag_weights_hashes", hashes_of(stats, size), "hashes", equals=0)
            # the new Modelfile itself is hashed once (doit's file_dep state): a few bytes
            report.info("reuse_second_tag_hashed_bytes", stat_bytes(stats, "hashed"), "bytes")
            report.count("reuse_second_tag_uploaded_bytes", stat_bytes(stats, "uploaded"), "bytes",
                         equals=0)

            w.double.delete("big:v1")  # big:v2 still uses the blob, so the server keeps it
            seconds, peak_restore, stats, log = w.build("rebuild of a tag deleted on the server")
            report.info("reuse_restore_wall", seconds, "s")
            report.count("reuse_restore_blob_head_200", count(log, "HEAD", "/api/blobs/*", 200),
                         "requests", at_least=1)
            report.count("reuse_restore_blob_posts", count(log, "POST", "/api/blobs/*"), "requests",
                         equals=0)
            report.count("reuse_restore_create_requests", count(log, "POST", "/api/create"),
                         "requests", equals=1)
            report.count("reuse_restore_hashed_bytes", stat_bytes(stats, "hashed"), "bytes", equals=0)
            report.count("reuse_restore_uploaded_bytes", stat_bytes(stats, "uploaded"), "bytes",
                         equals=0)
            report.below("reuse_peak_rss", max(peak_reuse, peak_restore) / 1024, "MiB", RSS_LIMIT_MIB)
        finally:
            w.double.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-mib", type=int, default=None)
    args = parser.parse_args(argv)
    report = Report()
    run(report, quick=args.quick, size_mib=args.size_mib)
    return 0 if all(f.ok is not False for f in report.figures) else 1


if __name__ == "__main__":
    sys.exit(main())
