"""The cache that spares a no-op from walking models/ and parsing Modelfiles must never hide
a change: models added, removed or renamed between runs, and edits that keep a file's stamp
on a file system with coarse timestamps."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from doit_ollama import localfiles
from doit_ollama.depcache import DependencyCache
from doit_ollama.project import discover, load_project

from tests.doit_repo import DoitRepo, make_repo


def listed(repo: DoitRepo) -> list[str]:
    """The build sub-tasks `doit list --all` shows."""
    out = repo.doit("list", "--all").out
    return re.findall(r"^build:(\S+)", out, flags=re.MULTILINE)


@pytest.fixture
def repo(tmp_path: Path) -> DoitRepo:
    # `doit list` needs no server: nothing here asks one.
    return make_repo(tmp_path / "repo", "127.0.0.1:9")


def test_models_added_removed_and_renamed_between_runs_are_seen(repo: DoitRepo) -> None:
    repo.model("bot:v1", "FROM base:1b\n")
    assert listed(repo) == ["bot:v1"]
    assert listed(repo) == ["bot:v1"]  # the second run answers from the cache
    assert (repo.root / ".doit-ollama" / "dependencies.cache").exists()

    repo.model("bot:v2", "FROM bot:v1\n")  # a new file in a known folder
    repo.model("team/helper:v1", "FROM base:1b\n")  # a new folder two levels down
    assert listed(repo) == ["bot:v1", "bot:v2", "team/helper:v1"]

    (repo.root / "models/bot/v1.Modelfile").rename(repo.root / "models/bot/v0.Modelfile")
    (repo.root / "models/team/helper/v1.Modelfile").unlink()
    assert listed(repo) == ["bot:v0", "bot:v2"]


def test_extra_models_and_the_models_setting_are_part_of_what_is_cached(repo: DoitRepo) -> None:
    repo.model("bot:v1", "FROM base:1b\n")
    repo.write("legacy/Modelfile", "# legacy:v1: an old model\nFROM base:1b\n")
    repo.write("pyproject.toml", '[tool.doit-ollama]\nextra-models = { "legacy:v1" = "legacy/Modelfile" }\n')
    assert listed(repo) == ["bot:v1", "legacy:v1"]
    assert listed(repo) == ["bot:v1", "legacy:v1"]
    (repo.root / "legacy/Modelfile").unlink()
    assert "legacy/Modelfile, which is not a file" in repo.doit("list", expect=3).output
    repo.write("pyproject.toml", '[tool.doit-ollama]\nmodels = "other"\n')
    repo.model("ignored:v1", "FROM base:1b\n")
    repo.write("other/new/v1.Modelfile", "# new:v1: moved\nFROM base:1b\n")
    assert listed(repo) == ["new:v1"]


def test_an_editor_that_saves_by_rename_changes_the_dependencies(repo: DoitRepo) -> None:
    repo.model("bot:v1", "FROM base:1b\n")
    repo.model("bot:v2", "FROM base:1b\n")
    assert "build:bot:v1" not in repo.doit("info", "build:bot:v2", expect=None).out
    # Vim and many editors write a new file and rename it over the old one.
    path = repo.root / "models/bot/v2.Modelfile"
    fresh = path.with_name(".v2.Modelfile.swp")
    fresh.write_text("# bot:v2: now built on v1\nFROM bot:v1\n")
    os.replace(fresh, path)
    assert "build:bot:v1" in repo.doit("info", "build:bot:v2", expect=None).out


def test_a_bad_name_added_later_is_still_found(repo: DoitRepo) -> None:
    repo.model("bot:v1", "FROM base:1b\n")
    listed(repo)
    repo.write("models/bot/v!.Modelfile", "FROM base:1b\n")
    assert listed(repo) == ["bot:v1"]  # not a model; every command still works
    result = repo.doit("lint", expect=1)
    assert "models/bot/v!.Modelfile:1: error misplaced-modelfile" in result.out


def test_a_damaged_cache_is_rebuilt(repo: DoitRepo) -> None:
    repo.model("bot:v1", "FROM base:1b\n")
    repo.model("bot:v2", "FROM bot:v1\n")
    listed(repo)
    path = repo.root / ".doit-ollama" / "dependencies.cache"
    good = localfiles.load_cache(path)
    assert good is not None and good["version"] == 3
    damaged = [
        {**good, "discovery": {**good["discovery"], "models": [["not", "a", "model"]]}},
        {**good, "entries": {k: {"stamps": 3} for k in good["entries"]}},
        {**good, "entries": {k: "oops" for k in good["entries"]}},
        ["not", "a", "table"],
    ]
    for doc in damaged:
        localfiles.store_cache(path, doc)
        assert listed(repo) == ["bot:v1", "bot:v2"]
        assert "build:bot:v1" in repo.doit("info", "build:bot:v2", expect=None).out
    path.write_bytes(b"garbage")
    assert listed(repo) == ["bot:v1", "bot:v2"]


# --- the stamp rule, on real files with chosen mtimes ----------------------------------------


def _same_size_edit(path: Path, old: str, new: str, mtime_ns: int) -> None:
    """Change `old` to `new` (same length) and put the mtime back: what a second edit within
    one tick of a coarse clock looks like to stat()."""
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.parametrize("cache_written_after", [True, False])
def test_a_stamp_as_new_as_the_cache_is_not_trusted(tmp_path: Path, cache_written_after: bool) -> None:
    modelfile = tmp_path / "models" / "bot" / "v1.Modelfile"
    modelfile.parent.mkdir(parents=True)
    modelfile.write_text("# bot:v1: test\nFROM base:1b\n")
    tick = 1_700_000_000 * 10**9  # a whole second, as a coarse file system records it
    os.utime(modelfile, ns=(tick, tick))
    project = load_project(tmp_path)
    (source,) = discover(project)
    cache_path = tmp_path / "deps.json"
    first = DependencyCache(cache_path)
    assert first.get(source).base == "base:1b"
    first.save()
    # The cache was written in the same tick as the Modelfile, or a second later.
    written = tick + (10**9 if cache_written_after else 0)
    os.utime(cache_path, ns=(written, written))

    _same_size_edit(modelfile, "base:1b", "other:1", tick)
    again = DependencyCache(cache_path).get(source).base
    if cache_written_after:
        # The stamp predates the cache, so the cache is believed: this is the trust the
        # rule rests on (and what makes a no-op parse nothing).
        assert again == "base:1b"
    else:
        assert again == "other:1"


@pytest.mark.parametrize("cache_written_after", [True, False])
def test_discovery_stamps_as_new_as_the_cache_are_not_trusted(tmp_path: Path,
                                                              cache_written_after: bool) -> None:
    folder = tmp_path / "models" / "bot"
    folder.mkdir(parents=True)
    (folder / "v1.Modelfile").write_text("FROM base:1b\n")
    tick = 1_700_000_000 * 10**9
    for path in (folder, folder.parent):
        os.utime(path, ns=(tick, tick))
    project = load_project(tmp_path)
    cache_path = tmp_path / "deps.json"
    cache = DependencyCache(cache_path)
    assert [s.display for s in cache.models(project)] == ["bot:v1"]
    cache.save()
    written = tick + (10**9 if cache_written_after else 0)
    os.utime(cache_path, ns=(written, written))

    # A file added within the same tick: the folder keeps its stamp.
    before = os.stat(folder)
    (folder / "v2.Modelfile").write_text("FROM base:1b\n")
    os.utime(folder, ns=(tick, tick))
    assert os.stat(folder).st_size == before.st_size  # else this test would prove nothing
    found = [s.display for s in DependencyCache(cache_path).models(project)]
    assert found == (["bot:v1"] if cache_written_after else ["bot:v1", "bot:v2"])
