"""Routing and handlers: Ollama's REST API plus the `/_double/` test-control endpoints."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from . import create, describe, gojson, inference, names, pull, push
from .errors import ApiError
from .faults import Controls, Fault
from .names import Name
from .registry import Registry
from .store import RECENT, Store
from .wire import Body, DropConnection, Exchange, StreamWriter

__all__ = ["App"]

Handler = Callable[["App", Exchange, dict[str, str], Any], None]
_MAX_JSON = 64 * 1024 * 1024
_STREAMING = frozenset(("/api/create", "/api/pull", "/api/push", "/api/generate", "/api/chat"))


def _progress(value: dict[str, Any]) -> gojson.Struct:
    """api.ProgressResponse: status, then digest/total/completed when non-empty."""
    out = gojson.Struct(status=value.get("status", ""))
    for key in ("digest", "total", "completed"):
        if value.get(key):
            out[key] = value[key]
    return out


def _now_utc() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}".rstrip("0") + "Z"


def _pull_name(raw: str) -> Name:
    """parseNormalizePullModelRef: ':cloud' becomes the legacy '-cloud' / ':cloud' tag."""
    base, source = names.parse_ref(raw)
    if source == "cloud":
        base = base + "-cloud" if base.rfind(":") > base.rfind("/") else base + ":cloud"
    return names.parse(base)


class App:
    """Everything behind the socket: routes, the store, the registry and the controls."""

    def __init__(self, store: Store, registry: Registry | None, version: str, controls: Controls,
                 stopping: threading.Event) -> None:
        self.store = store
        self.registry = registry
        self.version = version
        self.controls = controls
        self.stopping = stopping
        self.bugs: list[str] = []  # tracebacks of unexpected exceptions (bugs in the double)
        self.routes: list[tuple[str, dict[str, tuple[Handler, str | None]]]] = [
            ("/", {"GET": (App.root, None), "HEAD": (App.root, None)}),
            ("/api/version", {"GET": (App.api_version, None), "HEAD": (App.api_version, None)}),
            ("/api/tags", {"GET": (App.tags, None), "HEAD": (App.tags, None)}),
            ("/api/ps", {"GET": (App.ps, None)}),
            ("/api/show", {"POST": (App.show, "ShowRequest")}),
            ("/api/delete", {"DELETE": (App.delete, "DeleteRequest")}),
            ("/api/copy", {"POST": (App.copy, "CopyRequest")}),
            ("/api/create", {"POST": (App.create, "CreateRequest")}),
            ("/api/pull", {"POST": (App.pull, "PullRequest")}),
            ("/api/push", {"POST": (App.push, "PushRequest")}),
            ("/api/blobs/:digest", {"POST": (App.blob_post, None), "HEAD": (App.blob_head, None)}),
            ("/api/generate", {"POST": (App.generate, "GenerateRequest")}),
            ("/api/chat", {"POST": (App.chat, "ChatRequest")}),
        ]

    # --- dispatch ----------------------------------------------------------------------------

    def _match(self, path: str) -> tuple[dict[str, tuple[Handler, str | None]] | None, dict[str, str]]:
        for pattern, methods in self.routes:
            if pattern.endswith("/:digest"):
                prefix = pattern[: -len(":digest")]
                rest = path[len(prefix):]
                if path.startswith(prefix) and rest and "/" not in rest:
                    return methods, {"digest": rest}
            elif path == pattern:
                return methods, {}
        return None, {}

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request on `handler` (called from the HTTP server's thread)."""
        body = Body(handler)
        x = Exchange(handler, body)
        url = urlsplit(handler.path)
        path, method = url.path, handler.command
        try:
            if path == "/_double" or path.startswith("/_double/"):
                self._control(x, method, path, parse_qs(url.query))
                return
            methods, params = self._match(path)
            entry = methods.get(method) if methods else None
            value: Any = None
            problem: ApiError | None = None
            if entry is not None and entry[1] is not None:
                try:
                    raw = body.read_all() if (body.length or 0) <= _MAX_JSON else b""
                    value = gojson.decode_body(raw)
                except (gojson.MissingBody, gojson.BadRequestBody) as exc:
                    problem = ApiError(400, str(exc))
            model = self._model_of(path, value)
            x.record = self.controls.record(method, path, model)
            faults = self.controls.take_faults(method, path, model)
            self._pre_faults(x, faults, streaming=path in _STREAMING)
            if x.status is not None:
                return
            if methods is None:
                x.text(404, "404 page not found")
            elif entry is None:
                x.text(405, "405 method not allowed")
            elif problem is not None:
                x.error(problem.status, problem.message)
            else:
                entry[0](self, x, params, (value, faults))
        except DropConnection:
            x.drop()
        except ApiError as exc:
            if x.status is None:
                x.error(exc.status, exc.message)
        except (ConnectionError, TimeoutError, socket.timeout):
            handler.close_connection = True
        except Exception as exc:  # a bug in the double: say so loudly, keep serving
            self.bugs.append(traceback.format_exc())
            traceback.print_exc(file=sys.stderr)
            if x.status is None:
                try:
                    x.error(500, f"internal error in the Ollama test double: {exc!r}")
                except OSError:
                    pass
            handler.close_connection = True
        finally:
            if x.close_after and not body.done:
                x.linger_close()

    @staticmethod
    def _model_of(path: str, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        keys = ("source",) if path == "/api/copy" else ("model", "name")
        for key in keys:
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
        return None

    def _pre_faults(self, x: Exchange, faults: dict[str, Fault], streaming: bool) -> None:
        if "delay" in faults and self.stopping.wait(faults["delay"].seconds):
            raise DropConnection()  # the double is stopping: give up on this request
        if "hang" in faults:
            timeout = faults["hang"].seconds or None
            self.stopping.wait(timeout)
            raise DropConnection()
        if "fail" in faults:
            fault = faults["fail"]
            x.error(fault.status, fault.message)
        elif not streaming and "drop" in faults:
            raise DropConnection()
        elif not streaming and "error_line" in faults:
            x.error(500, faults["error_line"].message)

    def _stream(self, x: Exchange, stream: bool, faults: dict[str, Fault],
                op: Callable[[Callable[[Any], None]], None]) -> None:
        """Run an operation that reports progress, as streamResponse / waitForStream do."""
        drop, err = faults.get("drop"), faults.get("error_line")
        writer = StreamWriter(x, drop_after=drop.after_lines if drop else None,
                              error_after=(err.after_lines, err.message) if err else None)
        if stream:
            try:
                op(writer.emit)
                writer.finish()
            except ApiError as exc:
                writer.fail(exc)
            return
        last: list[Any] = [gojson.Struct(status="")]

        def keep(value: Any) -> None:
            writer._check()
            writer.lines += 1
            last[0] = value

        try:
            op(keep)
            writer._check(final=True)
        except ApiError as exc:
            x.stream_json(exc.status, gojson.Struct(error=exc.message))
            return
        x.stream_json(200, last[0])

    # --- simple endpoints --------------------------------------------------------------------

    def root(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        x.text(200, "Ollama is running")

    def api_version(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        x.json(200, gojson.Struct(version=self.version))

    def tags(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        body = describe.list_models_json(self.store).encode("utf-8")
        x.send(200, body, "application/json; charset=utf-8")

    def ps(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        x.json(200, gojson.Struct(models=[]))

    # --- model management --------------------------------------------------------------------

    def show(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        req = gojson.decode_struct(arg[0], "ShowRequest", {
            "model": "string", "name": "string", "system": "string", "template": "string",
            "verbose": "bool", "options": "anymap"})
        raw = req["model"] or req["name"]
        if not raw:
            raise ApiError(400, "model is required")
        try:
            base, source = names.parse_ref(raw)
        except names.NameRefError as exc:
            raise ApiError(400, str(exc)) from None
        name = names.parse(base)
        if not name.is_valid():
            raise ApiError(400, "invalid model name")
        if source == "cloud":
            raise ApiError(400, "cloud models are not supported by the Ollama test double")
        name = self.store.existing_name(name)
        x.json(200, describe.show(self.store, name, req["system"] or "", bool(req["verbose"])))

    def delete(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        req = gojson.decode_struct(arg[0], "DeleteRequest", {"model": "string", "name": "string"})
        raw = req["model"] or req["name"] or ""
        try:
            name = _pull_name(raw)
        except names.NameRefError as exc:
            raise ApiError(400, str(exc)) from None
        if not name.is_valid():
            raise ApiError(400, f"name {gojson.go_quote(raw)} is invalid")
        with self.store.lock:
            manifest = self.store.read_manifest(self.store.existing_name(name, RECENT))
            if manifest is None:
                raise ApiError(404, f"model '{raw}' not found")
            self.store.delete_manifest(manifest)
            self.store.remove_unused(manifest.digests())
        x.empty(200)

    def copy(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        req = gojson.decode_struct(arg[0], "CopyRequest", {"source": "string", "destination": "string"})
        source, destination = req["source"] or "", req["destination"] or ""
        src = names.parse(source)
        if not src.is_valid():
            raise ApiError(400, f"source {gojson.go_quote(source)} is invalid")
        src = self.store.existing_name(src, RECENT)
        dst = names.parse(destination)
        if not dst.is_valid():
            raise ApiError(400, f"destination {gojson.go_quote(destination)} is invalid")
        dst = self.store.existing_name(dst, RECENT)
        with self.store.lock:
            if src.parts() != dst.parts():
                try:
                    data = self.store.manifest_path(src).read_bytes()
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    raise ApiError(404, f"model {gojson.go_quote(source)} not found") from None
                self.store.write_manifest(dst, data)
        x.empty(200)

    def blob_head(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        digest = params["digest"]
        path = self.store.blob_path(digest)
        if not path.is_file():
            raise ApiError(404, f"blob {gojson.go_quote(digest)} not found")
        x.empty(200)

    def blob_post(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        digest = params["digest"]
        path = self.store.blob_path(digest)
        if path.is_file():
            x.empty(200)  # the body is not read (at most 256 KiB is discarded, as Go does)
            return
        actual, _size = self.store.ingest(x.body.chunks())
        if actual != digest:
            raise ApiError(400, f"digest mismatch, expected {gojson.go_quote(digest)}, got {gojson.go_quote(actual)}")
        x.empty(201)

    def create(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        value, faults = arg
        req = gojson.decode_struct(value, "CreateRequest", create.CREATE_FIELDS)
        name = create.precheck(self.store, req)

        def auto_pull(base: Name, emit: Callable[[Any], None]) -> None:
            pull.pull(self.store, self.registry, base, emit)

        self._stream(x, req["stream"] is not False, faults, lambda emit: create.create(
            self.store, name, req, lambda v: emit(_progress(v)), auto_pull))

    def pull(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        value, faults = arg
        req = gojson.decode_struct(value, "PullRequest", {
            "model": "string", "name": "string", "insecure": "bool", "stream": "bool",
            "username": "string", "password": "string"})
        raw = req["model"] or req["name"] or ""
        try:
            name = _pull_name(raw)
        except names.NameRefError as exc:
            message = "invalid model name" if str(exc) == "model is required" else str(exc)
            raise ApiError(400, message) from None
        if not name.is_valid():
            raise ApiError(400, "invalid model name")
        name = names.parse(self.store.existing_name(name, RECENT).display_shortest())
        self._stream(x, req["stream"] is not False, faults, lambda emit: pull.pull(
            self.store, self.registry, name, lambda v: emit(_progress(v)), bool(req["insecure"])))

    def push(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        value, faults = arg
        req = gojson.decode_struct(value, "PushRequest", {
            "model": "string", "name": "string", "insecure": "bool", "stream": "bool",
            "username": "string", "password": "string"})
        raw = req["model"] or req["name"] or ""
        if not raw:
            raise ApiError(400, "model is required")
        name = names.parse(raw)
        if not name.is_valid():
            raise ApiError(400, "invalid model name")
        name = self.store.existing_name(name, RECENT)
        self._stream(x, req["stream"] is not False, faults, lambda emit: push.push(
            self.store, name, lambda v: emit(_progress(v)), bool(req["insecure"])))

    # --- inference ---------------------------------------------------------------------------

    def generate(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        self._infer(x, arg, chat=False)

    def chat(self, x: Exchange, params: dict[str, str], arg: Any) -> None:
        self._infer(x, arg, chat=True)

    def _infer(self, x: Exchange, arg: Any, chat: bool) -> None:
        value, faults = arg
        fields = inference.CHAT_FIELDS if chat else inference.GENERATE_FIELDS
        req = gojson.decode_struct(value, "ChatRequest" if chat else "GenerateRequest", fields)
        raw = req["model"] or ""
        try:
            base, source = names.parse_ref(raw)
        except names.NameRefError as exc:
            if str(exc) == "model is required":
                raise ApiError(404, f"model '{raw}' not found") from None
            raise ApiError(400, str(exc)) from None
        name = names.parse(base)
        if not name.is_valid():
            raise ApiError(400, "invalid model name")
        if source == "cloud":
            raise ApiError(400, "cloud models are not supported by the Ollama test double")
        name = self.store.existing_name(name)
        manifest = self.store.read_manifest(name)
        if manifest is None:
            raise ApiError(404, f"model '{raw}' not found")
        view = describe.ModelView(self.store, manifest)
        created = _now_utc()
        if (chat and not req["messages"]) or (not chat and not req["prompt"]):
            reason = "unload" if inference.is_unload(req["keep_alive"]) else "load"
            x.json(200, inference.final_line(raw, created, None, chat, reason=reason))
            return
        display = name.display_shortest()
        reply = inference.make_reply(view, display, req, chat, self.controls.reply_for(display))

        def op(emit: Callable[[Any], None]) -> None:
            for chunk in reply.lines():
                emit(inference.chunk_line(raw, created, chunk, chat))
            emit(inference.final_line(raw, created, reply, chat))

        if req["stream"] is False:
            drop = faults.get("drop")
            if drop is not None:
                raise DropConnection()
            if "error_line" in faults:
                raise ApiError(500, faults["error_line"].message)
            x.json(200, inference.final_line(raw, created, reply, chat, reply.text))
            return
        self._stream(x, True, faults, op)

    # --- test controls -----------------------------------------------------------------------

    def _control(self, x: Exchange, method: str, path: str, query: dict[str, list[str]]) -> None:
        c = self.controls
        one = {key: values[-1] for key, values in query.items()}
        try:
            body: Any = None
            if method in ("POST", "PUT"):
                raw = x.body.read_all()
                body = gojson.decode_body(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("the request body must be a JSON object")
            route = (method, path.rstrip("/") or "/")
            if route == ("GET", "/_double"):
                x.json(200, {"endpoints": [
                    "GET /_double/requests", "DELETE /_double/requests", "GET /_double/requests/count",
                    "GET /_double/faults", "POST /_double/faults", "DELETE /_double/faults",
                    "POST /_double/replies", "DELETE /_double/replies", "POST /_double/registry",
                    "POST /_double/reset"]})
            elif route == ("GET", "/_double/requests"):
                x.json(200, {"requests": [vars(r) for r in c.requests()]})
            elif route == ("DELETE", "/_double/requests"):
                c.reset_requests()
                x.json(200, {"ok": True})
            elif route == ("GET", "/_double/requests/count"):
                x.json(200, {"count": c.count(one.get("method"), one.get("path"), one.get("model"))})
            elif route == ("GET", "/_double/faults"):
                x.json(200, {"faults": [f.to_json() for f in c.faults()]})
            elif route == ("POST", "/_double/faults"):
                allowed = {"kind", "method", "path", "model", "times", "status", "message", "seconds",
                           "after_lines", "timeout"}
                unknown = set(body) - allowed
                if unknown:
                    raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
                args = dict(body)
                if "timeout" in args:
                    args["seconds"] = args.pop("timeout") or 0.0
                elif args.get("kind") == "hang" and "seconds" not in args:
                    args["seconds"] = 30.0  # as Controls.hang: never wait forever by default
                kind, fmethod, fpath = args.pop("kind", None), args.pop("method", None), args.pop("path", None)
                if not (kind and fmethod and fpath):
                    raise ValueError("a fault needs kind, method and path")
                fault = c.add_fault(kind, fmethod, fpath, **args)
                x.json(200, {"fault": fault.to_json()})
            elif route == ("DELETE", "/_double/faults"):
                c.clear_faults()
                x.json(200, {"ok": True})
            elif route == ("POST", "/_double/replies"):
                if not isinstance(body.get("model"), str) or not isinstance(body.get("reply"), str):
                    raise ValueError("a reply needs model and reply (strings)")
                c.set_reply(body["model"], body["reply"])
                x.json(200, {"ok": True})
            elif route == ("DELETE", "/_double/replies"):
                c.clear_replies()
                x.json(200, {"ok": True})
            elif route == ("POST", "/_double/registry"):
                gguf: Any = body.get("gguf_path")
                if body.get("gguf_base64"):
                    gguf = base64.b64decode(body["gguf_base64"], validate=True)
                if not gguf or not isinstance(body.get("name"), str):
                    raise ValueError("publishing needs name and gguf_path or gguf_base64")
                digest = c.replace_registry_model(
                    body["name"], gguf, template=body.get("template"), system=body.get("system"),
                    parameters=body.get("parameters"), license=body.get("license"),
                    messages=body.get("messages"))
                x.json(200, {"digest": digest})
            elif route == ("POST", "/_double/reset"):
                c.reset()
                x.json(200, {"ok": True})
            else:
                x.error(404, f"no test control at {method} {path}")
        except (ValueError, TypeError, RuntimeError, OSError, binascii.Error) as exc:
            x.error(400, str(exc))
