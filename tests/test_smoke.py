"""Smoke tests: the test-file format, the answer checks, JSON Schema (by jsonschema), and
`doit test` against the Ollama test double (as a user runs it: doit in a subprocess).
tests/test_real_smoke.py runs smoke tests on a real model on a real Ollama."""

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
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect]\nschema = { type = "dict" }\n', 5,
     "case 1 ('a'): expect.schema is not a valid JSON Schema (draft 2020-12): 'dict' is not "
     "valid under any of the given schemas (at expect.schema.type)"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect.schema]\ntype = "object"\n'
     '[case.expect.schema.properties]\nsize = { type = "integer" }\nkind = { minLength = "two" }\n', 8,
     "'two' is not of type 'integer' (at expect.schema.properties.kind.minLength)"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect.schema]\nrequired = "answer"\n', 5,
     "'answer' is not of type 'array' (at expect.schema.required)"),
    ('[[case]]\nname = "a"\nprompt = "x"\nformat = { type = "object", maxItems = -1 }\n', 4,
     "format is not a valid JSON Schema (draft 2020-12): -1 is less than the minimum of 0"),
    ('[[case]]\nname = "a"\nprompt = "x"\n[case.expect.schema]\n'
     '"$schema" = "https://example.com/my-schema"\n', 5, "unknown $schema"),
    ('[[case]]\nname = "a"\nprompt = "x"\nformat = "schema"\n[case.expect]\njson = true\n', 4,
     'format = "schema" sends the case\'s expect.schema to Ollama, but this case has none'),
    ('[defaults]\nformat = "schema"\n\n[[case]]\nname = "a"\nprompt = "x"\n', 4,
     "but this case has none"),
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
     "the JSON does not match the schema: $: 'answer' is a required property"),
])
def test_check_answer(expect: Expect, answer: str, reason: str | None) -> None:
    reasons = smoke.check_answer(expect, answer)
    if reason is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and reason in reasons[0], reasons


SCHEMA = {
    "$defs": {"source": {"type": "string", "pattern": "^[A-Z]"}},
    "type": "object",
    "required": ["answer", "confidence", "sources"],
    "additionalProperties": False,
    "properties": {
        "answer": {"type": "string", "minLength": 1, "maxLength": 20},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "sources": {"type": "array", "items": {"$ref": "#/$defs/source"}, "maxItems": 2,
                    "uniqueItems": True},
        "kind": {"enum": ["faq", "doc"]},
        "count": {"type": "integer"},
        "score": {"oneOf": [{"type": "integer", "multipleOf": 10}, {"const": "n/a"}]},
        "mail": {"type": "string", "format": "email"},
    },
    "if": {"properties": {"kind": {"const": "doc"}}, "required": ["kind"]},
    "then": {"properties": {"sources": {"minItems": 1}}},
}


@pytest.mark.parametrize(("value", "problem"), [
    ({"answer": "ok", "confidence": 0.5, "sources": []}, None),
    ({"answer": "ok", "confidence": 1, "sources": ["A"], "kind": "faq", "count": 2.0,
      "score": 30, "mail": "help@example.com"}, None),
    ({"answer": "ok", "confidence": 0, "sources": [], "score": "n/a"}, None),
    ({"answer": "ok", "confidence": 0.5}, "$: 'sources' is a required property"),
    ({"answer": "ok", "confidence": "high", "sources": []}, "$.confidence: 'high' is not of type 'number'"),
    ({"answer": "ok", "confidence": 1.5, "sources": []}, "$.confidence: 1.5 is greater than the maximum of 1"),
    # (jsonschema's wording for minLength/minItems 1 changed: "is too short", "should be non-empty")
    ({"answer": "", "confidence": 0, "sources": []}, "$.answer: ''"),
    ({"answer": "x" * 21, "confidence": 0, "sources": []}, "$.answer: 'xxxxxxxxxxxxxxxxxxxxx' is too long"),
    ({"answer": "ok", "confidence": 0, "sources": ["faq"]}, "$.sources[0]: 'faq' does not match '^[A-Z]'"),
    ({"answer": "ok", "confidence": 0, "sources": ["A", "B", "C"]}, "$.sources: ['A', 'B', 'C'] is too long"),
    ({"answer": "ok", "confidence": 0, "sources": ["A", "A"]}, "has non-unique elements"),
    ({"answer": "ok", "confidence": 0, "sources": [], "kind": "blog"}, "$.kind: 'blog' is not one of ['faq', 'doc']"),
    ({"answer": "ok", "confidence": 0, "sources": [], "kind": "doc"}, "$.sources: []"),
    ({"answer": "ok", "confidence": 0, "sources": [], "extra": 1}, "Additional properties are not allowed ('extra' was unexpected)"),
    ({"answer": "ok", "confidence": True, "sources": []}, "$.confidence: True is not of type 'number'"),
    ({"answer": "ok", "confidence": 0, "sources": [], "count": 1.5}, "$.count: 1.5 is not of type 'integer'"),
    ({"answer": "ok", "confidence": 0, "sources": [], "score": 25}, "$.score: 25 is not valid under any of the given schemas"),
    ({"answer": "ok", "confidence": 0, "sources": [], "mail": "nobody"}, "$.mail: 'nobody' is not a 'email'"),
    ([1, 2], "$: [1, 2] is not of type 'object'"),
])
def test_json_schema_keywords_of_draft_2020_12(value: object, problem: str | None) -> None:
    schemacheck.check_schema(SCHEMA, "expect.schema")
    errors = schemacheck.validate(value, SCHEMA)
    if problem is None:
        assert errors == []
    else:
        assert len(errors) == 1 and problem in errors[0], errors


def test_a_schema_may_name_an_older_draft() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#",
              "definitions": {"n": {"type": "integer"}}, "items": [{"$ref": "#/definitions/n"}]}
    schemacheck.check_schema(schema, "expect.schema")  # tuple-form items: draft 7, not 2020-12
    assert schemacheck.validate([1, "x"], schema) == []
    assert schemacheck.validate(["x"], schema) == ["$[0]: 'x' is not of type 'integer'"]
    with pytest.raises(schemacheck.SchemaError, match=r"\(draft 7\): 3 is not valid"):
        schemacheck.check_schema({**schema, "items": 3}, "expect.schema")


def test_a_reference_to_nowhere_is_a_clear_reason_and_nothing_is_fetched() -> None:
    expect = Expect(json=True, schema={"$ref": "#/$defs/missing"})
    reasons = smoke.check_answer(expect, "{}")
    assert reasons == [reasons[0]] and "the schema cannot be checked: a $ref in the schema " \
        "cannot be resolved" in reasons[0] and "#/$defs/name" in reasons[0], reasons
    # a remote reference is not retrieved (no network in a smoke test; warnings are errors)
    remote = Expect(json=True, schema={"$ref": "http://127.0.0.1:9/schema.json"})
    assert "cannot be resolved" in smoke.check_answer(remote, "{}")[0]


def test_many_violations_are_reported_with_a_count() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    errors = schemacheck.validate(list(range(12)), schema)
    assert errors[:5] == [f"$[{n}]: {n} is not of type 'string'" for n in range(5)]
    assert errors[-1] == "and 7 more" and len(errors) == 6


def test_format_schema_sends_the_expected_schema_to_ollama(tmp_path: Path) -> None:
    path = write(tmp_path / "v1.test.toml", """
[defaults]
format = "schema"

[[case]]
name = "structured"
prompt = "Capital of France?"
[case.expect.schema]
type = "object"
required = ["city"]
properties = { city = { "$ref" = "#/$defs/city" } }
"$defs" = { city = { enum = ["Paris", "Lyon"] } }

[[case]]
name = "plain JSON mode"
prompt = "Anything"
format = "json"
""")
    structured, plain = smoke.load_suite(path).cases
    assert structured.format == structured.expect.schema
    assert structured.format["properties"]["city"] == {"$ref": "#/$defs/city"}
    assert plain.format == "json"


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

    # unchanged model, unchanged tests: not asked again; one /api/tags checks that the
    # server still holds the tested digest
    ollama_double.controls.reset_requests()
    result = repo.doit("test")
    assert [(r.method, r.path) for r in ollama_double.controls.requests()] == [("GET", "/api/tags")]
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


def test_a_stored_pass_is_never_reported_for_a_model_the_server_no_longer_holds(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    import ollama

    repo.doit("build")
    repo.doit("test", "bot:v1")
    locked = repo.lock().models["bot:v1"].digest
    with ollama.Client(host=ollama_double.url) as client:
        # overwritten by hand with other content: the stored pass is of another model
        client.create("bot:v1", from_=BASE, system="Changed by hand.")
        ollama_double.controls.reset_requests()
        result = repo.doit("test", "bot:v1", expect=1)
        assert "  pass  " not in result.out and "stored result" not in result.out
        assert "bot:v1: error: bot:v1 is sha256:" in result.out
        assert f"the lock says {locked[:19]}…; its tests would not test the locked model" \
            in result.out
        assert inference_calls(ollama_double) == 0
        assert ollama_double.controls.count("GET", "/api/tags") == 1
        # deleted by hand
        client.delete("bot:v1")
        result = repo.doit("test", "bot:v1", expect=1)
        assert f"bot:v1: error: bot:v1 is not on {ollama_double.host}" in result.out
        assert "fix: doit build:bot:v1" in result.out
    # doit build restores the locked digest: the stored result is that model's again
    repo.doit("build")
    ollama_double.controls.reset_requests()
    result = repo.doit("test", "bot:v1")
    assert "stored result for this digest and test file" in result.out
    assert inference_calls(ollama_double) == 0


def test_one_tags_request_checks_every_model_and_a_server_down_is_asked_once(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    repo.write("models/other/v1.test.toml", SUITE.replace("bot:v1", "other:v1"))
    repo.doit("build")
    repo.doit("test", expect=None)
    ollama_double.controls.reset_requests()
    repo.doit("test", expect=None)
    assert ollama_double.controls.count("GET", "/api/tags") == 1
    assert inference_calls(ollama_double) == 0
    ollama_double.controls.fail_next("GET", "/api/tags", status=500, message="down", times=None)
    ollama_double.controls.reset_requests()
    result = repo.doit("test", expect=1)
    assert result.out.count(": down") == 2, result.out
    assert "  pass  " not in result.out and "stored result" not in result.out
    assert ollama_double.controls.count("GET", "/api/tags") == 1


def test_doit_test_sends_the_schema_as_format_and_checks_it_with_jsonschema(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    # $ref, $defs, enum and pattern: refused by the hand-written subset this replaced
    repo.write("models/bot/v1.test.toml", """
[[case]]
name = "structured output"
messages = [{ role = "user", content = "How do I reset my password?" }]
format = "schema"
[case.expect.schema]
type = "object"
required = ["model", "prompt", "reply_id"]
"$defs" = { id = { type = "string", pattern = "^[0-9a-f]{12}$" } }
[case.expect.schema.properties]
model = { enum = ["bot:v1"] }
reply_id = { "$ref" = "#/$defs/id" }
""")
    repo.doit("build")
    result = repo.doit("test", "bot:v1")
    assert "  pass  structured output\n" in result.out
    # the same schema, made to fail: the reason is jsonschema's, with the JSON path
    path = repo.root / "models" / "bot" / "v1.test.toml"
    path.write_text(path.read_text().replace('enum = ["bot:v1"]', 'enum = ["bot:v2"]'))
    result = repo.doit("test", "bot:v1", expect=1)
    assert "FAIL  structured output: the JSON does not match the schema: " \
        "$.model: 'bot:v1' is not one of ['bot:v2']" in result.out


def test_an_invalid_schema_is_one_message_with_file_line_and_case(repo: DoitRepo,
                                                                   ollama_double: OllamaDouble) -> None:
    repo.write("models/bot/v1.test.toml", """[[case]]
name = "structured output"
prompt = "x"
[case.expect.schema]
type = "object"
properties = { answer = { type = "text" } }
""")
    repo.doit("build")
    ollama_double.controls.reset_requests()
    result = repo.doit("test", "bot:v1", expect=1)
    assert "bot:v1: error: models/bot/v1.test.toml:6: case 1 ('structured output'): " \
        "expect.schema is not a valid JSON Schema (draft 2020-12): 'text' is not valid under " \
        "any of the given schemas (at expect.schema.properties.answer.type)" in result.out
    assert inference_calls(ollama_double) == 0
    lint = repo.doit("lint", expect=1)
    assert "models/bot/v1.test.toml:6" in lint.out and "not a valid JSON Schema" in lint.out


def test_the_double_cuts_a_json_answer_at_num_predict_as_a_real_server_does(
        ollama_double: OllamaDouble, registry) -> None:  # type: ignore[no-untyped-def]
    import ollama

    registry.publish(BASE, seed=1)
    with ollama.Client(host=ollama_double.url) as client:
        client.pull(BASE)
        client.create("short:v1", from_=BASE, parameters={"num_predict": 2})
        whole = client.generate(BASE, "How do I reset my password?", format="json")
        assert whole.done_reason == "stop" and json.loads(whole.response)
        cut = client.generate(BASE, "How do I reset my password?", format="json",
                              options={"num_predict": 2})
        assert cut.done_reason == "length" and whole.response.startswith(cut.response)
        assert cut.response != whole.response
        # the model's own num_predict parameter applies when the request gives none
        chat = client.chat("short:v1", [{"role": "user", "content": "How do I reset it?"}],
                           format="json")
        assert chat.done_reason == "length" and chat.message.content.count(" ") <= 2


def test_jsonschema_is_imported_by_doit_test_and_never_by_doit_build(repo: DoitRepo) -> None:
    imports = repo.env(PYTHONPROFILEIMPORTTIME="1")  # python -X importtime: one line per import
    for _ in range(2):  # a build that creates, then a no-op build
        assert " jsonschema\n" not in repo.doit("build", env=imports).err
    assert " jsonschema\n" in repo.doit("test", env=imports).err
