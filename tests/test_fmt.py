"""`doit fmt`: canonical Modelfiles with comments kept, `--check`, and the refusal to change
what a file means."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from doit_ollama import fmt, modelfile
from doit_ollama.errors import ModelfileError

from tests.doit_repo import make_repo

MESSY = (
    "# bot v1: the support bot.\r\n"
    "#   it answers in JSON\r\n"
    "from   base:1b   \r\n"
    "\r\n"
    "\r\n"
    "# why this prompt   \r\n"
    'system """Answer in JSON.\r\nBe brief."""\r\n'
    "parameter temperature 0\r\n"
    'PARAMETER stop "<|im_end|>"\r\n'
    "\r\n"
    "# trailing note\r\n"
)
CANONICAL = (
    "# bot v1: the support bot.\n"
    "#   it answers in JSON\n"
    "FROM base:1b\n"
    "\n"
    "# why this prompt\n"
    'SYSTEM """Answer in JSON.\r\nBe brief."""\n'
    "PARAMETER temperature 0\n"
    "PARAMETER stop <|im_end|>\n"
    "\n"
    "# trailing note\n"
)


def test_canonical_form_keeps_comments_and_one_blank_line() -> None:
    assert fmt.canonical(MESSY.encode()) == CANONICAL
    assert fmt.canonical(CANONICAL.encode()) == CANONICAL  # idempotent
    assert modelfile.parse(CANONICAL) == modelfile.parse(MESSY)
    assert [c.text for c in modelfile.parse(CANONICAL).comments] == [
        "# bot v1: the support bot.", "#   it answers in JSON", "# why this prompt",
        "# trailing note"]


def test_a_hash_inside_a_value_is_not_a_comment() -> None:
    text = '# bot\nFROM base:1b\nSYSTEM """\n# not a comment\n\n"""\n# a comment\n'
    assert fmt.canonical(text.encode()) == \
        '# bot\nFROM base:1b\nSYSTEM """\n# not a comment\n\n"""\n# a comment\n'


def test_a_file_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ModelfileError, match="command must be one of"):
        fmt.canonical(b"# bot\nFROM base\nFORM x\n", "models/bot/v1.Modelfile")


def test_a_canonical_form_that_would_change_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fmt._render

    def lossy(name: str, args: str, line: int) -> str:
        return real(name, args, line).replace("Be brief.", "Be brief")

    monkeypatch.setattr(fmt, "_render", lossy)
    with pytest.raises(ModelfileError, match=r"refusing to rewrite: instruction 2 \(system\) "
                                             "would change meaning"):
        fmt.canonical(MESSY.encode(), "models/bot/v1.Modelfile")


def test_doit_fmt_check_rewrite_and_refusal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", "127.0.0.1:9")
    messy = repo.write("models/bot/v1.Modelfile", MESSY.encode())
    messy.chmod(0o640)
    clean = repo.write("models/bot/v2.Modelfile", CANONICAL.encode())

    result = repo.doit("fmt", "--check", expect=1)
    assert result.out.splitlines() == ["would reformat models/bot/v1.Modelfile",
                                       "fmt: 1 file would be reformatted, 1 unchanged"]
    assert messy.read_bytes() == MESSY.encode()

    result = repo.doit("fmt")
    assert "reformatted models/bot/v1.Modelfile" in result.out
    assert messy.read_bytes() == CANONICAL.encode()
    assert stat.S_IMODE(messy.stat().st_mode) == 0o640
    assert clean.read_bytes() == CANONICAL.encode()
    repo.doit("fmt", "--check")

    broken = repo.write("models/bot/v3.Modelfile", "# bot\nFROM base\nFORM x\n")
    result = repo.doit("fmt", expect=1)
    assert "error: models/bot/v3.Modelfile:3: command must be one of" in result.out
    assert broken.read_text() == "# bot\nFROM base\nFORM x\n"
    assert list(broken.parent.glob(".*.tmp")) == []


def test_prose_is_triple_quoted() -> None:
    text = '# bot\nFROM base:1b\nSYSTEM Be brief.\nMESSAGE user Hi there\nTEMPLATE a"""\n'
    out = fmt.canonical(text.encode())
    assert out == ('# bot\nFROM base:1b\nSYSTEM """Be brief."""\nMESSAGE user """Hi there"""\n'
                   'TEMPLATE """a""""""\n')
    assert modelfile.parse(out) == modelfile.parse(text)
