"""doit-ollama: Ollama Modelfiles as source code, built and verified with doit."""

from __future__ import annotations

__version__ = "0.1.0"
