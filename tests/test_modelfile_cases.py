"""Ollama's own parser cases and a corpus of real Modelfiles, as data.

tests/data/ollama-parser-cases.json holds parser_test.go / expandpath_test.go of
ollama/ollama plus extra cases; every expectation in it was checked by running Ollama's Go
code. Its `conventions` key explains the fields. tests/data/corpus holds real Modelfiles
from public repositories (INDEX.tsv says where each comes from).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from doit_ollama import createrequest as cr
from doit_ollama import modelfile as mf
from doit_ollama.errors import ModelfileError

DATA = Path(__file__).parent / "data"
CASES_FILE = DATA / "ollama-parser-cases.json"
CORPUS = DATA / "corpus"


def _cases() -> list[dict[str, Any]]:
    return list(json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"])


CASES = _cases()


def _case_id(case: dict[str, Any]) -> str:
    return str(case["name"]).replace("\n", "\\n")


def _ollama_text(err: ModelfileError) -> str:
    """err.Error() of Ollama's parser: ParserError prints "(line N): msg"."""
    return f"(line {err.line}): {err.msg}" if err.line is not None else err.msg


def _input(case: dict[str, Any]) -> str | bytes:
    if "input_b64" in case:
        return base64.b64decode(case["input_b64"])
    return str(case["input"])


def _make_fs(root: Path, layout: dict[str, Any]) -> None:
    """Create the case's files: {relpath: {"b64": ...} | text | {"symlink": target}}."""
    for relative, content in layout.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "symlink" in content:
            os.symlink(content["symlink"], target)
        elif isinstance(content, dict):
            target.write_bytes(base64.b64decode(content["b64"]))
        else:
            target.write_text(content, encoding="utf-8")


def _fill(value: Any, **places: str) -> Any:
    """Replace {dir} / {pwd} placeholders everywhere in a JSON value."""
    if isinstance(value, str):
        for name, text in places.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, list):
        return [_fill(item, **places) for item in value]
    if isinstance(value, dict):
        return {_fill(k, **places): _fill(v, **places) for k, v in value.items()}
    return value


def test_case_file_is_complete() -> None:
    kinds = {case["kind"] for case in CASES}
    assert len(CASES) == 196
    assert kinds == {"parse", "roundtrip", "create_request", "files_for_model", "expand_path"}
    assert len({_case_id(case) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_ollama_case(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = case["kind"]
    if kind in ("parse", "roundtrip"):
        _check_parse(case)
    elif kind == "create_request":
        _check_create_request(case, tmp_path, monkeypatch)
    elif kind == "files_for_model":
        _check_files_for_model(case, tmp_path)
    else:
        _check_expand_path(case, tmp_path, monkeypatch)


def _check_parse(case: dict[str, Any]) -> None:
    source = _input(case)
    if "expect_commands" not in case:
        with pytest.raises(ModelfileError) as caught:
            mf.parse(source)
        assert _ollama_text(caught.value) == case["expect_error_exact"]
        assert caught.value.msg in case["expect_error"] or case["expect_error"] in _ollama_text(
            caught.value
        )
        return
    parsed = mf.parse(source)
    expected = [tuple(pair) for pair in case["expect_commands"]]
    assert parsed.instructions == expected
    assert len(parsed.lines) == len(expected)
    text = parsed.format()
    assert mf.parse(text).instructions == expected
    if "expect_string" in case:
        # Ollama's Modelfile.String(): ours matches it wherever it reads back the same.
        ollama_form = case["expect_string"]
        try:
            ollama_reads_back = mf.parse(ollama_form).instructions == expected
        except ModelfileError:
            ollama_reads_back = False
        if ollama_reads_back:
            assert text == ollama_form
        else:
            assert text != ollama_form
    if "expect_string_contains" in case:
        assert case["expect_string_contains"] in text
    if case.get("expect_roundtrip_equal"):
        assert mf.parse(text) == parsed


def _check_create_request(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "fs"
    root.mkdir()
    _make_fs(root, case.get("fs", {}))
    places = {"dir": str(root)}
    if case["relative_dir"] == "{dir}":
        base_dir = str(root)
    else:
        # "" means relative to the working directory: run in an empty one.
        empty = tmp_path / "cwd"
        empty.mkdir()
        monkeypatch.chdir(empty)
        monkeypatch.delenv("PWD", raising=False)
        base_dir = ""
    source = _fill(case["input"], **places)
    parsed = mf.parse(source)
    if "expect_commands" in case:
        assert parsed.instructions == [tuple(pair) for pair in case["expect_commands"]]
    if "expect_wire" not in case:
        with pytest.raises(ModelfileError) as caught:
            parsed.resolve(base_dir)
        assert caught.value.msg == _fill(case["expect_error_exact"], **places)
        return
    resolved = parsed.resolve(base_dir)
    wire = dict(case["expect_wire"])
    assert wire.pop("name") == ""
    assert resolved.request == wire
    assert parsed.create_request(base_dir) == wire
    assert cr.wire_json(resolved.request) == case["expect_wire_json"]
    assert resolved.base == wire.get("from")
    stdout = "".join(warning + "\n" for warning in resolved.warnings)
    assert stdout == case.get("expect_stdout", "")
    for entry in resolved.local_files:
        assert resolved.request[entry.field][entry.key] == entry.digest
        assert entry.path.is_absolute() and entry.path.is_file()
    assert sum(len(resolved.request.get(f, {})) for f in cr._FILE_FIELDS) == len(
        resolved.local_files
    )
    if "expect_request" in case:
        # Modelfile.CreateRequest before the CLI re-keys files: absolute local paths.
        expected = _fill(case["expect_request"], **places)
        for name in cr._FILE_FIELDS:
            mine = {str(e.path): e.digest for e in resolved.local_files if e.field == name}
            assert mine == expected.get(name, {})


def _check_files_for_model(case: dict[str, Any], tmp_path: Path) -> None:
    _make_fs(tmp_path, case["fs"])
    if "expect_files_order" not in case:
        with pytest.raises(ModelfileError) as caught:
            cr.files_for_model(str(tmp_path))
        assert caught.value.msg == case["expect_error_exact"]
        return
    found = cr.files_for_model(str(tmp_path))
    relative = [os.path.relpath(path, tmp_path) for path in found]
    assert relative == case["expect_files_order"]
    assert sorted(relative) == sorted(case["expect_files"])


def _check_expand_path(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = case["users"]
    monkeypatch.setattr(cr, "current_user_home", lambda: users["current"])
    monkeypatch.setattr(cr, "user_home", lambda name: users["lookup"][name])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PWD", raising=False)
    pwd = os.getcwd()
    relative_dir = _fill(case["relative_dir"], pwd=pwd)
    if "expect_path" not in case:
        with pytest.raises(ModelfileError) as caught:
            cr.expand_path(case["path"], relative_dir)
        assert case["expect_error"] in caught.value.msg
        return
    assert cr.expand_path(case["path"], relative_dir) == _fill(case["expect_path"], pwd=pwd)


# --- the corpus ------------------------------------------------------------------------------

# What `ollama create -f <file>` does with each corpus file, from INDEX.tsv's notes and a
# reading of parser.go: "ok", or a substring of the error. Local paths of FROM that do not
# exist here become model names, as in Ollama; ADAPTER and DRAFT paths must exist.
CORPUS_EXPECTED: dict[str, str] = {
    "001.Modelfile": "ok",
    # Valid grammar, but DRAFT names a file on its author's machine; Ollama stops at stat.
    "003.Modelfile": "stat /home/wma/.cache/huggingface/hub/models--unsloth--gemma-4-26B-A4B-it",
    "005.Modelfile": "ok",
    "007.Modelfile": "ok",
    "009.Modelfile": "ok",
    "011.Modelfile": "ok",
    "013.Modelfile": "ok",
    "015.Modelfile": "ok",
    "017.Modelfile": "ok",
    "019.Modelfile": "ok",
    # Valid grammar, but the ADAPTER files are not in the corpus; Ollama stops at stat.
    "021.Modelfile": "korean_chat_lora.safetensors: no such file or directory",
    "023.Modelfile": "ok",
    "025.Modelfile": "ok",
    "027.Modelfile": "ok",  # mirostat, mirostat_eta: warnings only
    "029.Modelfile": "ok",
    "031.Modelfile": "ok",
    "033.Modelfile": "ok",
    "035.Modelfile": "ok",
    "037.Modelfile": "ok",
    "039.Modelfile": "ok",
    "041.Modelfile": "ok",
    "043.Modelfile": "ok",
    "045.Modelfile": "ok",
    "047.Modelfile": "ok",  # a Windows path is a missing relative path here: a model name
    "049.Modelfile": "ok",
    "051.Modelfile": "ok",
    "053.Modelfile": "no FROM line",
    "055.Modelfile": "unknown parameter 'max_tokens'",
    # The first fault Ollama meets is the MESSAGE role "wizard", while parsing.
    "061.Modelfile": 'message role must be one of "system", "user", or "assistant"',
    "057.Modelfile": "ok",
    "059.Modelfile": "ok",
    "063.Modelfile": "ok",
    # "# ..." after a value is part of the value, so temperature is not a number.
    "065.Modelfile": "invalid float value [0.1        # Controls randomness",
    "067.Modelfile": "ok",
    "069.Modelfile": "ok",
    "071.Modelfile": "ok",
    "073.Modelfile": "ok",
    "075.Modelfile": "ok",
    "077.Modelfile": "ok",
    "079.Modelfile": "ok",
}
CORPUS_WARNINGS = {
    "027.Modelfile": [
        "warning: parameter mirostat is deprecated",
        "warning: parameter mirostat_eta is deprecated",
    ],
}


def _corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("*.Modelfile")) if CORPUS.is_dir() else []


def test_corpus_is_present_and_indexed() -> None:
    files = _corpus_files()
    assert files, f"the Modelfile corpus is missing or empty: {CORPUS}"
    with open(CORPUS / "INDEX.tsv", encoding="utf-8", newline="") as stream:
        indexed = {row["file"] for row in csv.DictReader(stream, delimiter="\t")}
    assert indexed == set(files)
    assert set(CORPUS_EXPECTED) == set(files), "every corpus file needs an expectation"


def test_corpus(tmp_path: Path) -> None:
    files = _corpus_files()
    assert files, f"the Modelfile corpus is missing or empty: {CORPUS}"
    failures = []
    for name in files:
        # A folder of its own, so relative paths cannot meet other corpus files.
        folder = tmp_path / name.removesuffix(".Modelfile")
        folder.mkdir()
        shutil.copy(CORPUS / name, folder / name)
        expected = CORPUS_EXPECTED[name]
        try:
            modelfile = mf.load(folder / name)
            resolved = modelfile.resolve()
        except ModelfileError as err:
            if expected == "ok" or expected not in err.msg:
                failures.append(f"{name}: expected {expected!r}, got error {err}")
            elif err.path != str(folder / name):
                failures.append(f"{name}: error does not name the file: {err}")
            continue
        if expected != "ok":
            failures.append(f"{name}: expected error {expected!r}, got a request")
            continue
        request = resolved.request
        if not request.get("from") and not request.get("files"):
            failures.append(f"{name}: request has neither from nor files")
        if resolved.warnings != CORPUS_WARNINGS.get(name, []):
            failures.append(f"{name}: warnings {resolved.warnings}")
        again = mf.parse(modelfile.format(keep_comments=True))
        if again != modelfile or again.comments != modelfile.comments:
            failures.append(f"{name}: format(keep_comments=True) does not read back")
    assert not failures, "\n".join(failures)


def test_corpus_grammar_of_files_that_fail_later() -> None:
    """003 and 021 are well-formed: only their local files are missing here."""
    draft = mf.load(CORPUS / "003.Modelfile")
    assert [name for name, _ in draft.instructions] == ["model", "draft", "draft_num_predict"]
    assert draft.lines == [1, 8, 11]
    adapters = mf.load(CORPUS / "021.Modelfile")
    assert [name for name, _ in adapters.instructions].count("adapter") == 2
