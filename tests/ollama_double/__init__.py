"""A test double of the Ollama server: real HTTP on 127.0.0.1, models stored on disk the way
Ollama stores them, and test controls (request log, faults, scripted replies, a registry
folder). It imports only the standard library, gguf and numpy, never doit_ollama.

    with OllamaDouble(tmp / "models", registry_dir=tmp / "registry") as double:
        client = ollama.Client(host=double.url)
        double.controls.fail_next("POST", "/api/create", status=500)
"""

from __future__ import annotations

from . import gojson, names
from .faults import FAULT_KINDS, Controls, Fault, RequestRecord
from .registry import publish_model
from .server import OllamaDouble

__all__ = ["FAULT_KINDS", "Controls", "Fault", "OllamaDouble", "RequestRecord", "gojson", "names", "publish_model"]
