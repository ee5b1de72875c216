"""lock/models.lock: schema checks with file and line, deterministic bytes, atomic merged updates."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

import pytest
import tomli_w
from doit_ollama import localfiles, lockfile
from doit_ollama.errors import LockError
from doit_ollama.lockfile import BaseRef, ChannelEntry, Lock, ModelEntry
from hypothesis import given, settings
from hypothesis import strategies as st

H1 = "sha256:" + "1" * 64
H2 = "sha256:" + "2" * 64


def entry(i: int = 0, **changes: object) -> ModelEntry:
    values: dict[str, object] = dict(
        modelfile=f"models/m{i}/v1.Modelfile", inputs=H1, digest=H2, ollama="0.33.0",
        fields={"system": H1}, files={}, base=BaseRef("base:1b", H1),
    )
    values.update(changes)
    return ModelEntry(**values)  # type: ignore[arg-type]


def fresh_process() -> None:
    """Forget what this process remembers of locks it read or wrote, as a new process would."""
    lockfile._PARSED.clear()
    lockfile._RENDERED.clear()


def test_render_parse_round_trip_and_determinism() -> None:
    lock = Lock(models={"b:v1": entry(1), "a:v1": entry(0, files={"models/x.gguf": H2}, base=None)},
                channels={"a:prod": ChannelEntry("a:v1", H2)})
    data = lockfile.render(lock)
    assert lockfile.parse(data) == lock
    assert data == lockfile.render(lockfile.parse(data))
    assert data.index(b'[models."a:v1"]') < data.index(b'[models."b:v1"]')
    assert data.startswith(b"# This file is written by doit-ollama")


names = st.text(alphabet="abcdefgh:.-_/", min_size=1, max_size=12)
digests = st.sampled_from([H1, H2])
entries = st.builds(
    ModelEntry,
    modelfile=st.text(max_size=20), inputs=digests, digest=digests, ollama=st.text(max_size=8),
    fields=st.dictionaries(st.sampled_from(["system", "template", "parameters"]), digests),
    files=st.dictionaries(st.text(min_size=1, max_size=10), digests, max_size=2),
    base=st.none() | st.builds(BaseRef, names, digests),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, entries, max_size=5), st.dictionaries(names, st.builds(
    ChannelEntry, names, digests, st.booleans(), st.text(max_size=8)), max_size=2))
def test_render_per_entry_equals_rendering_the_whole_document(models: dict[str, ModelEntry],
                                                                channels: dict[str, ChannelEntry]) -> None:
    lock = Lock(models=models, channels=channels)
    once = lockfile.render(lock)
    doc: dict[str, object] = {"version": 1}
    if models:
        doc["models"] = {k: lockfile._model_table(models[k]) for k in sorted(models)}
    if channels:
        doc["channels"] = {k: lockfile._channel_table(channels[k]) for k in sorted(channels)}
    assert once == (lockfile.HEADER + tomli_w.dumps(doc)).encode()
    assert lockfile.render(lock) == once  # memoised path gives the same bytes
    assert lockfile.parse(once) == Lock(models=dict(models), channels=dict(channels))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('version = 1\n[models."a:v1"\n', "invalid TOML"),
        ("version = 2\n", "newer than this doit-ollama understands"),
        ('version = "1"\n', "'version' must be 1"),
        ('version = 1\nextra = 3\n', "unknown top-level key(s): extra"),
        ('version = 1\n\n[models."a:v1"]\nmodelfile = "m"\ninputs = "sha256:00"\ndigest = "x"\nollama = "1"\n',
         ":3: 'a:v1': field 'inputs' must look like sha256"),
        ('version = 1\n\n[models."a:v1"]\nmodelfile = 3\n', ":3: 'a:v1': field 'modelfile' must be a string"),
        (f'version = 1\n[models."a:v1"]\nmodelfile = "m"\ndigest = "{H1}"\ninputs = "{H1}"\n',
         "field 'ollama' is missing"),
        (f'version = 1\n[channels."a:prod"]\ntarget = "a:v1"\ndigest = "{H1}"\ntested = "yes"\n',
         "field 'tested' must be true or false"),
    ],
)
def test_bad_locks_name_the_file_line_and_problem(text: str, says: str) -> None:
    with pytest.raises(LockError) as info:
        lockfile.parse(text.encode(), "lock/models.lock")
    message = str(info.value)
    assert message.startswith("lock/models.lock")
    assert says in message
    assert "git checkout -- lock/models.lock" in message


def test_missing_lock_is_empty_and_cache_is_keyed_by_content(tmp_path: Path) -> None:
    path, cache = tmp_path / "models.lock", tmp_path / "cache.json"
    assert lockfile.read(path, cache) == Lock()
    lockfile.write_atomic(path, lockfile.render(Lock(models={"a:v1": entry()})))
    assert set(lockfile.read(path, cache).models) == {"a:v1"}
    assert cache.exists()
    # a change of the lock that the cache did not see is read from the file, not the cache
    path.write_bytes(lockfile.render(Lock(models={"b:v1": entry(1)})))
    assert set(lockfile.read(path, cache).models) == {"b:v1"}
    fresh_process()
    cache.write_text("{ damaged")
    assert set(lockfile.read(path, cache).models) == {"b:v1"}


def _add(args: tuple[str, str, int]) -> None:
    path, guard, i = args

    def change(lock: Lock) -> None:
        lock.models[f"m{i}:v1"] = entry(i)

    lockfile.update(path, change, guard, Path(guard).with_name("cache.json"))


def test_parallel_updates_never_lose_an_entry(tmp_path: Path) -> None:
    path, guard = tmp_path / "lock" / "models.lock", tmp_path / "state" / "lock.guard"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_add, [(str(path), str(guard), i) for i in range(40)])
    assert set(lockfile.read(path).models) == {f"m{i}:v1" for i in range(40)}
    assert not list(path.parent.glob(".*tmp"))


def test_update_leaves_a_corrupt_lock_untouched(tmp_path: Path) -> None:
    path = tmp_path / "models.lock"
    path.write_bytes(b"not toml [")
    with pytest.raises(LockError):
        lockfile.update(path, lambda lock: None, tmp_path / "guard")
    assert path.read_bytes() == b"not toml ["


def test_cached_read_brings_rendered_texts_that_equal_a_fresh_render(tmp_path: Path) -> None:
    path, guard, cache = tmp_path / "models.lock", tmp_path / "guard", tmp_path / "cache.json"
    for i in range(3):
        lockfile.update(path, lambda lock, i=i: lock.models.__setitem__(f"m{i}:v1", entry(i)), guard, cache)
    lockfile._RENDERED.clear()  # as in a fresh process
    lock = lockfile.read(path, cache)
    assert lockfile._RENDERED == {}  # readers do not need the texts
    lockfile._load_texts(cache, hashlib.sha256(path.read_bytes()).hexdigest(), lock)
    assert len(lockfile._RENDERED) == 3  # writers seed them from the cache instead of rendering
    assert lockfile.render(lock) == path.read_bytes()
    lockfile._RENDERED.clear()
    assert lockfile.render(lockfile.read(path)) == path.read_bytes()


def test_summary_is_what_an_up_to_date_check_needs_and_follows_the_content(tmp_path: Path) -> None:
    path, guard, cache = tmp_path / "models.lock", tmp_path / "guard", tmp_path / "cache.json"
    assert lockfile.read_summary(path, cache) == {}
    lockfile.update(path, lambda lock: lock.models.__setitem__("a:v1", entry(0)), guard, cache)
    assert lockfile.read_summary(path, cache) == {"a:v1": (H1, H2, "base:1b", H1, None, None)}
    # a lock written by someone else (no cache for its content) is read, not trusted blindly
    lockfile.write_atomic(path, lockfile.render(Lock(models={"b:v1": entry(1, base=None)})))
    assert lockfile.read_summary(path, cache) == {"b:v1": (H1, H2, None, None, None, None)}


@pytest.mark.parametrize("which", ["lock.cache", "lock-texts.cache", "lock-summary.cache"])
@pytest.mark.parametrize("damage", [b"garbage", "marshal of a list", "marshal of wrong rows"])
def test_a_damaged_cache_file_is_ignored(tmp_path: Path, which: str, damage: object) -> None:
    path, guard, cache = tmp_path / "models.lock", tmp_path / "guard", tmp_path / "lock.cache"
    for i in range(3):
        lockfile.update(path, lambda lock, i=i: lock.models.__setitem__(f"m{i}:v1", entry(i)), guard, cache)
    expected = lockfile.parse(path.read_bytes())
    target = tmp_path / which
    good = localfiles.load_cache(target)
    assert isinstance(good, dict) and good["key"] == hashlib.sha256(path.read_bytes()).hexdigest()
    if damage == "marshal of a list":
        localfiles.store_cache(target, ["a", "list"])
    elif damage == "marshal of wrong rows":
        localfiles.store_cache(target, {**good, "models": {name: ("short",) for name in good["models"]}})
    else:
        target.write_bytes(damage)  # type: ignore[arg-type]
    fresh_process()
    assert lockfile.read(path, cache) == expected
    fresh_process()
    assert lockfile.read_summary(path, cache) == lockfile._summarize(expected)
    fresh_process()
    lockfile.update(path, lambda lock: lock.models.__setitem__("m9:v1", entry(9)), guard, cache)
    expected.models["m9:v1"] = entry(9)
    assert path.read_bytes() == lockfile.render(expected)
