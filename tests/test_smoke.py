"""Smoke tests: the test-file format, the answer checks, the JSON Schema subset, and
`doit test` against the Ollama test double (as a user runs it: doit in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doit_ollama import schemacheck, smoke
from doit_ollama.smoke import Expect, SuiteError

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

BASE = "base:1b"
ROOT = Path(__file__).parent.parent

# What the double answers in JSON mode: {"model", "prompt", "reply_id"} (inference.py).
SUITE = """# smoke tests of bot
[defaults]
options = { temperature = 0, seed = 42 }

[[case]]
name = "answers the contract in JSON"
messages = [{ role = "user", content = "How do I reset my password?" }]
format = "json"
[case.expect]
contains = "reset my password"
not-contains = ["As an AI"]
max-length = 400
# what the double answers in JSON mode (tests/ollama_double/inference.py)
[case.expect.schema]
type = "object"
required = ["model", "prompt", "reply_id"]
additionalProperties = false
[case.expect.schema.properties]
model = { type = "string", enum = ["bot:v1", "bot:dev"] }
prompt = { type = "string", minLength = 1 }
reply_id = { type = "string", minLength = 12, maxLength = 12 }

[[case]]
name = "completes a prompt"
prompt = "Say hello"
[case.expect]
regex = '^Test double reply [0-9a-f]{12} from bot:'
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the test file --------------------------------------------------------------------------------


def test_a_suite_loads_and_its_fingerprint_ignores_comments(tmp_path: Path) -> None:
    path = write(tmp_path / "v1.test.toml", SUITE)
    suite = smoke.load_suite(path)
    assert [c.name for c in suite.cases] == ["answers the contract in JSON", "completes a prompt"]
    chat, generate = suite.cases
    assert chat.prompt is None and chat.messages[0]["role"] == "user"
    assert chat.options == {"temperature": 0, "seed": 42} and chat.format == "json"
    assert chat.expect.json and chat.expect.contains == ("reset my password",)
    assert generate.prompt == "Say hello" and generate.format is None
    assert chat.line == 5 and generate.line == 23
    write(path, "# another comment\n\n" + SUITE.replace("# smoke tests of bot\n", ""))
    assert smoke.load_suite(path).fingerprint == suite.fingerprint
    write(path, SUITE.replace("Say hello", "Say hi"))
    assert smoke.load_suite(path).fingerprint != suite.fingerprint


def test_the_worked_example_of_this_repository_loads() -> None:
    modelfile = ROOT / "models" / "my-bot" / "v1.1.Modelfile"
    suite = smoke.load_suite(smoke.suite_path(modelfile))
    assert suite.cases and all(c.expect.json for c in suite.cases)
    answer, unknown, bare = suite.cases
    good = json.dumps({"answer": "Use the reset link.", "confidence": 0.8,
                       "sources": ["Account help"]})
    assert smoke.check_answer(answer.expect, good) == []
    assert smoke.check_answer(bare.expect, good) == []
    assert smoke.check_answer(unknown.expect, good) != []  # too confident
    assert smoke.check_answer(unknown.expect, json.dumps(
        {"answer": "I do not know.", "confidence": 0, "sources": []})) == []
    assert smoke.check_answer(bare.expect, "```json\n" + good + "\n```") != []


def test_suite_paths() -> None:
    assert smoke.suite_path(Path("models/my-bot/v1.1.Modelfile")) == \
        Path("models/my-bot/v1.1.test.toml")
    assert smoke.suite_path(Path("models/scratch/Modelfile")) == \
        Path("models/scratch/Modelfile.test.toml")


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[[case]]\nname = "a"\nprompt = "x"\nexpcet = { json = true }\n', 4, "unknown key 'expcet'"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect]\njson = true\nlength = 3\n', 6,
     "unknown key 'length'"),
    ('[[case]]\nname = "a"\nprompt = "x"\noptions = { temprature = 0 }\n', 4,
     "unknown option 'temprature'"),
    ('[[case]]\nname = "a"\nprompt = "x"\noptions = { seed = "42" }\n', 4,
     "option seed must be an integer"),
    ('[[case]]\nname = "a"\n', 1, "give either prompt (generate) or messages (chat)"),
    ('[[case]]\nprompt = "x"\n', 1, "name is missing"),
    ('[[case]]\nname = "a"\nmessages = [{ role = "robot", content = "x" }]\n', 3, "role must be one of"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect]\nschema = { type = "object", format = "email" }\n',
     5, "unsupported keyword(s) format"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect]\nregex = "("\n', 5, "not a regular expression"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect]\nmax-length = 0\n', 5, "positive integer"),
    ('[[case]]\nname = "a"\nprompt = "x"\n\n[[case]]\nname = "a"\nprompt = "y"\n', 6, "used twice"),
    ('[[case]]\nname = "a"\nprompt = "x"\nformat = "yaml"\n', 4, 'format must be "json"'),
    ('[[case]]\nname = "a"\nprompt = = "x"\n', 3, "invalid TOML"),
    ("title = 'x'\n", 1, "unknown key 'title'"),
    ("", None, "no cases"),
])
def test_invalid_test_files_name_the_line(tmp_path: Path, text: str, line: int | None,
                                          message: str) -> None:
    path = write(tmp_path / "v1.test.toml", text)
    with pytest.raises(SuiteError) as caught:
        smoke.load_suite(path)
    assert caught.value.line == line
    assert message in caught.value.msg
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


# --- answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expect", "answer", "reason"), [
    (Expect(json=True), "{\"a\": 1}", None),
    (Expect(json=True), "Sure! {\"a\": 1}", "not valid JSON"),
    (Expect(contains=("reset",)), "click reset", None),
    (Expect(contains=("reset",)), "click here", "does not contain 'reset'"),
    (Expect(not_contains=("As an AI",)), "As an AI, I", "contains 'As an AI'"),
    (Expect(regex=(r"^\{",)), "x{", "does not match the regular expression"),
    (Expect(max_length=5), "123456", "6 characters long, more than max-length 5"),
    (Expect(), "   ", "the answer is empty"),
    (Expect(json=True, schema={"type": "object", "required": ["answer"]}), "{\"x\": 1}",
     "required property 'answer' is missing"),
])
def test_check_answer(expect: Expect, answer: str, reason: str | None) -> None:
    reasons = smoke.check_answer(expect, answer)
    if reason is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and reason in reasons[0], reasons


SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence", "sources"],
    "additionalProperties": False,
    "properties": {
        "answer": {"type": "string", "minLength": 1, "maxLength": 20},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "sources": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "kind": {"enum": ["faq", "doc"]},
        "count": {"type": "integer"},
    },
}


@pytest.mark.parametrize(("value", "problem"), [
    ({"answer": "ok", "confidence": 0.5, "sources": []}, None),
    ({"answer": "ok", "confidence": 1, "sources": ["a"], "kind": "faq", "count": 2.0}, None),
    ({"answer": "ok", "confidence": 0.5}, "$: required property 'sources' is missing"),
    ({"answer": "ok", "confidence": "high", "sources": []}, "$.confidence: expected number, got string"),
    ({"answer": "ok", "confidence": 1.5, "sources": []}, "$.confidence: 1.5 is more than the maximum 1"),
    ({"answer": "ok", "confidence": -1, "sources": []}, "less than the minimum 0"),
    ({"answer": "", "confidence": 0, "sources": []}, "$.answer: shorter than 1 characters"),
    ({"answer": "x" * 21, "confidence": 0, "sources": []}, "$.answer: longer than 20 characters"),
    ({"answer": "ok", "confidence": 0, "sources": [1]}, "$.sources[0]: expected string, got integer"),
    ({"answer": "ok", "confidence": 0, "sources": ["a", "b", "c"]}, "more than 2 items"),
    ({"answer": "ok", "confidence": 0, "sources": [], "kind": "blog"}, "is not one of"),
    ({"answer": "ok", "confidence": 0, "sources": [], "extra": 1}, "property 'extra' is not allowed"),
    ({"answer": "ok", "confidence": True, "sources": []}, "expected number, got boolean"),
    ({"answer": "ok", "confidence": 0, "sources": [], "count": 1.5}, "expected integer, got number"),
    ([1, 2], "$: expected object, got array"),
])
def test_json_schema_subset(value: object, problem: str | None) -> None:
    schemacheck.check_schema(SCHEMA)
    errors = schemacheck.validate(value, SCHEMA)
    if problem is None:
        assert errors == []
    else:
        assert len(errors) == 1 and problem in errors[0], errors


def test_unsupported_schema_keywords_are_refused() -> None:
    with pytest.raises(schemacheck.SchemaError, match="unsupported keyword.*oneOf"):
        schemacheck.check_schema({"type": "object", "properties": {"a": {"oneOf": []}}})
    with pytest.raises(schemacheck.SchemaError, match="type must be one of"):
        schemacheck.check_schema({"type": "dict"})


# --- doit test against the double ------------------------------------------------------------------


def inference_calls(double: OllamaDouble) -> int:
    return double.controls.count("POST", "/api/chat") + double.controls.count("POST", "/api/generate")


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry) -> DoitRepo:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", f"FROM {BASE}\nSYSTEM You are a support bot.\nPARAMETER temperature 0\n")
    repo.write("models/bot/v1.test.toml", SUITE)
    repo.model("other:v1", f"FROM {BASE}\nSYSTEM Unrelated.\n")  # no tests
    return repo


def test_doit_test_passes_fails_and_keeps_results_per_digest(repo: DoitRepo,
                                                             ollama_double: OllamaDouble) -> None:
    repo.doit("build")
    ollama_double.controls.reset_requests()

    result = repo.doit("test")
    assert inference_calls(ollama_double) == 2
    assert "  pass  answers the contract in JSON\n  pass  completes a prompt\n" in result.out
    assert "other:v1: no tests (models/other/v1.test.toml does not exist)" in result.out
    assert "test: 2 models: 1 passed, 0 failed, 1 without tests" in result.out
    digest = repo.lock().models["bot:v1"].digest.removeprefix("sha256:")
    stored = list((repo.root / ".doit-ollama" / "tests").glob(f"{digest}-*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["passed"] is True

    # unchanged model, unchanged tests: not asked again, and no server needed at all
    ollama_double.controls.reset_requests()
    result = repo.doit("test")
    assert ollama_double.controls.requests() == []
    assert "stored result for this digest and test file" in result.out

    # a comment in the test file changes nothing; a new case runs the suite again
    path = repo.root / "models" / "bot" / "v1.test.toml"
    path.write_text("# reviewed\n" + SUITE)
    repo.doit("test", "bot:v1")
    assert inference_calls(ollama_double) == 0
    path.write_text(SUITE + '\n[[case]]\nname = "third"\nprompt = "More"\n')
    repo.doit("test", "bot:v1")
    assert inference_calls(ollama_double) == 3

    # --force asks again; a scripted bad answer fails with the reason, exit 1
    ollama_double.controls.set_reply("bot:v1", "As an AI, I cannot help.")
    ollama_double.controls.reset_requests()
    result = repo.doit("test", "--force", expect=1)
    assert inference_calls(ollama_double) == 3
    assert "  FAIL  answers the contract in JSON: the answer is not valid JSON" in result.out
    assert "the answer contains 'As an AI'" in result.out
    assert "answer: 'As an AI, I cannot help.'" in result.out
    assert "  pass  third\n" in result.out  # no expectation but a non-empty answer
    assert "bot:v1: 2 of 3 cases failed" in result.out
    assert "test: 2 models: 0 passed, 1 failed, 1 without tests" in result.out
    # the failure is stored too: without --force it is reported again, without asking
    ollama_double.controls.reset_requests()
    repo.doit("test", "bot:v1", expect=1)
    assert inference_calls(ollama_double) == 0


def test_a_changed_model_is_tested_again(tmp_path: Path, ollama_double: OllamaDouble,
                                         registry) -> None:  # type: ignore[no-untyped-def]
    registry.publish(BASE, seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    modelfile = repo.model("bot:dev", f"FROM {BASE}\nSYSTEM Be brief.\n")
    repo.write("models/bot/dev.test.toml", SUITE)
    repo.doit("build")
    repo.doit("test")
    ollama_double.controls.reset_requests()
    repo.doit("test")
    assert inference_calls(ollama_double) == 0

    modelfile.write_text(modelfile.read_text().replace("Be brief.", "Be very brief."))
    repo.doit("build")
    ollama_double.controls.reset_requests()
    repo.doit("test")
    assert inference_calls(ollama_double) == 2
    assert len(list((repo.root / ".doit-ollama" / "tests").glob("*.json"))) == 2


def test_an_unbuilt_or_drifted_model_cannot_be_tested(repo: DoitRepo,
                                                      ollama_double: OllamaDouble) -> None:
    result = repo.doit("test", expect=1)
    assert "bot:v1: error: bot:v1 is not built" in result.out
    assert "fix: doit build:bot:v1" in result.out
    repo.doit("build")
    import ollama

    with ollama.Client(host=ollama_double.url) as client:
        client.create("bot:v1", from_=BASE, system="Changed by hand.")
    result = repo.doit("test", expect=1)
    assert "its tests would not test the locked model" in result.out
    assert inference_calls(ollama_double) == 0


def test_an_invalid_test_file_fails_doit_test(repo: DoitRepo) -> None:
    repo.write("models/bot/v1.test.toml", '[[case]]\nname = "a"\npromt = "x"\n')
    result = repo.doit("test", "bot:v1", expect=1)
    assert "models/bot/v1.test.toml:3: case 1 ('a'): unknown key 'promt'" in result.out
