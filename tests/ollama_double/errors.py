"""The one error type that handlers turn into Ollama's `{"error": ...}` shape."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """An error with the HTTP status Ollama would use (500 when it sets none)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
