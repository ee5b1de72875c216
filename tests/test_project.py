"""Configuration from pyproject.toml (with its precedence) and discovery of models/."""

from __future__ import annotations

from pathlib import Path

import pytest

from doit_ollama.errors import ConfigError
from doit_ollama.project import load_project


def write(root: Path, relpath: str, text: str = "FROM base:1b\n") -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(root: Path, **kwargs: object) -> list[str]:
    return [m.display for m in load_project(root, environ={}, **kwargs).models()]  # type: ignore[arg-type]


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    project = load_project(tmp_path, environ={})
    assert project.models_dir == tmp_path.resolve() / "models"
    assert project.lock_path == tmp_path.resolve() / "lock" / "models.lock"
    assert project.hosts == ("127.0.0.1:11434",)
    assert project.mutable_tags == {"latest", "dev"}
    assert project.allow_outside_paths is False
    assert project.timeout == 3600
    assert project.models() == []


def test_layout_gives_names(tmp_path: Path) -> None:
    write(tmp_path, "models/my-bot/v1.0.Modelfile")
    write(tmp_path, "models/team/bot/v2.Modelfile")
    write(tmp_path, "models/scratch/Modelfile")
    write(tmp_path, "models/my-bot/README.md", "not a Modelfile")
    write(tmp_path, "models/my-bot/v1.0.test.toml", "")
    assert names(tmp_path) == ["my-bot:v1.0", "scratch:latest", "team/bot:v2"]
    source = load_project(tmp_path, environ={}).models()[0]
    assert source.relpath == "models/my-bot/v1.0.Modelfile"


def test_a_modelfile_at_the_wrong_depth_is_explained(tmp_path: Path) -> None:
    write(tmp_path, "models/stray.Modelfile")
    with pytest.raises(ConfigError, match="a Modelfile must sit at models/<model>/<tag>.Modelfile"):
        names(tmp_path)


def test_names_that_differ_only_in_case_collide(tmp_path: Path) -> None:
    write(tmp_path, "models/Bot/v1.Modelfile")
    write(tmp_path, "models/bot/v1.Modelfile")
    with pytest.raises(ConfigError, match="ignoring case"):
        names(tmp_path)


def test_settings_from_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", """
[tool.doit-ollama]
models = "llm"
lock = "llm.lock"
host = "gpu-1:11434"
mutable-tags = ["Dev", "nightly"]
allow-outside-paths = true
timeout = 120
extra-models = { "legacy:v1" = "old/Modelfile" }
lint = { disable = ["latest-tag"] }
""")
    write(tmp_path, "llm/bot/v1.Modelfile")
    write(tmp_path, "old/Modelfile")
    project = load_project(tmp_path, environ={})
    assert project.models_dir == tmp_path.resolve() / "llm"
    assert project.lock_path == tmp_path.resolve() / "llm.lock"
    assert project.hosts == ("gpu-1:11434",)
    assert project.mutable_tags == {"dev", "nightly"}
    assert project.allow_outside_paths and project.timeout == 120
    assert project.lint_disable == {"latest-tag"}
    assert [m.display for m in project.models()] == ["bot:v1", "legacy:v1"]
    assert project.sources["host"].endswith("pyproject.toml")


def test_host_precedence(tmp_path: Path) -> None:
    env = {"OLLAMA_HOST": "from-ollama-host:1"}
    assert load_project(tmp_path, environ=env).hosts == ("from-ollama-host:1",)
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama]\nhost = "from-pyproject:2"\n')
    assert load_project(tmp_path, environ=env).hosts == ("from-pyproject:2",)  # OLLAMA_HOST loses
    env["DOIT_OLLAMA_HOST"] = "from-doit-ollama-host:3"
    assert load_project(tmp_path, environ=env).hosts == ("from-doit-ollama-host:3",)
    project = load_project(tmp_path, environ=env, hosts=["cli:4", "cli:5"])
    assert project.hosts == ("cli:4", "cli:5") and project.sources["host"] == "command line (--host)"


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[tool.doit-ollama]\nmodel = 'x'\n", "unknown key(s) in [tool.doit-ollama]: model"),
        ("[tool.doit-ollama]\ntimeout = 'soon'\n", "timeout must be a number of seconds"),
        ("[tool.doit-ollama]\ntimeout = 0\n", "timeout must be positive"),
        ("[tool.doit-ollama]\nmutable-tags = 'dev'\n", "mutable-tags must be a list of strings"),
        ("[tool.doit-ollama]\nhost = 'a'\nhosts = ['b']\n", "either host or hosts"),
        ("[tool.doit-ollama]\nhosts = []\n", "hosts is empty"),
        ("[tool.doit-ollama]\nlint = { enable = ['x'] }\n", "unknown key(s) in [tool.doit-ollama.lint]"),
        ("[tool.doit-ollama\n", "cannot read pyproject.toml"),
    ],
)
def test_bad_configuration_names_the_file_and_key(tmp_path: Path, toml: str, says: str) -> None:
    write(tmp_path, "pyproject.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path, environ={})
    assert says in str(info.value) and "pyproject.toml" in str(info.value)


def test_extra_model_that_is_not_a_file(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama]\nextra-models = { "x:v1" = "nope/Modelfile" }\n')
    with pytest.raises(ConfigError, match="extra model 'x:v1' names nope/Modelfile, which is not a file"):
        names(tmp_path)


def test_configured_models_folder_must_exist(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.doit-ollama]\nmodels = "missing"\n')
    with pytest.raises(ConfigError, match="does not exist"):
        names(tmp_path)


def test_registry_settings_and_their_precedence(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", """
[tool.doit-ollama]
registry = "registry.lan:5000/team"
insecure-registries = ["Mirror.lan:5001"]
""")
    project = load_project(tmp_path, environ={})
    assert project.registry is not None and project.registry.display == "registry.lan:5000/team"
    assert not project.registry.insecure and not project.is_insecure("registry.lan:5000")
    assert project.is_insecure("mirror.lan:5001") and project.sources["registry"].endswith("pyproject.toml")
    overridden = load_project(tmp_path, environ={"DOIT_OLLAMA_REGISTRY": "http://127.0.0.1:5000/ci"})
    assert overridden.registry is not None and overridden.registry.display == "http://127.0.0.1:5000/ci"
    assert overridden.is_insecure("127.0.0.1:5000") and overridden.sources["registry"] == "DOIT_OLLAMA_REGISTRY"
    assert load_project(tmp_path / "elsewhere", environ={}).registry is None


@pytest.mark.parametrize("value, message", [
    ("registry.lan:5000", "must look like HOST[:PORT]/namespace"),
    ("registry.lan:5000/a/b", "must look like HOST[:PORT]/namespace"),
    ("ftp://registry.lan/team", "the scheme must be http://"),
    ("registry.lan/my.team", "the namespace 'my.team' may not contain '.'"),
])
def test_a_bad_registry_is_named_with_the_fix(tmp_path: Path, value: str, message: str) -> None:
    write(tmp_path, "pyproject.toml", f'[tool.doit-ollama]\nregistry = "{value}"\n')
    with pytest.raises(ConfigError, match="pyproject.toml") as caught:
        load_project(tmp_path, environ={})
    assert message in str(caught.value)
