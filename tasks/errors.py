"""The one error family of doit-ollama.

Inner layers raise these; the edges (task actions, the command line) turn them into one
clear message and an exit code. Anything else escaping is a bug.

    DoitOllamaError
     +-- ModelfileError     a Modelfile Ollama would reject (keeps Ollama's text, line, path)
     +-- ModelNameError     a model name Ollama would reject (says which part)
     +-- ConfigError        [tool.doit-ollama] or the models/ layout is wrong
     |    +-- smoke.SuiteError   a <tag>.test.toml that cannot be used
     +-- LockError          lock/models.lock is unreadable or malformed
     +-- ServerError        the Ollama server failed, refused or could not be reached
     +-- RegistryError      an OCI registry (the team's, or a base's) failed or was unreachable
     +-- BuildRefused       the build or a promotion would break a rule (a released tag
                            changed, an untested version promoted, ...)
"""

from __future__ import annotations

__all__ = [
    "BuildRefused",
    "ConfigError",
    "DoitOllamaError",
    "LockError",
    "ModelNameError",
    "ModelfileError",
    "RegistryError",
    "ServerError",
]


class DoitOllamaError(Exception):
    """Base of every error a user can cause; str() is the whole message."""


class ModelfileError(DoitOllamaError):
    """A Modelfile that Ollama's parser or `ollama create` would reject.

    `.msg` is Ollama's own text, `.line` the 1-based line as Ollama counts it (None for
    whole-file errors such as `no FROM line`), `.path` the file when it was loaded from one.
    Ollama counts CR and LF each as a line end, so in a file with CR LF endings its line
    numbers run ahead of an editor's; `.editor_line` is the editor's count, which the
    message shows (it can be set where Ollama gives no line, e.g. where an unclosed quote
    opened). `.hint` is ours: what the mistake probably is, shown after Ollama's text.
    """

    def __init__(self, msg: str, line: int | None = None, path: str | None = None, *,
                 editor_line: int | None = None, hint: str | None = None):
        self.msg = msg
        self.line = line
        self.path = path
        self.editor_line = editor_line if editor_line is not None else line
        self.hint = hint
        super().__init__(msg)

    def with_path(self, path: str) -> ModelfileError:
        """A copy of this error that names the file it came from."""
        return type(self)(self.msg, self.line, path, editor_line=self.editor_line,
                          hint=self.hint)

    @property
    def text(self) -> str:
        """The message without its place: Ollama's text, then the hint in parentheses."""
        return f"{self.msg} ({self.hint})" if self.hint else self.msg

    def __str__(self) -> str:
        where = self.path or ""
        if self.editor_line is not None:
            where = f"{where}:{self.editor_line}" if where else f"line {self.editor_line}"
        return f"{where}: {self.text}" if where else self.text


class ModelNameError(DoitOllamaError):
    """A model name that Ollama would refuse."""


class ConfigError(DoitOllamaError):
    """Project configuration or repository layout that cannot be used."""


class LockError(DoitOllamaError):
    """lock/models.lock cannot be read or has the wrong shape."""


class ServerError(DoitOllamaError):
    """The Ollama server failed, refused a request or could not be reached."""

    def __init__(self, msg: str, *, host: str | None = None, model: str | None = None,
                 status: int | None = None):
        self.host = host
        self.model = model
        self.status = status
        super().__init__(msg)


class RegistryError(DoitOllamaError):
    """An OCI registry answered with an error or could not be reached."""

    def __init__(self, msg: str, *, host: str | None = None):
        self.host = host
        super().__init__(msg)


class BuildRefused(DoitOllamaError):
    """The build stopped because going on would break one of the build's rules."""
