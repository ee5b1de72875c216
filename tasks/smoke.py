"""Smoke tests of built models: `<tag>.test.toml` beside the Modelfile, results per digest.

A test file lists cases (a prompt for /api/generate or messages for /api/chat, options, an
optional format) and what each answer must satisfy (JSON Schema by schemacheck.py). The
results of a run are kept under .doit-ollama/tests/, one JSON file per model digest and
test-file fingerprint: a model the server still holds at the locked digest, with unchanged
tests, is not asked again, and `doit promote` reads them to decide whether a version may
become a channel's target.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from . import lockfile, schemacheck
from .errors import ConfigError, ServerError
from .lockfile import Lock
from .modelfile import PARAMETER_TYPES, ROLES
from .names import ModelName
from .project import ModelSource, Project
from .server import Server, Tag

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "SCHEMA_FORMAT",
    "TEST_SUFFIX",
    "Case",
    "CaseResult",
    "Expect",
    "ModelOutcome",
    "Suite",
    "SuiteError",
    "SuiteResult",
    "check_answer",
    "check_model",
    "load_suite",
    "passed_result",
    "render_outcome",
    "result_path",
    "run_suite",
    "suite_path",
    "summary",
]

TEST_SUFFIX: Final = ".test.toml"
# `format = "schema"`: send the case's expect.schema as Ollama's format (structured output).
SCHEMA_FORMAT: Final = "schema"
RESULTS_DIR: Final = "tests"
RESULT_VERSION: Final = 1
# Answers are stored for the report, cut to this many characters.
MAX_STORED_ANSWER: Final = 2000

_TOP_KEYS: Final = {"case": "the list of cases ([[case]] tables)",
                    "defaults": "options and format shared by every case"}
_FORMAT_HELP: Final = ('"json", "schema" (send the case\'s expect.schema) or a JSON Schema '
                       "table (Ollama's structured output)")
_DEFAULT_KEYS: Final = {"options": "model options", "format": _FORMAT_HELP}
_CASE_KEYS: Final = {
    "name": "what the case checks (unique)",
    "prompt": "a prompt for /api/generate",
    "messages": "chat messages for /api/chat: [{role, content}, ...]",
    "options": "model options, e.g. { temperature = 0, seed = 42 }",
    "format": _FORMAT_HELP,
    "expect": "what the answer must satisfy",
}
_EXPECT_KEYS: Final = {
    "json": "true: the answer is valid JSON",
    "schema": "a JSON Schema (draft 2020-12) the answer, as JSON, must match",
    "contains": "text (or list of texts) the answer must contain",
    "not-contains": "text (or list of texts) the answer must not contain",
    "regex": "regular expression(s) the answer must match (Python re.search)",
    "max-length": "most characters the answer may have",
}
_CASE_HEADER: Final = re.compile(r"^\s*\[\[\s*case\s*\]\]")


class SuiteError(ConfigError):
    """A smoke-test file that cannot be used; `.msg`, `.line` (or None) and `.path`."""

    def __init__(self, msg: str, path: str, line: int | None = None):
        self.msg = msg
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {msg}" if line else f"{path}: {msg}")


@dataclass(frozen=True)
class Expect:
    """What one answer must satisfy."""

    json: bool = False
    schema: Mapping[str, Any] | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    max_length: int | None = None


@dataclass(frozen=True)
class Case:
    """One smoke test: a generate prompt or chat messages, and the expectations."""

    name: str
    prompt: str | None
    messages: tuple[Mapping[str, str], ...]
    options: Mapping[str, Any]
    format: Any
    expect: Expect
    line: int | None = None


@dataclass(frozen=True)
class Suite:
    """A test file's cases and a fingerprint of their meaning (comments do not count)."""

    path: Path
    cases: tuple[Case, ...]
    fingerprint: str


def suite_path(modelfile: Path) -> Path:
    """Where a Modelfile's tests live: v1.1.Modelfile -> v1.1.test.toml, Modelfile ->
    Modelfile.test.toml."""
    name = modelfile.name
    stem = name.removesuffix(".Modelfile")
    return modelfile.with_name(stem + TEST_SUFFIX)


# --- reading and validating a test file -------------------------------------------------------


class _Reader:
    """Validates the decoded TOML, naming the file and (where it can find it) the line."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()
        self.headers = [n for n, line in enumerate(self.lines, 1) if _CASE_HEADER.match(line)]

    def region(self, index: int | None) -> tuple[int, int]:
        """The lines of case `index` ([[case]] header to the next one), or the whole file."""
        if index is None or index >= len(self.headers):
            return 1, len(self.lines)
        end = self.headers[index + 1] - 1 if index + 1 < len(self.headers) else len(self.lines)
        return self.headers[index], end

    def find(self, key: str, index: int | None, start: int | None = None) -> int | None:
        """The first line of case `index` (or of the file), from `start` on, that sets
        `key`, or None."""
        first, last = self.region(index)
        first = max(first, start or first)
        # `key = ...`, `{ key = ... }`, or a table header `[case.expect.key]`
        pattern = re.compile(r'(^|[\s{,.])("?)' + re.escape(key) + r'\2\s*=|^\s*\[[^\]]*\.("?)'
                             + re.escape(key) + r'\3\s*\]')
        for number in range(first, last + 1):
            if pattern.search(self.lines[number - 1]):
                return number
        return None

    def line_of(self, key: str, index: int | None) -> int | None:
        found = self.find(key, index)
        if found is None and index is not None and index < len(self.headers):
            return self.headers[index]
        return found

    def fail(self, message: str, key: str | None = None, index: int | None = None,
             line: int | None = None) -> SuiteError:
        if line is None and key is not None:
            line = self.line_of(key, index)
        elif line is None and index is not None and index < len(self.headers):
            line = self.headers[index]
        return SuiteError(message, str(self.path), line)

    def known(self, table: Mapping[str, Any], keys: Mapping[str, str], where: str,
              index: int | None) -> None:
        for key in table:
            if key not in keys:
                known = "; ".join(f"{k}: {v}" for k, v in keys.items())
                raise self.fail(f"{where}: unknown key {key!r} (known: {known})", key, index)

    def options(self, value: Any, where: str, index: int | None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(f"{where}: options must be a table", "options", index)
        out: dict[str, Any] = {}
        for name, option in value.items():
            kind = PARAMETER_TYPES.get(name)
            if kind is None:
                raise self.fail(f"{where}: unknown option {name!r} (known: "
                                f"{', '.join(sorted(PARAMETER_TYPES))})", name, index)
            ok = {
                "int": isinstance(option, int) and not isinstance(option, bool),
                "float32": isinstance(option, (int, float)) and not isinstance(option, bool),
                "bool": isinstance(option, bool),
                "list": isinstance(option, str) or (isinstance(option, list)
                                                    and all(isinstance(s, str) for s in option)),
            }[kind]
            if not ok:
                want = {"int": "an integer", "float32": "a number", "bool": "true or false",
                        "list": "a string or a list of strings"}[kind]
                raise self.fail(f"{where}: option {name} must be {want}, got {option!r}",
                                name, index)
            out[name] = [option] if kind == "list" and isinstance(option, str) else option
        return out

    def schema(self, value: Any, key: str, where: str, index: int | None) -> Any:
        """A valid JSON Schema, or an error at the line of the offending keyword."""
        try:
            schemacheck.check_schema(value, key)
        except schemacheck.SchemaError as err:
            # The schema's line, then each key of the path to the offending keyword in turn.
            name = key.rsplit(".", 1)[-1]
            line = self.find(name, index)
            for step in err.path:
                if isinstance(step, str) and line is not None:
                    line = self.find(step, index, line) or line
            raise self.fail(f"{where}: {err}", name, index, line) from None
        return dict(value) if isinstance(value, Mapping) else value

    def format(self, value: Any, where: str, index: int | None) -> Any:
        if value in ("json", SCHEMA_FORMAT):
            return value
        if isinstance(value, Mapping):
            return self.schema(value, "format", where, index)
        raise self.fail(f"{where}: format must be {_FORMAT_HELP}, got {value!r}",
                        "format", index)

    def texts(self, value: Any, key: str, where: str, index: int | None) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(
                isinstance(i, str) and i for i in items):
            raise self.fail(f"{where}: expect.{key} must be a non-empty string or a list of "
                            "them", key, index)
        return tuple(items)

    def expect(self, value: Any, where: str, index: int) -> Expect:
        if not isinstance(value, Mapping):
            raise self.fail(f"{where}: expect must be a table", "expect", index)
        self.known(value, _EXPECT_KEYS, f"{where}: expect", index)
        want_json = value.get("json", False)
        if not isinstance(want_json, bool):
            raise self.fail(f"{where}: expect.json must be true or false", "json", index)
        schema = value.get("schema")
        if schema is not None:
            schema = self.schema(schema, "expect.schema", where, index)
        regex = self.texts(value["regex"], "regex", where, index) if "regex" in value else ()
        for pattern in regex:
            try:
                re.compile(pattern)
            except re.error as err:
                raise self.fail(f"{where}: expect.regex {pattern!r} is not a regular "
                                f"expression: {err}", "regex", index) from None
        limit = value.get("max-length")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            raise self.fail(f"{where}: expect.max-length must be a positive integer",
                            "max-length", index)
        return Expect(
            json=want_json or schema is not None,
            schema=schema,
            contains=self.texts(value["contains"], "contains", where, index)
            if "contains" in value else (),
            not_contains=self.texts(value["not-contains"], "not-contains", where, index)
            if "not-contains" in value else (),
            regex=regex,
            max_length=limit,
        )

    def messages(self, value: Any, where: str, index: int) -> tuple[Mapping[str, str], ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(f"{where}: messages must be a non-empty list of "
                            "{ role, content } tables", "messages", index)
        out = []
        for message in value:
            if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
                raise self.fail(f"{where}: each message needs exactly role and content, got "
                                f"{message!r}", "messages", index)
            if message["role"] not in ROLES or not isinstance(message["content"], str):
                raise self.fail(f"{where}: a message role must be one of {', '.join(ROLES)} "
                                "and its content a string", "messages", index)
            out.append({"role": message["role"], "content": message["content"]})
        return tuple(out)

    def case(self, table: Any, index: int, defaults: Mapping[str, Any]) -> Case:
        where = f"case {index + 1}"
        if not isinstance(table, Mapping):
            raise self.fail(f"{where} must be a table", index=index)
        if isinstance(table.get("name"), str) and table["name"]:
            where = f"case {index + 1} ({table['name']!r})"
        self.known(table, _CASE_KEYS, where, index)
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(f"{where}: name is missing (say what the case checks)", "name", index)
        if ("prompt" in table) == ("messages" in table):
            raise self.fail(f"{where}: give either prompt (generate) or messages (chat)",
                            index=index)
        prompt = table.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise self.fail(f"{where}: prompt must be a string", "prompt", index)
        messages = self.messages(table["messages"], where, index) if "messages" in table else ()
        options = {**defaults.get("options", {}),
                   **self.options(table.get("options", {}), where, index)}
        fmt = self.format(table["format"], where, index) if "format" in table \
            else defaults.get("format")
        expect = self.expect(table.get("expect", {}), where, index)
        if fmt == SCHEMA_FORMAT:
            if expect.schema is None:
                raise self.fail(f'{where}: format = "schema" sends the case\'s expect.schema '
                                "to Ollama, but this case has none; add [case.expect.schema] "
                                'or give the case its own format ("json" or a schema table)',
                                "format", index)
            fmt = expect.schema
        line = self.headers[index] if index < len(self.headers) else None
        return Case(name, prompt, messages, options, fmt, expect, line)

    def suite(self, doc: Mapping[str, Any]) -> Suite:
        self.known(doc, _TOP_KEYS, "top level", None)
        raw_defaults = doc.get("defaults", {})
        if not isinstance(raw_defaults, Mapping):
            raise self.fail("defaults must be a table", "defaults")
        self.known(raw_defaults, _DEFAULT_KEYS, "defaults", None)
        defaults: dict[str, Any] = {}
        if "options" in raw_defaults:
            defaults["options"] = self.options(raw_defaults["options"], "defaults", None)
        if "format" in raw_defaults:
            defaults["format"] = self.format(raw_defaults["format"], "defaults", None)
        tables = doc.get("case")
        if not isinstance(tables, list) or not tables:
            raise self.fail("no cases: add at least one [[case]] table with a name, a prompt "
                            "(or messages) and [case.expect]")
        cases = tuple(self.case(table, index, defaults) for index, table in enumerate(tables))
        seen: set[str] = set()
        for index, case in enumerate(cases):
            if case.name in seen:
                raise self.fail(f"case {index + 1}: the name {case.name!r} is used twice",
                                "name", index)
            seen.add(case.name)
        meaning = [{k: v for k, v in asdict(c).items() if k != "line"} for c in cases]
        fingerprint = hashlib.sha256(json.dumps(meaning, sort_keys=True, default=list)
                                     .encode()).hexdigest()
        return Suite(self.path, cases, "sha256:" + fingerprint)


def load_suite(path: Path) -> Suite:
    """Read and validate a test file; SuiteError names the file and line."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SuiteError(f"cannot read the test file: {err.strerror}", str(path)) from None
    try:
        text = data.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError as err:
        raise SuiteError(f"not UTF-8 text ({err.reason})", str(path)) from None
    except tomllib.TOMLDecodeError as err:
        # Python < 3.14 has the position only in the text: "Invalid value (at line 3, ...)".
        where = re.search(r"at line (\d+)", str(err))
        raise SuiteError(f"invalid TOML: {err}", str(path),
                         int(where.group(1)) if where else None) from None
    return _Reader(path, text).suite(doc)


# --- checking answers --------------------------------------------------------------------------


def check_answer(expect: Expect, answer: str) -> list[str]:
    """Every expectation the answer misses, as reasons; empty when the case passes."""
    reasons: list[str] = []
    if not answer.strip():
        return ["the answer is empty"]
    if expect.json:
        try:
            value = json.loads(answer)
        except ValueError as err:
            reasons.append(f"the answer is not valid JSON ({err})")
        else:
            if expect.schema is not None:
                try:
                    problems = schemacheck.validate(value, expect.schema)
                except schemacheck.SchemaError as err:
                    problems = [f"the schema cannot be checked: {err}"]
                if problems:
                    reasons.append("the JSON does not match the schema: " + "; ".join(problems))
    for text in expect.contains:
        if text not in answer:
            reasons.append(f"the answer does not contain {text!r}")
    for text in expect.not_contains:
        if text in answer:
            reasons.append(f"the answer contains {text!r}")
    for pattern in expect.regex:
        if not re.search(pattern, answer):
            reasons.append(f"the answer does not match the regular expression {pattern!r}")
    if expect.max_length is not None and len(answer) > expect.max_length:
        reasons.append(f"the answer is {len(answer)} characters long, more than max-length "
                       f"{expect.max_length}")
    return reasons


@dataclass(frozen=True)
class CaseResult:
    """How one case went."""

    name: str
    passed: bool
    reason: str = ""
    answer: str = ""


@dataclass(frozen=True)
class SuiteResult:
    """The stored outcome of a model digest's tests (the source of truth for promotion)."""

    model: str
    digest: str
    test_file: str
    suite: str  # the test file's fingerprint
    passed: bool
    cases: tuple[CaseResult, ...] = ()

    def to_json(self) -> str:
        body = {"version": RESULT_VERSION, **asdict(self)}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SuiteResult:
        body = json.loads(text)
        if body.get("version") != RESULT_VERSION:
            raise ValueError("unknown result version")
        cases = tuple(CaseResult(**c) for c in body["cases"])
        return cls(body["model"], body["digest"], body["test_file"], body["suite"],
                   bool(body["passed"]), cases)


def run_suite(server: Server, model: str, digest: str, suite: Suite,
              test_file: str) -> SuiteResult:
    """Ask the model every case of the suite; a ServerError stops the run (nothing stored)."""
    results = []
    for case in suite.cases:
        if case.prompt is not None:
            answer = server.generate(model, case.prompt, case.options, case.format)
        else:
            answer = server.chat(model, list(case.messages), case.options, case.format)
        reasons = check_answer(case.expect, answer)
        results.append(CaseResult(case.name, not reasons, "; ".join(reasons),
                                  answer[:MAX_STORED_ANSWER]))
    return SuiteResult(model, digest, test_file, suite.fingerprint,
                       all(r.passed for r in results), tuple(results))


def result_path(project: Project, digest: str, fingerprint: str) -> Path:
    """.doit-ollama/tests/<digest hex>-<first 16 hex of the test-file fingerprint>.json."""
    return (project.state_dir / RESULTS_DIR /
            f"{digest.removeprefix('sha256:')}-{fingerprint.removeprefix('sha256:')[:16]}.json")


def _stored(project: Project, digest: str, suite: Suite) -> SuiteResult | None:
    path = result_path(project, digest, suite.fingerprint)
    try:
        result = SuiteResult.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: the tests simply run again
    if result.digest != digest or result.suite != suite.fingerprint:
        return None
    return result


def passed_result(project: Project, source: ModelSource, digest: str) -> SuiteResult | None:
    """The stored passing result for this digest and the current test file, if any.

    Raises SuiteError when the test file is invalid; None when there is no test file,
    no stored result, or the stored result failed.
    """
    path = suite_path(source.modelfile)
    if not path.exists():
        return None
    result = _stored(project, digest, load_suite(path))
    return result if result is not None and result.passed else None


# --- one model, end to end ---------------------------------------------------------------------


@dataclass
class ModelOutcome:
    """What `doit test` says about one model."""

    model: str
    status: str  # "passed", "failed", "no tests", "error"
    test_file: str = ""
    digest: str = ""
    cached: bool = False
    message: str = ""  # for "error" and "no tests"
    fix: str = ""
    result: SuiteResult | None = None
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")


def check_model(project: Project, source: ModelSource, lock: Lock,
               tags: Callable[[], Mapping[tuple[str, str, str, str], Tag]],
               server: Callable[[], Server], *, force: bool = False) -> ModelOutcome:
    """Run (or recall) the smoke tests of one built model.

    A stored result is reused only for the model the server holds now: `tags()` (one
    /api/tags per run) must list the tag at the locked digest, whether or not the cases run.
    """
    name = source.display
    path = suite_path(source.modelfile)
    relpath = project.relative(path)
    if not path.exists():
        return ModelOutcome(name, "no tests", message=f"no tests ({relpath} does not exist)",
                            fix=f"add {relpath}; see docs/checklist.md")
    try:
        suite = load_suite(path)
    except SuiteError as err:
        where = f"{relpath}:{err.line}" if err.line else relpath
        return ModelOutcome(name, "error", relpath, message=f"{where}: {err.msg}",
                            fix="fix the test file (`doit lint` checks it)")
    entry = lock.models.get(name)
    if entry is None:
        return ModelOutcome(name, "error", relpath,
                            message=f"{name} is not built (not in {project.relative(project.lock_path)})",
                            fix=f"doit build:{name}")
    try:
        # Checked before a stored result is reused: a tag deleted or overwritten by hand
        # since the tests passed must not be reported as passing.
        tag = tags().get(ModelName.parse(name).key)
        if tag is None or tag.digest != entry.digest:
            found = "is not on" if tag is None else f"is {tag.digest[:19]}… on"
            return ModelOutcome(name, "error", relpath, entry.digest,
                                message=f"{name} {found} {project.host}, the lock says "
                                        f"{entry.digest[:19]}…; its tests would not test the "
                                        "locked model", fix=f"doit build:{name}")
        if not force:
            stored = _stored(project, entry.digest, suite)
            if stored is not None:
                return ModelOutcome(name, "passed" if stored.passed else "failed", relpath,
                                    entry.digest, cached=True, result=stored,
                                    cases=list(stored.cases))
        result = run_suite(server(), name, entry.digest, suite, relpath)
    except ServerError as err:
        return ModelOutcome(name, "error", relpath, entry.digest, message=str(err),
                            fix="check the server, then run doit test again")
    stored_at = result_path(project, entry.digest, suite.fingerprint)
    lockfile.write_atomic(stored_at, result.to_json().encode("utf-8"))
    return ModelOutcome(name, "passed" if result.passed else "failed", relpath, entry.digest,
                        result=result, cases=list(result.cases))


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def render_outcome(outcome: ModelOutcome) -> str:
    """The console lines for one model: a header, then one line per case."""
    if outcome.status == "no tests":
        return f"{outcome.model}: {outcome.message}\n"
    if outcome.status == "error":
        return f"{outcome.model}: error: {outcome.message}\n  fix: {outcome.fix}\n"
    cached = " (stored result for this digest and test file; --force runs it again)" \
        if outcome.cached else ""
    lines = [f"{outcome.model} ({_short(outcome.digest)}, {outcome.test_file}){cached}"]
    for case in outcome.cases:
        if case.passed:
            lines.append(f"  pass  {case.name}")
        else:
            lines.append(f"  FAIL  {case.name}: {case.reason}")
            answer = case.answer if len(case.answer) <= 300 else case.answer[:300] + "…"
            lines.append(f"        answer: {answer!r}")
    failed = sum(not c.passed for c in outcome.cases)
    total = len(outcome.cases)
    lines.append(f"  {outcome.model}: " + (f"{failed} of {total} cases failed" if failed
                                            else f"all {total} cases passed"))
    return "\n".join(lines) + "\n"


def summary(outcomes: Sequence[ModelOutcome]) -> str:
    """One closing line: how many models passed, failed, had no tests."""
    counts = {status: sum(o.status == status for o in outcomes)
              for status in ("passed", "failed", "error", "no tests")}
    parts = [f"{counts['passed']} passed", f"{counts['failed']} failed"]
    if counts["error"]:
        parts.append(f"{counts['error']} could not be tested")
    parts.append(f"{counts['no tests']} without tests")
    return f"test: {len(outcomes)} model{'s' * (len(outcomes) != 1)}: {', '.join(parts)}\n"
