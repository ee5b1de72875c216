"""Property tests of doit_ollama.modelfile: only ModelfileError escapes, and writing round-trips."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from doit_ollama import createrequest as cr
from doit_ollama._go.isprint import is_print
from doit_ollama import modelfile as mf
from doit_ollama.errors import ModelfileError

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of Modelfile text, weighted toward what the grammar reacts to.
ATOMS = [
    "FROM ", "from ", "PARAMETER ", "parameter ", "MESSAGE ", "SYSTEM ", "TEMPLATE ", "LICENSE ",
    "ADAPTER ", "DRAFT ", "REQUIRES ", "RENDERER ", "PARSER ", "BAD ", "FROM", "SYSTEM",
    "user ", "system ", "assistant ", "wizard ", "temperature ", "stop ", "num_ctx ", "top-k ",
    " ", "  ", "\t", "\n", "\r", "\r\n", '"', '""', '"""', "#", "# c\n", ":", ": ", "x", "0.5",
    "é", "你好", "😀", "\u00a0", "\u200b", "\ufeff", "\x00", "\x7f", "\u2028",
]
grammar_text = st.lists(
    st.one_of(st.sampled_from(ATOMS), st.text(max_size=3)), max_size=30
).map("".join)
any_text = st.one_of(grammar_text, st.text(max_size=200))
any_bytes = st.one_of(
    st.binary(max_size=200),
    st.tuples(
        st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]),
        st.one_of(
            st.binary(max_size=100),
            grammar_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            grammar_text.map(lambda t: t.encode("utf-16-le", "surrogatepass")),
            grammar_text.map(lambda t: t.encode("utf-16-be", "surrogatepass")),
        ),
    ).map(lambda parts: parts[0] + parts[1]),
)


@FUZZ
@given(any_text)
@example("FROM m\nSYSTEM \"\"\"\n")
@example("\ud800FROM x")
def test_parse_text_raises_only_modelfile_error(text: str) -> None:
    try:
        mf.parse(text)
    except ModelfileError:
        pass


@FUZZ
@given(any_bytes)
@example(b"\xff\xfe\x00\xd8")
@example(b"\xef\xbb\xbfFROM \xe4\xbd\n")
def test_parse_bytes_raises_only_modelfile_error(data: bytes) -> None:
    try:
        mf.parse(data)
    except ModelfileError:
        pass


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@settings(max_examples=150, deadline=None)
@given(data=any_bytes)
def test_load_reads_bytes_as_parse_does(scratch: Path, data: bytes) -> None:
    path = scratch / "fuzz.Modelfile"
    path.write_bytes(data)
    try:
        expected: Modelfile | str = mf.parse(data)
    except ModelfileError as err:
        expected = f"{err.line}:{err.msg}"
    try:
        loaded: Modelfile | str = mf.load(path)
    except ModelfileError as err:
        assert err.path == str(path)
        loaded = f"{err.line}:{err.msg}"
    assert loaded == expected


Modelfile = mf.Modelfile


@FUZZ
@given(grammar_text)
@example('SYSTEM "hi" there\nmore"\n')
@example("PARAMETER message user hi\n")
def test_whatever_parses_formats_back_to_the_same(text: str) -> None:
    try:
        parsed = mf.parse("FROM base\n" + text)
    except ModelfileError:
        return
    assert mf.parse(parsed.format()).instructions == parsed.instructions
    kept = mf.parse(parsed.format(keep_comments=True))
    assert kept.instructions == parsed.instructions
    assert kept.comments == parsed.comments


# --- Modelfiles built from instruction lists with awkward values -------------------------------

AWKWARD = st.lists(
    st.sampled_from(
        [" ", "  ", "\t", "\n", "\r", "\r\n", '"', '""', '"""', "#", "# ", ":", ": ", "a", "b",
         "é", "你", "😀", "{{ .Prompt }}", "\\", "'", "\u00a0"]
    ),
    max_size=12,
).map("".join)
PARAMETER_NAMES = st.one_of(
    st.sampled_from(["temperature", "stop", "Top_K", "", "system", "message", "from", "x1_"]),
    st.text(alphabet="abcXYZ09_-", max_size=6),
)


@st.composite
def instructions(draw: st.DrawFn) -> list[tuple[str, str]]:
    out = [("model", draw(AWKWARD))]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["command", "message", "parameter", "free_message"]))
        value = draw(AWKWARD)
        if kind == "command":
            name = draw(st.sampled_from(sorted(mf._VALUE_COMMANDS) + ["model"]))
            out.append((name, value))
        elif kind == "message":
            out.append(("message", f"{draw(st.sampled_from(mf.ROLES))}: {value}"))
        elif kind == "free_message":
            out.append(("message", value))
        else:
            out.append((draw(PARAMETER_NAMES), value))
    return out


def writable(name: str, value: str) -> bool:
    """Independent statement of which instructions Ollama's grammar can express."""
    known = name in ("model", "message") or name in mf._VALUE_COMMANDS
    if not known and not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        return False
    if any(c not in " \t\r\n" and not is_print(c) for c in value):
        return False
    # A newline inside a value ends it as soon as the text before it ends with """.
    return not any(
        char in "\r\n" and value[:at].rstrip(" \t\r\n").endswith('"""')
        for at, char in enumerate(value)
    )


@FUZZ
@given(instructions())
@example([("model", 'a"""\nb')])
@example([("model", "m"), ("message", "user hi")])
@example([("model", "m"), ("top-k", "1")])
def test_built_modelfiles_round_trip(built: list[tuple[str, str]]) -> None:
    modelfile = mf.Modelfile(built)
    if all(writable(name, value) for name, value in built):
        assert mf.parse(modelfile.format()) == modelfile
    else:
        with pytest.raises(ModelfileError):
            modelfile.format()


@settings(max_examples=300, deadline=None)
@given(grammar_text)
def test_resolve_raises_only_modelfile_error(scratch: Path, text: str) -> None:
    try:
        parsed = mf.parse("FROM base\n" + text)
    except ModelfileError:
        return
    with pytest.MonkeyPatch.context() as patch:
        # `~` must not reach the real home folder, and nothing found is read.
        patch.setattr(cr, "current_user_home", lambda: str(scratch))
        patch.setattr(cr, "user_home", lambda name: str(scratch))
        try:
            parsed.resolve(scratch, digest=lambda path: "sha256:" + "0" * 64)
        except ModelfileError:
            pass
