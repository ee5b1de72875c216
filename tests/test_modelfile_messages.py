"""The Modelfile mistakes users make most, and the one message each gets (issue 14 item 7).

Ollama's own texts stay as they are where the parser cases compare with Ollama (`.msg`,
`.line`); what users see (`str()`, `doit build`, `doit lint`) adds where and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doit_ollama import modelfile as mf
from doit_ollama.errors import ModelfileError
from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"


def parse_error(text: str) -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        mf.parse(text)
    return caught.value


def request_error(text: str, base_dir: Path) -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        mf.parse(text).resolve(base_dir)
    return caught.value


# --- the parser and the resolver -----------------------------------------------------------


class TestUnterminatedQuote:
    def test_names_the_line_where_the_quote_opened(self) -> None:
        err = parse_error('FROM m\nSYSTEM hi\nTEMPLATE """{{ .Prompt }}\n\nPARAMETER stop x\n')
        assert (err.msg, err.line) == ("unexpected EOF", None)  # Ollama's text, as its cases say
        assert err.editor_line == 3
        assert str(err) == 'line 3: unexpected EOF (the """ that opens the TEMPLATE value ' \
                           'here is never closed)'
        assert str(err.with_path("bot.Modelfile")).startswith("bot.Modelfile:3: unexpected EOF (")

    def test_single_quote_and_message(self) -> None:
        err = parse_error('FROM m\r\nMESSAGE user "hello\r\n')
        assert (err.msg, err.line, err.editor_line) == ("unexpected EOF", None, 2)
        assert 'the " that opens the MESSAGE value here is never closed' in str(err)


class TestExtraSpaces:
    def test_parameter_is_read_as_ollama_reads_it_and_named(self, tmp_path: Path) -> None:
        parsed = mf.parse("FROM m\nparameter   stop x\n")
        assert parsed.instructions[1] == ("", "stop x")  # Ollama: an empty name
        err = request_error("FROM m\nparameter   stop x\n", tmp_path)
        assert (err.msg, err.line) == ("unknown parameter ''", 2)
        assert str(err) == (
            "line 2: unknown parameter '' (more than one space after PARAMETER leaves the name "
            "empty: write `PARAMETER stop x`)"
        )

    def test_tab_between_name_and_value_is_fine(self, tmp_path: Path) -> None:
        assert mf.parse("FROM m\nPARAMETER\tstop   x\n").create_request(tmp_path) == {
            "from": "m", "parameters": {"stop": ["x"]},
        }

    def test_message_role(self) -> None:
        err = parse_error("FROM m\nMESSAGE  user hi\n")
        assert (err.msg, err.line) == (mf.ERR_ROLE, 2)
        assert "(more than one space after MESSAGE leaves the role empty)" in str(err)


class TestNamesCutShort:
    def test_parameter_name_with_a_dash(self) -> None:
        err = parse_error("FROM m\nPARAMETER top-k 40\n")
        assert (err.msg, err.line, err.editor_line) == ("unexpected EOF: top", None, 2)
        assert "a PARAMETER name holds only letters, digits and _" in str(err)


def test_unknown_parameter_carries_the_nearest_name(tmp_path: Path) -> None:
    err = request_error("FROM m\nPARAMETER temprature 0.2\n", tmp_path)
    assert (err.msg, err.line) == ("unknown parameter 'temprature'", 2)
    assert str(err) == "line 2: unknown parameter 'temprature' (did you mean PARAMETER temperature?)"


# --- what `doit build` and `doit lint` print ---------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    return make_repo(tmp_path / "repo", ollama_double.host)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (f'FROM {BASE}\nSYSTEM hi\nTEMPLATE """{{{{ .Prompt }}}}\n\nPARAMETER stop x\n',
         'bot:v1: models/bot/v1.Modelfile:4: unexpected EOF (the """ that opens the TEMPLATE '
         "value here is never closed)"),
        (f"FROM {BASE}\nparameter   stop x\n",
         "bot:v1: models/bot/v1.Modelfile:3: unknown parameter '' (more than one space after "
         "PARAMETER leaves the name empty: write `PARAMETER stop x`)"),
        (f"FROM {BASE}\nPARAMETER temprature 0.2\n",
         "bot:v1: models/bot/v1.Modelfile:3: unknown parameter 'temprature' (did you mean "
         "PARAMETER temperature?)"),
        ("FROM ./weights/bot.gguf\n",
         "bot:v1: models/bot/v1.Modelfile:2: FROM ./weights/bot.gguf: file not found "
         "(looked for models/bot/weights/bot.gguf)"),
        ("FROM my model\n",  # not shaped like a file, and not a model name either
         "bot:v1: models/bot/v1.Modelfile:2: FROM 'my model' is neither an existing file "
         "(relative to models/bot/) nor a valid model name"),
    ],
    ids=["unterminated-quote", "parameter-extra-spaces", "parameter-typo", "from-missing-path",
         "from-neither"],
)
def test_build_says_what_is_wrong_and_where(repo: DoitRepo, ollama_double: OllamaDouble,
                                             body: str, says: str) -> None:
    repo.model("bot:v1", body)
    result = repo.doit("build", expect=1)
    assert says in result.out, result.output
    assert ollama_double.controls.count("POST", "/api/create") == 0


def test_build_and_lint_agree_that_a_bare_gguf_name_is_a_missing_file(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    # Ollama would read `weights.gguf` as the model weights.gguf:latest and try to pull it.
    repo.model("bot:v1", "FROM weights.gguf\n")
    said = "FROM weights.gguf: file not found (looked for models/bot/weights.gguf)"
    build = repo.doit("build", expect=1)
    assert f"bot:v1: models/bot/v1.Modelfile:2: {said}" in build.out, build.output
    lint = repo.doit("lint", expect=1)
    assert f"models/bot/v1.Modelfile:2: error missing-path: {said}" in lint.out, lint.output
    assert ollama_double.controls.count("POST", "/api/pull") == 0


def test_lint_reports_the_unterminated_quote_where_it_opened(repo: DoitRepo) -> None:
    repo.model("bot:v1", f'FROM {BASE}\nSYSTEM """Be brief.\n')
    lint = repo.doit("lint", expect=1)
    assert ('models/bot/v1.Modelfile:3: error invalid-modelfile: unexpected EOF (the """ that '
            "opens the SYSTEM value here is never closed)") in lint.out, lint.output
