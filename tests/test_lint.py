"""The lint rules one by one (direct calls), and `doit lint` / the pre-commit hook as a user
runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from doit_ollama import gotemplate, lint
from doit_ollama.lint import RULES, Finding
from doit_ollama.modelfile import ERR_COMMAND
from doit_ollama.project import load_project

from tests.doit_repo import make_repo

CLEAN = "# bot v1: the test bot; answers briefly.\nFROM base:1b\nSYSTEM Be brief.\nPARAMETER temperature 0\n"


def write(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def findings(root: Path, paths: list[str] | None = None) -> list[Finding]:
    return lint.lint_project(load_project(root), paths, git=False).findings


def rules(root: Path) -> list[str]:
    return [f.rule for f in findings(root)]


def test_a_clean_modelfile_passes(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/v1.Modelfile", CLEAN)
    write(tmp_path, "models/bot/v1.2-rc1.Modelfile", CLEAN)
    write(tmp_path, "models/bot/dev.Modelfile", CLEAN)  # a mutable tag is fine
    report = lint.lint_project(load_project(tmp_path), git=False)
    assert report.findings == []
    assert report.ok
    assert len(report.files) == 3
    assert lint.render(report, "text") == "lint: 3 files, no problems\n"


# (rule, file under models/, its text, the line the finding points at)
RULE_CASES = [
    ("invalid-modelfile", "bot/v1.Modelfile", "# bot\nFROM base:1b\nFROM2 x\n", 3),
    # Ollama counts CR LF as two lines; the finding gives the line an editor shows
    ("invalid-modelfile", "bot/v1.Modelfile", "# bot\r\nFROM base:1b\r\nFROM2 x\r\n", 3),
    ("unknown-parameter", "bot/v1.Modelfile", "# bot\nFROM base:1b\nPARAMETER temprature 0.2\n", 3),
    ("invalid-value", "bot/v1.Modelfile", "# bot\nFROM base:1b\n\nPARAMETER num_ctx big\n", 4),
    ("invalid-value", "bot/v1.Modelfile", "# bot\nFROM base:1b\nREQUIRES soon\n", 3),
    ("deprecated-parameter", "bot/v1.Modelfile", "# bot\nFROM base:1b\nPARAMETER mirostat 1\n", 3),
    ("template-syntax", "bot/v1.Modelfile",
     '# bot\nFROM base:1b\nTEMPLATE """{{ .System }}\n{{ if .Prompt }}\n{{ .Prompt }}"""\n', 4),
    ("template-syntax", "bot/v1.Modelfile",
     '# bot\nFROM base:1b\nTEMPLATE """{{ .Prompt }}{{ end }}"""\n', 3),
    ("duplicate-instruction", "bot/v1.Modelfile", "# bot\nFROM base:1b\nSYSTEM a\nSYSTEM b\n", 3),
    ("duplicate-instruction", "bot/v1.Modelfile",
     "# bot\nFROM base:1b\nPARAMETER top_k 1\nPARAMETER top_k 2\n", 3),
    ("latest-tag", "bot/Modelfile", "# bot\nFROM base:1b\n", 2),
    ("latest-tag", "bot/latest.Modelfile", "# bot\nFROM base:1b\n", 2),
    ("unversioned-tag", "bot/prod.Modelfile", "# bot\nFROM base:1b\n", 2),
    ("no-purpose", "bot/v1.Modelfile", "FROM base:1b\n# a comment after FROM is not a purpose\n", 1),
    ("no-purpose", "bot/v1.Modelfile", "# doit-ollama: disable=base-latest\nFROM base\n", 2),
    ("base-latest", "bot/v1.Modelfile", "# bot\n\nFROM llama3.2\n", 3),
    ("base-latest", "bot/v1.Modelfile", "# bot\nFROM team/base:latest\n", 2),
    ("missing-path", "bot/v1.Modelfile", "# bot\nFROM ./weights.gguf\n", 2),
    ("missing-path", "bot/v1.Modelfile", "# bot\nFROM base:1b\nADAPTER ./lora\n", 3),
    ("invalid-test-file", "bot/v1.test.toml", "[[case]]\nname = 'x'\npromt = 'hi'\n", 3),
    ("unknown-rule", "bot/v1.Modelfile", "# bot\n# doit-ollama: disable=latset-tag\nFROM base:1b\n", 2),
    ("unknown-rule", "bot/v1.Modelfile", "# bot\n# doit-ollama: enable=all\nFROM base:1b\n", 2),
]


@pytest.mark.parametrize(("rule", "relpath", "text", "line"), RULE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RULE_CASES)])
def test_each_rule_triggers(tmp_path: Path, rule: str, relpath: str, text: str, line: int) -> None:
    if relpath.endswith(".test.toml"):
        write(tmp_path, "models/bot/v1.Modelfile", CLEAN)
    write(tmp_path, f"models/{relpath}", text)
    found = findings(tmp_path)
    assert [f.rule for f in found] == [rule], found
    assert found[0].file == f"models/{relpath}"
    assert found[0].line == line
    assert found[0].severity == RULES[rule].severity
    assert found[0].fix
    assert found[0].model == "bot:" + ("latest" if relpath.endswith("/Modelfile")
                                       else relpath.split("/")[1].split(".test")[0]
                                       .removesuffix(".Modelfile"))


def test_invalid_modelfile_keeps_ollamas_message(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/v1.Modelfile", "# bot\nFROM base:1b\nFROM2 x\n")
    assert findings(tmp_path)[0].message == ERR_COMMAND


def test_every_rule_is_documented_and_has_a_test() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "checklist.md").read_text()
    tested = {c[0] for c in RULE_CASES} | {"outside-path", "untracked", "uncommitted", "no-git",
                                           "ignored-file", "misplaced-modelfile"}
    for rule in RULES:
        assert f"`{rule}`" in doc, rule
        assert rule in tested, rule


def test_files_that_are_not_built_are_findings_for_that_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", "127.0.0.1:9")
    repo.write("models/bot/v1.Modelfile", CLEAN)
    for name in ("v3.modelfile", "Modelfile.v2", "v1.Modelfile.bak"):
        repo.write(f"models/bot/{name}", CLEAN)
    repo.write("models/stray.Modelfile", "# stray\nFROM base:1b\nPARAMETER temprature 1\n")
    result = repo.doit("lint", expect=1)  # a finding per file, not a failure of the command
    out = result.out
    assert "models/bot/v3.modelfile:1: warning ignored-file" in out
    assert "fix: rename it to models/bot/v3.Modelfile" in out
    assert "models/bot/Modelfile.v2:1: warning ignored-file" in out
    assert "fix: rename it to models/bot/v2.Modelfile" in out
    assert "models/bot/v1.Modelfile.bak:1: warning ignored-file" in out
    assert "models/stray.Modelfile:1: error misplaced-modelfile" in out
    # the misplaced Modelfile's content is still checked
    assert "models/stray.Modelfile:3: error unknown-parameter" in out
    assert "lint: 2 errors, 4 warnings in 5 files" in out  # and no-git, with the configured paths
    assert "fix: git init && git add models lock/models.lock && git commit" in out
    found = lint.lint_project(load_project(repo.root), [repo.root / "models/bot"], git=False).findings
    assert sorted(f.file for f in found) == ["models/bot/Modelfile.v2", "models/bot/v1.Modelfile.bak",
                                             "models/bot/v3.modelfile"]


def test_outside_path_by_dotdot_and_by_symlink(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    outside = write(tmp_path, "elsewhere/weights.gguf", "GGUF")
    write(root, "models/a/v1.Modelfile", "# a\nFROM ../../../elsewhere/weights.gguf\n")
    (root / "models" / "b").mkdir(parents=True)
    (root / "models" / "b" / "link.gguf").symlink_to(outside)
    write(root, "models/b/v1.Modelfile", "# b\nFROM base:1b\nADAPTER ./link.gguf\n")
    found = findings(root)
    assert [(f.file, f.line, f.rule, f.severity) for f in found] == [
        ("models/a/v1.Modelfile", 2, "outside-path", "error"),
        ("models/b/v1.Modelfile", 3, "outside-path", "error"),
    ]
    assert "through its path" in found[0].message
    assert "through a symbolic link" in found[1].message
    # a safetensors folder inside the repository whose weights link into a download cache
    cache = write(tmp_path / "cache", "model.safetensors", "weights")
    folder = root / "models" / "c" / "weights"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").symlink_to(cache)
    write(root, "models/c/v1.Modelfile", "# c\nFROM ./weights\n")
    found = findings(root)
    assert [(f.file, f.rule) for f in found][-1] == ("models/c/v1.Modelfile", "outside-path")
    assert "./weights (model.safetensors)" in found[-1].message
    write(root, "pyproject.toml", "[tool.doit-ollama]\nallow-outside-paths = true\n")
    assert findings(root) == []


def test_unversioned_tag_respects_mutable_tags(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/canary.Modelfile", CLEAN)
    assert rules(tmp_path) == ["unversioned-tag"]
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama]\nmutable-tags = ["latest", "canary"]\n')
    assert rules(tmp_path) == []


def test_disable_per_file_and_per_repository(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/Modelfile", "FROM base\n")
    assert sorted(rules(tmp_path)) == ["base-latest", "latest-tag", "no-purpose"]
    write(tmp_path, "models/bot/Modelfile",
          "# doit-ollama: disable=latest-tag, no-purpose\nFROM base\n")
    assert rules(tmp_path) == ["base-latest"]
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama.lint]\ndisable = ["base-latest"]\n')
    assert rules(tmp_path) == []
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama.lint]\ndisable = ["base-latest", "nope"]\n')
    found = findings(tmp_path)
    assert [(f.file, f.line, f.rule) for f in found] == [("pyproject.toml", 2, "unknown-rule")]


def test_a_directive_inside_a_value_is_not_a_directive(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/v1.Modelfile",
          '# bot\nFROM base\nSYSTEM """\n# doit-ollama: disable=base-latest\n"""\n')
    assert rules(tmp_path) == ["base-latest"]


# --- git -----------------------------------------------------------------------------------------

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def test_git_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    root = tmp_path / "repo"
    committed = write(root, "models/bot/v1.Modelfile", CLEAN)
    write(root, "models/bot/v2.Modelfile", CLEAN)
    git(root, "init", "-q")
    git(root, "add", "models/bot/v1.Modelfile")
    git(root, "commit", "-q", "-m", "v1")
    project = load_project(root)
    models = project.models()

    found = lint.git_findings(project, models)
    assert [(f.file, f.rule, f.severity) for f in found] == [
        ("models/bot/v2.Modelfile", "untracked", "warning")]

    committed.write_text(CLEAN.replace("Be brief.", "Be briefer."))
    git(root, "add", "models/bot/v2.Modelfile")
    found = lint.git_findings(project, models, strict=True)
    assert [(f.file, f.rule, f.severity) for f in found] == [
        ("models/bot/v1.Modelfile", "uncommitted", "error"),
        ("models/bot/v2.Modelfile", "uncommitted", "error")]
    assert "added but not committed" in found[1].message
    # a pre-commit hook checks staged changes: only the unstaged edit is a problem
    found = lint.git_findings(project, models, staged_ok=True)
    assert [(f.file, f.rule) for f in found] == [("models/bot/v1.Modelfile", "uncommitted")]
    assert "not staged" in found[0].message

    # git rules are warnings in lint: exit 0
    report = lint.lint_project(project)
    assert report.ok and {f.rule for f in report.findings} == {"uncommitted"}


def test_not_a_git_checkout_gives_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    write(tmp_path, "models/a/v1.Modelfile", CLEAN)
    write(tmp_path, "models/b/v1.Modelfile", CLEAN)
    project = load_project(tmp_path)
    found = lint.git_findings(project, project.models())
    assert [(f.rule, f.severity) for f in found] == [("no-git", "warning")]
    assert "not a git checkout" in found[0].message


# --- template checker details ------------------------------------------------------------------

@pytest.mark.parametrize("template", [
    "{{ if .System }}<|system|>{{ .System }}<|end|>{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}",
    "{{- /* a comment with }} inside */ -}}{{ \"}}\" }}{{ `raw }} string` }}{{ -1 }}",
    "{{ if and (eq .A 1) (not .B) }}a{{ else if .C }}b{{ else }}c{{ end }}",
    ('{{ define "x" }}{{ range $i, $m := .Messages }}{{ if $i }}{{ break }}{{ end }}{{ end }}{{ end }}'
    '{{ block "y" . }}{{ end }}{{ template "x" . }}'),
    "{{ .Prompt\n}}",  # actions may span lines since Go 1.16
])
def test_valid_templates(template: str) -> None:
    assert gotemplate.check(template) is None


@pytest.mark.parametrize(("template", "message"), [
    ("{{ .Prompt ", "unclosed action"),
    ("{{ .Prompt }}{{ end }}", "unexpected {{end}}"),
    ("{{ with .System }}x", "unclosed {{with}}"),
    ('{{ block "b" . }}', "unclosed {{block}}"),
    ('{{ define "d" }}', "unclosed {{define}}"),
    ("{{ range .Messages }}{{ if .Content }}{{ end }}", "unclosed {{range}}"),
    ("{{ {{ .Prompt }} }}", "unexpected '{'"),
    ("{{/* never closed", "unclosed comment"),
    ("{{/* closed */ }}", "comment ends before closing delimiter"),
    ('{{ "open }}', "unterminated quoted string"),
    ("{{ (eq .A 1 }}", "unclosed left paren"),
    ("{{ }}", "missing value"),
    ("{{ else }}", "unexpected {{else}}"),
    ("{{ continue }}", "outside {{range}}"),
    ("{{ .A-}}", "bad number syntax"),
    ("{% for m in messages %}{{ m }}{% endfor %}", "Jinja"),
    ("{{ messages[0] }}", "unexpected '['"),
])
def test_invalid_templates(template: str, message: str) -> None:
    problem = gotemplate.check(template)
    assert problem is not None and message in problem.message, problem


# --- outputs -----------------------------------------------------------------------------------

def mixed_repo(root: Path) -> None:
    write(root, "models/bot/Modelfile", "# bot\nFROM base:1b\n")  # warning
    write(root, "models/bot/v1.Modelfile", "# bot, v1\nFROM base:1b\nPARAMETER temprature 1\n")  # error


def test_text_json_and_github_outputs(tmp_path: Path) -> None:
    mixed_repo(tmp_path)
    report = lint.lint_project(load_project(tmp_path), git=False)
    assert not report.ok and report.errors == 1 and report.warnings == 1
    text = lint.render(report, "text")
    assert "models/bot/v1.Modelfile:3: error unknown-parameter: unknown parameter 'temprature'\n" \
           "  fix: fix its name or remove the line (did you mean PARAMETER temperature?)" in text
    assert "models/bot/Modelfile:2: warning latest-tag:" in text
    assert text.endswith("lint: 1 error, 1 warning in 2 files\n")
    body = json.loads(lint.render(report, "json"))
    assert body["ok"] is False and body["errors"] == 1 and body["warnings"] == 1
    assert {(f["file"], f["line"], f["rule"], f["severity"]) for f in body["findings"]} == {
        ("models/bot/v1.Modelfile", 3, "unknown-parameter", "error"),
        ("models/bot/Modelfile", 2, "latest-tag", "warning")}
    github = lint.render(report, "github").splitlines()
    assert "::warning file=models/bot/Modelfile,line=2,title=doit-ollama latest-tag::" in github[0]
    assert github[1].startswith("::error file=models/bot/v1.Modelfile,line=3,"
                                "title=doit-ollama unknown-parameter::unknown parameter 'temprature'")


def test_doit_lint_exit_codes_and_formats(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", "127.0.0.1:9")
    env = repo.env(GIT_CEILING_DIRECTORIES=str(tmp_path))
    repo.write("models/bot/v1.Modelfile", CLEAN)
    result = repo.doit("lint", env=env)  # only the no-git warning
    assert "warning no-git" in result.out and "lint: 0 errors, 1 warning in 1 file" in result.out

    mixed_repo(repo.root)
    result = repo.doit("lint", expect=1, env=env)
    assert "models/bot/v1.Modelfile:3: error unknown-parameter" in result.out
    result = repo.doit("lint", "--format", "json", expect=1, env=env)
    body = json.loads(result.out)  # nothing but the report on stdout
    assert body["errors"] == 1
    result = repo.doit("lint", "--format", "github", expect=1, env=env)
    assert all(line.startswith("::") for line in result.out.splitlines()), result.out
    repo.doit("lint", "--format", "json", "--output", "out/lint.json", expect=1, env=env)
    assert json.loads((repo.root / "out" / "lint.json").read_text())["errors"] == 1


def test_pre_commit_entry_point_lints_given_files(tmp_path: Path) -> None:
    write(tmp_path, "models/bot/v1.Modelfile", CLEAN)
    write(tmp_path, "models/bot/v2.Modelfile", "# bot\nFROM base:1b\nPARAMETER temprature 1\n")
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "doit_ollama.lint", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, check=False)

    good = hook("models/bot/v1.Modelfile")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "lint: 0 errors, 1 warning in 1 file" in good.stdout  # no-git
    bad = hook("models/bot/v1.Modelfile", "models/bot/v2.Modelfile")
    assert bad.returncode == 1
    assert "models/bot/v2.Modelfile:3: error unknown-parameter" in bad.stdout
    assert "Traceback" not in bad.stderr
    whole = hook("--format", "json")
    assert whole.returncode == 1 and json.loads(whole.stdout)["files"] == [
        "models/bot/v1.Modelfile", "models/bot/v2.Modelfile"]
    folder = hook("models/bot")
    assert folder.returncode == 1 and "in 2 files" in folder.stdout
    assert hook("--format", "xml").returncode == 2


def test_pre_commit_hook_definition() -> None:
    text = (Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "id: doit-ollama-lint" in text
    assert "entry: python -m doit_ollama.lint" in text
    assert "language: python" in text
    assert r"files: '\.Modelfile$|(^|/)Modelfile$'" in text
