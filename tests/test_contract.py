"""Server behaviour doit-ollama relies on, checked against the test double by default and
against a real Ollama when OLLAMA_TEST_HOST is set (e.g. OLLAMA_TEST_HOST=127.0.0.1:11434).

Everything goes through the official `ollama` client, or raw httpx where the client has no
method. Models are named doit-ollama-test-<hex>-... and deleted afterwards.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import ollama
import pytest

from tests.conftest import NEEDS_DOUBLE_CONTROLS, NEEDS_DOUBLE_REGISTRY, OllamaServer, RegistryFolder
from tests.distribution import Distribution
from tests.ollama_double import OllamaDouble

HEX64 = "0123456789abcdef"


@pytest.fixture
def client(ollama_server: OllamaServer) -> ollama.Client:
    return ollama_server.client(timeout=120)


@pytest.fixture
def http(ollama_server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ollama_server.url, timeout=120) as h:
        yield h


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def listed(client: ollama.Client, name: str) -> Any:
    """The /api/tags entry for `name` (case-insensitive), or None."""
    for entry in client.list().models:
        if (entry.model or "").lower() == name.lower():
            return entry
    return None


def digest_of(client: ollama.Client, name: str) -> str:
    entry = listed(client, name)
    assert entry is not None, f"{name} is not listed"
    return str(entry.digest)


def create_from_gguf(client: ollama.Client, name: str, gguf: Path, **fields: Any) -> list[Any]:
    """Upload `gguf`, create `name` from it (streamed) and return the progress lines."""
    blob = client.create_blob(gguf)
    return list(client.create(name, files={gguf.name: blob}, stream=True, **fields))


def statuses(lines: list[Any]) -> list[str]:
    return [line.status for line in lines]


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


# --- basics ----------------------------------------------------------------------------------

def test_root_and_version(http: httpx.Client) -> None:
    root = http.get("/")
    assert root.status_code == 200 and root.text == "Ollama is running"
    assert http.head("/").status_code == 200
    version = http.get("/api/version")
    assert version.status_code == 200
    assert isinstance(version.json()["version"], str) and version.json()["version"]
    assert http.head("/api/version").status_code == 200


def test_request_body_errors(http: httpx.Client, model_name: Callable[..., str]) -> None:
    empty = http.post("/api/show", content=b"")
    assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})
    bad = http.post("/api/show", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]
    unknown_field = http.post("/api/show", json={"model": model_name("absent"), "no_such_field": 1})
    assert unknown_field.status_code == 404  # the field is ignored, the model is looked up
    assert http.get("/api/create").status_code == 405
    assert http.get("/api/no-such-endpoint").status_code == 404


# --- blobs -----------------------------------------------------------------------------------

def test_blob_head_post_semantics(http: httpx.Client, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file(seed=101)
    digest = sha256_file(path)
    missing = http.head(f"/api/blobs/{digest}")
    assert missing.status_code == 404 and missing.content == b""
    created = http.post(f"/api/blobs/{digest}", content=path.read_bytes())
    assert created.status_code == 201
    assert http.head(f"/api/blobs/{digest}").status_code == 200
    again = http.post(f"/api/blobs/{digest}", content=path.read_bytes())
    assert again.status_code == 200


def test_blob_digest_mismatch(http: httpx.Client, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file(seed=102)
    actual = sha256_file(path)
    claimed = "sha256:" + hashlib.sha256(b"something else " + actual.encode()).hexdigest()
    response = http.post(f"/api/blobs/{claimed}", content=path.read_bytes())
    assert response.status_code == 400
    assert response.json() == {"error": f'digest mismatch, expected "{claimed}", got "{actual}"'}
    assert http.head(f"/api/blobs/{claimed}").status_code == 404


def test_blob_invalid_digest(http: httpx.Client) -> None:
    assert http.head("/api/blobs/sha256:nothex").status_code == 400
    response = http.post("/api/blobs/md5:abc", content=b"x")
    assert (response.status_code, response.json()) == (400, {"error": "invalid digest format"})


def test_client_create_blob_returns_the_file_digest(client: ollama.Client, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file(seed=103)
    assert client.create_blob(path) == sha256_file(path)
    assert client.create_blob(path) == sha256_file(path)  # existing blob: 200, same answer


# --- create ----------------------------------------------------------------------------------

def test_create_from_gguf_progress_and_listing(client: ollama.Client, http: httpx.Client,
                                               model_name: Callable[..., str],
                                               gguf_file: Callable[..., Path]) -> None:
    name = model_name("gguf")
    path = gguf_file(seed=1)
    upload = sha256_file(path)
    lines = create_from_gguf(client, name, path)
    seen = statuses(lines)
    # 0.33.0-rc2 reports no "validating GGUF model" progress (llama-quantize logs to stderr)
    assert seen[:2] == ["parsing GGUF", "verifying conversion"] and seen[3:] == ["writing manifest", "success"]
    assert seen[2].startswith(("creating new layer sha256:", "using existing layer sha256:"))
    layer = seen[2].rsplit(" ", 1)[1]
    assert layer != upload  # the model layer is llama-quantize's rewrite, not the upload
    entry = listed(client, name)
    assert entry is not None
    assert len(entry.digest) == 64 and set(entry.digest) <= set(HEX64)
    assert entry.details.format == "gguf"
    assert entry.details.family == "llama"
    assert entry.details.quantization_level == "F16"
    assert entry.size and entry.size > 0
    shown = http.post("/api/show", json={"model": name}).json()
    assert shown["model_info"]["general.quantization_version"] == 2  # written by the rewrite
    client.delete(name)  # its last model gone: the rewritten layer is pruned, the upload is not
    assert http.head(f"/api/blobs/{layer}").status_code == 404
    assert http.head(f"/api/blobs/{upload}").status_code == 200


def test_create_is_deterministic(client: ollama.Client, model_name: Callable[..., str],
                                 gguf_file: Callable[..., Path]) -> None:
    gguf = gguf_file(seed=2)
    first, second, other = model_name("det"), model_name("det2"), model_name("det3")
    create_from_gguf(client, first, gguf, system="You are terse.", parameters={"temperature": 0.2})
    digest = digest_of(client, first)
    create_from_gguf(client, first, gguf, system="You are terse.", parameters={"temperature": 0.2})
    assert digest_of(client, first) == digest
    create_from_gguf(client, second, gguf, system="You are terse.", parameters={"temperature": 0.2})
    assert digest_of(client, second) == digest
    client.delete(first)
    create_from_gguf(client, other, gguf, system="You are terse.", parameters={"temperature": 0.2})
    assert digest_of(client, other) == digest


def test_changed_system_prompt_changes_digest(client: ollama.Client, model_name: Callable[..., str],
                                              gguf_file: Callable[..., Path]) -> None:
    gguf = gguf_file(seed=3)
    a, b = model_name("sys-a"), model_name("sys-b")
    create_from_gguf(client, a, gguf, system="Answer in English.")
    create_from_gguf(client, b, gguf, system="Answer in French.")
    assert digest_of(client, a) != digest_of(client, b)


def test_different_gguf_changes_digest(client: ollama.Client, model_name: Callable[..., str],
                                       gguf_file: Callable[..., Path]) -> None:
    a, b = model_name("seed-a"), model_name("seed-b")
    create_from_gguf(client, a, gguf_file(seed=4))
    create_from_gguf(client, b, gguf_file(seed=5))
    assert digest_of(client, a) != digest_of(client, b)


def test_create_from_model_reuses_its_layers(client: ollama.Client, model_name: Callable[..., str],
                                             gguf_file: Callable[..., Path]) -> None:
    base, derived = model_name("base"), model_name("derived")
    create_from_gguf(client, base, gguf_file(seed=6), template="{{ .System }} {{ .Prompt }}")
    lines = list(client.create(derived, from_=base, system="You are a pirate.", stream=True))
    seen = statuses(lines)
    assert "parsing GGUF" not in seen and "validating GGUF model" not in seen
    assert sum(s.startswith("using existing layer ") for s in seen) >= 2  # model + template
    assert sum(s.startswith("creating new layer ") for s in seen) <= 1  # only the system prompt
    assert seen[-1] == "success"
    show = client.show(derived)
    assert show.details.parent_model == base
    assert show.template == "{{ .System }} {{ .Prompt }}"
    assert digest_of(client, derived) != digest_of(client, base)


def test_create_from_model_merges_parameters(http: httpx.Client, client: ollama.Client,
                                             model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> None:
    base, derived = model_name("pbase"), model_name("pderived")
    create_from_gguf(client, base, gguf_file(seed=7), system="base system",
                     parameters={"temperature": 0.5, "top_k": 10})
    client.create(derived, from_=base, parameters={"temperature": 0.9})
    shown = http.post("/api/show", json={"model": derived}).json()
    params = {line.split()[0]: line.split()[1] for line in shown["parameters"].splitlines()}
    assert params == {"temperature": "0.9", "top_k": "10"}
    assert shown["system"] == "base system"


def test_create_missing_blob_fails(client: ollama.Client, model_name: Callable[..., str]) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model_name("noblob"), files={"model.gguf": "sha256:" + "0" * 64})
    assert caught.value.status_code == 500
    assert "no such file or directory" in caught.value.error


def test_create_non_gguf_error_comes_after_output(http: httpx.Client, client: ollama.Client,
                                                  model_name: Callable[..., str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a GGUF file " * 8)
    digest = client.create_blob(junk)
    name = model_name("junk")
    streamed = http.post("/api/create", json={"model": name, "files": {"junk.gguf": digest}})
    assert streamed.status_code == 200
    lines = ndjson(streamed)
    assert lines[0] == {"status": "parsing GGUF"}
    assert lines[-1] == {"error": "supplied file was not in GGUF format"}
    with pytest.raises(ollama.ResponseError) as caught:
        list(client.create(name, files={"junk.gguf": digest}, stream=True))
    assert caught.value.status_code == -1  # a streamed error line carries no status
    assert caught.value.error == "supplied file was not in GGUF format"
    whole = http.post("/api/create", json={"model": name, "files": {"junk.gguf": digest}, "stream": False})
    assert (whole.status_code, whole.json()) == (400, {"error": "supplied file was not in GGUF format"})


def test_create_error_before_output_has_a_status(http: httpx.Client, client: ollama.Client,
                                                 model_name: Callable[..., str]) -> None:
    name = model_name("neither")
    streamed = http.post("/api/create", json={"model": name})
    assert streamed.status_code == 400
    assert streamed.headers["content-type"] == "application/json"  # written by Ollama, not gin
    assert streamed.json() == {"error": "neither 'from' or 'files' was specified"}
    whole = http.post("/api/create", json={"model": name, "stream": False})
    assert (whole.status_code, whole.json()["error"]) == (400, "neither 'from' or 'files' was specified")
    assert whole.headers["content-type"] == "application/json"
    with pytest.raises(ollama.ResponseError) as caught:
        list(client.create(name, stream=True))
    assert caught.value.status_code == 400


def test_a_streaming_endpoints_single_reply_is_plain_json(http: httpx.Client, client: ollama.Client,
                                                         model_name: Callable[..., str],
                                                         gguf_file: Callable[..., Path]) -> None:
    base = model_name("plainbase")
    create_from_gguf(client, base, gguf_file(seed=15))
    done = http.post("/api/create", json={"model": model_name("plain"), "from": base, "stream": False})
    assert (done.status_code, done.headers["content-type"], done.content) == \
        (200, "application/json", b'{"status":"success"}')
    listing = http.get("/api/tags")  # gin's c.JSON elsewhere
    assert listing.headers["content-type"] == "application/json; charset=utf-8"


def test_create_ignores_the_removed_modelfile_field(http: httpx.Client, model_name: Callable[..., str]) -> None:
    response = http.post("/api/create", json={"model": model_name("old"), "modelfile": "FROM llama3.2"})
    assert (response.status_code, response.json()) == (400, {"error": "neither 'from' or 'files' was specified"})


def test_create_file_paths_must_be_relative(http: httpx.Client, model_name: Callable[..., str]) -> None:
    digest = "sha256:" + "1" * 64
    for key in ("/abs/model.gguf", "../model.gguf", "a//b.gguf"):
        response = http.post("/api/create", json={"model": model_name("path"), "files": {key: digest}})
        assert (response.status_code, response.json()) == (400, {"error": "file path must be relative"}), key


def test_create_rejects_a_broken_template(client: ollama.Client, model_name: Callable[..., str],
                                          gguf_file: Callable[..., Path]) -> None:
    blob = client.create_blob(gguf_file(seed=8))
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model_name("tmpl"), files={"m.gguf": blob}, template="{{ .Prompt ")
    assert caught.value.status_code == 400
    assert caught.value.error.startswith("template error: ")


def test_create_rejects_an_unknown_quantization(client: ollama.Client, model_name: Callable[..., str],
                                                gguf_file: Callable[..., Path]) -> None:
    blob = client.create_blob(gguf_file(seed=9))
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model_name("quant"), files={"m.gguf": blob}, quantize="q9_9")
    assert caught.value.status_code == 500
    assert caught.value.error.startswith("unsupported quantization type Q9_9")


def test_invalid_model_names(http: httpx.Client) -> None:
    for path, body, message in [
        ("/api/create", {"model": "bad name!", "from": "x"}, "invalid model name"),
        ("/api/show", {"model": "a/b/c/d"}, "invalid model name"),
        ("/api/pull", {"model": "bad name!"}, "invalid model name"),
        ("/api/delete", {"model": "bad name!"}, 'name "bad name!" is invalid'),
        ("/api/copy", {"source": "bad name!", "destination": "x"}, 'source "bad name!" is invalid'),
    ]:
        response = http.request("DELETE" if path == "/api/delete" else "POST", path, json=body)
        assert (response.status_code, response.json()) == (400, {"error": message}), path


# --- show, copy, delete, list ----------------------------------------------------------------

def test_show_reports_what_was_created(http: httpx.Client, client: ollama.Client,
                                       model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> None:
    name = model_name("show")
    create_from_gguf(
        client, name, gguf_file(seed=10), template="{{ .System }}\n{{ .Prompt }}", system="Be kind.",
        license=["License A", "License B"], parameters={"temperature": 0.3, "stop": ["<end>"]},
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    )
    shown = http.post("/api/show", json={"model": name})
    assert shown.status_code == 200
    body = shown.json()
    assert body["license"] == "License A\nLicense B"
    assert body["template"] == "{{ .System }}\n{{ .Prompt }}"
    assert body["system"] == "Be kind."
    assert body["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert body["modelfile"].startswith('# Modelfile generated by "ollama show"')
    assert 'stop                           "<end>"' in body["parameters"].splitlines()
    assert set(body["details"]) >= {"parent_model", "format", "family", "families", "parameter_size",
                                    "quantization_level"}
    assert body["model_info"]["general.architecture"] == "llama"
    assert "completion" in body["capabilities"]
    assert body["modified_at"]
    via_client = client.show(name)
    assert via_client.details.family == "llama"
    assert via_client.modelinfo is not None and via_client.modelinfo["general.architecture"] == "llama"


def test_show_prints_adapter_and_draft_lines(http: httpx.Client, client: ollama.Client,
                                             model_name: Callable[..., str],
                                             gguf_file: Callable[..., Path]) -> None:
    base, both = model_name("adbase"), model_name("adboth")
    create_from_gguf(client, base, gguf_file(seed=16))
    lora = client.create_blob(gguf_file(seed=17, extra_metadata={
        "general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 16.0}))
    draft = client.create_blob(gguf_file(seed=18))
    response = http.post("/api/create", json={"model": both, "from": base, "adapters": {"lora.gguf": lora},
                                              "draft_files": {"draft.gguf": draft}, "stream": False})
    assert response.status_code == 200, response.text
    lines = [line.split(" ", 1)[0] for line in http.post("/api/show", json={"model": both}).json()["modelfile"]
             .splitlines() if line and not line.startswith("#")]
    assert lines == ["FROM", "ADAPTER", "DRAFT", "TEMPLATE"]


def test_show_missing_model(http: httpx.Client, client: ollama.Client, model_name: Callable[..., str]) -> None:
    name = model_name("missing", tag="latest").split(":")[0]
    response = http.post("/api/show", json={"model": name})
    assert (response.status_code, response.json()) == (404, {"error": f"model '{name}:latest' not found"})
    with pytest.raises(ollama.ResponseError) as caught:
        client.show(name)
    assert caught.value.status_code == 404
    required = http.post("/api/show", json={})
    assert (required.status_code, required.json()) == (400, {"error": "model is required"})


def test_copy_keeps_the_digest(client: ollama.Client, http: httpx.Client, model_name: Callable[..., str],
                               gguf_file: Callable[..., Path]) -> None:
    source, alias = model_name("src"), model_name("alias")
    create_from_gguf(client, source, gguf_file(seed=11))
    response = http.post("/api/copy", json={"source": source, "destination": alias})
    assert (response.status_code, response.content) == (200, b"")
    assert digest_of(client, alias) == digest_of(client, source)
    missing = model_name("nothere")
    response = http.post("/api/copy", json={"source": missing, "destination": alias})
    assert (response.status_code, response.json()) == (404, {"error": f'model "{missing}" not found'})


def test_delete_and_its_404(client: ollama.Client, http: httpx.Client, model_name: Callable[..., str],
                            gguf_file: Callable[..., Path]) -> None:
    name = model_name("del")
    create_from_gguf(client, name, gguf_file(seed=12))
    assert client.delete(name).status == "success"
    assert listed(client, name) is None
    response = http.request("DELETE", "/api/delete", json={"model": name})
    assert (response.status_code, response.json()) == (404, {"error": f"model '{name}' not found"})


def test_names_match_case_insensitively(client: ollama.Client, http: httpx.Client,
                                        model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> None:
    name = model_name("CaseModel", tag="V1")
    gguf = gguf_file(seed=13)
    create_from_gguf(client, name, gguf)
    assert http.post("/api/show", json={"model": name.lower()}).status_code == 200
    create_from_gguf(client, name.lower(), gguf, system="second")  # reuses the existing case
    matches = [m.model for m in client.list().models if (m.model or "").lower() == name.lower()]
    assert matches == [name]
    assert http.post("/api/show", json={"model": name}).json()["system"] == "second"


def test_tags_lists_newest_first(client: ollama.Client, model_name: Callable[..., str],
                                 gguf_file: Callable[..., Path]) -> None:
    older, newer = model_name("older"), model_name("newer")
    gguf = gguf_file(seed=14)
    create_from_gguf(client, older, gguf)
    time.sleep(1.1)  # a real server orders by whole seconds
    create_from_gguf(client, newer, gguf, system="newer")
    order = [m.model for m in client.list().models if m.model in (older, newer)]
    assert order == [newer, older]


# --- pull --------------------------------------------------------------------------------------

def test_pull_progress_and_digest(ollama_server: OllamaServer, client: ollama.Client,
                                  registry: RegistryFolder) -> None:
    ollama_server.require_double(NEEDS_DOUBLE_REGISTRY)
    digest = registry.publish("contract/pulled:1", seed=20, system="from the registry")
    lines = list(client.pull("contract/pulled:1", stream=True))
    seen = statuses(lines)
    assert seen[0] == "pulling manifest"
    blobs = [line for line in lines if line.status.startswith("pulling ") and line.status != "pulling manifest"]
    assert blobs and all(line.digest and line.status == f"pulling {line.digest[7:19]}" for line in blobs)
    assert all(line.total for line in blobs)
    assert seen[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert "sha256:" + digest_of(client, "contract/pulled:1") == digest
    again = statuses(list(client.pull("contract/pulled:1", stream=True)))
    assert again[-1] == "success"


def test_pull_unknown_model(ollama_server: OllamaServer, client: ollama.Client, http: httpx.Client) -> None:
    ollama_server.require_double(NEEDS_DOUBLE_REGISTRY)
    streamed = http.post("/api/pull", json={"model": "contract/absent:1"})
    assert streamed.status_code == 200
    assert ndjson(streamed) == [{"status": "pulling manifest"},
                                {"error": "pull model manifest: file does not exist"}]
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("contract/absent:1")
    assert caught.value.status_code == 500
    assert caught.value.error == "pull model manifest: file does not exist"


def test_create_from_missing_base_pulls_it(ollama_server: OllamaServer, client: ollama.Client,
                                           registry: RegistryFolder) -> None:
    ollama_server.require_double(NEEDS_DOUBLE_REGISTRY)
    registry.publish("contract/upstream:2", seed=21)
    seen = statuses(list(client.create("contract/derived:1", from_="contract/upstream:2", system="x", stream=True)))
    assert seen[0] == "pulling manifest" and "writing manifest" in seen and seen[-1] == "success"
    assert listed(client, "contract/upstream:2") is not None
    assert client.show("contract/derived:1").details.parent_model == "contract/upstream:2"


def test_create_from_base_missing_everywhere(ollama_server: OllamaServer, client: ollama.Client,
                                             model_name: Callable[..., str]) -> None:
    ollama_server.require_double(NEEDS_DOUBLE_REGISTRY)
    with pytest.raises(ollama.ResponseError) as caught:
        client.create(model_name("orphan"), from_="contract/nowhere:1")
    assert (caught.value.status_code, caught.value.error) == (500, "pull model manifest: file does not exist")


# --- push and pull through a real registry (Distribution on loopback) ---------------------------

def _qualified(distribution: Distribution, name: str) -> str:
    """`name` ("prefix-m:v1") in the registry's library namespace."""
    return f"{distribution.host}/library/{name}"


def _pushed(client: ollama.Client, distribution: Distribution, name: str,
            gguf_file: Callable[..., Path], seed: int) -> tuple[str, list[Any]]:
    """Create `name`, copy it to its registry name, push it (insecure); the registry name and
    the push's progress lines."""
    create_from_gguf(client, name, gguf_file(seed=seed), system="pushed")
    qualified = _qualified(distribution, name)
    client.copy(name, qualified)
    return qualified, list(client.push(qualified, insecure=True, stream=True))


def test_push_and_pull_through_a_registry(client: ollama.Client, distribution: Distribution,
                                          model_name: Callable[..., str],
                                          gguf_file: Callable[..., Path]) -> None:
    name = model_name("pushed")
    qualified, lines = _pushed(client, distribution, name, gguf_file, seed=40)
    seen = statuses(lines)
    assert seen[0] == "retrieving manifest" and seen[-2:] == ["pushing manifest", "success"]
    pushed = [line for line in lines if line.status.startswith("pushing ") and line.digest]
    assert pushed and all(line.status == f"pushing {line.digest[7:19]}" for line in pushed)
    repository, tag = f"library/{name}".rsplit(":", 1)
    served = distribution.manifest(repository, tag)
    assert served is not None and not served.endswith(b"\n")
    registry_digest = "sha256:" + hashlib.sha256(served).hexdigest()
    assert distribution.digest(repository, tag) == registry_digest
    # The pusher's own digest is its manifest file's, which ends with a newline.
    assert digest_of(client, qualified) == hashlib.sha256(served + b"\n").hexdigest()
    assert digest_of(client, name) == digest_of(client, qualified)

    client.delete(qualified)
    pulled = statuses(list(client.pull(qualified, insecure=True, stream=True)))
    assert pulled[0] == "pulling manifest" and pulled[-1] == "success"
    assert "sha256:" + digest_of(client, qualified) == registry_digest
    client.copy(qualified, name)  # a copy keeps the pulled bytes
    assert "sha256:" + digest_of(client, name) == registry_digest
    again = statuses(list(client.push(qualified, insecure=True, stream=True)))
    assert again[-1] == "success" and distribution.digest(repository, tag) == registry_digest


def test_registry_pull_errors(http: httpx.Client, client: ollama.Client, distribution: Distribution,
                              model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> None:
    name = model_name("secure")
    qualified, _ = _pushed(client, distribution, name, gguf_file, seed=41)
    client.delete(qualified)
    url = f"https://{distribution.host}/v2/library/{name.replace(':', '/manifests/')}"
    plain = ndjson(http.post("/api/pull", json={"model": qualified}))
    assert plain == [{"status": "pulling manifest"},
                     {"error": f'pull model manifest: Get "{url}": http: server gave HTTP response to HTTPS client'}]
    # create's automatic pull of a registry name is always HTTPS, insecure or not
    created = ndjson(http.post("/api/create", json={"model": model_name("from-reg"), "from": qualified,
                                                    "insecure": True}))
    assert created[-1] == {"error": f'pull model manifest: Get "{url}": http: server gave HTTP response to HTTPS client'}
    absent = ndjson(http.post("/api/pull", json={"model": _qualified(distribution, model_name("absent")),
                                                 "insecure": True}))
    assert absent == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    missing = ndjson(http.post("/api/push", json={"model": _qualified(distribution, model_name("nowhere")),
                                                  "insecure": True}))
    assert [line.get("status") for line in missing[:2]] == ["retrieving manifest", "couldn't retrieve manifest"]
    assert missing[-1]["error"].endswith(": no such file or directory")


def test_registry_blob_downloads_need_a_redirect_to_another_host(
        http: httpx.Client, client: ollama.Client, tmp_path: Path, model_name: Callable[..., str],
        gguf_file: Callable[..., Path], distribution: Distribution) -> None:
    with Distribution(tmp_path / "direct", redirect=False) as direct:
        name = model_name("direct")
        qualified, lines = _pushed(client, direct, name, gguf_file, seed=42)
        assert statuses(lines)[-1] == "success"  # pushing needs no redirect
        client.delete(qualified)
        client.delete(name)
        answer = ndjson(http.post("/api/pull", json={"model": qualified, "insecure": True}))
        assert answer == [{"status": "pulling manifest"}, {"error": "http: no Location header in response"}]


def test_push_skips_a_blob_it_mounted_earlier_for_another_repository(
        http: httpx.Client, client: ollama.Client, distribution: Distribution,
        model_name: Callable[..., str], gguf_file: Callable[..., Path]) -> None:
    """Ollama's bookkeeping of cross-repository mounts (server/upload.go): after a layer was
    mounted, the server treats the blob as uploaded for the rest of its life."""
    import uuid

    base = model_name("mbase", "1")
    gguf = gguf_file(seed=uuid.uuid4().int % 10**9)  # never pushed before by this server
    create_from_gguf(client, base, gguf)
    base_qualified = _qualified(distribution, base)
    client.copy(base, base_qualified)
    assert statuses(list(client.push(base_qualified, insecure=True, stream=True)))[-1] == "success"
    derived = model_name("mderived", "1")
    client.create(derived, from_=base_qualified, system="derived")  # layers carry from=<base>
    first = f"{distribution.host}/one/{derived}"
    client.copy(derived, first)
    assert statuses(list(client.push(first, insecure=True, stream=True)))[-1] == "success"  # mounted
    second = f"{distribution.host}/two/{base}"
    client.copy(base, second)
    answer = ndjson(http.post("/api/push", json={"model": second, "insecure": True}))
    assert "MANIFEST_BLOB_UNKNOWN" in answer[-1]["error"] and answer[-1]["error"].startswith("400: ")
    for name in (base_qualified, first, second):
        client.delete(name)


# --- what only the double can show -------------------------------------------------------------

def _manifest(double: OllamaDouble, name: str) -> dict[str, Any]:
    path = double.models_dir / "manifests" / "registry.ollama.ai" / "library" / name.replace(":", "/")
    return json.loads(path.read_bytes())


def test_digest_is_sha256_of_the_manifest_file(ollama_server: OllamaServer, client: ollama.Client,
                                               model_name: Callable[..., str],
                                               gguf_file: Callable[..., Path]) -> None:
    double = ollama_server.require_double(NEEDS_DOUBLE_CONTROLS)
    name = model_name("file")
    create_from_gguf(client, name, gguf_file(seed=30))
    path = double.models_dir / "manifests" / "registry.ollama.ai" / "library" / name.replace(":", "/")
    assert digest_of(client, name) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_bytes().endswith(b"}\n")


def test_derived_manifest_shares_the_base_layers(ollama_server: OllamaServer, client: ollama.Client,
                                                 model_name: Callable[..., str],
                                                 gguf_file: Callable[..., Path]) -> None:
    double = ollama_server.require_double(NEEDS_DOUBLE_CONTROLS)
    base, derived = model_name("lbase"), model_name("lderived")
    create_from_gguf(client, base, gguf_file(seed=31))
    client.create(derived, from_=base, system="extra")
    base_layers = _manifest(double, base)["layers"]
    derived_layers = _manifest(double, derived)["layers"]
    assert derived_layers[0]["digest"] == base_layers[0]["digest"]
    assert derived_layers[0]["from"] == base
    assert [layer["mediaType"].rsplit(".", 1)[-1] for layer in derived_layers] == ["model", "system"]


def test_digest_survives_restart_and_fresh_folder(ollama_server: OllamaServer, client: ollama.Client,
                                                  model_name: Callable[..., str], tmp_path: Path,
                                                  gguf_file: Callable[..., Path]) -> None:
    double = ollama_server.require_double(NEEDS_DOUBLE_CONTROLS)
    name = model_name("restart")
    gguf = gguf_file(seed=32)
    create_from_gguf(client, name, gguf, system="stay the same", parameters={"seed": 42})
    digest = digest_of(client, name)
    double.stop()
    double.start()
    restarted = ollama.Client(host=double.url)
    assert digest_of(restarted, name) == digest
    create_from_gguf(restarted, name, gguf, system="stay the same", parameters={"seed": 42})
    assert digest_of(restarted, name) == digest
    restarted.close()
    with OllamaDouble(tmp_path / "elsewhere") as fresh:
        other = ollama.Client(host=fresh.url)
        create_from_gguf(other, name, gguf, system="stay the same", parameters={"seed": 42})
        assert digest_of(other, name) == digest
        other.close()


# --- the double against a real server ------------------------------------------------------------

def test_the_double_gives_a_real_servers_digests(ollama_double: OllamaDouble, real_ollama: OllamaServer,
                                                 gguf_file: Callable[..., Path]) -> None:
    """The same creates on the double and on a real Ollama of the version the double models
    list the same digests: GGUF rewrites, configs, inherited layers, adapters and drafts."""
    with httpx.Client(base_url=real_ollama.url, timeout=120) as real:
        version = real.get("/api/version").json()["version"]
    if version != ollama_double.version:
        pytest.skip(f"the double models Ollama {ollama_double.version}; this server is {version}")
    prefix = f"doit-ollama-test-{uuid.uuid4().hex[:8]}-"
    files = {
        "one": gguf_file(seed=40),
        "blocks": gguf_file(seed=41, n_tensors=6, size=128),
        "meta": gguf_file(seed=42, extra_metadata={"tokenizer.chat_template": "{{ messages }}",
                                                  "tokenizer.ggml.tokens": ["a", "b"], "general.flag": True}),
        "gemma": gguf_file(seed=43, architecture="gemma3", n_tensors=3),
        "lora": gguf_file(seed=44, extra_metadata={"general.type": "adapter", "adapter.type": "lora"}),
    }
    digests = {key: sha256_file(path) for key, path in files.items()}
    creates = [(key, {"files": {f"{key}.gguf": digests[key]}}) for key in ("one", "blocks", "meta", "gemma")]
    creates += [
        ("bot", {"from": prefix + "one:v1", "template": "{{ .System }} {{ .Prompt }}", "system": "Be brief.",
                 "parameters": {"temperature": 0, "stop": ["<end>", "<eot>"], "num_ctx": 512},
                 "license": ["MIT", "Apache-2.0"], "messages": [{"role": "user", "content": "hi"}]}),
        ("chain", {"from": prefix + "bot:v1", "system": "Be briefer.", "parameters": {"top_k": 5}}),
        ("adapted", {"from": prefix + "one:v1", "adapters": {"lora.gguf": digests["lora"]}}),
        ("drafted", {"from": prefix + "blocks:v1", "draft_files": {"one.gguf": digests["one"]}}),
        ("requires", {"from": prefix + "one:v1", "requires": "0.30.0", "renderer": "r", "parser": "p"}),
    ]

    def build(url: str) -> dict[str, str]:
        with httpx.Client(base_url=url, timeout=120) as h:
            for key, path in files.items():
                assert h.post(f"/api/blobs/{digests[key]}", content=path.read_bytes()).status_code in (200, 201)
            for key, body in creates:
                done = h.post("/api/create", json={"model": f"{prefix}{key}:v1", "stream": False, **body})
                assert done.status_code == 200, (key, done.text)
            return {m["name"]: m["digest"] for m in h.get("/api/tags").json()["models"]
                    if m["name"].startswith(prefix)}

    try:
        on_real = build(real_ollama.url)
        on_double = build(ollama_double.url)
    finally:
        with httpx.Client(base_url=real_ollama.url, timeout=60) as h:
            for key, _body in reversed(creates):
                h.request("DELETE", "/api/delete", json={"model": f"{prefix}{key}:v1"})
    assert len(on_real) == len(creates)
    assert on_double == on_real
