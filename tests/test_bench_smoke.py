"""Smoke test of the benchmark scripts themselves: `python bench/run.py --quick` runs every
benchmark at small sizes, prints every figure and exits 0 (quick mode enforces only count
targets). No timing is asserted here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NO_REAL_SERVER, OLLAMA_TEST_BINARY

ROOT = Path(__file__).resolve().parent.parent

# Quick sizes: 10/20/25/30 models, a 64 MiB file, 8 models with 0.2 s creates.
SIZES = (10, 20, 25, 30)
EXPECTED = [
    *(f"cold_build_locked_models_n{n}" for n in SIZES),
    "cold_build_wall_n30", "cold_build_tags_requests_n30",
    *(f"noop_tags_requests_n{n}" for n in SIZES),
    *(f"noop_create_blob_requests_n{n}" for n in SIZES),
    *(f"noop_wall_n{n}" for n in SIZES),
    *(f"noop_per_model_n{n}" for n in SIZES),
    "noop_marginal_per_model_10_20", "noop_marginal_per_model_20_25",
    "noop_marginal_per_model_25_30", "noop_growth_ratio",
    "floor_wall_n30", "floor_sqlite3_wall_n30", "noop_vs_floor_n30", "noop_vs_floor_sqlite3_n30",
    "edit_create_requests_n30", "edit_wall_n30", "edit_vs_noop_n30",
    "sha256sum_throughput", "sha256_file_throughput", "hash_throughput_vs_sha256sum",
    "sha256_file_equals_sha256sum",
    "weights_first_build_wall", "weights_first_build_weights_hashes", "weights_first_build_hashed_mib",
    "weights_first_build_blob_posts", "weights_first_build_uploaded_mib", "weights_first_build_peak_rss",
    "weights_second_build_wall", "weights_second_build_stats_events",
    "weights_second_build_hashed_bytes", "weights_second_build_uploaded_bytes",
    "weights_second_build_blob_posts", "weights_second_build_create_requests",
    "weights_second_build_peak_rss",
    "reuse_second_tag_wall", "reuse_second_tag_blob_head_200", "reuse_second_tag_blob_posts",
    "reuse_second_tag_create_requests", "reuse_second_tag_weights_hashes",
    "reuse_second_tag_hashed_bytes", "reuse_second_tag_uploaded_bytes",
    "reuse_restore_wall", "reuse_restore_blob_head_200", "reuse_restore_blob_posts",
    "reuse_restore_create_requests", "reuse_restore_hashed_bytes", "reuse_restore_uploaded_bytes",
    "reuse_peak_rss",
    "parallel_n1_wall", "parallel_n4_wall", "parallel_speedup_n4_vs_n1",
    "parallel_n1_locked_models", "parallel_n1_create_requests",
    "parallel_n4_locked_models", "parallel_n4_create_requests",
]

FIGURE = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(PASS|FAIL|INFO)$")


def test_quick_benchmarks_print_every_figure_and_pass() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "DOIT_OLLAMA_"))}
    proc = subprocess.Popen([sys.executable, "bench/run.py", "--quick"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # run.py stops its servers and builds on SIGTERM
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"bench/run.py --quick did not finish in 180 s\n{out}\n{err}") from None

    figures = {}
    for line in out.splitlines():
        match = FIGURE.match(line)
        if match:
            figures[match.group(1)] = match.group(5)
    missing = [name for name in EXPECTED if name not in figures]
    assert not missing, f"figures not printed: {missing}\n{out}\n{err}"
    assert proc.returncode == 0, f"bench/run.py --quick exited {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    # quick mode enforces the count targets; those are deterministic, so they all pass
    counts = [n for n in EXPECTED if ("requests" in n or "hashes" in n or "locked_models" in n
                                       or "_bytes" in n) and figures[n] != "INFO"]
    assert all(figures[n] == "PASS" for n in counts), {n: figures[n] for n in counts}


REAL_FIGURES = ["real_cold_doit_build_3", "real_cold_ollama_create_loop_3", "real_cold_loop_over_doit",
                "real_cold_doit_n4_build_3", "real_noop_doit_build_3", "real_again_ollama_create_loop_3",
                "real_again_loop_over_doit"]
REAL_COUNTS = ["real_locked_models", "real_digests_equal_to_the_loops", "real_noop_requests"]


@pytest.mark.real_server
def test_the_real_server_benchmark_prints_its_figures() -> None:
    """bench/real_server.py at 3 models and 1 run: every figure printed, every count passes."""
    if not OLLAMA_TEST_BINARY:
        pytest.skip(NO_REAL_SERVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "DOIT_OLLAMA_"))}
    done = subprocess.run([sys.executable, "bench/real_server.py", "--ollama", OLLAMA_TEST_BINARY,
                           "--models", "3", "--runs", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {m.group(1): m.group(5) for m in map(FIGURE.match, done.stdout.splitlines()) if m}
    assert [name for name in REAL_FIGURES + REAL_COUNTS if name not in figures] == [], done.stdout
    assert all(figures[name] == "PASS" for name in REAL_COUNTS), done.stdout
    assert "Traceback" not in done.stderr, done.stderr
