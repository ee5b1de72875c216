"""GitHub Actions workflow commands (`::error file=...,line=...::message`), escaped as the
runner expects, for every report that offers `--format github`."""

from __future__ import annotations

__all__ = ["workflow_command"]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(level: str, message: str, *, file: str | None = None,
                     line: int | None = None, title: str | None = None) -> str:
    """One annotation line; `level` is error, warning or notice."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"
