"""Tests of the Ollama test double itself: its controls, its rules, its process wrapper."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import ollama
import pytest

from tests.conftest import RegistryFolder
from tests.gguf_maker import gguf_bytes, make_gguf
from tests.ollama_double import FAULT_KINDS, OllamaDouble, gojson, names, publish_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def double(ollama_double: OllamaDouble) -> OllamaDouble:
    return ollama_double


@pytest.fixture
def client(double: OllamaDouble) -> Iterator[ollama.Client]:
    with ollama.Client(host=double.url, timeout=30) as c:
        yield c


@pytest.fixture
def http(double: OllamaDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=double.url, timeout=30) as h:
        yield h


@pytest.fixture
def base_model(client: ollama.Client, gguf_file: Callable[..., Path]) -> str:
    """A model created from a tiny GGUF: "base:1"."""
    path = gguf_file(seed=1)
    client.create("base:1", files={"model.gguf": client.create_blob(path)}, system="You are a test.")
    return "base:1"


def digest_of(client: ollama.Client, name: str) -> str:
    for entry in client.list().models:
        if entry.model == name:
            return str(entry.digest)
    raise AssertionError(f"{name} not listed")


def manifest_path(double: OllamaDouble, name: str) -> Path:
    n = names.parse(name)
    return double.models_dir.joinpath("manifests", *n.parts())


# --- faults ------------------------------------------------------------------------------------

def test_fail_next_fails_exactly_the_matching_requests(double: OllamaDouble, client: ollama.Client,
                                                       base_model: str) -> None:
    double.controls.fail_next("POST", "/api/create", status=503, message="server busy", model="other:1")
    client.create("mine:1", from_=base_model)  # another model: not affected
    with pytest.raises(ollama.ResponseError) as caught:
        client.create("other:1", from_=base_model)
    assert (caught.value.status_code, caught.value.error) == (503, "server busy")
    client.create("other:1", from_=base_model)  # times=1: used up
    assert double.controls.faults() == []
    statuses = [r.status for r in double.controls.requests() if r.path == "/api/create"]
    assert statuses == [200, 200, 503, 200]  # base, mine, other (failed), other


def test_fail_next_on_a_path_prefix_and_a_head_request(double: OllamaDouble, http: httpx.Client) -> None:
    double.controls.fail_next("HEAD", "/api/blobs/*", status=500, times=2)
    digest = "sha256:" + "a" * 64
    assert [http.head(f"/api/blobs/{digest}").status_code for _ in range(3)] == [500, 500, 404]


def test_delay_delays_and_requests_overlap(double: OllamaDouble, base_model: str) -> None:
    double.controls.delay("POST", "/api/create", 1.0)

    def create(i: int) -> float:
        start = time.monotonic()
        with ollama.Client(host=double.url, timeout=30) as c:
            c.create(f"parallel:{i}", from_=base_model, system=f"number {i}")
        return time.monotonic() - start

    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        each = list(pool.map(create, range(4)))
    total = time.monotonic() - start
    assert min(each) >= 1.0  # every request really waited
    assert total < 3.5  # ...at the same time: one after another would take 4 s
    assert double.controls.count("POST", "/api/create") == 5


def test_drop_stream_cuts_a_create_mid_stream(double: OllamaDouble, client: ollama.Client,
                                              gguf_file: Callable[..., Path]) -> None:
    blob = client.create_blob(gguf_file(seed=2))
    double.controls.drop_stream("POST", "/api/create", after_lines=2)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        for line in client.create("dropped:1", files={"m.gguf": blob}, stream=True):
            received.append(line.status)
    assert received == ["parsing GGUF", "verifying conversion"]
    assert not manifest_path(double, "dropped:1").exists()  # the create stopped where it was cut
    client.create("dropped:1", files={"m.gguf": blob})  # times=1: the next one works
    assert manifest_path(double, "dropped:1").exists()


def test_drop_stream_on_pull_and_on_a_plain_request(double: OllamaDouble, client: ollama.Client,
                                                    registry: RegistryFolder) -> None:
    registry.publish("up/model:1", seed=3)
    double.controls.drop_stream("POST", "/api/pull", after_lines=1)
    with pytest.raises(httpx.RemoteProtocolError):
        list(client.pull("up/model:1", stream=True))
    double.controls.drop_stream("GET", "/api/tags")
    with pytest.raises(httpx.RemoteProtocolError):
        client.list()
    assert [line.status for line in client.pull("up/model:1", stream=True)][-1] == "success"


def test_hang_times_out_the_client_and_stop_releases_it(tmp_path: Path) -> None:
    double = OllamaDouble(tmp_path / "models").start()
    try:
        double.controls.hang("GET", "/api/tags")
        with ollama.Client(host=double.url, timeout=0.3) as short:
            start = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                short.list()
            assert 0.25 <= time.monotonic() - start < 2
        with ollama.Client(host=double.url, timeout=5) as c:
            assert c.list().models == []  # times=1: only one request hung
            double.controls.hang("GET", "/api/tags", timeout=None)
            outcome: list[Any] = []

            def pending_list() -> None:
                try:
                    outcome.append(c.list())
                except httpx.HTTPError as exc:
                    outcome.append(exc)

            pending = threading.Thread(target=pending_list, daemon=True)
            pending.start()
            deadline = time.monotonic() + 5
            while double.controls.count("GET", "/api/tags") < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            start = time.monotonic()
            double.stop()
            assert time.monotonic() - start < 2  # the hanging handler let go when the double stopped
            pending.join(5)
            assert not pending.is_alive()
            assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)
    finally:
        double.stop()


def test_hang_with_a_timeout_closes_the_connection(double: OllamaDouble, http: httpx.Client) -> None:
    double.controls.hang("GET", "/api/version", timeout=0.3)
    start = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/version")
    assert 0.25 <= time.monotonic() - start < 3


def test_error_in_stream_reaches_the_client(double: OllamaDouble, client: ollama.Client, http: httpx.Client,
                                            gguf_file: Callable[..., Path]) -> None:
    blob = client.create_blob(gguf_file(seed=4))
    double.controls.error_in_stream("POST", "/api/create", message="disk full", after_lines=1)
    received = []
    with pytest.raises(ollama.ResponseError) as caught:
        for line in client.create("err:1", files={"m.gguf": blob}, stream=True):
            received.append(line.status)
    assert (caught.value.error, caught.value.status_code) == ("disk full", -1)
    assert received == ["parsing GGUF"]
    double.controls.error_in_stream("POST", "/api/create", message="disk full", after_lines=1)
    whole = http.post("/api/create", json={"model": "err:1", "files": {"m.gguf": blob}, "stream": False})
    assert (whole.status_code, whole.json()) == (500, {"error": "disk full"})
    assert not manifest_path(double, "err:1").exists()


def test_unknown_fault_kind_is_refused(double: OllamaDouble) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        double.controls.add_fault("explode", "GET", "/")
    assert set(FAULT_KINDS) == {"fail", "delay", "drop", "hang", "error_line"}


# --- request log -------------------------------------------------------------------------------

def test_request_log_counts_and_reset(double: OllamaDouble, client: ollama.Client, http: httpx.Client,
                                      base_model: str) -> None:
    client.show(base_model)
    client.show("Base:1")
    with pytest.raises(ollama.ResponseError):
        client.show("missing:1")
    client.list()
    c = double.controls
    assert c.count("POST", "/api/show") == 3
    assert c.count("POST", "/api/show", model="base:1") == 2  # names compare as Ollama compares them
    assert c.count(path="/api/blobs/*") == 1
    assert c.count("GET", "/api/tags") == 1
    last = c.requests()[-2]
    assert (last.method, last.path, last.model, last.status) == ("POST", "/api/show", "missing:1", 404)
    http.get("/_double/requests")  # control endpoints are not logged
    c.reset_requests()
    assert c.requests() == [] and c.count() == 0


def test_http_control_endpoints(double: OllamaDouble, http: httpx.Client, base_model: str,
                                gguf_file: Callable[..., Path]) -> None:
    fault = http.post("/_double/faults", json={"kind": "fail", "method": "POST", "path": "/api/show",
                                               "status": 418, "message": "teapot"})
    assert fault.status_code == 200 and fault.json()["fault"]["kind"] == "fail"
    assert [f["message"] for f in http.get("/_double/faults").json()["faults"]] == ["teapot"]
    refused = http.post("/api/show", json={"model": base_model})
    assert (refused.status_code, refused.json()) == (418, {"error": "teapot"})
    count = http.get("/_double/requests/count", params={"method": "POST", "path": "/api/show"})
    assert count.json() == {"count": 1}
    assert http.get("/_double/requests").json()["requests"][-1]["status"] == 418
    assert http.delete("/_double/requests").status_code == 200
    assert http.get("/_double/requests/count").json() == {"count": 0}

    http.post("/_double/faults", json={"kind": "delay", "method": "GET", "path": "/api/tags", "seconds": 0.3,
                                       "times": None})
    start = time.monotonic()
    http.get("/api/tags")
    http.get("/api/tags")
    assert time.monotonic() - start >= 0.6
    assert http.delete("/_double/faults").status_code == 200 and double.controls.faults() == []

    assert http.post("/_double/replies", json={"model": base_model, "reply": "scripted"}).status_code == 200
    assert http.post("/api/generate", json={"model": base_model, "prompt": "hi", "stream": False}
                     ).json()["response"] == "scripted"
    assert http.delete("/_double/replies").status_code == 200

    gguf = base64.b64encode(gguf_file(seed=9).read_bytes()).decode()
    published = http.post("/_double/registry", json={"name": "remote/thing:1", "gguf_base64": gguf,
                                                     "system": "hello"})
    digest = published.json()["digest"]
    pulled = http.post("/api/pull", json={"model": "remote/thing:1", "stream": False})
    assert pulled.json() == {"status": "success"}
    assert "sha256:" + [m for m in http.get("/api/tags").json()["models"]
                        if m["name"] == "remote/thing:1"][0]["digest"] == digest

    bad = http.post("/_double/faults", json={"kind": "fail", "method": "GET"})
    assert bad.status_code == 400 and "kind, method and path" in bad.json()["error"]
    assert http.get("/_double/nothing").status_code == 404
    assert http.post("/_double/reset").json() == {"ok": True}


# --- registry and pull -------------------------------------------------------------------------

def test_replacing_a_registry_model_moves_the_pulled_digest(double: OllamaDouble, client: ollama.Client,
                                                            gguf_file: Callable[..., Path]) -> None:
    first = double.controls.replace_registry_model("team/model:latest", gguf_file(seed=10), system="v1")
    list(client.pull("team/model", stream=True))
    assert "sha256:" + digest_of(client, "team/model:latest") == first
    client.create("built-on-v1:1", from_="team/model", system="mine")
    old_model_layer = json.loads(manifest_path(double, "team/model:latest").read_bytes())["layers"][0]["digest"]

    second = double.controls.replace_registry_model("team/model:latest", gguf_file(seed=11), system="v2")
    assert second != first
    seen = [line.status for line in client.pull("team/model", stream=True)]
    assert "removing unused layers" in seen
    assert "sha256:" + digest_of(client, "team/model:latest") == second
    # the old model layer is still used by the model built on it, so it stays
    assert (double.models_dir / "blobs" / old_model_layer.replace(":", "-")).exists()
    assert client.show("built-on-v1:1").details.parent_model == "team/model:latest"


def test_pull_prunes_layers_only_the_old_version_used(double: OllamaDouble, client: ollama.Client,
                                                      registry: RegistryFolder) -> None:
    registry.publish("solo:1", seed=12, system="old")
    client.pull("solo:1")
    old = json.loads(manifest_path(double, "solo:1").read_bytes())
    registry.publish("solo:1", seed=13, system="new")
    client.pull("solo:1")
    for layer in old["layers"]:
        assert not (double.models_dir / "blobs" / layer["digest"].replace(":", "-")).exists()


def test_pull_detects_a_corrupt_registry_blob(double: OllamaDouble, client: ollama.Client,
                                             registry: RegistryFolder) -> None:
    registry.publish("corrupt:1", seed=14)
    manifest = json.loads((registry.path / "manifests/registry.ollama.ai/library/corrupt/1").read_bytes())
    blob = registry.path / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")
    blob.write_bytes(b"tampered")
    with pytest.raises(ollama.ResponseError, match="digest mismatch, file must be downloaded again"):
        client.pull("corrupt:1")
    assert not (double.models_dir / "blobs" / blob.name).exists()


def test_pull_without_a_registry(tmp_path: Path) -> None:
    with OllamaDouble(tmp_path / "models") as double, ollama.Client(host=double.url) as c:
        with pytest.raises(ollama.ResponseError) as caught:
            c.pull("anything:1")
        assert (caught.value.status_code, caught.value.error) == (500, "pull model manifest: file does not exist")


def test_published_manifest_has_no_trailing_newline(tmp_path: Path) -> None:
    digest = publish_model(tmp_path / "reg", "x/y:z", gguf_bytes(15), template="{{ .Prompt }}",
                           parameters={"temperature": 0.1}, license=["MIT"], messages=[{"role": "user", "content": "q"}])
    data = (tmp_path / "reg/manifests/registry.ollama.ai/x/y/z").read_bytes()
    assert not data.endswith(b"\n") and digest == "sha256:" + hashlib.sha256(data).hexdigest()
    kinds = [layer["mediaType"].rsplit(".", 1)[-1] for layer in json.loads(data)["layers"]]
    assert kinds == ["model", "template", "params", "license", "messages"]


# --- storage rules -------------------------------------------------------------------------------

def test_state_survives_a_restart(double: OllamaDouble, base_model: str) -> None:
    with ollama.Client(host=double.url) as c:
        before = c.list().model_dump()
    port = double.port
    double.stop()
    double.start()
    assert double.port == port
    with ollama.Client(host=double.url) as c:
        assert c.list().model_dump() == before
        assert c.show(base_model).details.family == "llama"


def test_layout_on_disk(double: OllamaDouble, client: ollama.Client, base_model: str) -> None:
    path = manifest_path(double, base_model)
    assert path == double.models_dir / "manifests/registry.ollama.ai/library/base/1"
    manifest = json.loads(path.read_bytes())
    assert list(manifest) == ["schemaVersion", "mediaType", "config", "layers"]
    for layer in [manifest["config"], *manifest["layers"]]:
        assert (double.models_dir / "blobs" / layer["digest"].replace(":", "-")).is_file()
    config = json.loads((double.models_dir / "blobs" / manifest["config"]["digest"].replace(":", "-")).read_bytes())
    assert config == {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                      "model_type": "64", "file_type": "F16", "architecture": "amd64", "os": "linux"}
    assert "from" not in manifest["layers"][0]  # a v0.30+ server re-emits the GGUF: no "from"


def test_parameters_layer_is_encoded_like_go(double: OllamaDouble, client: ollama.Client, base_model: str) -> None:
    client.create("params:1", from_=base_model, parameters={"temperature": 1.0, "stop": ["<|end|>"], "num_ctx": 4096})
    manifest = json.loads(manifest_path(double, "params:1").read_bytes())
    params = [layer for layer in manifest["layers"] if layer["mediaType"].endswith(".params")][0]
    data = (double.models_dir / "blobs" / params["digest"].replace(":", "-")).read_bytes()
    assert data == b'{"num_ctx":4096,"stop":["\\u003c|end|\\u003e"],"temperature":1}\n'


def test_delete_prunes_unused_blobs_and_empty_folders(double: OllamaDouble, client: ollama.Client,
                                                      base_model: str) -> None:
    client.create("ns/other:1", from_=base_model, system="only here")
    manifest = json.loads(manifest_path(double, "ns/other:1").read_bytes())
    system = [layer for layer in manifest["layers"] if layer["mediaType"].endswith(".system")][0]
    client.delete("ns/other:1")
    assert not (double.models_dir / "blobs" / system["digest"].replace(":", "-")).exists()
    assert (double.models_dir / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")).exists()  # base uses it
    assert not (double.models_dir / "manifests/registry.ollama.ai/ns").exists()


def test_overwriting_a_tag_prunes_what_only_the_old_manifest_used(double: OllamaDouble, client: ollama.Client,
                                                                 base_model: str) -> None:
    client.create("over:1", from_=base_model, system="first")
    old = json.loads(manifest_path(double, "over:1").read_bytes())
    client.create("over:1", from_=base_model, system="second")
    old_system = [layer for layer in old["layers"] if layer["mediaType"].endswith(".system")][0]
    assert not (double.models_dir / "blobs" / old_system["digest"].replace(":", "-")).exists()


# What Ollama 0.33.0-rc2-0-gfb30760 did with make_gguf(seed=1): its llama-quantize COPY wrote
# a 704-byte model layer, and the model created from it alone was listed at this digest.
REAL_COPY_LAYER = "sha256:047008dca83ad097dc061564a46004f4d368a3bacfcaa5ef8377ec98fbcc8907"
REAL_MODEL_DIGEST = "f28f0f48f14f187f76a4cc1bb85fa7df8a0e23d2abf6f90d9cc94ba1a01b33ed"


def test_a_gguf_is_stored_as_the_real_servers_llama_quantize_copy(
        double: OllamaDouble, client: ollama.Client, http: httpx.Client, gguf_file: Callable[..., Path]) -> None:
    upload = client.create_blob(gguf_file(seed=1))
    first = [line.status for line in client.create("copied:1", files={"a.gguf": upload}, stream=True)]
    assert first == ["parsing GGUF", "verifying conversion", f"creating new layer {REAL_COPY_LAYER}",
                     "writing manifest", "success"]
    assert digest_of(client, "copied:1") == REAL_MODEL_DIGEST
    layer = double.models_dir / "blobs" / REAL_COPY_LAYER.replace(":", "-")
    assert layer.stat().st_size == 704
    again = [line.status for line in client.create("copied:2", files={"b.gguf": upload}, stream=True)]
    assert again[2] == f"using existing layer {REAL_COPY_LAYER}"
    assert digest_of(client, "copied:2") == REAL_MODEL_DIGEST  # the file's name is not in the layer
    client.delete("copied:1")
    client.delete("copied:2")
    assert not layer.exists()  # the rewritten layer goes with its last model...
    assert http.head(f"/api/blobs/{upload}").status_code == 200  # ...the upload stays, as on a real server


def test_changes_behind_the_doubles_back_are_seen(double: OllamaDouble, client: ollama.Client,
                                                  base_model: str) -> None:
    assert [m.model for m in client.list().models] == [base_model]
    shutil.copy(manifest_path(double, base_model), manifest_path(double, base_model).with_name("2"))
    assert sorted(m.model for m in client.list().models) == ["base:1", "base:2"]
    manifest_path(double, base_model).unlink()
    assert [m.model for m in client.list().models] == ["base:2"]


def test_large_upload_is_streamed(http: httpx.Client, tmp_path: Path) -> None:
    size = 48 * 1024 * 1024
    block = hashlib.sha256(b"x").digest() * (1024 * 1024 // 32)
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)
    name = "sha256:" + digest.hexdigest()

    def body() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(size // len(block)):
            yield block

    assert http.post(f"/api/blobs/{name}", content=body()).status_code == 201
    again = http.post(f"/api/blobs/{name}", content=block * 4)  # exists: answered without reading
    assert again.status_code == 200
    assert http.head(f"/api/blobs/{name}").status_code == 200


def test_gguf_that_a_real_server_would_reject(client: ollama.Client, tmp_path: Path) -> None:
    cases = {
        "arch": make_gguf(tmp_path / "arch.gguf", 1, architecture="foobar"),
        "keys": tmp_path / "keys.gguf",
    }
    from gguf import GGUFWriter

    writer = GGUFWriter(cases["keys"], "llama")
    writer.add_uint32("llama.context_length", 8)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    for label, path in cases.items():
        blob = client.create_blob(path)
        with pytest.raises(ollama.ResponseError) as caught:
            client.create(f"reject-{label}:1", files={"m.gguf": blob})
        assert caught.value.status_code == 500
        assert caught.value.error.startswith("failed to validate GGUF with llama-quantize"), label


def test_quantize_and_safetensors_are_refused_clearly(client: ollama.Client, base_model: str,
                                                      gguf_file: Callable[..., Path]) -> None:
    blob = client.create_blob(gguf_file(seed=16))
    client.create("same-quant:1", files={"m.gguf": blob}, quantize="f16")  # a no-op is fine
    with pytest.raises(ollama.ResponseError, match="not supported by the Ollama test double"):
        client.create("quant:1", files={"m.gguf": blob}, quantize="q4_K_M")
    with pytest.raises(ollama.ResponseError, match="safetensors models are not supported"):
        client.create("st:1", files={"model.safetensors": blob})


# --- generate and chat -------------------------------------------------------------------------

def test_generate_is_deterministic(client: ollama.Client, base_model: str) -> None:
    a = client.generate(base_model, "What is 2+2?").response
    assert a == client.generate(base_model, "What is 2+2?").response
    assert a.startswith("Test double reply ") and a.endswith(" from base:1: What is 2+2?")
    assert a != client.generate(base_model, "What is 2+2?", options={"seed": 7}).response
    assert a != client.generate(base_model, "What is 2+2?", system="Another system").response
    streamed = "".join(part.response for part in client.generate(base_model, "What is 2+2?", stream=True))
    assert streamed == a
    final = client.generate(base_model, "What is 2+2?")
    assert (final.done, final.done_reason) == (True, "stop") and final.eval_count
    short = client.generate(base_model, "What is 2+2?", options={"num_predict": 2})
    assert short.done_reason == "length" and len(short.response.split()) == 2
    loaded = client.generate(base_model, "")
    assert (loaded.done_reason, loaded.response) == ("load", "")
    assert client.generate(base_model, "", keep_alive=0).done_reason == "unload"
    assert client.chat(base_model, messages=[], keep_alive="0s").done_reason == "unload"


def test_json_mode_answers_json(client: ollama.Client, base_model: str) -> None:
    client.create("jsonbot:1", from_=base_model, system="Always answer with a JSON object.")
    answer = json.loads(client.generate("jsonbot:1", "list three colors").response)
    assert answer["prompt"] == "list three colors" and answer["model"] == "jsonbot:1"
    chat = client.chat(base_model, messages=[{"role": "user", "content": "hi"}], format="json")
    assert json.loads(chat.message.content)["prompt"] == "hi"


def test_chat_and_scripted_replies(double: OllamaDouble, client: ollama.Client, base_model: str) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    first = client.chat(base_model, messages=messages)
    assert first.message.role == "assistant" and first.message.content.endswith("from base:1: Hello")
    assert client.chat(base_model, messages=messages).message.content == first.message.content
    streamed = "".join(p.message.content for p in client.chat(base_model, messages=messages, stream=True))
    assert streamed == first.message.content
    double.controls.set_reply("Base:1", "Ahoy.")
    assert client.chat(base_model, messages=messages).message.content == "Ahoy."
    assert client.generate(base_model, "anything").response == "Ahoy."
    double.controls.clear_replies()
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat("absent:1", messages=messages)
    assert (caught.value.status_code, caught.value.error) == (404, "model 'absent:1' not found")


# --- names and JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "valid", "shortest"), [
    ("llama3.2", True, "llama3.2:latest"),
    ("user/m:t", True, "user/m:t"),
    ("example.com:5000/ns/m:1.0", True, "example.com:5000/ns/m:1.0"),
    ("registry.ollama.ai/library/m:t", True, "m:t"),
    ("m:", False, None),
    ("/m", False, None),
    ("a/b/c/d", False, None),
    ("ns.x/m", False, None),
    ("m@sha256:" + "0" * 64, False, None),
    ("-m", False, None),
    ("m" * 80, True, "m" * 80 + ":latest"),
    ("m" * 81, False, None),
    ("h" * 350 + "/ns/m", True, None),
    ("h" * 351 + "/ns/m", False, None),
    ("m:t:x", False, None),
    ("mödel", False, None),
])
def test_model_names(text: str, valid: bool, shortest: str | None) -> None:
    name = names.parse(text)
    assert name.is_valid() is valid
    if shortest:
        assert name.display_shortest() == shortest


def test_go_json_encoding() -> None:
    assert gojson.dumps({"b": 1.0, "a": "<&>", "c": [1e-7, 1e21, 0.5, 12345678.0]}) == (
        '{"a":"\\u003c\\u0026\\u003e","b":1,"c":[1e-7,1e+21,0.5,12345678]}')
    assert gojson.encode_line(gojson.Struct(z=1, a=None)) == b'{"z":1,"a":null}\n'


# --- GGUF maker ----------------------------------------------------------------------------------

def test_gguf_maker_is_deterministic_and_valid(tmp_path: Path) -> None:
    from gguf import GGUFReader

    assert gguf_bytes(1) == gguf_bytes(1)
    assert gguf_bytes(1) != gguf_bytes(2)
    path = make_gguf(tmp_path / "three.gguf", 5, n_tensors=3, size=32)
    reader = GGUFReader(path)
    assert [t.name for t in reader.tensors] == ["token_embd.weight", "blk.0.attn_norm.weight", "blk.1.attn_norm.weight"]
    fields = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    for key in ("llama.embedding_length", "llama.attention.layer_norm_rms_epsilon", "llama.context_length",
                "llama.block_count", "llama.attention.head_count", "llama.feed_forward_length",
                "general.file_type", "general.name"):
        assert key in fields, key
    big = make_gguf(tmp_path / "big.gguf", 5, pad_to_bytes=3 * 1024 * 1024 + 7)
    assert 3 * 1024 * 1024 + 7 <= big.stat().st_size < 3 * 1024 * 1024 + 7 + 32
    assert GGUFReader(big).tensors[-1].n_elements > 1024 * 1024


# --- process wrapper and cleanliness -----------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_module_runs_as_a_process_and_stops_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ollama_double", "--models", str(tmp_path / "models"),
         "--registry", str(tmp_path / "registry"), "--port", "0", "--port-file", str(port_file)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")},
    )
    try:
        deadline = time.monotonic() + 20
        port = ""
        while time.monotonic() < deadline and proc.poll() is None:
            port = port_file.read_text().strip() if port_file.exists() else ""
            if port:
                break
            time.sleep(0.05)
        assert port, "the double did not start in time"
        version = httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=5)
        assert version.json() == {"version": "0.33.0-rc2-0-gfb30760"}
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"listening on http://127.0.0.1:{port}" in out and "stopped" in out
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def test_stop_leaves_no_threads_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    double = OllamaDouble(tmp_path / "models").start()
    keep_alive = httpx.Client(base_url=double.url)  # an idle keep-alive connection stays open
    keep_alive.get("/api/tags")
    double.controls.delay("GET", "/api/version", 30)
    outcome: list[Any] = []

    def slow_request() -> None:
        try:
            outcome.append(httpx.get(double.url + "/api/version", timeout=10))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    slow = threading.Thread(target=slow_request, daemon=True)
    slow.start()
    time.sleep(0.1)
    start = time.monotonic()
    double.stop()
    assert time.monotonic() - start < 2
    slow.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)  # cut, not answered
    keep_alive.close()
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []


def test_tags_is_fast_with_a_thousand_models(double: OllamaDouble, http: httpx.Client, base_model: str) -> None:
    source = manifest_path(double, base_model)
    for i in range(1000):
        target = source.parent.parent / f"bulk{i}" / "latest"
        target.parent.mkdir()
        shutil.copy(source, target)
    assert len(http.get("/api/tags").json()["models"]) == 1001
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        assert http.get("/api/tags").status_code == 200
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.1, timings


def test_many_sequential_creates_stay_fast(double: OllamaDouble, client: ollama.Client, base_model: str) -> None:
    start = time.monotonic()
    for i in range(200):
        client.create(f"seq{i}:1", from_=base_model, system=f"prompt {i}")
    elapsed = time.monotonic() - start
    assert len(client.list().models) == 201
    assert elapsed < 10, elapsed


def test_a_bug_in_the_double_is_a_500_and_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.ollama_double.app import App

    def broken(self: App, *args: Any) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(App, "ps", broken)
    with OllamaDouble(tmp_path / "models") as double:
        response = httpx.get(double.url + "/api/ps", timeout=5)
        assert response.status_code == 500
        assert "internal error in the Ollama test double" in response.json()["error"]
        assert len(double.internal_errors) == 1 and "ZeroDivisionError" in double.internal_errors[0]
        assert httpx.get(double.url + "/api/version", timeout=5).status_code == 200  # still serving
