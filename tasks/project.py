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
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
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

__all__ = ["DEFAULT_HOST", "ModelSource", "Project", "discover", "load_project", "stat_stamp"]

DEFAULT_HOST: Final = "127.0.0.1:11434"
MODELFILE_SUFFIX: Final = ".Modelfile"
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
    "lint": "lint settings: disable = [rule ids]",
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

    def is_insecure(self, host: str) -> bool:
        """True if the registry at `host` is plain HTTP (Ollama's `insecure`)."""
        return host.lower() in self.insecure_registries

    def is_mutable(self, name: ModelName) -> bool:
        """True if `name`'s tag may be rebuilt with new inputs."""
        return name.tag.lower() in self.mutable_tags

    def models(self) -> list[ModelSource]:
        """Every model of the repository (see `discover`)."""
        return discover(self)


def _read_pyproject(root: Path) -> tuple[dict[str, Any], str]:
    path = root / "pyproject.toml"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, str(path)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read pyproject.toml: {exc}") from None
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
    unknown_lint = sorted(set(lint) - {"disable"})
    if unknown_lint:
        raise ConfigError(f"{where}: unknown key(s) in [tool.doit-ollama.lint]: "
                          f"{', '.join(unknown_lint)} (known: disable)")
    lint_disable = _string_list(lint.get("disable", []), "lint.disable", where)
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
        sources=sources,
        registry=registry,
        insecure_registries=frozenset(insecure),
    )


def _name_for(parts: list[str], filename: str, shown: str) -> str | None:
    """The model name a Modelfile's place under models/ gives it, or None if not a Modelfile.

    `parts` are the folders between models/ and the file.
    """
    if filename == "Modelfile":
        tag = "latest"
    elif filename.endswith(MODELFILE_SUFFIX) and len(filename) > len(MODELFILE_SUFFIX):
        tag = filename[: -len(MODELFILE_SUFFIX)]
    else:
        return None
    if len(parts) not in (1, 2):
        raise ConfigError(
            f"{shown}: a Modelfile must sit at models/<model>/<tag>.Modelfile or "
            f"models/<namespace>/<model>/<tag>.Modelfile (or models/<model>/Modelfile for "
            f":latest); move it, or name it in [tool.doit-ollama] extra-models"
        )
    return "/".join(parts) + ":" + tag


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


def discover(project: Project, stamps: dict[str, list[int] | None] | None = None) -> list[ModelSource]:
    """Every model tag of the repository, sorted by name; refuses names Ollama would refuse.

    With `stamps`, also records the stamp of every folder it lists (taken before listing
    it, so a file added meanwhile changes the stamp) and of every extra Modelfile: what a
    cache of this answer must check.
    """
    found: dict[tuple[str, str, str, str], ModelSource] = {}

    def note(path: str) -> None:
        if stamps is not None:
            stamps[path] = stat_stamp(path)

    def add(text: str, modelfile: str, relpath: str, origin: str) -> None:
        try:
            name = ModelName.parse(text)
        except ModelNameError as exc:
            raise ConfigError(f"{origin}: {exc}; rename the file so it gives a valid name") from None
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
                text = _name_for(parts, filename, relpath)
                if text is not None:
                    add(text, os.path.join(folder, filename), relpath, relpath)
    elif project.sources.get("models", "default") != "default":
        raise ConfigError(f"models folder {project.models_dir} does not exist "
                          f"(set by [tool.doit-ollama] models)")
    for text, rel in sorted(project.extra_models.items()):
        path = (project.root / rel).resolve()
        note(str(path))
        if not path.is_file():
            raise ConfigError(f"pyproject.toml: extra model {text!r} names {rel}, which is not a file")
        add(text, str(path), project.relative(path),
            f"pyproject.toml [tool.doit-ollama.extra-models] {text!r}")
    return sorted(found.values(), key=lambda s: s.name.key)
