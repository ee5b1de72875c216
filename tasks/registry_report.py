"""Render what `doit deploy` and `doit outdated` found as text, JSON, JUnit XML or GitHub
Actions annotations (the formats of `doit verify`). Rendering is pure; the caller decides
where the text goes."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Final
from xml.etree import ElementTree as ET

from .deploy import HostDeploy
from .ghactions import workflow_command
from .outdated import Outdated

__all__ = ["FORMATS", "render_deploy", "render_outdated"]

FORMATS: Final = ("text", "json", "junit", "github")  # keep doit_registry.FORMATS equal


def _xml(suite: ET.Element, cases: int, failures: int) -> str:
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


# --- deploy ------------------------------------------------------------------------------------


def _deploy_text(hosts: list[HostDeploy]) -> str:
    lines = []
    for h in hosts:
        if not h.reachable:
            lines.append(f"error [{h.host}]: not deployed: {h.error}")
            continue
        for name, why in sorted(h.failed.items()):
            lines.append(f"error [{h.host}]: {name}: {why}")
        state = "ok" if h.ok else f"{len(h.failed)} failed"
        lines.append(f"{state}: {h.host}: {len(h.pulled)} pulled, {len(h.copied)} copied, "
                     f"{len(h.present)} already there")
    good = sum(h.ok for h in hosts)
    lines.append(f"deploy: {good} of {len(hosts)} host{'s' * (len(hosts) != 1)} hold the locked "
                 "models")
    return "\n".join(lines) + "\n"


def _deploy_junit(hosts: list[HostDeploy]) -> str:
    suite = ET.Element("testsuite", name="doit-ollama deploy")
    cases = failures = 0
    for h in hosts:
        if not h.reachable:
            cases += 1
            failures += 1
            case = ET.SubElement(suite, "testcase", name=f"host {h.host}", classname=h.host)
            ET.SubElement(case, "failure", message=h.error, type="unreachable").text = h.error
            continue
        for name in sorted({*h.pulled, *h.copied, *h.present, *h.failed}):
            cases += 1
            case = ET.SubElement(suite, "testcase", name=name, classname=h.host)
            if name in h.failed:
                failures += 1
                ET.SubElement(case, "failure", message=h.failed[name], type="deploy").text = h.failed[name]
    return _xml(suite, cases, failures)


def _deploy_github(hosts: list[HostDeploy]) -> str:
    lines = []
    for h in hosts:
        if not h.reachable:
            lines.append(workflow_command("error", f"{h.host}: not deployed: {h.error}",
                                          title="doit-ollama deploy"))
        for name, why in sorted(h.failed.items()):
            lines.append(workflow_command("error", f"{h.host}: {name}: {why}", title="doit-ollama deploy"))
    return "\n".join(lines) + ("\n" if lines else "")


def render_deploy(hosts: list[HostDeploy], fmt: str) -> str:
    """The per-host deploy report in one of FORMATS."""
    if fmt == "json":
        return json.dumps({"ok": all(h.ok for h in hosts), "hosts": [asdict(h) for h in hosts]},
                          indent=2, sort_keys=True) + "\n"
    return {"text": _deploy_text, "junit": _deploy_junit, "github": _deploy_github}[fmt](hosts)


# --- outdated ----------------------------------------------------------------------------------


def _short(digest: str | None) -> str:
    return digest.replace("sha256:", "")[:12] if digest else "-"


def _outdated_text(rows: list[Outdated]) -> str:
    table = [("MODEL", "BASE", "LOCKED", "UPSTREAM")]
    table += [(r.model, r.base, _short(r.locked), r.state_text) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
             for r in table]
    moved = sum(r.moved for r in rows)
    errors = sum(bool(r.error) for r in rows)
    bases = len({(r.base, r.locked) for r in rows})
    verdict = (f"{moved} model{'s' * (moved != 1)} built on a base that moved upstream"
               if moved else "no base moved upstream")
    lines.append(f"outdated: {verdict} ({bases} base{'s' * (bases != 1)} asked"
                 f"{f', {errors} could not be asked' if errors else ''})")
    return "\n".join(lines) + "\n"


def _outdated_junit(rows: list[Outdated]) -> str:
    suite = ET.Element("testsuite", name="doit-ollama outdated")
    failures = 0
    for r in rows:
        case = ET.SubElement(suite, "testcase", name=r.model, classname=r.base)
        if r.moved or r.error:
            failures += 1
            text = r.error or f"{r.base} moved upstream: {_short(r.locked)} -> {_short(r.upstream)}"
            ET.SubElement(case, "failure", message=text, type="error" if r.error else "moved").text = text
    return _xml(suite, len(rows), failures)


def _outdated_github(rows: list[Outdated]) -> str:
    lines = []
    for r in rows:
        if r.error:
            lines.append(workflow_command("error", f"{r.model}: {r.error}", file=r.modelfile,
                                          title="doit-ollama outdated"))
        elif r.moved:
            lines.append(workflow_command(
                "warning", f"{r.model}: base {r.base} moved upstream: {_short(r.locked)} -> "
                f"{_short(r.upstream)}", file=r.modelfile, title="doit-ollama outdated"))
    return "\n".join(lines) + ("\n" if lines else "")


def render_outdated(rows: list[Outdated], fmt: str) -> str:
    """The outdated table in one of FORMATS."""
    if fmt == "json":
        return json.dumps({"moved": any(r.moved for r in rows), "bases": [asdict(r) for r in rows]},
                          indent=2, sort_keys=True) + "\n"
    return {"text": _outdated_text, "junit": _outdated_junit, "github": _outdated_github}[fmt](rows)
