"""A real OCI registry for the tests: Distribution (`docker-registry`) on 127.0.0.1.

`Distribution(workdir).start()` writes the config docs/registry.md gives users, with
filesystem storage under `workdir` and `http.addr` on 127.0.0.1 and a free port (no
authentication, deletes enabled), and starts `docker-registry serve` on it, stopped later
by its PID. Beside it runs a plain file
server for the storage folder, and Distribution's `redirect` storage middleware points blob
downloads at it under another host name (`localhost` instead of `127.0.0.1`): a real Ollama
only downloads a blob that the registry answers with a redirect to a different host name
(ollama issue #7244). docs/registry.md shows the same set-up for a team.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import os
import re
import signal
import subprocess
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from tests.real_ollama import free_port

__all__ = ["BINARY", "Distribution", "FileServer", "missing_reason"]

BINARY: Final = os.environ.get("DOIT_OLLAMA_TEST_REGISTRY_BINARY", "/usr/bin/docker-registry")
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
MANIFEST_TYPE: Final = "application/vnd.docker.distribution.manifest.v2+json"

DOCS: Final = Path(__file__).resolve().parent.parent / "docs" / "registry.md"
CONFIG_MARKER: Final = "<!-- registry-config"


def config_from_docs(storage: Path, port: int, files_port: int, *, redirect: bool = True) -> str:
    """The Distribution config docs/registry.md shows, with this run's folder and ports: the
    tests run the set-up the documentation gives users, not one of their own."""
    text = DOCS.read_text(encoding="utf-8")
    block = text[text.index(CONFIG_MARKER):].split("```yaml\n", 1)[1].split("```", 1)[0]
    replacements = {
        "rootdirectory": str(storage),
        "addr": f"127.0.0.1:{port}",
        "baseurl": f"http://localhost:{files_port}",  # another host name than 127.0.0.1
    }
    for key, value in replacements.items():
        block, found = re.subn(rf"^(\s*{key}:)\s*\S+", rf"\g<1> {value}", block, flags=re.M)
        if found != 1:
            raise RuntimeError(f"docs/registry.md: the registry config has no single {key}:")
    if not redirect:
        block = block.split("middleware:")[0]
    return block


def missing_reason() -> str | None:
    """Why the registry tests cannot run here, or None when they can."""
    if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
        return (f"no Distribution registry at {BINARY} (Debian: apt-get install docker-registry; "
                ".ci/run installs it)")
    return None


class _RangeFileHandler(SimpleHTTPRequestHandler):
    """A static file server that honours one `Range: bytes=a-b` (Ollama downloads in parts)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not path.is_file() or match is None:
            return super().send_head()
        size = path.stat().st_size
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        if start > end:
            self.send_error(416)
            return None
        handle = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", email.utils.formatdate(path.stat().st_mtime, usegmt=True))
        self.end_headers()
        self._remaining = end - start + 1
        return handle

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            super().copyfile(source, outputfile)
            return
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


class FileServer:
    """The storage folder over plain HTTP on 127.0.0.1, in a thread of the test process."""

    def __init__(self, root: Path, port: int = 0):
        self.root = root
        self._server = ThreadingHTTPServer(("127.0.0.1", port),
                                           partial(_RangeFileHandler, directory=str(root)))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="registry-files")

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT)


class Distribution:
    """One `docker-registry serve` on 127.0.0.1 with its storage and file server under workdir."""

    def __init__(self, workdir: Path, *, binary: str = BINARY, redirect: bool = True):
        self.workdir = workdir
        self.binary = binary
        self.redirect = redirect  # False: blobs served directly, which a real Ollama cannot pull
        self.storage = workdir / "storage"
        self.config_path = workdir / "config.yml"
        self.log_path = workdir / "registry.log"
        self.port = 0
        self._files: FileServer | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """HOST:PORT, as Ollama model names carry it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Distribution:
        """Write the config, start the file server and the registry, wait until /v2/ answers."""
        self.storage.mkdir(parents=True, exist_ok=True)
        self._files = FileServer(self.storage).start()
        self.port = free_port()
        self.config_path.write_text(config_from_docs(self.storage, self.port, self._files.port,
                                                     redirect=self.redirect))
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "serve", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env={"PATH": os.environ.get("PATH", "")},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log_text = self.log_tail()
                self.stop()
                raise RuntimeError(f"docker-registry exited with {self._process and self._process.returncode}:"
                                   f"\n{log_text}")
            try:
                if self.request("GET", "/v2/")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        log_text = self.log_tail()
        self.stop()
        raise RuntimeError(f"docker-registry did not answer within {START_TIMEOUT:g} s:\n{log_text}")

    def stop(self) -> None:
        """Stop the registry by its PID (SIGTERM, then SIGKILL) and the file server."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._files is not None:
            self._files.stop()
            self._files = None

    def __enter__(self) -> Distribution:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- what the tests ask of it directly ---------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One plain HTTP request to the registry (no redirects followed)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def manifest(self, repository: str, tag: str) -> bytes | None:
        """The manifest bytes of `repository:tag` ("library/base"), or None."""
        status, _, data = self.request("GET", f"/v2/{repository}/manifests/{tag}",
                                       headers={"Accept": MANIFEST_TYPE})
        return data if status == 200 else None

    def digest(self, repository: str, tag: str) -> str | None:
        """The registry's digest of `repository:tag` (Docker-Content-Digest), or None."""
        status, headers, _ = self.request("HEAD", f"/v2/{repository}/manifests/{tag}",
                                          headers={"Accept": MANIFEST_TYPE})
        return headers.get("docker-content-digest") if status == 200 else None

    def put_manifest(self, repository: str, tag: str, data: bytes) -> str:
        """Overwrite a tag by hand (its blobs must be there); returns the new digest."""
        status, _, body = self.request("PUT", f"/v2/{repository}/manifests/{tag}", body=data,
                                       headers={"Content-Type": MANIFEST_TYPE})
        if status != 201:
            raise RuntimeError(f"PUT manifest {repository}:{tag}: {status} {body!r}")
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def overwrite_with(self, repository: str, tag: str, other_tag: str) -> str:
        """Make `repository:tag` serve the manifest of `repository:other_tag`, as someone
        re-pushing by hand would; returns the digest it now serves."""
        data = self.manifest(repository, other_tag)
        if data is None:
            raise RuntimeError(f"{repository}:{other_tag} is not in the registry")
        return self.put_manifest(repository, tag, data)
