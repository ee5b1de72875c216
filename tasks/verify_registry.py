"""The registry side of `doit verify` and `doit status`: does the team registry serve every
locked model, channel and pinned base at the digest the lock records?

Read-only: one manifest HEAD per model, channel and base. Every finding's fix is
`doit publish`, which pushes what is missing and restores what was changed by hand.
"""

from __future__ import annotations

from .build import short
from .errors import RegistryError
from .lockfile import Lock
from .names import ModelName
from .project import ModelSource, Project
from .registry import Registry, RegistryClient, pin_name, published_name
from .verify import Finding, HostReport

__all__ = ["check_registry"]


def check_registry(project: Project, registry: Registry, lock: Lock,
                   models: list[ModelSource]) -> tuple[HostReport, list[Finding]]:
    """The registry as one more "host" of the report, and what it lacks or holds differently."""
    where = f"registry {registry.display}"
    report = HostReport(where)
    files = {m.display: m.relpath for m in models}
    findings: list[Finding] = []

    def finding(name: str, kind: str, message: str, fix: str = "doit publish") -> None:
        findings.append(Finding(name, kind, message, fix, host=where, file=files.get(name)))

    try:
        with RegistryClient(insecure_hosts=project.insecure_registries,
                            timeout=min(project.timeout, 60.0)) as client:
            for name, entry in sorted(lock.models.items()):
                if name not in files:
                    continue  # orphans are reported once, by the source check
                target = published_name(registry, ModelName.parse(name))
                served = client.head(target)
                if entry.registry is None:
                    finding(name, "not-published", f"{name} has not been published: the lock "
                            f"records no registry digest for it ({target.display})")
                elif served is None:
                    finding(name, "registry-missing", f"{name} is not in the registry "
                            f"({target.display} is missing)")
                elif served != entry.registry:
                    finding(name, "registry-drifted", f"{target.display} serves {short(served)}, "
                            f"the lock says {short(entry.registry)} (overwritten outside doit-ollama)")
            for name, channel in sorted(lock.channels.items()):
                version = lock.models.get(channel.target)
                if version is None or version.registry is None:
                    continue  # its version's finding says it
                target = published_name(registry, ModelName.parse(name))
                served = client.head(target)
                if served != version.registry:
                    now = "is missing" if served is None else f"serves {short(served)}"
                    finding(name, "registry-channel", f"channel {name}: {target.display} {now}, "
                            f"the lock points it at {channel.target} ({short(version.registry)})")
            repository = {ModelName.parse(n).key for n in lock.models}
            pins: dict[tuple[str, str], str] = {}
            for name, entry in sorted(lock.models.items()):
                base = entry.base
                if base is None or ModelName.parse(base.name).key in repository:
                    continue
                if (base.name, base.digest) not in pins:
                    pinned = pin_name(registry, ModelName.parse(base.name), base.digest)
                    pins[(base.name, base.digest)] = pinned.display
                    if client.head(pinned) is None:
                        finding(name, "pin-missing", f"{name}: its base {base.name} at "
                                f"{short(base.digest)} is not pinned in the registry "
                                f"({pinned.display}), so a moved base could not be restored",
                                f"doit publish (on a machine that has {base.name} at "
                                f"{short(base.digest)})")
    except RegistryError as err:
        report.reachable, report.error = False, str(err)
        return report, [Finding("*", "unreachable", str(err),
                                f"start the registry, or check [tool.doit-ollama] registry "
                                f"({project.sources.get('registry', 'pyproject.toml')})", host=where)]
    return report, findings
