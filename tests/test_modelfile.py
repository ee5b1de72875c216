"""Unit tests of doit_ollama.modelfile: grammar rules, errors, writing, create requests, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from doit_ollama import createrequest as cr
from doit_ollama import modelfile as mf
from doit_ollama.errors import ModelfileError
from doit_ollama.hashing import DigestCache, sha256_file


def commands(text: str | bytes) -> list[tuple[str, str]]:
    return mf.parse(text).instructions


def parse_error(text: str | bytes) -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        mf.parse(text)
    return caught.value


def request(text: str, base_dir: Path | str = "/nonexistent-base") -> dict[str, Any]:
    return mf.parse(text).create_request(base_dir)


def request_error(text: str, base_dir: Path | str = "/nonexistent-base") -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        mf.parse(text).resolve(base_dir)
    return caught.value


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- grammar -----------------------------------------------------------------------------------


class TestValues:
    def test_quotes_inside_an_unquoted_value_are_kept(self) -> None:
        assert commands('FROM m\nSYSTEM He said "hi" twice\n')[1] == (
            "system", 'He said "hi" twice',
        )

    def test_outer_quotes_are_removed_inner_ones_kept(self) -> None:
        assert commands('FROM m\nSYSTEM "a "quoted" word"\n')[1] == ("system", 'a "quoted" word')

    def test_triple_quotes_on_their_own_lines(self) -> None:
        text = 'FROM m\nTEMPLATE """\n{{ .Prompt }}\n"""\nSYSTEM s\n'
        assert commands(text)[1:] == [("template", "\n{{ .Prompt }}\n"), ("system", "s")]

    def test_plain_double_quotes_span_lines_too(self) -> None:
        assert commands('FROM m\nSYSTEM "one\ntwo"\n')[1] == ("system", "one\ntwo")

    def test_quoted_values_keep_edge_spaces_unquoted_are_trimmed(self) -> None:
        assert commands('FROM m\nSYSTEM "  a  "\nLICENSE \t b \t\n')[1:] == [
            ("system", "  a  "), ("license", "b"),
        ]

    def test_hash_inside_a_value_is_text(self) -> None:
        assert commands("FROM m # not a comment\nSYSTEM a # b\n") == [
            ("model", "m # not a comment"), ("system", "a # b"),
        ]

    def test_hash_at_line_start_inside_quotes_is_text(self) -> None:
        assert commands('FROM m\nSYSTEM """\n# Heading\n"""\n')[1] == ("system", "\n# Heading\n")

    def test_empty_values(self) -> None:
        assert commands('FROM m\nSYSTEM ""\nLICENSE """"""\nTEMPLATE \n') == [
            ("model", "m"), ("system", ""), ("license", ""), ("template", ""),
        ]

    def test_a_value_may_end_at_end_of_file(self) -> None:
        assert commands("FROM m") == [("model", "m")]
        assert commands('FROM m\nSYSTEM """x"""') == [("model", "m"), ("system", "x")]

    def test_non_printable_characters_are_dropped(self) -> None:
        assert commands("FROM m\nSYSTEM a\x00b\u200bc\u00a0d\x7fe\n")[1] == ("system", "abcde")

    def test_tabs_and_carriage_returns_inside_quotes_are_kept(self) -> None:
        assert commands('FROM m\nSYSTEM "a\tb\r\nc"\r\n')[1] == ("system", "a\tb\r\nc")


class TestCommands:
    def test_commands_are_case_insensitive(self) -> None:
        text = "from m\nsystem s\nParameter temperature 1\nmessage user hi\nlicense l\n"
        assert commands(text) == [
            ("model", "m"), ("system", "s"), ("temperature", "1"),
            ("message", "user: hi"), ("license", "l"),
        ]

    def test_parameter_names_keep_their_case(self) -> None:
        assert commands("FROM m\nPARAMETER Top_K 1\n")[1] == ("Top_K", "1")

    def test_every_command_name(self) -> None:
        text = (
            "FROM m\nADAPTER a\nDRAFT d\nLICENSE l\nTEMPLATE t\nSYSTEM s\nRENDERER r\n"
            "PARSER p\nREQUIRES 0.14.0\nPARAMETER stop x\nMESSAGE assistant ok\n"
        )
        assert [name for name, _ in commands(text)] == [
            "model", "adapter", "draft", "license", "template", "system", "renderer",
            "parser", "requires", "stop", "message",
        ]

    def test_repeated_instructions_are_all_kept(self) -> None:
        assert commands("FROM m\nPARAMETER stop a\nPARAMETER stop b\n")[1:] == [
            ("stop", "a"), ("stop", "b"),
        ]

    def test_instructions_may_come_in_any_order(self) -> None:
        assert commands("SYSTEM s\nFROM m\n") == [("system", "s"), ("model", "m")]

    def test_message_roles(self) -> None:
        text = "FROM m\nMESSAGE system a\nMESSAGE user b: c\nMESSAGE assistant \"\"\n"
        assert commands(text)[1:] == [
            ("message", "system: a"), ("message", "user: b: c"), ("message", "assistant: "),
        ]


class TestErrors:
    def test_bad_message_role_names_its_line(self) -> None:
        err = parse_error("FROM m\n\nMESSAGE wizard hello\n")
        assert (err.msg, err.line) == (mf.ERR_ROLE, 3)

    def test_roles_are_case_sensitive(self) -> None:
        assert parse_error("FROM m\nMESSAGE User hi\n").msg == mf.ERR_ROLE

    def test_unknown_command_names_its_line(self) -> None:
        err = parse_error("FROM m\n# c\nSYSTEM s\nINSTRUCTION x\n")
        assert (err.msg, err.line) == (mf.ERR_COMMAND, 4)
        assert err.msg.startswith('command must be one of "from", "license"')

    def test_command_followed_by_newline_is_reported_on_the_next_line(self) -> None:
        err = parse_error("FROM m\nSYSTEM\nLICENSE x\n")
        assert (err.msg, err.line) == (mf.ERR_COMMAND, 3)

    def test_non_letter_in_a_command_name(self) -> None:
        err = parse_error("FROM m\nSYS-TEM x\n")
        assert (err.msg, err.line) == (mf.ERR_COMMAND, 2)

    def test_unterminated_quotes_are_unexpected_eof_without_a_line(self) -> None:
        for text in ('FROM m\nSYSTEM "open\nPARAMETER x 1\n', 'FROM m\nSYSTEM """a""\n'):
            err = parse_error(text)
            assert (err.msg, err.line) == ("unexpected EOF", None)

    def test_quote_not_at_the_end_keeps_reading(self) -> None:
        assert parse_error('FROM m\nSYSTEM "a" b\n').msg == "unexpected EOF"

    def test_missing_values(self) -> None:
        assert parse_error("FROM m\nPARAMETER temperature\n").msg == "unexpected EOF: temperature"
        assert parse_error("FROM m\nPARAMETER top-k 1\n").msg == "unexpected EOF: top"
        assert parse_error("FROM m\nMESSAGE user\n").msg == "unexpected EOF: user"
        assert parse_error("FROM m\nSYSTEM").msg == "unexpected EOF"
        assert parse_error("FROM m\nSYSTEM").line is None

    def test_no_from_line_is_a_whole_file_error(self) -> None:
        for text in ("", "# only a comment\n", "SYSTEM s\nPARAMETER stop x\n"):
            err = parse_error(text)
            assert (err.msg, err.line) == ("no FROM line", None)

    def test_error_str_names_file_and_line(self) -> None:
        err = parse_error("FROM m\nBAD x\n").with_path("models/bot/v1.Modelfile")
        assert str(err) == f"models/bot/v1.Modelfile:2: {mf.ERR_COMMAND}"
        assert str(parse_error("").with_path("a/Modelfile")) == "a/Modelfile: no FROM line"


class TestLines:
    def test_crlf_counts_twice_in_errors_as_ollama_counts(self) -> None:
        err = parse_error("FROM m\r\nSYSTEM s\r\nBAD x\r\n")
        assert err.line == 5
        # ... while the message points where an editor shows the line
        assert err.editor_line == 3
        assert str(err.with_path("models/a/v1.Modelfile")).startswith("models/a/v1.Modelfile:3: ")
        role = parse_error("FROM m\r\n\r\nMESSAGE robot hi\r\n")
        assert (role.line, role.editor_line) == (5, 3)

    def test_lone_cr_ends_a_line(self) -> None:
        assert commands("FROM m\rSYSTEM s\r") == [("model", "m"), ("system", "s")]
        assert parse_error("FROM m\rBAD x").line == 2

    def test_instruction_lines_are_editor_lines(self) -> None:
        text = "# head\n\nFROM m\nSYSTEM \"\"\"\na\nb\n\"\"\"\n  PARAMETER stop x\n"
        assert mf.parse(text).lines == [3, 4, 8]
        crlf = text.replace("\n", "\r\n")
        assert mf.parse(crlf).lines == [3, 4, 8]
        assert mf.parse(crlf).instructions[1] == ("system", "\r\na\r\nb\r\n")

    def test_comments_keep_their_place(self) -> None:
        parsed = mf.parse("# top\nFROM m\n  # indented\nSYSTEM s\n# tail")
        assert parsed.comments == [(0, "# top"), (1, "# indented"), (2, "# tail")]
        assert parsed.comments[0].before == 0 and parsed.comments[0].text == "# top"


class TestEncodings:
    TEXT = "FROM m\nSYSTEM 你好 👋 café\n"

    @pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
    def test_utf16_with_bom(self, tmp_path: Path, encoding: str) -> None:
        bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
        path = tmp_path / "Modelfile"
        path.write_bytes(bom + self.TEXT.encode(encoding))
        assert mf.load(path).instructions == [("model", "m"), ("system", "你好 👋 café")]

    def test_utf8_bom_is_stripped(self, tmp_path: Path) -> None:
        path = tmp_path / "Modelfile"
        path.write_bytes(b"\xef\xbb\xbf" + self.TEXT.encode())
        assert mf.load(path) == mf.parse(self.TEXT)
        assert mf.parse("\ufeff" + self.TEXT) == mf.parse(self.TEXT)

    def test_utf16_without_bom_is_read_as_utf8(self) -> None:
        err = parse_error(self.TEXT.encode("utf-16-le"))
        assert (err.msg, err.line) == (mf.ERR_COMMAND, 1)

    def test_invalid_utf8_becomes_replacement_characters(self) -> None:
        assert commands(b"FROM m\nSYSTEM a\xffb\n")[1] == ("system", "a\ufffdb")

    def test_bytes_and_text_agree(self) -> None:
        assert mf.parse(self.TEXT.encode()) == mf.parse(self.TEXT)

    def test_lone_surrogates_in_text_read_as_replacement(self) -> None:
        assert commands("FROM m\nSYSTEM a\udc80b\n")[1] == ("system", "a\ufffdb")


class TestLoad:
    def test_sets_path_and_errors_carry_it(self, tmp_path: Path) -> None:
        good = tmp_path / "good.Modelfile"
        good.write_text("FROM m\n")
        assert mf.load(good).path == good
        bad = tmp_path / "bad.Modelfile"
        bad.write_text("FROM m\nMESSAGE bot hi\n")
        with pytest.raises(ModelfileError) as caught:
            mf.load(bad)
        assert (caught.value.path, caught.value.line) == (str(bad), 2)
        assert str(caught.value) == f"{bad}:2: {mf.ERR_ROLE}"

    def test_missing_file_is_one_clear_error(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.Modelfile"
        with pytest.raises(ModelfileError) as caught:
            mf.load(missing)
        assert str(caught.value) == f"{missing}: cannot read Modelfile: no such file or directory"

    def test_folder_is_not_a_modelfile(self, tmp_path: Path) -> None:
        with pytest.raises(ModelfileError) as caught:
            mf.load(tmp_path)
        assert caught.value.msg == "cannot read Modelfile: is a directory"


# --- writing -----------------------------------------------------------------------------------


class TestFormat:
    def test_ollama_string_form(self) -> None:
        text = (
            "# header\nfrom llama3.2\nparameter temperature 0.7\nPARAMETER stop <|eot|>\n"
            'SYSTEM """\nYou are "nice".\n"""\nMESSAGE user hi there\nLICENSE " MIT "\n'
        )
        assert mf.parse(text).format() == (
            "FROM llama3.2\nPARAMETER temperature 0.7\nPARAMETER stop <|eot|>\n"
            'SYSTEM """\nYou are "nice".\n"""\nMESSAGE user hi there\nLICENSE " MIT "\n'
        )

    def test_keep_comments_writes_them_in_place(self) -> None:
        text = "# top\nFROM m\n\n   # about system\nSYSTEM s\n# end\n"
        parsed = mf.parse(text)
        assert parsed.format(keep_comments=True) == "# top\nFROM m\n# about system\nSYSTEM s\n# end\n"
        assert parsed.format() == "FROM m\nSYSTEM s\n"

    def test_comments_do_not_affect_equality(self) -> None:
        assert mf.parse("# a\nFROM m\n") == mf.parse("FROM   m   \n# b\n")
        assert mf.parse("FROM m\n") != mf.parse("FROM n\n")
        assert mf.parse("FROM m\n") != "FROM m\n"

    @pytest.mark.parametrize(
        ("args", "written"),
        [
            ("plain", "SYSTEM plain"),
            ("", "SYSTEM "),
            (" edge ", 'SYSTEM " edge "'),
            ("a\nb", 'SYSTEM "a\nb"'),
            ('say "hi"\nnow', 'SYSTEM """say "hi"\nnow"""'),
            ('"quoted"', 'SYSTEM ""quoted""'),
            ('"', 'SYSTEM """""""'),
            ('""x', 'SYSTEM """""x"""'),
            ("\t# x", 'SYSTEM "\t# x"'),
            ('a"\nb', 'SYSTEM """a"\nb"""'),
            ('x """ y\nz', 'SYSTEM """x """ y\nz"""'),
            ("a\r\nb", 'SYSTEM "a\r\nb"'),
        ],
    )
    def test_quoting_reads_back(self, args: str, written: str) -> None:
        modelfile = mf.Modelfile([("model", "m"), ("system", args)])
        text = modelfile.format()
        assert text == f"FROM m\n{written}\n"
        assert mf.parse(text) == modelfile

    def test_from_is_quoted_only_when_it_must_be(self) -> None:
        assert mf.Modelfile([("model", "  x")]).format() == 'FROM "  x"\n'
        assert mf.Modelfile([("model", "")]).format() == "FROM \n"

    def test_message_with_a_role_message_cannot_write(self) -> None:
        parsed = mf.parse("FROM m\nPARAMETER message user hi\n")
        assert parsed.instructions[1] == ("message", "user hi")
        assert parsed.format() == "FROM m\nPARAMETER message user hi\n"
        assert mf.parse(parsed.format()) == parsed

    @pytest.mark.parametrize(
        ("instruction", "why"),
        [
            (("system", 'one"""\ntwo'), 'ends with """'),
            (("system", 'a\n   """  \nb'), 'ends with """'),
            (("system", "a\x00b"), "U+0000"),
            (("system", "a\u200bb"), "U+200B"),
            (("top-k", "1"), "PARAMETER name"),
        ],
    )
    def test_values_ollama_cannot_read_back_are_refused(
        self, instruction: tuple[str, str], why: str
    ) -> None:
        modelfile = mf.Modelfile([("model", "m"), instruction], lines=[1, 7])
        with pytest.raises(ModelfileError) as caught:
            modelfile.format()
        assert why in caught.value.msg
        assert caught.value.line == 7

    def test_bad_comment_is_refused(self) -> None:
        modelfile = mf.Modelfile([("model", "m")], comments=[(0, "no hash")])
        assert modelfile.format() == "FROM m\n"
        with pytest.raises(ModelfileError):
            modelfile.format(keep_comments=True)


# --- create request ----------------------------------------------------------------------------


class TestCreateRequest:
    def test_fields(self) -> None:
        text = (
            "FROM llama3.2\nTEMPLATE {{ .Prompt }}\nSYSTEM s\nLICENSE a\nLICENSE b\n"
            "MESSAGE user hi\nMESSAGE assistant hello: there\nRENDERER r\nPARSER p\n"
            "REQUIRES v0.14.0\n"
        )
        assert request(text) == {
            "from": "llama3.2",
            "template": "{{ .Prompt }}",
            "license": ["a", "b"],
            "system": "s",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello: there"},
            ],
            "renderer": "r",
            "parser": "p",
            "requires": "0.14.0",
        }

    def test_license_is_always_a_list(self) -> None:
        assert request("FROM m\nLICENSE MIT\n")["license"] == ["MIT"]

    def test_last_template_system_renderer_parser_win(self) -> None:
        text = "FROM m\nSYSTEM a\nSYSTEM b\nTEMPLATE t\nTEMPLATE \"\"\n"
        assert request(text) == {"from": "m", "system": "b"}

    def test_parameters_are_typed(self) -> None:
        text = (
            "FROM m\nPARAMETER num_ctx 4096\nPARAMETER temperature 0.7\nPARAMETER use_mmap false\n"
            "PARAMETER stop a\nPARAMETER stop b\nPARAMETER seed 1\nPARAMETER seed 2\n"
            "PARAMETER main_gpu -1\n"
        )
        assert request(text)["parameters"] == {
            "num_ctx": 4096, "temperature": 0.7, "use_mmap": False, "stop": ["a", "b"],
            "seed": 2, "main_gpu": -1,
        }

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("PARAMETER temperature hot", "invalid float value [hot]"),
            ("PARAMETER temperature 0.7 # warm", "invalid float value [0.7 # warm]"),
            ("PARAMETER temperature 1e39", "invalid float value [1e39]"),
            ("PARAMETER num_ctx 4k", "invalid int value [4k]"),
            ("PARAMETER num_ctx 1.5", "invalid int value [1.5]"),
            ("PARAMETER seed 9223372036854775808", "invalid int value [9223372036854775808]"),
            (f"PARAMETER seed {'9' * 5000}", f"invalid int value [{'9' * 5000}]"),
            ("PARAMETER use_mmap yes", "invalid bool value [yes]"),
            ("PARAMETER max_tokens 10", "unknown parameter 'max_tokens'"),
            ("PARAMETER Temperature 1", "unknown parameter 'Temperature'"),
            ("PARAMETER temperature inf", "json: unsupported value: +Inf"),
            ("PARAMETER top_p -inf", "json: unsupported value: -Inf"),
            ("PARAMETER min_p nan", "json: unsupported value: NaN"),
            ("REQUIRES 1.0-rc1", "requires must be a valid semver (e.g. 0.14.0)"),
        ],
    )
    def test_parameter_errors_name_their_line(self, line: str, message: str) -> None:
        err = request_error(f"FROM m\n# c\n{line}\n")
        assert (err.msg, err.line) == (message, 3)

    def test_deprecated_parameters_become_warnings(self) -> None:
        resolved = mf.parse("FROM m\nPARAMETER mirostat 1\nPARAMETER low_vram true\n").resolve("/x")
        assert resolved.request == {"from": "m"}
        assert resolved.warnings == [
            "warning: parameter mirostat is deprecated",
            "warning: parameter low_vram is deprecated",
        ]

    @pytest.mark.parametrize(
        ("written", "sent", "go_json"),
        [
            ("0.7", 0.7, "0.7"),
            ("0.123456789", 0.12345679, "0.12345679"),
            ("1e-7", 1e-7, "1e-7"),
            ("0.000001", 1e-6, "0.000001"),
            ("16777217", 16777216.0, "16777216"),
            ("1e21", 1e21, "1e+21"),
            ("3.4028235e38", 3.4028235e38, "3.4028235e+38"),
            ("9.99999e20", 9.99999e20, "999999000000000000000"),
            ("1e-45", 1e-45, "1e-45"),
            ("0x1p-12", 0.00024414063, "0.00024414063"),
            ("-0", 0.0, "-0"),
            (".5", 0.5, "0.5"),
        ],
    )
    def test_floats_are_float32_as_go_prints_them(
        self, written: str, sent: float, go_json: str
    ) -> None:
        body = request(f"FROM m\nPARAMETER temperature {written}\n")
        assert body["parameters"]["temperature"] == sent
        assert cr.wire_json(body) == (
            f'{{"model":"","from":"m","parameters":{{"temperature":{go_json}}},"name":""}}'
        )
        # Python's JSON of the sent float is the shortest text, as Go's (up to exponent style).
        assert float(json.dumps(sent)) == float(go_json)

    def test_wire_json_escapes_as_go(self) -> None:
        body = request('FROM m\nSYSTEM <a href="x">&\\\n')
        assert cr.wire_json(body, model="bot:v1") == (
            '{"model":"bot:v1","from":"m",'
            '"system":"\\u003ca href=\\"x\\"\\u003e\\u0026\\\\","name":""}'
        )

    def test_missing_local_from_is_a_model_name(self, tmp_path: Path) -> None:
        resolved = mf.parse("FROM ./weights.gguf\n").resolve(tmp_path)
        assert resolved.request == {"from": "./weights.gguf"}
        assert resolved.base == "./weights.gguf"
        assert resolved.local_files == []

    def test_local_file_is_hashed_and_keyed_by_name(self, tmp_path: Path) -> None:
        (tmp_path / "weights.gguf").write_bytes(b"GGUF\x03abc")
        resolved = mf.parse("FROM ./weights.gguf\n").resolve(tmp_path)
        digest = digest_of(b"GGUF\x03abc")
        assert resolved.request == {"files": {"weights.gguf": digest}}
        assert resolved.base is None
        assert resolved.local_files == [
            cr.LocalFile("files", "weights.gguf", tmp_path / "weights.gguf", digest),
        ]

    def test_model_folder_files_are_keyed_relative_to_it(self, tmp_path: Path) -> None:
        folder = tmp_path / "hf"
        (folder / "sub").mkdir(parents=True)
        for name in ("model-1.safetensors", "config.json", "sub/config.json", "README.md"):
            (folder / name).write_text("{}")
        resolved = mf.parse("FROM hf\n").resolve(tmp_path)
        assert sorted(resolved.request["files"]) == [
            "config.json", "model-1.safetensors", "sub/config.json",
        ]
        assert [f.path for f in resolved.local_files] == [
            folder / "config.json", folder / "model-1.safetensors", folder / "sub" / "config.json",
        ]

    def test_adapters_and_drafts(self, tmp_path: Path) -> None:
        for name in ("a.gguf", "b.gguf", "d.gguf"):
            (tmp_path / name).write_bytes(name.encode())
        text = "FROM base\nADAPTER a.gguf\nADAPTER b.gguf\nDRAFT d.gguf\n"
        resolved = mf.parse(text).resolve(tmp_path)
        assert resolved.request == {
            "from": "base",
            "draft_files": {"d.gguf": digest_of(b"d.gguf")},
            "adapters": {"b.gguf": digest_of(b"b.gguf")},
        }
        assert [(f.field, f.key) for f in resolved.local_files] == [
            ("adapters", "b.gguf"), ("draft_files", "d.gguf"),
        ]

    def test_missing_adapter_is_an_error_with_line(self, tmp_path: Path) -> None:
        err = request_error("FROM m\nADAPTER ./lora.gguf\n", tmp_path)
        assert (err.msg, err.line) == (f"stat {tmp_path}/lora.gguf: no such file or directory", 2)

    def test_errors_of_a_loaded_modelfile_carry_its_path(self, tmp_path: Path) -> None:
        path = tmp_path / "Modelfile"
        path.write_text("FROM m\nPARAMETER nope 1\n")
        with pytest.raises(ModelfileError) as caught:
            mf.load(path).resolve()
        assert str(caught.value) == f"{path}:2: unknown parameter 'nope'"

    def test_resolve_needs_a_folder_without_a_path(self) -> None:
        with pytest.raises(ModelfileError):
            mf.parse("FROM m\n").resolve()

    def test_digest_function_is_injectable(self, tmp_path: Path) -> None:
        (tmp_path / "w.gguf").write_bytes(b"w")
        seen: list[str] = []

        def fake(path: str) -> str:
            seen.append(path)
            return "sha256:" + "0" * 64

        body = mf.parse("FROM w.gguf\n").create_request(tmp_path, digest=fake)
        assert body == {"files": {"w.gguf": "sha256:" + "0" * 64}}
        assert seen == [str(tmp_path / "w.gguf")]

    def test_digest_cache_gives_the_same_request(self, tmp_path: Path) -> None:
        (tmp_path / "w.gguf").write_bytes(b"weights")
        parsed = mf.parse("FROM w.gguf\n")
        with DigestCache(tmp_path / "cache.db") as cache:
            assert parsed.create_request(tmp_path, digest=cache.digest) == parsed.create_request(
                tmp_path, digest=sha256_file
            )

    def test_unreadable_file_is_an_error(self, tmp_path: Path) -> None:
        def refuse(path: str) -> str:
            raise PermissionError(13, "Permission denied", path)

        (tmp_path / "w.gguf").write_bytes(b"w")
        err = request_error_with(tmp_path, "FROM w.gguf\n", refuse)
        assert err.msg == f"open {tmp_path}/w.gguf: permission denied"

    def test_home_expansion(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "w.gguf").write_bytes(b"w")
        monkeypatch.setattr(cr, "current_user_home", lambda: str(tmp_path))
        monkeypatch.setattr(cr, "user_home", {"ada": str(tmp_path)}.__getitem__)
        for text in ("FROM ~/w.gguf\n", "FROM ~ada/w.gguf\n"):
            assert request(text) == {"files": {"w.gguf": digest_of(b"w")}}
        assert request_error("FROM ~bob/w.gguf\n").msg == (
            "failed to find user 'bob': user: unknown user bob"
        )

    def test_symlinked_cache_folder_is_insecure(self, tmp_path: Path) -> None:
        (tmp_path / ".cache").mkdir()
        (tmp_path / ".cache" / "blob").write_bytes(b"x")
        (tmp_path / "hf").mkdir()
        (tmp_path / "hf" / "model.safetensors").symlink_to(tmp_path / ".cache" / "blob")
        err = request_error("FROM ./hf\n", tmp_path)
        assert err.msg == (
            "insecure path: ../.cache/blob\n\n"
            "Use --local-dir <dir> when downloading model to disable caching"
        )

    def test_draft_and_from_must_differ(self, tmp_path: Path) -> None:
        (tmp_path / "m.gguf").write_bytes(b"m")
        (tmp_path / "link.gguf").symlink_to(tmp_path / "m.gguf")
        err = request_error("FROM m.gguf\nDRAFT link.gguf\n", tmp_path)
        assert err.msg == f"DRAFT must not reference the same local path as FROM: {tmp_path}/link.gguf"


def request_error_with(base: Path, text: str, digest: Any) -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        mf.parse(text).resolve(base, digest=digest)
    return caught.value


class TestFilesForModel:
    def test_weights_by_priority_then_config(self, tmp_path: Path) -> None:
        (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00")
        (tmp_path / "extra.bin").write_bytes(b"\x00\x01")
        (tmp_path / "config.json").write_text("{}")
        (tmp_path / "tokenizer.model").write_bytes(b"\x00tok")
        found = [os.path.relpath(p, tmp_path) for p in cr.files_for_model(str(tmp_path))]
        assert found == ["model.gguf", "config.json", "tokenizer.model"]

    def test_text_file_named_gguf_is_not_a_model(self, tmp_path: Path) -> None:
        (tmp_path / "model.gguf").write_text("version https://git-lfs.github.com/spec/v1\n")
        with pytest.raises(ModelfileError) as caught:
            cr.files_for_model(str(tmp_path))
        assert caught.value.msg == "no Modelfile or safetensors files found"

    def test_binary_json_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00")
        (tmp_path / "config.json").write_bytes(b"\x00\x01")
        with pytest.raises(ModelfileError) as caught:
            cr.files_for_model(str(tmp_path))
        assert caught.value.msg == (
            f"invalid content type: expected application/octet-stream for {tmp_path}/config.json"
        )


# --- command line ------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doit_ollama.modelfile", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60,
    )


class TestCommandLine:
    def test_good_file_prints_the_request(self, tmp_path: Path) -> None:
        (tmp_path / "w.gguf").write_bytes(b"w")
        path = tmp_path / "bot.Modelfile"
        path.write_text("FROM w.gguf\nPARAMETER temperature 0.1\nPARAMETER mirostat 1\nSYSTEM hi\n")
        done = run_cli(str(path))
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body == {
            "files": {"w.gguf": digest_of(b"w")}, "parameters": {"temperature": 0.1},
            "system": "hi",
        }
        assert done.stdout == json.dumps(body, sort_keys=True, indent=2) + "\n"
        assert done.stderr == f"{path}: warning: parameter mirostat is deprecated\n"

    def test_bad_file_names_file_and_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.Modelfile"
        path.write_text("FROM m\nMESSAGE robot hi\n")
        done = run_cli(str(path))
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr == f"{path}:2: {mf.ERR_ROLE}\n"

    def test_whole_file_error_has_no_line(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.Modelfile"
        path.write_text("# nothing\n")
        done = run_cli(str(path))
        assert (done.returncode, done.stderr) == (1, f"{path}: no FROM line\n")

    def test_request_error(self, tmp_path: Path) -> None:
        path = tmp_path / "p.Modelfile"
        path.write_text("FROM m\nPARAMETER temperature warm\n")
        done = run_cli(str(path))
        assert (done.returncode, done.stderr) == (1, f"{path}:2: invalid float value [warm]\n")

    def test_missing_file(self, tmp_path: Path) -> None:
        done = run_cli("missing.Modelfile", cwd=tmp_path)
        assert done.returncode == 1
        assert done.stderr == (
            "missing.Modelfile: cannot read Modelfile: no such file or directory\n"
        )

    def test_usage(self) -> None:
        done = run_cli()
        assert done.returncode == 2 and "usage:" in done.stderr
        assert run_cli("--help").returncode == 0

    def test_never_a_traceback(self, tmp_path: Path) -> None:
        for data in (b"\xff\xfe\x00\xd8", b"FROM \x00\n", b"\x00\x00\x00"):
            path = tmp_path / "x.Modelfile"
            path.write_bytes(data)
            done = run_cli(str(path))
            assert "Traceback" not in done.stderr
            assert done.returncode in (0, 1)
