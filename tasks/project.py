"""The project: configuration from pyproject.toml and the models found under models/.

Configuration is resolved once, into a frozen Project that remembers where each setting
came from. The host is ranked, lowest first:
    default (127.0.0.1:11434) < OLLAMA_HOST < [tool.doit-ollama] host(s) < DOIT_OLLAMA_HOST
    < a command-line --host,
so OLLAMA_HOST (often set machine-wide for the ollama CLI) never overrides what the
repository says, while a one-off DOIT_OLLAMA_HOST or --host does.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError, ModelNameError
from .names import ModelName

if TYPE_CHECKING:
    from .registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["DEFAULT_HOST", "IgnoredFile", "ModelSource", "Project", "discover", "load_project",
           "nothing_found", "stat_stamp", "toml_error"]

DEFAULT_HOST: Final = "127.0.0.1:11434"
MODELFILE_SUFFIX: Final = ".Modelfile"
TEST_SUFFIX: Final = ".test.toml"  # a model's smoke tests (smoke.py), never a Modelfile
STATE_DIR: Final = ".doit-ollama"
# Creating a model from multi-GiB weights can take many minutes on a real server.
DEFAULT_TIMEOUT: Final = 3600.0

_KNOWN_KEYS: Final = {
    "models": "folder of Modelfiles (default \"models\")",
    "lock": "path of the lock (default \"lock/models.lock\")",
    "host": "the Ollama server to build on",
    "hosts": "servers that `doit verify` checks (the first one is built on)",
    "mutable-tags": "tags that may be rebuilt with new inputs (default [\"latest\", \"dev\"])",
    "allow-outside-paths": "let Modelfiles name files outside the repository (default false)",
    "extra-models": "table of model name -> Modelfile path outside models/",
    "timeout": "seconds to wait for one server request (default 3600)",
    "lint": "lint settings: disable = [rule ids], severity = { rule id = \"error\" or \"warning\" }",
    "registry": "the team's OCI registry, HOST[:PORT]/namespace (http://... for plain HTTP)",
    "insecure-registries": "registry hosts reached over plain HTTP (HOST[:PORT], e.g. where a base lives)",
}


@dataclass(frozen=True)
class ModelSource:
    """One model tag of the repository and the Modelfile that defines it."""

    name: ModelName
    path: str  # absolute (a string: discovery makes 1000 of these on every run)
    relpath: str  # repository-relative, forward slashes (what the lock records)

    @functools.cached_property
    def modelfile(self) -> Path:
        """The Modelfile, absolute."""
        return Path(self.path)

    @property
    def display(self) -> str:
        return self.name.display


@dataclass(frozen=True)
class IgnoredFile:
    """A file under the models folder that is not built, why, and what to do about it.

    `misplaced`: a Modelfile whose place gives no valid model name (it cannot be built:
    an error); otherwise a name that only resembles a Modelfile's (`v3.modelfile`,
    `Modelfile.v2`, `v1.Modelfile.bak`: perhaps a typo, perhaps a backup: a warning).
    """

    relpath: str
    reason: str
    fix: str
    misplaced: bool

    def describe(self) -> str:
        return f"{self.relpath}: {self.reason}"


@dataclass(frozen=True)
class Project:
    """Everything the tasks need to know about the repository, resolved once."""

    root: Path
    models_dir: Path
    lock_path: Path
    hosts: tuple[str, ...]
    mutable_tags: frozenset[str]
    allow_outside_paths: bool
    timeout: float
    lint_disable: frozenset[str]
    extra_models: Mapping[str, str]
    lint_severity: Mapping[str, str] = field(default_factory=dict)  # rule id -> error/warning
    sources: Mapping[str, str] = field(default_factory=dict)
    registry: Registry | None = None  # the team's registry (docs/registry.md)
    insecure_registries: frozenset[str] = frozenset()  # hosts, lower case, reached over HTTP

    @property
    def host(self) -> str:
        """The server builds run against."""
        return self.hosts[0]

    @property
    def state_dir(self) -> Path:
        """Local, uncommitted state: doit's database, the hash cache, test results."""
        return self.root / STATE_DIR

    @property
    def lock_cache(self) -> Path:
        """The checked lock remembered under the sha256 of its bytes (a speed-up)."""
        return self.state_dir / "lock.cache"

    @property
    def lock_guard(self) -> Path:
        """The file lock that serialises writers of the lock."""
        return self.state_dir / "lock.guard"

    def relative(self, path: Path) -> str:
        """`path` relative to the repository with forward slashes, or absolute if outside."""
        plain = Path(os.path.abspath(path))
        if plain.is_relative_to(self.root) and not plain.is_symlink():
            return plain.relative_to(self.root).as_posix()
        real = path.resolve()
        if real.is_relative_to(self.root):
            return real.relative_to(self.root).as_posix()
        return real.as_posix()

    @property
    def host_origin(self) -> str:
        """What chose the build host, as a user would set it again ("--host", ...)."""
        source = self.sources.get("host", "default")
        if source == "command line (--host)":
            return "--host"
        if source in ("DOIT_OLLAMA_HOST", "OLLAMA_HOST"):
            return source
        if source == "default":
            return f"the default ({DEFAULT_HOST}: no host set)"
        return f"[tool.doit-ollama] host{'s' * (len(self.hosts) > 1)} in {self.relative(Path(source))}"

    def with_hosts(self, hosts: list[str] | tuple[str, ...]) -> Project:
        """The project with hosts given on the command line (`--host`), if any."""
        if not hosts:
            return self
        return replace(self, hosts=tuple(dict.fromkeys(hosts)),
                       sources={**self.sources, "host": "command line (--host)"})

    def new_version_path(self, source: ModelSource, tag: str = "<next>") -> str:
        """Where a new version of `source`'s model goes: beside it under the models folder,
        or, for a Modelfile named in extra-models, a new extra-models entry."""
        repository = source.name.repository
        if Path(source.path).is_relative_to(self.models_dir):
            return f"{self.relative(self.models_dir)}/{repository}/{tag}{MODELFILE_SUFFIX}"
        return (f"a new Modelfile beside {source.relpath}, named in [tool.doit-ollama] "
                f"extra-models as \"{repository}:{tag}\"")

    def is_insecure(self, host: str) -> bool:
        """True if the registry at `host` is plain HTTP (Ollama's `insecure`)."""
        return host.lower() in self.insecure_registries

    def is_mutable(self, name: ModelName) -> bool:
        """True if `name`'s tag may be rebuilt with new inputs."""
        return name.tag.lower() in self.mutable_tags

    def models(self) -> list[ModelSource]:
        """Every model of the repository (see `discover`)."""
        return discover(self)

    def models_and_ignored(self) -> tuple[list[ModelSource], list[IgnoredFile]]:
        """Every model, and the files under the models folder that are not built."""
        ignored: list[IgnoredFile] = []
        return discover(self, ignored=ignored), ignored


def toml_error(path: str | os.PathLike[str], text: str, exc: ValueError) -> str:
    """One line for a pyproject.toml that is not TOML: `path:line: invalid TOML: why`, and
    what to do (tomllib and tomli before Python 3.14 keep the line only in their text:
    "(at line 3, column 5)", or "(at end of document)")."""
    found = re.search(r"at line (\d+)", str(exc))
    line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
    if line is None and "end of document" in str(exc):
        line = text.count("\n") + 1
    where = f"{path}:{line}" if line else str(path)
    return (f"{where}: invalid TOML: {exc}; fix that line (doit reads [tool.doit] and "
            "doit-ollama [tool.doit-ollama] from this file)")


def _read_pyproject(root: Path) -> tuple[dict[str, Any], str]:
    path = root / "pyproject.toml"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(toml_error(path, text, exc)) from None
    section = doc.get("tool", {}).get("doit-ollama", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.doit-ollama] must be a table")
    return section, str(path)


def _expect(value: Any, kind: type | tuple[type, ...], key: str, where: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}: [tool.doit-ollama] {key} must be {what}, got {value!r}")
    return value


def _string_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: [tool.doit-ollama] {key} must be a list of strings, got {value!r}")
    return list(value)


def _lint_severity(value: Any, where: str) -> dict[str, str]:
    """[tool.doit-ollama.lint] severity: rule id -> "error" or "warning" (ids are checked by
    lint, which reports an unknown one as a finding, as it does for disable)."""
    table = _expect(value, dict, "lint.severity", where,
                    'a table of rule id = "error" or "warning"')
    for rule, level in table.items():
        if level not in ("error", "warning"):
            raise ConfigError(f"{where}: [tool.doit-ollama.lint] severity.{rule} must be "
                              f"\"error\" or \"warning\", got {level!r}")
    return dict(table)


def load_project(root: str | os.PathLike[str] | None = None, *,
                 hosts: list[str] | tuple[str, ...] | None = None,
                 environ: Mapping[str, str] | None = None) -> Project:
    """Resolve the configuration of the repository at `root` (default: the current folder)."""
    base = Path(root if root is not None else os.getcwd()).resolve()
    env = os.environ if environ is None else environ
    config, where = _read_pyproject(base)
    unknown = sorted(set(config) - set(_KNOWN_KEYS))
    if unknown:
        known = "\n".join(f"    {k}: {v}" for k, v in _KNOWN_KEYS.items())
        raise ConfigError(
            f"{where}: unknown key(s) in [tool.doit-ollama]: {', '.join(unknown)}\n"
            f"  Known keys:\n{known}"
        )
    sources: dict[str, str] = {}

    def setting(key: str, default: Any) -> Any:
        if key in config:
            sources[key] = where
            return config[key]
        sources[key] = "default"
        return default

    models_dir = base / _expect(setting("models", "models"), str, "models", where, "a path")
    lock_path = base / _expect(setting("lock", "lock/models.lock"), str, "lock", where, "a path")
    mutable = _string_list(setting("mutable-tags", ["latest", "dev"]), "mutable-tags", where)
    allow_outside = _expect(setting("allow-outside-paths", False), bool, "allow-outside-paths",
                            where, "true or false")
    timeout = float(_expect(setting("timeout", DEFAULT_TIMEOUT), (int, float), "timeout", where,
                            "a number of seconds"))
    if timeout <= 0:
        raise ConfigError(f"{where}: [tool.doit-ollama] timeout must be positive, got {timeout}")
    lint = _expect(setting("lint", {}), dict, "lint", where, "a table")
    unknown_lint = sorted(set(lint) - {"disable", "severity"})
    if unknown_lint:
        raise ConfigError(f"{where}: unknown key(s) in [tool.doit-ollama.lint]: "
                          f"{', '.join(unknown_lint)} (known: disable, severity)")
    lint_disable = _string_list(lint.get("disable", []), "lint.disable", where)
    lint_severity = _lint_severity(lint.get("severity", {}), where)
    extra = _expect(setting("extra-models", {}), dict, "extra-models", where,
                    "a table of model name = Modelfile path")
    for name, path in extra.items():
        _expect(path, str, f"extra-models.{name!r}", where, "a Modelfile path")

    if "host" in config and "hosts" in config:
        raise ConfigError(f"{where}: set either host or hosts in [tool.doit-ollama], not both")
    if hosts:
        host_list, sources["host"] = list(hosts), "command line (--host)"
    elif env.get("DOIT_OLLAMA_HOST"):
        host_list, sources["host"] = [env["DOIT_OLLAMA_HOST"]], "DOIT_OLLAMA_HOST"
    elif "hosts" in config:
        host_list, sources["host"] = _string_list(config["hosts"], "hosts", where), where
        if not host_list:
            raise ConfigError(f"{where}: [tool.doit-ollama] hosts is empty")
    elif "host" in config:
        host_list = [_expect(config["host"], str, "host", where, "a host such as \"127.0.0.1:11434\"")]
        sources["host"] = where
    elif env.get("OLLAMA_HOST"):
        host_list, sources["host"] = [env["OLLAMA_HOST"]], "OLLAMA_HOST"
    else:
        host_list, sources["host"] = [DEFAULT_HOST], "default"

    registry_text = env.get("DOIT_OLLAMA_REGISTRY") or None
    if registry_text:
        sources["registry"] = "DOIT_OLLAMA_REGISTRY"
        registry_where = "DOIT_OLLAMA_REGISTRY"
    else:
        registry_text = _expect(setting("registry", ""), str, "registry", where,
                                "a registry such as \"registry.lan:5000/team\"") or None
        registry_where = where + " [tool.doit-ollama]"
    registry = None
    if registry_text:
        from .registry import parse_registry  # only with a registry: not on every no-op build

        registry = parse_registry(registry_text, registry_where)
    insecure = {h.lower().rstrip("/") for h in _string_list(
        setting("insecure-registries", []), "insecure-registries", where)}
    for host in insecure:
        if "/" in host or "://" in host:
            raise ConfigError(f"{where}: [tool.doit-ollama] insecure-registries lists hosts "
                              f"(HOST[:PORT]), got {host!r}")
    if registry is not None and registry.insecure:
        insecure.add(registry.host.lower())

    return Project(
        root=base,
        models_dir=models_dir,
        lock_path=lock_path,
        hosts=tuple(dict.fromkeys(host_list)),
        mutable_tags=frozenset(t.lower() for t in mutable),
        allow_outside_paths=allow_outside,
        timeout=timeout,
        lint_disable=frozenset(lint_disable),
        extra_models=dict(extra),
        lint_severity=lint_severity,
        sources=sources,
        registry=registry,
        insecure_registries=frozenset(insecure),
    )


def _name_for(parts: list[str], filename: str) -> str | None:
    """The model name a Modelfile's place under models/ gives it ("" if its place gives
    none), or None if the file is not a Modelfile. `parts` are the folders between
    models/ and the file."""
    if filename == "Modelfile":
        tag = "latest"
    elif filename.endswith(MODELFILE_SUFFIX) and len(filename) > len(MODELFILE_SUFFIX):
        tag = filename[: -len(MODELFILE_SUFFIX)]
    else:
        return None
    if len(parts) not in (1, 2):
        return ""
    return "/".join(parts) + ":" + tag


def _near_miss(folder: str, filename: str) -> tuple[str, str] | None:
    """(why it is not read, the fix) for a name that resembles a Modelfile's, else None."""
    lower = filename.lower()
    if "modelfile" not in lower or lower.endswith(TEST_SUFFIX):
        return None
    suffix = MODELFILE_SUFFIX.lower()
    if lower.endswith(suffix) or lower == "modelfile":  # v3.modelfile, MODELFILE
        meant = filename[: -len(suffix)] + MODELFILE_SUFFIX if lower.endswith(suffix) else "Modelfile"
        return ("names are case-sensitive: only <tag>.Modelfile and Modelfile are built",
                f"rename it to {folder}/{meant}")
    if lower.startswith("modelfile."):  # Modelfile.v2
        return ("the tag goes before .Modelfile: only <tag>.Modelfile and Modelfile are built",
                f"rename it to {folder}/{filename.split('.', 1)[1]}{MODELFILE_SUFFIX}")
    return ("only <tag>.Modelfile and Modelfile are built",
            f"if it is a copy or a backup, move it out of {folder.split('/', 1)[0]}/; if it is a "
            f"model, rename it to {folder}/<tag>{MODELFILE_SUFFIX}")


def stat_stamp(path: str) -> list[int] | None:
    """A file's or folder's stat identity (mtime, size, inode), or None if it is missing.

    A folder's mtime changes whenever an entry is added to it, removed or renamed, so equal
    stamps of every folder under models/ mean that discovery would find the same files.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def discover(project: Project, stamps: dict[str, list[int] | None] | None = None,
             ignored: list[IgnoredFile] | None = None) -> list[ModelSource]:
    """Every model tag of the repository, sorted by name.

    A Modelfile whose place gives no name Ollama accepts, and a file whose name only
    resembles a Modelfile's, are not models: they are appended to `ignored` (when given),
    for lint to report and build to name. With `stamps`, also records the stamp of every
    folder it lists (taken before listing it, so a file added meanwhile changes the stamp)
    and of every extra Modelfile: what a cache of this answer must check.
    """
    found: dict[tuple[str, str, str, str], ModelSource] = {}
    skipped: list[IgnoredFile] = [] if ignored is None else ignored

    def note(path: str) -> None:
        if stamps is not None:
            stamps[path] = stat_stamp(path)

    def add(text: str, modelfile: str, relpath: str, origin: str) -> None:
        name = ModelName.parse(text)
        other = found.get(name.key)
        if other is not None:
            raise ConfigError(
                f"{origin}: model {name.display} is also defined by {other.relpath} "
                "(Ollama compares names ignoring case); keep one of them"
            )
        found[name.key] = ModelSource(name, modelfile, relpath)

    models_dir = str(project.models_dir)
    note(models_dir)
    if os.path.isdir(models_dir):
        prefix = project.relative(project.models_dir)
        layout = (f"a Modelfile must sit at {prefix}/<model>/<tag>.Modelfile or "
                  f"{prefix}/<namespace>/<model>/<tag>.Modelfile (or {prefix}/<model>/Modelfile "
                  "for :latest)")
        # os.walk and plain strings: pathlib costs more than everything else here at 1000 models
        for folder, dirs, files in os.walk(models_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for d in dirs:  # os.walk lists them after this
                note(os.path.join(folder, d))
            inner = folder[len(models_dir) + 1:]
            parts = inner.split(os.sep) if inner else []
            for filename in sorted(files):
                if filename.startswith("."):
                    continue
                relpath = "/".join([prefix, *parts, filename])
                text = _name_for(parts, filename)
                if text is None:
                    miss = _near_miss("/".join([prefix, *parts]), filename)
                    if miss is not None:
                        skipped.append(IgnoredFile(relpath, f"not built: {miss[0]}", miss[1], False))
                elif not text:
                    skipped.append(IgnoredFile(
                        relpath, f"not built: {layout}",
                        "move it, or name it in [tool.doit-ollama] extra-models", True))
                else:
                    try:
                        add(text, os.path.join(folder, filename), relpath, relpath)
                    except ModelNameError as exc:
                        skipped.append(IgnoredFile(
                            relpath, f"not built: its place gives the model name {text!r}, which "
                                     f"Ollama refuses: {exc}",
                            "rename the file (or its folder) so it gives a valid name", True))
    elif project.sources.get("models", "default") != "default":
        raise ConfigError(f"models folder {project.models_dir} does not exist "
                          f"(set by [tool.doit-ollama] models)")
    for text, rel in sorted(project.extra_models.items()):
        path = (project.root / rel).resolve()
        note(str(path))
        if not path.is_file():
            raise ConfigError(f"pyproject.toml: extra model {text!r} names {rel}, which is not a file")
        origin = f"pyproject.toml [tool.doit-ollama.extra-models] {text!r}"
        try:
            add(text, str(path), project.relative(path), origin)
        except ModelNameError as exc:
            raise ConfigError(f"{origin}: {exc}; give it a valid model name") from None
    return sorted(found.values(), key=lambda s: s.name.key)


def _repository_above(folder: Path) -> Path | None:
    """The repository of Modelfiles that `folder` is inside, if it looks like one: a parent
    whose models/ holds `folder`, or whose dodo.py imports doit_ollama."""
    for parent in folder.parents:
        if folder.is_relative_to(parent / "models") and (parent / "models").is_dir():
            return parent
        try:
            if b"doit_ollama" in (parent / "dodo.py").read_bytes():
                return parent
        except OSError:
            pass
    return None


def nothing_found(project: Project) -> ConfigError:
    """The error for a repository without a single Modelfile: where it looked, what it
    expected, and where the repository seems to be when this is a folder inside one."""
    where = project.relative(project.models_dir)
    if not project.models_dir.is_dir():
        text = f"nothing to build: there is no models folder {where}/ in {project.root}"
    else:
        text = f"nothing to build: no Modelfile in {project.models_dir}"
    text += f" (a model is {where}/<model>/<tag>.Modelfile"
    text += "; the folder is [tool.doit-ollama] models in pyproject.toml)"
    above = _repository_above(project.root)
    if above is not None:
        text += (f". This folder is inside the repository {above}: run the command there "
                 f"(cd {os.path.relpath(above)})")
    return ConfigError(text)
