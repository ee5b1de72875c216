"""Ollama's model-name rules (types/model/name.go and its tests), as doit_ollama.names applies them."""

from __future__ import annotations

import pytest
from doit_ollama import names
from doit_ollama.errors import ModelNameError
from doit_ollama.names import ModelName
from hypothesis import example, given, settings
from hypothesis import strategies as st

# Validity with Ollama's defaults filled in (ParseName + IsValid); taken from Ollama's
# name_test.go, where a bare-parse case lacked only defaulted parts it is valid here.
VALIDITY = {
    "m": True,
    "_why/_the/_lucky:_stiff": True,
    "h/n/m:t": True,
    "host/namespace/model": True,
    "namespace/model": True,
    "h/nn/mm:t": True,
    "host:https/namespace/model:tag": True,
    "localhost:5000/library/tiny:1": True,
    "llama3.2": True,
    "my-bot:v1.0": True,
    "Team_1/My.Bot:V1.2-rc_3": True,
    "": False,
    "n/m:": False,
    "@t": False,
    "m@d": False,
    "^": False,
    "mm:": False,
    "/nn/mm": False,
    "//": False,
    "//mm": False,
    "hh//": False,
    "//mm:@": False,
    "00@": False,
    "@": False,
    "-hh/nn/mm:tt": False,
    "hh/-nn/mm:tt": False,
    "hh/nn/-mm:tt": False,
    "hh/nn/mm:-tt": False,
    "host/name:space/model:tag": False,
    "a/b.c/d": False,
    "a/b/c/d": False,
    "my bot:v1": False,
    "bot:v1:v2": False,
    "café:v1": False,
    ".bot:v1": False,
}


@pytest.mark.parametrize(("text", "valid"), sorted(VALIDITY.items()))
def test_validity_matches_ollama(text: str, valid: bool) -> None:
    assert ModelName.is_valid(text) is valid


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("registry.ollama.ai/library/model:latest", "model:latest"),
        ("registry.ollama.ai/library/model:tag", "model:tag"),
        ("registry.ollama.ai/namespace/model:tag", "namespace/model:tag"),
        ("host/namespace/model:tag", "host/namespace/model:tag"),
        ("host/library/model:tag", "host/library/model:tag"),
        ("llama3.2", "llama3.2:latest"),
        ("team/bot", "team/bot:latest"),
        ("REGISTRY.ollama.ai/LIBRARY/Bot:V1", "Bot:V1"),
        ("https://host.example/ns/m:t", "host.example/ns/m:t"),
    ],
)
def test_display_is_shortest_form(text: str, display: str) -> None:
    assert ModelName.parse(text).display == display


def test_defaults_are_filled() -> None:
    name = ModelName.parse("bot")
    assert (name.host, name.namespace, name.model, name.tag) == (
        "registry.ollama.ai",
        "library",
        "bot",
        "latest",
    )
    assert name.repository == "bot"
    assert ModelName.parse("team/bot:v2").repository == "team/bot"


def test_comparison_ignores_case_but_display_keeps_it() -> None:
    a, b = ModelName.parse("My-Bot:V1"), ModelName.parse("my-bot:v1")
    assert a.same(b) and a.key == b.key
    assert a.display == "My-Bot:V1"
    assert not a.same(ModelName.parse("my-bot:v2"))


@pytest.mark.parametrize(
    ("kind", "limit"), [("host", 350), ("namespace", 80), ("model", 80), ("tag", 80)]
)
def test_length_limits_per_part(kind: str, limit: int) -> None:
    def name_with(part: str) -> str:
        parts = {"host": "h", "namespace": "n", "model": "m", "tag": "t", kind: part}
        return f"{parts['host']}/{parts['namespace']}/{parts['model']}:{parts['tag']}"

    assert ModelName.is_valid(name_with("a" * limit))
    with pytest.raises(ModelNameError, match=f"the {kind} is {limit + 1} characters long"):
        ModelName.parse(name_with("a" * (limit + 1)))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("-bot:v1", "the model '-bot' must start with a letter, a digit or '_'"),
        ("bot:v1!", "the tag 'v1!' may not contain '!'"),
        ("te.am/bot:v1", "the namespace 'te.am' may not contain '.'"),
        ("bot:", "the tag after ':' is empty"),
        ("/bot", "the namespace is empty"),
    ],
)
def test_errors_say_which_part_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ModelNameError) as info:
        ModelName.parse(text)
    assert says in str(info.value)
    assert repr(text) in str(info.value)


def test_with_tag_keeps_the_repository() -> None:
    assert ModelName.parse("team/bot:v1").with_tag("prod").display == "team/bot:prod"
    with pytest.raises(ModelNameError):
        ModelName.parse("bot:v1").with_tag("no good")


# --- the fast path for `[namespace/]model[:tag]` must agree with the general rule -----------

_PIECES = st.sampled_from(["a", "Z", "9", "_", "-", ".", ":", "/", "", "x" * 79, "y" * 80, " ",
                           "é", "::", "//", "http://", "registry.ollama.ai", "library", "latest"])


def _outcome(parse: object, text: str) -> object:
    try:
        name = parse(text)  # type: ignore[operator]
    except ModelNameError as exc:
        return ("refused", str(exc))
    return (name, name.display, name.key)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
@example("m:" + "t" * 80)
@example("m:" + "t" * 81)
@example("m" * 80)
@example("m" * 81)
@example("n" * 80 + "/m")
@example("n" * 81 + "/m")
def test_the_fast_path_parses_as_the_general_rule(text: str) -> None:
    fast = names._parse.__wrapped__  # what ModelName.parse uses, without its memo
    assert _outcome(fast, text) == _outcome(ModelName._parse, text)
