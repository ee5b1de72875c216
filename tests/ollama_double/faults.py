"""Test controls the real server lacks: a request log, injected faults, scripted replies,
and publishing into the registry folder. Used in-process as `double.controls` and over
HTTP under `/_double/` (see app.py)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import names
from .registry import publish_model

__all__ = ["Controls", "Fault", "RequestRecord", "FAULT_KINDS"]

FAULT_KINDS = ("fail", "delay", "drop", "hang", "error_line")


def _model_key(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        base, _source = names.parse_ref(text)
    except names.NameRefError:
        return text.strip().lower()
    name = names.parse(base)
    return "/".join(name.fold()) if name.is_valid() else text.strip().lower()


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


@dataclass
class RequestRecord:
    """One API request as the double saw it; status is None until answered (or if cut)."""

    method: str
    path: str
    model: str | None
    status: int | None = None


@dataclass
class Fault:
    """An injected misbehaviour for requests matching method, path (a trailing * is a
    prefix match) and optionally model. `times` is how many more requests it affects
    (None: all)."""

    id: int
    kind: str
    method: str
    path: str
    model: str | None = None
    times: int | None = 1
    status: int = 500
    message: str = "injected failure"
    seconds: float = 0.0
    after_lines: int = 0
    hits: int = 0

    def matches(self, method: str, path: str, model: str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method.upper() != method.upper() or not _path_matches(self.path, path):
            return False
        return self.model is None or _model_key(self.model) == _model_key(model)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Controls:
    """The double's test controls; all methods are thread-safe."""

    registry_dir: Path | None = None
    _log: list[RequestRecord] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _replies: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    # --- request log -------------------------------------------------------------------------

    def record(self, method: str, path: str, model: str | None) -> RequestRecord:
        entry = RequestRecord(method, path, model)
        with self._lock:
            self._log.append(entry)
        return entry

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first (control endpoints are not logged)."""
        with self._lock:
            return [RequestRecord(**asdict(r)) for r in self._log]

    def count(self, method: str | None = None, path: str | None = None, model: str | None = None) -> int:
        """How many logged requests match (path may end in * for a prefix)."""
        with self._lock:
            log = list(self._log)
        return sum(
            1
            for r in log
            if (method is None or r.method.upper() == method.upper())
            and (path is None or _path_matches(path, r.path))
            and (model is None or _model_key(model) == _model_key(r.model))
        )

    def reset_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    def reset(self) -> None:
        """Empty the request log and remove every fault and scripted reply."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._replies.clear()

    # --- faults ------------------------------------------------------------------------------

    def add_fault(self, kind: str, method: str, path: str, *, model: str | None = None,
                  times: int | None = 1, status: int = 500, message: str = "injected failure",
                  seconds: float = 0.0, after_lines: int = 0) -> Fault:
        """Register a fault of one of FAULT_KINDS (the helpers below are friendlier)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            fault = Fault(next(iter(self._ids)), kind, method.upper(), path, model, times, int(status),
                          message, float(seconds), int(after_lines))
            self._faults.append(fault)
        return fault

    def fail_next(self, method: str, path: str, *, status: int = 500, message: str = "injected failure",
                  times: int = 1, model: str | None = None) -> Fault:
        """The next `times` matching requests get `status` and {"error": message}."""
        return self.add_fault("fail", method, path, model=model, times=times, status=status, message=message)

    def delay(self, method: str, path: str, seconds: float, *, times: int | None = None,
              model: str | None = None) -> Fault:
        """Wait `seconds` before handling matching requests (every one unless `times`)."""
        return self.add_fault("delay", method, path, model=model, times=times, seconds=seconds)

    def drop_stream(self, method: str, path: str, *, after_lines: int = 1, times: int = 1,
                    model: str | None = None) -> Fault:
        """Close the socket after `after_lines` streamed lines, without a final line; the
        operation stops there. Non-streaming requests are cut before any response."""
        return self.add_fault("drop", method, path, model=model, times=times, after_lines=after_lines)

    def hang(self, method: str, path: str, *, timeout: float | None = 30.0, times: int = 1,
             model: str | None = None) -> Fault:
        """Accept matching requests and never answer, until the double stops or `timeout`
        seconds pass (None: only when it stops); then close the connection. The default
        keeps a test whose client has no timeout from waiting forever."""
        return self.add_fault("hang", method, path, model=model, times=times, seconds=timeout or 0.0)

    def error_in_stream(self, method: str, path: str, *, message: str = "injected stream error",
                        after_lines: int = 1, times: int = 1, model: str | None = None) -> Fault:
        """After `after_lines` lines of a stream, send {"error": message} and end it (HTTP
        200). A stream:false request fails with 500 instead."""
        return self.add_fault("error_line", method, path, model=model, times=times, message=message,
                              after_lines=after_lines)

    def faults(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_faults(self, method: str, path: str, model: str | None) -> dict[str, Fault]:
        """The first matching fault of each kind, each counted as used once."""
        taken: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.kind not in taken and fault.matches(method, path, model):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    taken[fault.kind] = Fault(**asdict(fault))
            self._faults = [f for f in self._faults if f.times is None or f.times > 0]
        return taken

    # --- scripted replies --------------------------------------------------------------------

    def set_reply(self, model: str, text: str) -> None:
        """Make generate/chat on `model` answer exactly `text`."""
        key = _model_key(model)
        assert key is not None
        with self._lock:
            self._replies[key] = text

    def clear_replies(self) -> None:
        with self._lock:
            self._replies.clear()

    def reply_for(self, model: str) -> str | None:
        with self._lock:
            return self._replies.get(_model_key(model) or "")

    # --- registry ----------------------------------------------------------------------------

    def replace_registry_model(self, name: str, gguf: str | Path | bytes, *, template: str | None = None,
                               system: str | None = None, parameters: Mapping[str, Any] | None = None,
                               license: str | Iterable[str] | None = None,
                               messages: Iterable[Mapping[str, str]] | None = None) -> str:
        """Publish or replace `name` in the double's registry folder; returns its digest."""
        if self.registry_dir is None:
            raise RuntimeError("this double was started without a registry_dir")
        return publish_model(self.registry_dir, name, gguf, template=template, system=system,
                             parameters=parameters, license=license, messages=messages)
