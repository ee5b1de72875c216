"""Compare sources, lock and servers; the findings behind `doit verify` and `doit status`.

Read-only: nothing here writes the lock or changes a server. Each finding says what is
wrong, why, and the exact command that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Final

from . import lockfile, modelfile
from .build import Change, compare, short
from .errors import DoitOllamaError, ServerError
from .inputs import gather
from .lockfile import Lock
from .names import ModelName
from .project import ModelSource, Project
from .server import Server, Tag

__all__ = ["Finding", "HostReport", "ModelState", "Report", "inspect"]

# Which Modelfile instruction a changed create-request field comes from (for file:line).
_FIELD_INSTRUCTION: Final = {
    "from": "model", "base": "model", "base name": "model", "files": "model",
    "adapters": "adapter", "draft_files": "draft", "template": "template", "system": "system",
    "license": "license", "messages": "message", "renderer": "renderer", "parser": "parser",
    "requires": "requires",
}


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold, with its cause and the fix."""

    model: str
    kind: str  # not-locked, stale, orphan, invalid, missing, drifted, base-missing, base-moved,
    #            channel-missing, channel-drifted, unreachable; with a registry: not-published,
    #            registry-missing, registry-drifted, registry-channel, pin-missing
    message: str
    fix: str
    host: str | None = None  # None: a finding about sources and lock, not a server
    file: str | None = None
    line: int | None = None


@dataclass
class ModelState:
    """What `doit status` shows for one model: its state and the reason."""

    name: str
    modelfile: str | None
    state: str  # "up to date", "stale", "not locked", "orphaned", "invalid", "missing", "drifted"
    reason: str = ""
    digest: str | None = None  # locked digest


@dataclass
class HostReport:
    """The server side of a check, for one host."""

    host: str
    reachable: bool = True
    version: str | None = None
    error: str = ""


@dataclass
class Report:
    """Everything a verify or status run found."""

    models: list[ModelState] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    hosts: list[HostReport] = field(default_factory=list)
    offline: bool = False
    channels: dict[str, str] = field(default_factory=dict)  # channel -> target, from the lock

    @property
    def ok(self) -> bool:
        return not self.findings

    def for_model(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.model == name]


def _first_line(mf: modelfile.Modelfile | None, instruction: str) -> int | None:
    if mf is None:
        return None
    names = [n for n, _ in mf.instructions]
    if instruction == "parameters":
        for (name, _), line in zip(mf.instructions, mf.lines):
            if name not in _FIELD_INSTRUCTION.values():
                return line
        return None
    for name, line in zip(names, mf.lines):
        if name == instruction:
            return line
    return None


def _line_for(mf: modelfile.Modelfile | None, change: Change) -> int | None:
    what = "files" if change.what.startswith("files: ") else change.what
    instruction = _FIELD_INSTRUCTION.get(what, "parameters" if what == "parameters" else "model")
    return _first_line(mf, instruction) or _first_line(mf, "model")


def _stale_fix(project: Project, source: ModelSource) -> str:
    if project.is_mutable(source.name):
        return f"doit build:{source.display}"
    return (f"give the change a new tag (a new Modelfile under models/{source.name.repository}/), "
            f"or re-lock on purpose: doit build:{source.display} --relock")


def _moved_fix(project: Project, source: ModelSource, base: str, digest: str) -> str:
    """The ways out for a base that moved under a model: the Modelfile did not change."""
    keep = (f"keep reproducing it: `doit publish` pins {base} at {short(digest)} in the registry "
            "and builds restore that copy when they must" if project.registry is not None else
            f"keep reproducing it: set a registry and `doit publish` from a machine that has {base} "
            f"at {short(digest)} (docs/registry.md)")
    move_on = (f"or move on: a new version FROM the moved base (a new Modelfile under "
               f"{project.relative(project.models_dir)}/{source.name.repository}/)"
               if not project.is_mutable(source.name) else f"or rebuild it: doit build:{source.display}")
    return f"{keep}; {move_on}"


def _host_hint(project: Project, host: str) -> str:
    return "" if host == project.host else f"DOIT_OLLAMA_HOST={host} "


def _check_sources(project: Project, lock: Lock, models: list[ModelSource],
                   digest: Callable[[str], str], report: Report) -> None:
    """Lock vs sources: not locked, stale, orphaned, invalid."""
    names = {m.display for m in models}
    for source in models:
        name = source.display
        entry = lock.models.get(name)
        try:
            inputs = gather(project, source, digest)
            mf = modelfile.load(source.modelfile)  # for line numbers; it just parsed
        except DoitOllamaError as err:
            line = getattr(err, "editor_line", None)  # where an editor shows it
            report.findings.append(Finding(name, "invalid", str(err),
                                           f"fix {source.relpath} (see `doit lint`)",
                                           file=source.relpath, line=line))
            report.models.append(ModelState(name, source.relpath, "invalid", str(err),
                                            entry.digest if entry else None))
            continue
        if entry is None:
            report.findings.append(Finding(
                name, "not-locked", f"{name} is not in {project.relative(project.lock_path)}",
                f"doit build:{name}", file=source.relpath, line=_first_line(mf, "model")))
            report.models.append(ModelState(name, source.relpath, "not locked",
                                            "never built, or built without recording it"))
            continue
        changes = compare(entry, inputs, None)
        if changes:
            why = "; ".join(c.describe() for c in changes)
            report.findings.append(Finding(
                name, "stale",
                f"{name}: {source.relpath} no longer matches the lock: {why}",
                _stale_fix(project, source), file=source.relpath, line=_line_for(mf, changes[0])))
            report.models.append(ModelState(name, source.relpath, "stale", why, entry.digest))
        else:
            report.models.append(ModelState(name, source.relpath, "up to date", "", entry.digest))
    for name, entry in sorted(lock.models.items()):
        if name not in names:
            report.findings.append(Finding(
                name, "orphan",
                f"{name} is in the lock but its Modelfile {entry.modelfile} is gone",
                f"restore {entry.modelfile} (git checkout), or drop the entry with `doit build`",
                file=None))
            report.models.append(ModelState(name, entry.modelfile, "orphaned",
                                            f"{entry.modelfile} is gone", entry.digest))


def _check_host(project: Project, lock: Lock, models: list[ModelSource], host: str,
                report_host: HostReport) -> list[Finding]:
    """Lock vs one server: each locked tag at its digest, each base at its locked digest."""
    server = Server(host, timeout=min(project.timeout, 60.0))
    try:
        tags: Mapping[tuple[str, str, str, str], Tag] = server.tags()
        report_host.version = server.version()
    except ServerError as err:
        report_host.reachable = False
        report_host.error = str(err)
        return [Finding("*", "unreachable", f"{host}: {err}",
                        f"start Ollama at {server.url}, or remove it from the hosts to check",
                        host=host)]
    findings: list[Finding] = []
    sources = {m.display: m for m in models}
    hint = _host_hint(project, host)
    for name, entry in sorted(lock.models.items()):
        source = sources.get(name)
        if source is None:
            continue  # orphans are reported once, by the source check
        relpath = source.relpath
        tag = tags.get(ModelName.parse(name).key)
        # A tag pulled from the team registry holds the registry's digest of the same model.
        if tag is not None and entry.holds(tag.digest):
            pass
        elif tag is None:
            findings.append(Finding(name, "missing", f"{name} is not on {server.url}",
                                    f"{hint}doit build:{name}", host=host, file=relpath))
        else:
            findings.append(Finding(
                name, "drifted",
                f"{name} on {server.url} is {short(tag.digest)}, the lock says {short(entry.digest)} "
                "(overwritten by hand or built from other inputs)",
                f"{hint}doit build:{name}", host=host, file=relpath))
        deployed = tag is not None and entry.registry is not None and tag.digest == entry.registry
        if entry.base is not None:
            base = ModelName.parse(entry.base.name)
            found = tags.get(base.key)
            if found is None and deployed:
                pass  # pulled from the registry: a deployed host needs no base
            elif found is None:
                findings.append(Finding(
                    name, "base-missing",
                    f"{name}: its base {base.display} is not on {server.url}",
                    f"{hint}doit build:{name} (pulls it and checks its digest)",
                    host=host, file=relpath))
            elif not entry.base.holds(found.digest):
                findings.append(Finding(
                    name, "base-moved",
                    f"{name}: base {base.display} moved: {short(entry.base.digest)} -> "
                    f"{short(found.digest)} on {server.url}; the lock no longer reproduces "
                    f"{name} from upstream",
                    _moved_fix(project, source, entry.base.name, entry.base.digest),
                    host=host, file=relpath))
    for name, channel in sorted(lock.channels.items()):
        tag = tags.get(ModelName.parse(name).key)
        version = lock.models.get(channel.target)
        if tag is not None and version is not None and tag.digest == version.registry:
            continue  # deployed from the registry: the version's manifest as the registry serves it
        if tag is None:
            findings.append(Finding(name, "channel-missing",
                                    f"channel {name} (-> {channel.target}) is not on {server.url}",
                                    f"{hint}doit promote {name} {channel.target}", host=host))
        elif tag.digest != channel.digest:
            findings.append(Finding(
                name, "channel-drifted",
                f"channel {name} on {server.url} is {short(tag.digest)}, the lock points it at "
                f"{channel.target} ({short(channel.digest)})",
                f"{hint}doit promote {name} {channel.target}", host=host))
    return findings


def _check_checklist(project: Project, lock: Lock, models: list[ModelSource], strict: bool,
                     report: Report) -> None:
    """Channels the lock no longer supports; with `strict`, Modelfiles not committed to git."""
    from . import channels, lint

    for problem in channels.check_channels(project, lock, models):
        report.findings.append(Finding(**asdict(problem)))
    if strict:
        for f in lint.git_findings(project, models, strict=True):
            report.findings.append(Finding(f.model or f.file or "*", f.rule, f"{f.file}: {f.message}",
                                           f.fix, file=f.file, line=f.line))


def inspect(project: Project, hosts: Iterable[str], *, offline: bool,
            digest: Callable[[str], str], strict: bool = False) -> Report:
    """Check sources against the lock and, unless offline, every host against the lock."""
    lock = lockfile.read(project.lock_path, project.lock_cache)
    models = project.models()
    report = Report(offline=offline, channels={k: c.target for k, c in sorted(lock.channels.items())})
    _check_sources(project, lock, models, digest, report)
    _check_checklist(project, lock, models, strict, report)
    if offline:
        return report
    host_list = list(dict.fromkeys(hosts))
    report.hosts = [HostReport(h) for h in host_list]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(host_list) + 1))) as pool:
        registry = None
        if project.registry is not None:
            from .verify_registry import check_registry

            registry = pool.submit(check_registry, project, project.registry, lock, models)
        results = list(pool.map(lambda pair: _check_host(project, lock, models, *pair),
                                zip(host_list, report.hosts)))
        if registry is not None:
            registry_host, registry_findings = registry.result()
            report.hosts.append(registry_host)
            results.append(registry_findings)
    by_model: dict[str, list[Finding]] = {}
    for findings in results:
        report.findings.extend(findings)
        for f in findings:
            by_model.setdefault(f.model, []).append(f)
    for state in report.models:
        if state.state != "up to date":
            continue
        server_findings = by_model.get(state.name, [])
        kinds = [f.kind for f in server_findings]
        if "missing" in kinds:
            state.state, state.reason = "missing", "not on " + ", ".join(
                f.host or "" for f in server_findings if f.kind == "missing")
        elif "drifted" in kinds:
            state.state, state.reason = "drifted", next(f.message for f in server_findings
                                                         if f.kind == "drifted")
        elif kinds and all(k in _REGISTRY_KINDS for k in kinds):
            first = server_findings[0]
            state.state = "not published" if first.kind in ("not-published", "registry-missing") else (
                "registry differs")
            state.reason = first.message
        elif server_findings:
            state.state, state.reason = "stale", server_findings[0].message
    return report


_REGISTRY_KINDS: Final = frozenset({"not-published", "registry-missing", "registry-drifted",
                                    "pin-missing"})


def rebuild_check(project: Project, host: str, digest: Callable[[str], str],
                  say: Callable[[str], None]) -> list[Finding]:
    """Rebuild every locked model under a scratch tag on `host`, compare digests, clean up.

    An active reproducibility check: the manifest does not contain the model's own name, so
    a scratch tag built from the same inputs must have the locked digest.
    """
    import io
    import secrets

    from .build import Builder, explain_mismatch

    lock = lockfile.read(project.lock_path, project.lock_cache)
    server = Server(host, timeout=project.timeout)
    builder = Builder(project, server, digest, out=io.StringIO())
    suffix = f"verify-{secrets.token_hex(4)}"
    findings: list[Finding] = []
    for source in project.models():
        name = source.display
        entry = lock.models.get(name)
        if entry is None:
            continue  # reported as not locked by the source check
        scratch = source.name.with_tag(f"{source.name.tag[:60]}-{suffix}").display
        try:
            inputs = gather(project, source, digest)
            base_digest = None
            if inputs.base is not None:
                found = server.tags().get(inputs.base.key)
                base_digest = found.digest if found else None
            say(f"{name}: rebuilding as {scratch}")
            got = builder.create(scratch, inputs)
        except DoitOllamaError as err:
            findings.append(Finding(name, "rebuild-failed", f"{name}: rebuild failed: {err}",
                                    f"doit build:{name}", host=host, file=source.relpath))
            continue
        finally:
            try:
                server.delete(scratch)
            except ServerError:
                pass  # never created, or already gone
        if got == entry.digest:
            say(f"{name}: reproduced {short(got)}")
            continue
        findings.append(Finding(
            name, "not-reproducible",
            explain_mismatch(name, entry, inputs, base_digest, builder.version, got),
            f"doit build:{name} --relock (after checking the suspects)",
            host=host, file=source.relpath))
    return findings
