"""`doit graph` (issue 14, item 15): models, the bases and files they are built FROM, channels and
each one's state, as Mermaid and Graphviz DOT; real doit runs against the Ollama test double."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import ollama
import pytest

from doit_ollama import doit_graph, graph

from tests.doit_repo import DoitRepo, make_repo
from tests.ollama_double import OllamaDouble

ROOT = Path(__file__).resolve().parent.parent
NODE = re.compile(r'^\s+(n\d+)[(\[{/]+"?(.*?)"?[)\]}/]+$')
EDGE = re.compile(r"^\s+(n\d+) (-->\|FROM\||-\.->\|points at\|) (n\d+)$")


def mermaid(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """A Mermaid flowchart read back: {label: state}, {(source, kind, target)} by label."""
    assert text.startswith("flowchart LR\n"), text
    labels: dict[str, str] = {}
    states: dict[str, str] = {}
    edges = set()
    for line in text.splitlines()[1:]:
        if node := NODE.match(line):
            name, _, state = node.group(2).partition("<br/>")
            labels[node.group(1)], states[name] = name, state
        elif edge := EDGE.match(line):
            kind = "FROM" if "FROM" in edge.group(2) else "points at"
            edges.add((labels[edge.group(1)], kind, labels[edge.group(3)]))
        else:
            assert line.strip().startswith(("classDef ", "class ")), line
    return states, edges


@pytest.fixture
def repo(tmp_path: Path, ollama_double: OllamaDouble, registry,  # type: ignore[no-untyped-def]
         gguf_file: Callable[..., Path]) -> DoitRepo:
    """Models FROM a pulled base, FROM another model of the repository and FROM a GGUF file,
    all built, and a channel."""
    registry.publish("base:1b", seed=1)
    repo = make_repo(tmp_path / "repo", ollama_double.host)
    repo.model("bot:v1", 'FROM base:1b\nSYSTEM """Answer in JSON."""\n')
    repo.model("bot:v2", 'FROM base:1b\nSYSTEM """Answer in YAML."""\n')
    repo.model("bot-fr:v1", 'FROM bot:v1\nSYSTEM """Réponds en JSON."""\n')
    repo.write("models/local/weights.gguf", gguf_file(seed=7).read_bytes())
    repo.model("local:v1", "FROM ./weights.gguf\nSYSTEM local\n")
    repo.doit("build")
    repo.doit("promote", "--force", "--reason", "for the picture", "bot:prod", "bot:v1")
    return repo


def test_graph_draws_models_bases_files_channels_and_their_states(
        repo: DoitRepo, ollama_double: OllamaDouble) -> None:
    states, edges = mermaid(repo.doit("graph").out)
    assert edges == {("base:1b", "FROM", "bot:v1"), ("base:1b", "FROM", "bot:v2"),
                     ("bot:v1", "FROM", "bot-fr:v1"),
                     ("models/local/weights.gguf", "FROM", "local:v1"),
                     ("bot:prod", "points at", "bot:v1")}
    assert states == {"base:1b": "up to date", "models/local/weights.gguf": "",
                      "bot:v1": "up to date", "bot:v2": "up to date", "bot-fr:v1": "up to date",
                      "local:v1": "up to date", "bot:prod": "up to date"}

    with ollama.Client(host=ollama_double.url) as client:
        client.delete("bot:v2")
        client.create("bot:prod", from_="base:1b", system="moved by hand")
    path = repo.root / "models/local/v1.Modelfile"
    path.write_text(path.read_text().replace("SYSTEM local", "SYSTEM changed"))
    states, _ = mermaid(repo.doit("graph").out)  # the states of `doit status`, and exit 0
    assert (states["bot:v2"], states["local:v1"], states["bot:prod"]) == ("missing", "stale",
                                                                          "drifted")
    status = json.loads(repo.doit("status", "--json").out)["models"]
    assert {m["name"]: m["state"] for m in status}.items() <= states.items()

    offline, _ = mermaid(repo.doit("graph", "--offline").out)
    assert offline["bot:v2"] == "up to date" and offline["base:1b"] == ""  # nothing asked


def test_graph_as_graphviz_dot_to_a_file(repo: DoitRepo) -> None:
    result = repo.doit("graph", "--format", "dot", "--output", "docs/models.dot")
    assert result.out == "graph: 4 models drawn in docs/models.dot\n"
    dot = (repo.root / "docs/models.dot").read_text()
    assert dot.startswith("digraph models {\n") and dot.endswith("}\n")
    assert '"base:1b" [label="base:1b\\nup to date", shape=cylinder,' in dot
    assert '"file:models/local/weights.gguf" [label="models/local/weights.gguf", shape=note,' in dot
    assert '"bot:v1" -> "bot-fr:v1" [label="FROM"];' in dot
    assert '"bot:prod" -> "bot:v1" [label="points at", style=dashed];' in dot
    assert all(line.endswith(";") for line in dot.splitlines()[1:-1]), dot
    assert dot.count("->") == 5
    repo.doit("graph", "--format", "svg", expect=3)  # doit names the choices


def test_an_invalid_modelfile_is_a_node_without_edges(repo: DoitRepo) -> None:
    repo.write("models/broken/v1.Modelfile", "# broken: a model for the tests\nFROM base:1b\nFROM2 x\n")
    states, edges = mermaid(repo.doit("graph", "--offline").out)
    assert states["broken:v1"] == "invalid"
    assert not any("broken:v1" in edge for edge in edges)


def test_loading_the_tasks_does_not_import_the_graph_code() -> None:
    """`doit build`'s no-op path pays nothing for `doit graph`."""
    code = ("import sys, doit_ollama.doit_tasks; "
            "print(sorted(m for m in sys.modules if m in ('doit_ollama.graph', 'doit_ollama.verify')))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "models", capture_output=True,
                            text=True, check=True, timeout=60).stdout
    assert loaded.strip() == "[]"
    assert doit_graph.GRAPH_FORMATS == graph.FORMATS


def test_the_readme_shows_what_doit_graph_draws_for_its_own_models() -> None:
    """The README's picture is the last step of `make demo` (scripts/demo.py), verbatim."""
    demo = subprocess.run([sys.executable, "scripts/demo.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    drawn = demo.stdout.split("\n$ doit graph\n", 1)[1].split("\n$ ", 1)[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```mermaid\n(.*?)^```$", readme, flags=re.S | re.M)
    assert shown == [drawn], f"README.md's mermaid block should be:\n{drawn}"
    states, edges = mermaid(drawn)
    assert ("my-bot:prod", "points at", "my-bot:v1.1") in edges
    assert ("my-bot:v1.1", "FROM", "my-bot-fr:v1.0") in edges
    assert set(states.values()) == {"up to date"}
