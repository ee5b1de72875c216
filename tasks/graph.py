"""A picture of the repository: its models, the bases they are built FROM, its channels, and
each one's state, drawn as Mermaid (GitHub renders it in READMEs and pull requests) or as
Graphviz DOT.

The states are those of `doit status` (verify.inspect); `collect` only adds the FROM edges
and the channels, and the renderers are pure (Graph -> str).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from . import createrequest, modelfile
from .errors import DoitOllamaError
from .inputs import gather
from .project import ModelSource, Project
from .verify import Report

__all__ = ["FORMATS", "Edge", "Graph", "Node", "collect", "render"]

FORMATS: Final = ("mermaid", "dot")

# How a state is coloured: ok, needs a build (warn), or broken (bad). A state not listed
# here (one added later) is drawn as warn.
_OK: Final = frozenset({"up to date"})
_BAD: Final = frozenset({"missing", "drifted", "invalid", "orphaned", "moved", "conflict"})
# The channel finding kinds of verify, as the state a channel is drawn with.
_CHANNEL_STATES: Final = {"channel-missing": "missing", "channel-drifted": "drifted",
                          "channel-orphan": "orphaned", "channel-stale": "stale",
                          "channel-conflict": "conflict"}
_COLOURS: Final = {  # fill, stroke
    "ok": ("#dff0d8", "#3c763d"), "warn": ("#fcf8e3", "#8a6d3b"),
    "bad": ("#f2dede", "#a94442"), "plain": ("#f5f5f5", "#777777"),
}


@dataclass(frozen=True)
class Node:
    """A model of the repository, a base it is built FROM, a weights file, or a channel."""

    key: str  # unique: a model's display name, or "file:<repository-relative path>"
    label: str
    kind: str  # "model", "base" (a model from elsewhere), "file" or "channel"
    state: str = ""  # "" when nothing was checked (a file; a base offline)

    @property
    def tone(self) -> str:
        if not self.state:
            return "plain"
        return "ok" if self.state in _OK else "bad" if self.state in _BAD else "warn"


@dataclass(frozen=True)
class Edge:
    """`source` is built into `target` ("from"), or channel `source` points at `target`."""

    source: str
    target: str
    kind: str  # "from" or "channel"


@dataclass
class Graph:
    """Nodes by key, and the edges between them."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


def _origin(project: Project, source: ModelSource,
            digest: Callable[[str], str]) -> tuple[str, str] | None:
    """What the model is built FROM: ("base", model name) or ("file", relative path)."""
    inputs = gather(project, source, digest)
    if inputs.base is not None:
        return "base", inputs.base.display
    mf = modelfile.load(source.modelfile)
    given = next((args for name, args in mf.instructions if name == "model"), None)
    if given is None:
        return None
    path = createrequest.expand_path(given, str(source.modelfile.parent))
    return "file", project.relative(Path(path))


def collect(project: Project, models: list[ModelSource], report: Report,
            digest: Callable[[str], str]) -> Graph:
    """The graph of `report` (an inspection of `models`): one node per model, base, weights
    file and channel, with the FROM and channel edges."""
    graph = Graph()
    for state in report.models:
        graph.nodes[state.name] = Node(state.name, state.name, "model", state.state)
    base_state: dict[str, str] = {}
    for finding in report.findings:
        if finding.kind == "base-missing":
            base_state[finding.model] = "missing"
        elif finding.kind == "base-moved":
            base_state[finding.model] = "moved"
    for source in models:
        try:
            origin = _origin(project, source, digest)
        except DoitOllamaError:
            continue  # an invalid Modelfile: its node says so, and it has no edge
        if origin is None:
            continue
        kind, name = origin
        key = name if kind == "base" else f"file:{name}"
        if key not in graph.nodes:
            state = "" if kind == "file" or report.offline else \
                base_state.get(source.display, "up to date")
            graph.nodes[key] = Node(key, name, kind, state)
        elif graph.nodes[key].kind == "base" and source.display in base_state:
            graph.nodes[key] = Node(key, name, "base", base_state[source.display])
        graph.edges.append(Edge(key, source.display, "from"))
    for channel, target in report.channels.items():
        kinds = [f.kind for f in report.findings if f.model == channel]
        state = next((_CHANNEL_STATES[k] for k in kinds if k in _CHANNEL_STATES), "up to date")
        graph.nodes[channel] = Node(channel, channel, "channel", state)
        graph.edges.append(Edge(channel, target, "channel"))
        if target not in graph.nodes:  # a target gone from the repository
            graph.nodes[target] = Node(target, target, "model", "orphaned")
    return graph


def _ordered(graph: Graph) -> list[Node]:
    """Bases and files first, then models, then channels; by name within each."""
    rank = {"base": 0, "file": 1, "model": 2, "channel": 3}
    return sorted(graph.nodes.values(), key=lambda n: (rank[n.kind], n.label.lower(), n.key))


def _edges(graph: Graph) -> list[Edge]:
    return sorted(graph.edges, key=lambda e: (e.kind != "from", e.target.lower(), e.source.lower()))


# --- Mermaid --------------------------------------------------------------------------------

_MERMAID_SHAPES: Final = {"model": ('("', '")'), "base": ('[("', '")]'),
                          "file": ('[/"', '"/]'), "channel": ('{{"', '"}}')}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _mermaid(graph: Graph) -> str:
    ids = {node.key: f"n{number}" for number, node in enumerate(_ordered(graph))}
    lines = ["flowchart LR"]
    for node in _ordered(graph):
        opening, closing = _MERMAID_SHAPES[node.kind]
        label = _mermaid_text(node.label) + (f"<br/>{_mermaid_text(node.state)}" if node.state else "")
        lines.append(f"    {ids[node.key]}{opening}{label}{closing}")
    for edge in _edges(graph):
        arrow = "-->|FROM|" if edge.kind == "from" else "-.->|points at|"
        lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
    tones: dict[str, list[str]] = {}
    for node in _ordered(graph):
        tones.setdefault(node.tone, []).append(ids[node.key])
    for tone, members in sorted(tones.items()):
        fill, stroke = _COLOURS[tone]
        lines.append(f"    classDef {tone} fill:{fill},stroke:{stroke},color:#222")
        lines.append(f"    class {','.join(members)} {tone}")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ----------------------------------------------------------------------------

_DOT_SHAPES: Final = {"model": "box", "base": "cylinder", "file": "note", "channel": "hexagon"}


def _dot_text(text: str) -> str:
    """A DOT string: quoted, with quotes, backslashes and line ends escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot(graph: Graph) -> str:
    lines = ["digraph models {", "    rankdir=LR;",
             '    node [fontname="Helvetica", style="rounded,filled"];',
             '    edge [fontname="Helvetica", fontsize=10];']
    for node in _ordered(graph):
        fill, stroke = _COLOURS[node.tone]
        label = node.label + (f"\n{node.state}" if node.state else "")
        lines.append(f"    {_dot_text(node.key)} [label={_dot_text(label)}, "
                     f"shape={_DOT_SHAPES[node.kind]}, fillcolor={_dot_text(fill)}, "
                     f"color={_dot_text(stroke)}];")
    for edge in _edges(graph):
        style = '[label="FROM"]' if edge.kind == "from" else '[label="points at", style=dashed]'
        lines.append(f"    {_dot_text(edge.source)} -> {_dot_text(edge.target)} {style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: Graph, fmt: str) -> str:
    """The graph in one of FORMATS."""
    return {"mermaid": _mermaid, "dot": _dot}[fmt](graph)
