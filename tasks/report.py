"""Render a verify/status Report as text, JSON, JUnit XML or GitHub Actions annotations.

Rendering is pure (Report -> str); the caller decides where the text goes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Final
from xml.etree import ElementTree as ET

from .ghactions import workflow_command
from .verify import Finding, Report

__all__ = ["FORMATS", "render", "render_status"]

FORMATS: Final = ("text", "json", "junit", "github")  # keep doit_report.FORMATS equal


def _text(report: Report) -> str:
    lines = []
    for f in report.findings:
        where = f" [{f.host}]" if f.host else ""
        lines.append(f"error{where}: {f.message}")
        lines.append(f"  fix: {f.fix}")
    failing = {f.model for f in report.findings}
    down = [h.host for h in report.hosts if not h.reachable]
    # "ok" only for what every server asked confirmed; the reason a server could not be
    # asked is the unreachable error above, given once.
    partly = f" (not checked on {', '.join(down)})" if down and report.checked_on else ""
    shown = [(state, f"{state.name} ({_short(state.digest)})") for state in report.models]
    shown += [(state, f"channel {state.name} -> {report.channels.get(state.name, '?')}")
              for state in report.channel_states]
    unchecked = 0
    for state, text in shown:
        if state.name in failing:
            continue
        if state.state == "not checked":
            unchecked += 1
            lines.append(f"not checked: {text}")
        else:
            lines.append(f"ok: {text}{partly}")
    hosts = "offline: sources against the lock only" if report.offline else (
        ", ".join(h.host + ("" if h.reachable else " (unreachable)") for h in report.hosts))
    count = len(report.findings)
    verdict = "all checks passed" if report.ok else f"{count} problem{'s' * (count != 1)}"
    models = len(report.models)
    not_checked = f", {unchecked} not checked" if unchecked else ""
    lines.append(f"verify: {verdict} for {models} model{'s' * (models != 1)}{not_checked} ({hosts})")
    return "\n".join(lines) + "\n"


def _short(digest: str | None) -> str:
    return digest.replace("sha256:", "")[:12] if digest else "-"


def _json(report: Report) -> str:
    return json.dumps({
        "ok": report.ok,
        "offline": report.offline,
        "hosts": [asdict(h) for h in report.hosts],
        "models": [asdict(m) for m in report.models],
        "channels": [asdict(c) for c in report.channel_states],
        "findings": [asdict(f) for f in report.findings],
    }, indent=2, sort_keys=True) + "\n"


def _junit(report: Report) -> str:
    """One test case per model (per host when servers were checked), plus one per dead host."""
    suite = ET.Element("testsuite", name="doit-ollama verify")
    cases = 0
    failures = 0

    def case(name: str, classname: str, found: list[Finding]) -> None:
        nonlocal cases, failures
        cases += 1
        element = ET.SubElement(suite, "testcase", name=name, classname=classname)
        if found:
            failures += 1
            failure = ET.SubElement(element, "failure", message=found[0].message,
                                    type=found[0].kind)
            failure.text = "\n".join(f"{f.kind}: {f.message}\nfix: {f.fix}" for f in found)

    sources = [f for f in report.findings if f.host is None]
    for state in report.models:
        case(state.name, "sources", [f for f in sources if f.model == state.name])
    for host in report.hosts:
        host_findings = [f for f in report.findings if f.host == host.host]
        if not host.reachable:
            case(f"server {host.host}", host.host, host_findings)
            continue
        for state in report.models:
            case(state.name, host.host, [f for f in host_findings if f.model == state.name])
        channels = sorted({f.model for f in host_findings if f.kind.startswith("channel")})
        for channel in channels:
            case(channel, host.host, [f for f in host_findings if f.model == channel])
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _github(report: Report) -> str:
    """Workflow commands: `::error file=...,line=...,title=...::message`."""
    lines = [workflow_command("error", f"{f.message} | fix: {f.fix}", file=f.file, line=f.line,
                              title=f"doit-ollama {f.kind}") for f in report.findings]
    return "\n".join(lines) + ("\n" if lines else "")


def render(report: Report, fmt: str) -> str:
    """The report in one of FORMATS."""
    return {"text": _text, "json": _json, "junit": _junit, "github": _github}[fmt](report)


def render_status(report: Report) -> str:
    """The `doit status` table: one row per model and per channel, its state and why."""
    rows = [("MODEL", "STATE", "DIGEST", "WHY")]
    for m in [*report.models, *report.channel_states]:
        rows.append((m.name, m.state, _short(m.digest), m.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
             for r in rows]
    for host in report.hosts:
        if not host.reachable:
            lines.append(f"not checked on the server: {host.error}")
    if report.offline:
        lines.append("(offline: server state not checked)")
    return "\n".join(lines) + "\n"
