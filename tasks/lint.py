"""The Modelfile checklist: rules that keep a model in production from breaking.

Each rule has a short stable id, one severity and a fix (docs/checklist.md lists them all).
A file disables rules with a comment, `# doit-ollama: disable=latest-tag,no-purpose`; a
repository with `[tool.doit-ollama.lint] disable = [...]`. Errors fail `doit lint` and the
pre-commit hook (`python -m doit_ollama.lint [PATHS...]`); warnings only inform.
Pure checks apart from reading files and asking git; rendering is separate from printing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from . import createrequest, gotemplate, modelfile, smoke
from .errors import DoitOllamaError, ModelfileError, ModelNameError
from .ghactions import workflow_command
from .modelfile import Modelfile
from .names import DEFAULT_TAG, ModelName
from .project import ModelSource, Project, load_project

__all__ = [
    "FORMATS",
    "RULES",
    "Finding",
    "LintReport",
    "Rule",
    "git_findings",
    "lint_file",
    "lint_project",
    "main",
    "render",
]

FORMATS: Final = ("text", "json", "github")
ERROR: Final = "error"
WARNING: Final = "warning"


@dataclass(frozen=True)
class Rule:
    """One rule of the checklist."""

    id: str
    severity: str
    summary: str


RULES: Final[Mapping[str, Rule]] = {rule.id: rule for rule in (
    Rule("invalid-modelfile", ERROR, "the Modelfile does not parse (Ollama's message and line)"),
    Rule("unknown-parameter", ERROR, "a PARAMETER Ollama does not know"),
    Rule("invalid-value", ERROR, "a value Ollama rejects: PARAMETER of the wrong type, bad "
                                 "REQUIRES, FROM neither a file nor a model name"),
    Rule("deprecated-parameter", WARNING, "a PARAMETER Ollama silently drops"),
    Rule("template-syntax", ERROR, "a TEMPLATE that is not a valid Go text/template"),
    Rule("duplicate-instruction", WARNING, "TEMPLATE, SYSTEM, ADAPTER, ... given twice: only "
                                           "the last counts"),
    Rule("latest-tag", WARNING, "the model's tag is latest, which moves under its users"),
    Rule("unversioned-tag", WARNING, "the model's tag is not a version (nor a mutable tag)"),
    Rule("no-purpose", WARNING, "no comment before the first instruction saying what the "
                                "model is for"),
    Rule("base-latest", WARNING, "FROM a model without a tag or with :latest, which moves"),
    Rule("missing-path", ERROR, "FROM, ADAPTER or DRAFT names a local file that does not exist"),
    Rule("outside-path", ERROR, "FROM, ADAPTER or DRAFT names a file outside the repository"),
    Rule("untracked", WARNING, "the Modelfile is not tracked by git (error in doit verify "
                               "--strict)"),
    Rule("uncommitted", WARNING, "the Modelfile changed since the last commit (error in doit "
                                 "verify --strict)"),
    Rule("no-git", WARNING, "the repository is not a git checkout, so the git rules cannot run"),
    Rule("invalid-test-file", ERROR, "the model's <tag>.test.toml is not a valid smoke-test file"),
    Rule("unknown-rule", WARNING, "a disable list names a rule that does not exist"),
)}

# A version tag starts with a digit, or v/V and a digit: v1, v1.1, 1.2.0, 2024-06-01, v2-rc1.
_VERSION: Final = re.compile(r"[vV]?[0-9]")
_DIRECTIVE: Final = re.compile(r"^\s*#\s*doit-ollama\s*:\s*(.*?)\s*$")
_DISABLE: Final = re.compile(r"disable\s*=\s*([A-Za-z0-9_,\s-]*)$")
# Instructions where a later one replaces an earlier one (parameters too, except stop).
_SINGLE: Final = ("template", "system", "adapter", "renderer", "parser", "requires")
_NOT_PARAMETERS: Final = frozenset({"model", "license", "message", "draft", *_SINGLE})


@dataclass(frozen=True)
class Finding:
    """One broken habit: where, which rule, how bad, what is wrong, how to fix it."""

    file: str  # repository-relative with forward slashes (as given when outside)
    line: int  # 1-based; 1 for findings about the file as a whole
    rule: str
    severity: str  # "error" or "warning"
    message: str
    fix: str
    model: str | None = None  # the model the file defines, when known

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


@dataclass
class LintReport:
    """What one lint run found, over which files."""

    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.is_error for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not fail)."""
        return self.errors == 0


class _File:
    """Collects the findings of one file, with its disabled rules."""

    def __init__(self, relpath: str, model: str | None, disabled: Iterable[str]):
        self.relpath = relpath
        self.model = model
        self.disabled = set(disabled)
        self.findings: list[Finding] = []

    def add(self, rule: str, line: int | None, message: str, fix: str) -> None:
        self.findings.append(Finding(self.relpath, line or 1, rule, RULES[rule].severity,
                                     message, fix, self.model))

    def kept(self) -> list[Finding]:
        return [f for f in self.findings if f.rule not in self.disabled]


def _directives(text: str, comments: Iterable[str] | None) -> list[tuple[int, str]]:
    """`# doit-ollama: ...` comment lines as (line, text after the colon)."""
    allowed = None if comments is None else {c.strip() for c in comments}
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(line)
        if match and (allowed is None or line.strip() in allowed):
            found.append((number, match.group(1)))
    return found


def _apply_directives(file: _File, directives: list[tuple[int, str]]) -> None:
    """Disable what the file's directives name; warn about what they get wrong."""
    for line, body in directives:
        match = _DISABLE.fullmatch(body)
        if not match:
            file.add("unknown-rule", line, f"unknown doit-ollama directive {body!r}",
                     "write `# doit-ollama: disable=<rule-id>,<rule-id>`")
            continue
        for rule in filter(None, (r.strip() for r in match.group(1).split(","))):
            if rule in RULES:
                file.disabled.add(rule)
            else:
                file.add("unknown-rule", line, f"disable names an unknown rule {rule!r}",
                         f"use one of: {', '.join(RULES)}")


def _decoded(data: bytes) -> str:
    """The text as an editor shows it (Ollama also reads UTF-16 with a byte order mark)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")


def _is_version(tag: str) -> bool:
    return _VERSION.match(tag) is not None


def _check_tag(project: Project, file: _File, name: ModelName, first_line: int | None) -> None:
    tag = name.tag
    if tag.lower() == DEFAULT_TAG:
        where = "models/<model>/Modelfile always gives" if file.relpath.endswith("/Modelfile") \
            else "this file gives"
        file.add("latest-tag", first_line,
                 f"{name.display}: {where} the tag latest, which every new build moves under "
                 "the apps that use it",
                 f"rename it to a version, e.g. models/{name.repository}/v1.Modelfile, and point "
                 f"a channel at it: doit promote {name.repository}:prod {name.repository}:v1")
    elif not _is_version(tag) and not project.is_mutable(name):
        file.add("unversioned-tag", first_line,
                 f"{name.display}: the tag {tag!r} is not a version, so it cannot say which "
                 "prompt and weights are live",
                 f"use a version tag (v1, v1.2, 2024-06-01) and `doit promote "
                 f"{name.repository}:{tag} {name.repository}:<version>` for a channel; or list "
                 f"{tag!r} in [tool.doit-ollama] mutable-tags")


def _check_purpose(file: _File, mf: Modelfile) -> None:
    purpose = [c for c in mf.comments
               if c.before == 0 and c.text.strip("# \t") and not _DIRECTIVE.match(c.text)]
    if not purpose:
        file.add("no-purpose", mf.lines[0] if mf.lines else 1,
                 "no comment before the first instruction says what this model is for",
                 "start the file with a comment: `# <model> <version>: what it is for, who "
                 "uses it, what its answers must look like`")


def _local_path(args: str, folder: Path, file: _File, line: int | None,
                what: str) -> str | None:
    """The absolute path an instruction names (as Ollama expands it), or None."""
    try:
        return createrequest.expand_path(args, folder)
    except ModelfileError as err:
        file.add("invalid-value", line, f"{what} {args}: {err.msg}", "fix the path")
        return None


def _inside(path: str, root: Path) -> bool:
    return Path(path).is_relative_to(root)


def _check_outside(project: Project, file: _File, path: str, args: str, line: int | None,
                   what: str) -> None:
    if project.allow_outside_paths:
        return
    root = project.root.resolve()
    candidates = [path]
    if os.path.isdir(path):
        try:  # a safetensors folder: its files are often links into a download cache
            candidates += createrequest.files_for_model(path)
        except ModelfileError:
            pass
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if _inside(real, root):
            continue
        via = "its path" if not _inside(os.path.normpath(candidate), root) else "a symbolic link"
        shown = args if candidate == path else f"{args} ({os.path.basename(candidate)})"
        file.add("outside-path", line,
                 f"{what} {shown} leaves the repository through {via} (it is {real}), so a "
                 "clone elsewhere cannot build this model",
                 "move the file into the repository (Git LFS for big weights), or set "
                 "[tool.doit-ollama] allow-outside-paths = true")
        return


def _check_paths_and_base(project: Project, file: _File, mf: Modelfile, folder: Path) -> None:
    for (name, args), line in zip(mf.instructions, mf.lines):
        if name not in ("model", "adapter", "draft"):
            continue
        what = {"model": "FROM", "adapter": "ADAPTER", "draft": "DRAFT"}[name]
        path = _local_path(args, folder, file, line, what)
        if path is None:
            continue
        if os.path.lexists(path):
            _check_outside(project, file, path, args, line, what)
            continue
        if name != "model" or createrequest.names_a_file(args):
            looked_for = project.relative(Path(path))
            file.add("missing-path", line, createrequest.file_not_found(what, args, looked_for),
                     "fix the path, or add the file (Git LFS for big weights)")
            continue
        try:
            base = ModelName.parse(args)
        except ModelNameError as err:
            file.add("invalid-value", line, f"FROM {args} is neither a local file nor a model "
                                            f"name: {err}", "fix the model name or the path")
            continue
        explicit = args.rfind(":") > args.rfind("/")
        if base.tag.lower() == DEFAULT_TAG:
            said = f"FROM {args} means {base.display}" if not explicit else f"FROM {args}"
            file.add("base-latest", line,
                     f"{said}, which moves whenever it is pulled again; released tags built "
                     "on it then refuse to rebuild",
                     f"name a fixed tag, e.g. FROM {base.repository}:<size or version> "
                     "(see `ollama show` or the library page)")


def _check_values(file: _File, mf: Modelfile, root: Path) -> None:
    """Each PARAMETER and REQUIRES alone, the way `ollama create` types it."""
    for (name, args), line in zip(mf.instructions, mf.lines):
        if name in _NOT_PARAMETERS and name != "requires":
            continue
        if name in modelfile.DEPRECATED_PARAMETERS:
            file.add("deprecated-parameter", line,
                     f"PARAMETER {name} is deprecated: `ollama create` drops it with a warning",
                     f"remove the PARAMETER {name} line")
            continue
        try:
            Modelfile([(name, args)], [line]).resolve(base_dir=root)
        except ModelfileError as err:
            if name not in modelfile.PARAMETER_TYPES and name != "requires":
                hint = createrequest.parameter_hint(name, args) or \
                    f"known: {', '.join(sorted(modelfile.PARAMETER_TYPES))}"
                file.add("unknown-parameter", line, err.msg,
                         f"fix its name or remove the line ({hint})")
            else:
                kind = "REQUIRES" if name == "requires" else f"PARAMETER {name}"
                want = modelfile.PARAMETER_TYPES.get(name, "semver")
                file.add("invalid-value", line, f"{kind}: {err.msg}",
                         f"give it a value of type {want}")


def _check_templates(file: _File, mf: Modelfile) -> None:
    for (name, args), line in zip(mf.instructions, mf.lines):
        if name != "template":
            continue
        problem = gotemplate.check(args)
        if problem is not None:
            file.add("template-syntax", (line or 1) + problem.line - 1,
                     f"TEMPLATE: {problem.message}",
                     "fix the Go template (ollama/ollama docs/template.md); check it with "
                     "`ollama create` on a scratch tag")


def _check_duplicates(file: _File, mf: Modelfile) -> None:
    last: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    for (name, _), line in zip(mf.instructions, mf.lines):
        if name in _SINGLE or (name not in _NOT_PARAMETERS and name != "stop"):
            seen.setdefault(name, []).append(line)
            last[name] = line
    for name, lines in seen.items():
        if name in modelfile.DEPRECATED_PARAMETERS:
            continue
        what = name.upper() if name in _SINGLE else f"PARAMETER {name}"
        for earlier in lines[:-1]:
            file.add("duplicate-instruction", earlier,
                     f"{what} here is replaced by the one on line {last[name]}: only the last "
                     "counts", f"delete this {what} line (or the later one)")


def _check_test_file(file: _File, modelfile_path: Path, project: Project) -> None:
    path = smoke.suite_path(modelfile_path)
    if not path.exists():
        return
    try:
        smoke.load_suite(path)
    except smoke.SuiteError as err:
        file.findings.append(Finding(project.relative(path), err.line or 1, "invalid-test-file",
                                     ERROR, err.msg, "fix the test file (docs/checklist.md "
                                     "describes its format)", file.model))


def lint_file(project: Project, path: Path, name: ModelName | None = None) -> list[Finding]:
    """Every finding for one Modelfile (and its test file), disabled rules left out."""
    relpath = project.relative(path)
    file = _File(relpath, name.display if name else None, project.lint_disable)
    try:
        text_bytes = path.read_bytes()
    except OSError as err:
        file.add("invalid-modelfile", 1, f"cannot read Modelfile: {err.strerror}",
                 "check the path and its permissions")
        return file.kept()
    text = _decoded(text_bytes)
    try:
        mf: Modelfile | None = modelfile.parse(text_bytes)
    except ModelfileError as err:
        mf = None
        file.add("invalid-modelfile", err.editor_line, err.text,
                 "fix the line; `python -m doit_ollama.modelfile PATH` shows what Ollama reads")
    _apply_directives(file, _directives(text, None if mf is None else
                                        [c.text for c in mf.comments]))
    first_line: int | None = mf.lines[0] if mf is not None and mf.lines else 1
    if name is not None:
        _check_tag(project, file, name, first_line)
    if mf is not None:
        _check_purpose(file, mf)
        _check_paths_and_base(project, file, mf, path.parent)
        _check_values(file, mf, path.parent)
        _check_templates(file, mf)
        _check_duplicates(file, mf)
    _check_test_file(file, path, project)
    return sorted(file.kept(), key=lambda f: (f.file, f.line, f.rule))


def _project_findings(project: Project) -> list[Finding]:
    """Unknown ids in [tool.doit-ollama.lint] disable."""
    unknown = sorted(set(project.lint_disable) - set(RULES))
    if not unknown or "unknown-rule" in project.lint_disable:
        return []
    path = project.root / "pyproject.toml"
    line = 1
    try:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.match(r"\s*disable\s*=", text):
                line = number
                break
    except OSError:
        pass
    return [Finding(project.relative(path), line, "unknown-rule", WARNING,
                    f"[tool.doit-ollama.lint] disable names an unknown rule {rule!r}",
                    f"use one of: {', '.join(RULES)}") for rule in unknown]


# --- git ------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take .git/index.lock while a user's own
    # git command runs (pre-commit runs us in the middle of one).
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def _git_status(root: Path, paths: Sequence[Path]) -> dict[Path, str] | str:
    """Porcelain status codes by resolved path (clean files absent), or why git failed."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.SubprocessError) as err:
        return f"git could not be run ({err})"
    if top.returncode != 0:
        return (top.stderr.strip().splitlines() or ["git rev-parse failed"])[-1]
    toplevel = Path(top.stdout.strip()).resolve()
    inside = [p for p in paths if p.resolve().is_relative_to(toplevel)]
    codes: dict[Path, str] = {p.resolve(): "outside" for p in paths if p not in inside}
    if not inside:
        return codes
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                  "--ignored=matching", "--", *(str(p.resolve()) for p in inside))
    if status.returncode != 0:
        return (status.stderr.strip().splitlines() or ["git status failed"])[-1]
    fields = iter(status.stdout.split("\0"))
    for entry in fields:
        if len(entry) < 4:
            continue
        code, rel = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(fields, None)  # the path it was renamed or copied from
        codes[(toplevel / rel).resolve()] = code
    return codes


def git_findings(project: Project, models: Iterable[ModelSource | Path], *,
                 staged_ok: bool = False, strict: bool = False) -> list[Finding]:
    """Modelfiles not tracked by git or changed since the last commit.

    `staged_ok`: accept changes already staged (what a pre-commit hook is checking).
    `strict`: report them as errors (doit verify --strict). A repository that is not a
    git checkout gives one `no-git` warning. Disabled rules are left out.
    """
    items = [(m.modelfile, m.display) if isinstance(m, ModelSource) else (m, None)
             for m in models]
    if not items:
        return []
    severity = ERROR if strict else WARNING
    status = _git_status(project.root, [path for path, _ in items])
    if isinstance(status, str):
        if "no-git" in project.lint_disable:
            return []
        return [Finding(".", 1, "no-git", WARNING,
                        f"{project.root} is not a git checkout, so untracked or uncommitted "
                        f"Modelfiles cannot be found ({status})",
                        "git init && git add models lock && git commit")]
    findings = []
    for path, model in items:
        code = status.get(path.resolve(), "")
        relpath = project.relative(path)
        if code in ("??", "!!", "outside"):
            why = {"??": "is not tracked by git", "!!": "is ignored by git (.gitignore)",
                   "outside": "is outside the git checkout"}[code]
            found = Finding(relpath, 1, "untracked", severity,
                            f"{relpath} {why}: nobody else can rebuild {model or 'this model'}",
                            f"git add {relpath} && git commit", model)
        elif code and (code[1] != " " or (not staged_ok and code[0] != " ")):
            why = ("has changes that are not staged" if staged_ok or code[0] in " ?"
                   else "was added but not committed" if code[0] == "A"
                   else "changed since the last commit")
            found = Finding(relpath, 1, "uncommitted", severity,
                            f"{relpath} {why}: the model built from it is not the committed one",
                            f"git add {relpath} && git commit (or git checkout -- {relpath})",
                            model)
        else:
            continue
        if found.rule in project.lint_disable or found.rule in _file_disabled(path):
            continue
        findings.append(found)
    return findings


def _file_disabled(path: Path) -> set[str]:
    """Rules disabled by a file's own directives (for checks that do not parse it)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    file = _File("", None, ())
    _apply_directives(file, _directives(text, None))
    return file.disabled


# --- whole runs --------------------------------------------------------------------------------


def lint_project(project: Project, paths: Sequence[str | os.PathLike[str]] | None = None, *,
                 git: bool = True, staged_ok: bool = False) -> LintReport:
    """Lint every Modelfile of the project, or only `paths` (Modelfiles, test files, or
    folders, meaning the project's Modelfiles under them)."""
    models = project.models()
    by_path = {m.modelfile.resolve(): m for m in models}
    targets: list[tuple[Path, ModelSource | None]] = []
    tests_only: list[Path] = []
    if paths is None:
        targets = [(m.modelfile, m) for m in models]
    else:
        for given in paths:
            path = Path(given)
            path = path if path.is_absolute() else Path.cwd() / path
            if path.is_dir():  # every Modelfile of the project under that folder
                folder = path.resolve()
                targets += [(m.modelfile, m) for m in models
                            if m.modelfile.resolve().is_relative_to(folder)]
            elif path.name.endswith(smoke.TEST_SUFFIX):
                tests_only.append(path)
            else:
                targets.append((path, by_path.get(path.resolve())))
    report = LintReport()
    report.findings += _project_findings(project)
    for path, source in targets:
        report.files.append(project.relative(path))
        report.findings += lint_file(project, path, source.name if source else None)
    for path in tests_only:
        report.files.append(project.relative(path))
        try:
            smoke.load_suite(path)
        except smoke.SuiteError as err:
            if "invalid-test-file" not in project.lint_disable:
                report.findings.append(Finding(project.relative(path), err.line or 1,
                                               "invalid-test-file", ERROR, err.msg,
                                               "fix the test file (see docs/checklist.md)"))
    if git:
        report.findings += git_findings(
            project, [source or path for path, source in targets if path.exists()],
            staged_ok=staged_ok)
    return report


# --- rendering ---------------------------------------------------------------------------------


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'s' * (number != 1)}"


def _text(report: LintReport) -> str:
    lines = []
    for f in report.findings:
        lines.append(f"{f.file}:{f.line}: {f.severity} {f.rule}: {f.message}")
        lines.append(f"  fix: {f.fix}")
    files = _count(len(report.files), "file")
    if report.findings:
        lines.append(f"lint: {_count(report.errors, 'error')}, "
                     f"{_count(report.warnings, 'warning')} in {files}")
    else:
        lines.append(f"lint: {files}, no problems")
    return "\n".join(lines) + "\n"


def _json(report: LintReport) -> str:
    return json.dumps({
        "ok": report.ok,
        "errors": report.errors,
        "warnings": report.warnings,
        "files": report.files,
        "findings": [asdict(f) for f in report.findings],
    }, indent=2, sort_keys=True) + "\n"


def _github(report: LintReport) -> str:
    """GitHub Actions workflow commands: `::warning file=...,line=...,title=...::message`."""
    lines = [workflow_command(f.severity, f"{f.message} | fix: {f.fix}",
                              file=f.file if f.file != "." else None, line=f.line,
                              title=f"doit-ollama {f.rule}") for f in report.findings]
    return "\n".join(lines) + ("\n" if lines else "")


def render(report: LintReport, fmt: str) -> str:
    """The report in one of FORMATS."""
    return {"text": _text, "json": _json, "github": _github}[fmt](report)


# --- command line (the pre-commit hook) ---------------------------------------------------------

_USAGE: Final = """usage: python -m doit_ollama.lint [--format text|json|github] [PATHS...]
Lint the given Modelfiles (and <tag>.test.toml files), or every Modelfile of the project in
the current folder. Exit 1 when any error is found; warnings alone exit 0."""


def main(argv: Sequence[str] | None = None) -> int:
    """The pre-commit hook: lint PATHS (or the whole project); exit 1 on any error."""
    args = list(sys.argv[1:] if argv is None else argv)
    fmt = "text"
    paths: list[str] = []
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(_USAGE)
            return 0
        if arg == "--format" or arg.startswith("--format="):
            fmt = arg.partition("=")[2] if "=" in arg else (args.pop(0) if args else "")
            if fmt not in FORMATS:
                print(f"--format must be one of {', '.join(FORMATS)}\n{_USAGE}", file=sys.stderr)
                return 2
        elif arg == "--":
            paths += args
            break
        elif arg.startswith("-"):
            print(f"unknown option {arg}\n{_USAGE}", file=sys.stderr)
            return 2
        else:
            paths.append(arg)
    try:
        project = load_project()
        # Staged changes are what a pre-commit hook is asked to check, not a problem.
        report = lint_project(project, paths or None, staged_ok=True)
    except DoitOllamaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(report, fmt))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
