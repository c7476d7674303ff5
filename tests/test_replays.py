"""Replays: the format round trip, every bad input, verification by re-simulation, `lab play` recording."""

from __future__ import annotations

import json
import pickle
import tempfile
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs
from lab.replays import (
    FORMAT_VERSION,
    Episode,
    EpisodeRecorder,
    ReplayError,
    episode_frames,
    list_replays,
    load_episode,
    make_replay_env,
    replay_path,
    save_episode,
    verify_episode,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "replays" / "examples"
PRESETS = tuple(entry.id for entry in envs.ENTRIES)


def record(env_id: str, actions: list[int], seed: int = 0, frames: bool = False, **kwargs) -> Episode:
    """An episode of ``actions`` (stopping early if it ends), recorded the way ``lab play`` does."""
    env = gym.make(env_id, render_mode="rgb_array" if frames else None, **kwargs)
    rec = EpisodeRecorder.for_env(env, seed, "test", record_frames=frames)
    obs, info = env.reset(seed=seed)
    rec.start(obs, info, env.render() if frames else None)
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, reward, terminated, truncated, info, env.render() if frames else None)
        if terminated or truncated:
            break
    env.close()
    return rec.finish()


def rewrite(src: Path, dst: Path, set_meta: dict | None = None, drop: tuple[str, ...] = (), **arrays) -> Path:
    """A copy of a replay with some entries changed or dropped (raw, bypassing save_episode's checks).

    ``set_meta`` changes metadata keys (a value of None removes the key).
    """
    with np.load(src, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files if k not in drop}
    if set_meta is not None:
        meta = {**json.loads(str(entries["meta"])), **set_meta}
        entries["meta"] = np.array(json.dumps({k: v for k, v in meta.items() if v is not None}))
    entries.update(arrays)
    np.savez(dst, **entries)
    return dst


# ----- the format -----

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def episodes(draw) -> Episode:
    n = draw(st.integers(0, 12))
    obs_shape = draw(st.sampled_from([(), (2,), (3, 3, 2)]))
    obs_dtype = draw(st.sampled_from([np.int64, np.float32, np.uint8]))
    ints = st.integers(0, 255)

    def array(shape, dtype) -> np.ndarray:
        size = int(np.prod(shape))
        return np.array(draw(st.lists(ints, min_size=size, max_size=size)), dtype=dtype).reshape(shape)

    observations = array((n + 1, *obs_shape), obs_dtype)
    ended = draw(st.sampled_from(["terminated", "truncated", "open"])) if n else "open"
    terminations = np.zeros(n, dtype=bool)
    truncations = np.zeros(n, dtype=bool)
    if ended == "terminated":
        terminations[-1] = True
    elif ended == "truncated":
        truncations[-1] = True
    keys = draw(st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), max_size=3, unique=True))
    frames = None
    if draw(st.booleans()):
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        frames = array((n + 1, h, w, 3), np.uint8)
    return Episode(
        id=draw(st.text(max_size=20)),
        seed=draw(st.integers(0, 2**64 - 1)),
        env_id=draw(st.text(min_size=1, max_size=30)),
        env_kwargs=draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4)),
        observations=observations,
        actions=np.array(
            draw(st.lists(st.integers(-(2**31), 2**31), min_size=n, max_size=n)), dtype=np.int64
        ),
        rewards=np.array(
            draw(st.lists(st.floats(allow_nan=True, width=64), min_size=n, max_size=n)), dtype=np.float64
        ),
        terminations=terminations,
        truncations=truncations,
        infos={
            k: np.array(draw(st.lists(ints, min_size=n + 1, max_size=n + 1)), dtype=np.int64) for k in keys
        },
        frames=frames,
        source=draw(st.text(max_size=20)),
        max_episode_steps=draw(st.none() | st.integers(1, 10**6)),
        created=draw(st.text(max_size=30)),
    )


@settings(max_examples=60)
@given(episodes())
def test_save_then_load_gives_the_same_episode(episode):
    with tempfile.TemporaryDirectory() as folder:
        path = save_episode(episode, Path(folder) / "x.npz")
        loaded = load_episode(path)
        assert loaded == episode
        assert [p.name for p in Path(folder).iterdir()] == ["x.npz"]  # no temporary file left behind
        without = load_episode(path, frames=False)
        assert without.frames is None and without.length == episode.length


def test_the_file_holds_plain_arrays_and_json_meta(tmp_path):
    episode = record("lab/KeyDoor-v0", [2, 2, 0], frames=True)
    path = save_episode(episode, tmp_path / "kd.npz")
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(
            [
                "meta",
                "observations",
                "actions",
                "rewards",
                "terminations",
                "truncations",
                "infos.state",
                "frames",
            ]
        )
        meta = json.loads(str(data["meta"]))
        assert data["meta"].shape == () and data["meta"].dtype.kind == "U"
        assert data["observations"].shape == (4,) and data["actions"].shape == (3,)
        assert data["rewards"].dtype == np.float64 and data["terminations"].dtype == bool
        assert data["frames"].shape[0] == 4 and data["frames"].dtype == np.uint8
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["env_id"] == "lab/KeyDoor-v0" and meta["seed"] == 0 and meta["source"] == "test"
    assert meta["max_episode_steps"] == 300 and meta["env_kwargs"] == {}
    from lab.core.version import lab_version

    assert meta["lab_version"] == lab_version()


def test_recorder_keeps_the_env_kwargs_that_differ_from_the_registry():
    env = gym.make("lab/IceLake8x8-v0", render_mode="rgb_array")
    assert EpisodeRecorder.for_env(env, 0, "x").env_kwargs == {}
    env = gym.make("lab/Maze-v0", size=7, maze_seed=2, render_mode="rgb_array")
    assert EpisodeRecorder.for_env(env, 0, "x").env_kwargs == {"size": 7, "maze_seed": 2}


def test_recorder_leaves_gymnasium_make_arguments_out_of_env_kwargs():
    rec = EpisodeRecorder("lab/Maze-v0", {"size": 7, "max_episode_steps": 50, "render_mode": "human"})
    assert rec.env_kwargs == {"size": 7} and rec.max_episode_steps == 50
    env = gym.make("lab/Maze-v0", size=7, max_episode_steps=50)
    rec = EpisodeRecorder.for_env(env, 0, "x", env_kwargs={"size": 7, "max_episode_steps": 50})
    assert rec.env_kwargs == {"size": 7} and rec.max_episode_steps == 50


def test_recorder_refuses_misuse():
    for seed in (None, -1, 2**64):
        with pytest.raises(ReplayError, match=r"the seed given to reset\(seed=...\), a whole number from 0"):
            EpisodeRecorder("lab/Maze-v0", seed=seed)  # type: ignore[arg-type]
    with pytest.raises(ReplayError, match="plain JSON"):
        EpisodeRecorder("lab/Maze-v0", {"f": object()})
    rec = EpisodeRecorder("lab/Maze-v0")
    with pytest.raises(ReplayError, match="before step"):
        rec.step(0, 0, 0.0, False, False, {})
    rec.start(0, {"state": 0})
    rec.step(0, 1, 1.0, True, False, {"state": 1})
    with pytest.raises(ReplayError, match="episode is over"):
        rec.step(0, 1, 0.0, False, False, {"state": 1})
    cut = EpisodeRecorder("lab/Maze-v0")
    cut.start(0, {"state": 0})
    cut.step(0, 1, 0.0, False, True, {"state": 1})  # truncated ends the episode too
    with pytest.raises(ReplayError, match="episode is over"):
        cut.step(0, 1, 0.0, False, False, {"state": 1})
    with pytest.raises(ReplayError, match="pass frame="):
        EpisodeRecorder("lab/Maze-v0", record_frames=True).start(0, {})


def test_infos_keep_numeric_entries_every_step_has():
    rec = EpisodeRecorder("e")
    rec.start(0, {"state": 0, "text": "a", "bad key": 1, "sometimes": 1, "nested": {"x": 1}})
    rec.step(1, 1, 0.0, False, False, {"state": 1, "text": "b", "bad key": 2})
    assert list(rec.finish().infos) == ["state"]


def test_replay_path_is_fresh_and_readable(tmp_path):
    a = replay_path(tmp_path, "lab/Maze-v0", "agent:q_learning")
    assert a.parent == tmp_path and a.suffix == ".npz"
    assert a.name.startswith("Maze-v0_agent-q_learning_20")
    a.touch()
    assert replay_path(tmp_path, "lab/Maze-v0", "agent:q_learning") != a


def test_writes_are_atomic_and_need_the_npz_suffix(tmp_path, monkeypatch):
    episode = record("lab/CliffWalk-v0", [0, 1])
    path = save_episode(episode, tmp_path / "a.npz")
    before = path.read_bytes()
    with pytest.raises(ReplayError, match=r"ends in \.npz"):
        save_episode(episode, tmp_path / "a.zip")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        save_episode(record("lab/CliffWalk-v0", [0, 1, 1]), path)
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # and no temporary file is left


# ----- bad input -----


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected message)."""
    good = save_episode(record("lab/KeyDoor-v0", [2, 2, 0]), folder / "good.npz")
    marker = folder / "MARKER"
    out: dict[str, tuple[Path, str]] = {}
    half = folder / "half.npz"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out["truncated"] = (half, "damaged or incomplete")
    flipped = folder / "flipped.npz"
    damaged = bytearray(good.read_bytes())
    damaged[40:120] = bytes(b ^ 0xFF for b in damaged[40:120])  # inside the first entry
    flipped.write_bytes(bytes(damaged))
    out["bytes flipped"] = (flipped, "it is truncated or damaged (")
    garbage = folder / "garbage.npz"
    garbage.write_bytes(bytes(range(256)) * 8)
    out["garbage"] = (garbage, "not an .npz archive")
    empty = folder / "empty.npz"
    empty.write_bytes(b"")
    out["empty"] = (empty, "not an .npz archive")
    no_meta = folder / "no_meta.npz"
    np.savez(no_meta, observations=np.zeros(3))
    out["no meta"] = (no_meta, "no 'meta' entry (entries: observations)")
    npy = folder / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    out["npy"] = (npy, "single .npy array")
    out["future version"] = (
        rewrite(good, folder / "v2.npz", set_meta={"format_version": 2}),
        "format_version 2",
    )
    out["no version"] = (
        rewrite(good, folder / "v.npz", set_meta={"format_version": "1"}),
        "no integer format_version",
    )
    out["meta lacks a key"] = (
        rewrite(good, folder / "noseed.npz", set_meta={"seed": None}),
        "'meta' lacks 'seed'",
    )
    out["meta of a wrong type"] = (
        rewrite(good, folder / "fseed.npz", set_meta={"seed": 1.5}),
        "meta 'seed' must be int; got 1.5",
    )
    out["negative seed"] = (
        rewrite(good, folder / "nseed.npz", set_meta={"seed": -1}),
        "meta 'seed' must be a reset seed from 0 to 2**64 - 1; got -1",
    )
    out["a window in env_kwargs"] = (
        rewrite(good, folder / "window.npz", set_meta={"env_kwargs": {"render_mode": "human"}}),
        "meta 'env_kwargs' may not hold render_mode",
    )
    junk = folder / "junk.npz"
    junk.write_bytes(good.read_bytes())
    with zipfile.ZipFile(junk, "a") as archive:
        archive.writestr("junk", b"not an array")
    out["an entry that is no array"] = (junk, "its entry 'junk' is not an array (.npy)")
    out["meta not json"] = (rewrite(good, folder / "mj.npz", meta=np.array("{")), "not valid JSON")
    out["meta not a string"] = (
        rewrite(good, folder / "mn.npz", meta=np.zeros(2)),
        "'meta' must be a JSON string",
    )
    out["missing array"] = (
        rewrite(good, folder / "noact.npz", drop=("actions",)),
        "lacks the 'actions' array",
    )
    out["short rewards"] = (
        rewrite(good, folder / "short.npz", rewards=np.zeros(2)),
        "'rewards' must have shape (3,)",
    )
    out["observations rows"] = (
        rewrite(good, folder / "obs.npz", observations=np.zeros(3, dtype=np.int64)),
        "'observations' must have 4 rows",
    )
    out["info rows"] = (
        rewrite(good, folder / "info.npz", **{"infos.state": np.zeros(9)}),
        "'infos.state' must have 4 rows",
    )
    out["text array"] = (rewrite(good, folder / "text.npz", actions=np.array(["a", "b", "c"])), "numeric")
    out["bool rewards"] = (
        rewrite(good, folder / "br.npz", rewards=np.zeros(3, dtype=bool)),
        "floating point",
    )
    out["bad frames"] = (
        rewrite(good, folder / "fr.npz", frames=np.zeros((4, 2, 2), np.uint8)),
        "'frames' must be",
    )
    out["goes on after the end"] = (
        rewrite(good, folder / "end.npz", terminations=np.array([True, False, False])),
        "ends at step 1 but goes on to step 3",
    )
    evil = folder / "evil.npz"
    meta = np.array(json.dumps(load_episode(good).meta()))
    np.savez(evil, meta=meta, observations=np.array([Payload(marker)], dtype=object))
    out["pickled array"] = (evil, "holds pickled Python objects")
    raw = folder / "raw.npz"
    raw.write_bytes(pickle.dumps(Payload(marker)))
    out["raw pickle"] = (raw, "is a Python pickle")
    return out


def test_every_bad_file_is_a_one_line_replay_error_and_stays_untouched(tmp_path):
    files = bad_files(tmp_path)
    for name, (path, message) in files.items():
        before = path.read_bytes()
        with pytest.raises(ReplayError) as info:
            load_episode(path)
        assert message in str(info.value), name
        assert str(path) in str(info.value) and "\n" not in str(info.value), name
        assert path.read_bytes() == before, name  # a failed load changes nothing on disk
    assert not (tmp_path / "MARKER").exists()  # no pickle ever ran


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ReplayError, match="no replay at"):
        load_episode(tmp_path / "nope.npz")
    with pytest.raises(ReplayError, match="is not a file"):
        load_episode(tmp_path)
    with pytest.raises(ReplayError, match="no replay folder"):
        list_replays(tmp_path / "nope")


def test_list_replays_reports_corrupt_files_with_the_reason(tmp_path):
    files = bad_files(tmp_path)
    rows = dict(list_replays(tmp_path))
    assert rows[tmp_path / "good.npz"].error is None
    assert rows[tmp_path / "good.npz"].length == 3 and rows[tmp_path / "good.npz"].env_id == "lab/KeyDoor-v0"
    for name, (path, message) in files.items():
        assert message in rows[path].error, name
    assert not (tmp_path / "MARKER").exists()


# ----- re-simulation -----


@pytest.mark.parametrize("env_id", PRESETS, ids=[i.removeprefix("lab/") for i in PRESETS])
def test_every_example_replay_still_matches_its_environment(env_id):
    path = EXAMPLES / f"{env_id.removeprefix('lab/')}.npz"
    episode = load_episode(path)
    assert episode.env_id == env_id and episode.frames is None and episode.length > 0
    result = verify_episode(episode)
    assert result.ok, f"{path.name}: {result} (an env change broke old replays; see replays/make_examples.py)"
    assert str(result) == f"matches exactly ({episode.length} steps)"
    assert path.stat().st_size < 4096


def test_verify_finds_a_tampered_reward_at_its_step():
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.rewards[6] = 5.0
    result = verify_episode(episode)
    assert not result.ok
    assert (result.difference.step, result.difference.field) == (7, "rewards")
    assert str(result) == "differs at step 7: rewards recorded 5.0, re-simulated -0.01"


def test_verify_finds_a_tampered_action_at_its_step():
    episode = load_episode(EXAMPLES / "CliffWalk-v0.npz")
    assert episode.actions[3] == 1  # walking right along the top of the cliff
    episode.actions[3] = 2  # down, into the cliff
    result = verify_episode(episode)
    assert (result.difference.step, result.difference.field) == (4, "observations")
    episode.actions[3] = 9
    result = verify_episode(episode)
    assert (result.difference.step, result.difference.field) == (4, "actions")
    assert "outside the action space" in result.difference.simulated


def test_verify_finds_a_changed_seed_and_extra_steps():
    episode = load_episode(EXAMPLES / "IceLake-v0.npz")
    episode.seed += 1
    assert not verify_episode(episode).ok  # the ice slips differently
    short = record("lab/KeyDoor-v0", [2, 2, 0])
    short.terminations[-1] = True
    assert (verify_episode(short).difference.step, verify_episode(short).difference.field) == (
        3,
        "terminations",
    )


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("lab/Nope-v0", {}, "'lab/Nope-v0' is not registered here"),
        ("lab/Maze-v0", {"bogus": 1}, 'no longer accepts its arguments {"bogus": 1}'),
        ("lab/Maze-v0", {"size": 4}, "maze size must be an odd integer"),
    ],
)
def test_verify_names_an_environment_that_can_no_longer_be_made(env_id, kwargs, message):
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.env_id, episode.env_kwargs = env_id, kwargs
    with pytest.raises(ReplayError, match="environment") as info:
        verify_episode(episode)
    assert message in str(info.value)


def test_frames_are_re_rendered_exactly_as_recorded():
    recorded = record("lab/KeyDoor-v0", [2, 2, 0, 1, 1, 1], frames=True)
    stripped = Episode(**{**recorded.__dict__, "frames": None})
    rendered = episode_frames(stripped)
    assert len(rendered) == recorded.length + 1
    for t in range(len(rendered)):
        np.testing.assert_array_equal(rendered[t], recorded.frames[t])
    assert episode_frames(recorded) is recorded.frames
    stripped.observations[2] += 1
    with pytest.raises(ReplayError, match="no longer matches its environment at step 2: observations"):
        episode_frames(stripped)


def test_frames_re_render_for_non_grid_environments():
    env = gym.make("CliffWalking-v1")
    rec = EpisodeRecorder.for_env(env, 3, "test")
    obs, info = env.reset(seed=3)
    rec.start(obs, info)
    for action in (0, 1, 1):
        rec.step(action, *env.step(action))
    frames = episode_frames(rec.finish())
    assert len(frames) == 4 and frames[0].ndim == 3 and not np.array_equal(frames[0], frames[3])
    assert make_replay_env(rec.finish(), "rgb_array").render_mode == "rgb_array"


# ----- lab play records -----


def feed_play_keys(monkeypatch, names: list[str]) -> None:
    import pygame

    from envs.window import FrameWindow

    codes = [getattr(pygame, "K_" + (name.upper() if len(name) > 1 else name)) for name in [*names, "q"]]
    monkeypatch.setattr(FrameWindow, "wait_key", lambda self, timeout_ms=50: codes.pop(0))


def test_play_saves_each_finished_episode_as_a_verifiable_replay(monkeypatch, tmp_path, capsys):
    from lab.play import play

    to_goal = ["down", "down", "up", *["right"] * 6]
    # one episode to the goal, one restarted halfway (not saved), one more to the goal
    feed_play_keys(monkeypatch, [*to_goal, "r", "down", "r", *to_goal])
    returns = play("KeyDoor", seed=5, record_dir=tmp_path / "mine")
    assert len(returns) == 2
    paths = sorted((tmp_path / "mine").glob("*.npz"))
    assert len(paths) == 2
    out = capsys.readouterr().out
    episodes = [load_episode(p) for p in paths]
    assert sorted(e.seed for e in episodes) == [5, 7]  # each episode reset with its own seed
    for path, episode in zip(paths, episodes, strict=True):
        assert str(path) in out
        assert path.name.startswith("KeyDoor-v0_human_")
        assert episode.source == "human" and episode.env_id == "lab/KeyDoor-v0"
        assert episode.length == 9 and episode.terminated and episode.frames is None
        assert verify_episode(episode).ok


def test_play_records_a_random_seed_and_the_kwargs_when_no_seed_is_given(monkeypatch, tmp_path):
    from lab.play import play

    feed_play_keys(monkeypatch, ["down", "down", "up", *["right"] * 6])
    play("KeyDoor", {"step_reward": -0.02}, record_dir=tmp_path)
    (saved,) = tmp_path.glob("*.npz")
    episode = load_episode(saved)
    assert episode.env_kwargs == {"step_reward": -0.02} and isinstance(episode.seed, int)
    assert episode.total_return == pytest.approx(1 - 8 * 0.02)
    assert verify_episode(episode).ok


def test_play_without_a_record_dir_saves_nothing(monkeypatch, tmp_path):
    from lab.play import play

    monkeypatch.chdir(tmp_path)
    feed_play_keys(monkeypatch, ["left"] * 3)
    play("Maze", {"size": 5}, seed=0)
    assert not list(tmp_path.rglob("*.npz"))


def test_examples_folder_has_one_replay_per_preset():
    names = sorted(p.name for p in EXAMPLES.glob("*.npz"))
    assert names == sorted(f"{i.removeprefix('lab/')}.npz" for i in PRESETS)


def test_make_examples_script_reproduces_the_examples(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES.parent / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "FOLDER", tmp_path)
    assert module.main() == 0
    for path in EXAMPLES.glob("*.npz"):
        fresh, kept = load_episode(tmp_path / path.name), load_episode(path)
        fresh.created = kept.created
        fresh.lab_version = kept.lab_version
        assert fresh == kept, path.name


def test_verify_compares_truncations_infos_and_rewards_exactly():
    from lab.replays.verify import simulate

    base = record("lab/KeyDoor-v0", [2, 2, 0])
    assert "state" in base.infos and verify_episode(base).ok
    cut = record("lab/KeyDoor-v0", [2, 2, 0])
    cut.truncations[-1] = True
    assert (verify_episode(cut).difference.step, verify_episode(cut).difference.field) == (3, "truncations")
    moved = record("lab/KeyDoor-v0", [2, 2, 0])
    moved.infos["state"][2] += 1
    assert (verify_episode(moved).difference.step, verify_episode(moved).difference.field) == (
        2,
        "infos.state",
    )
    env = make_replay_env(moved)
    steps = [(t, diff is not None) for t, diff in simulate(moved, env)]
    env.close()
    assert steps == [(0, False), (1, False), (2, True)]  # nothing after the first difference
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.rewards[6] += 1e-12  # "matches exactly" means exactly
    assert (verify_episode(episode).difference.step, verify_episode(episode).difference.field) == (
        7,
        "rewards",
    )


def test_format_refuses_a_mid_episode_truncation_and_frames_of_another_length(tmp_path):
    good = save_episode(record("lab/KeyDoor-v0", [2, 2, 0]), tmp_path / "good.npz")
    cut = rewrite(good, tmp_path / "cut.npz", truncations=np.array([False, True, False]))
    with pytest.raises(ReplayError, match="ends at step 2 but goes on to step 3"):
        load_episode(cut)
    frames = rewrite(good, tmp_path / "frames.npz", frames=np.zeros((3, 2, 2, 3), np.uint8))
    with pytest.raises(ReplayError, match=r"'frames' must be \(4, H, W, 3\) uint8; got \(3, 2, 2, 3\)"):
        load_episode(frames)
    wrapped = rewrite(good, tmp_path / "limit.npz", set_meta={"env_kwargs": {"max_episode_steps": 5}})
    with pytest.raises(ReplayError, match="meta 'env_kwargs' may not hold max_episode_steps"):
        load_episode(wrapped)
    big = rewrite(good, tmp_path / "big.npz", set_meta={"seed": 2**64})
    with pytest.raises(ReplayError, match="meta 'seed' must be a reset seed from 0 to 2\\*\\*64 - 1"):
        load_episode(big)
    assert load_episode(rewrite(good, tmp_path / "max.npz", set_meta={"seed": 2**64 - 1})).seed == 2**64 - 1


def test_episode_equality_truncation_and_listing(tmp_path):
    a = record("lab/KeyDoor-v0", [2, 2, 0])
    a.rewards = np.array([np.nan, 0.0, 0.0])
    b = load_episode(save_episode(a, tmp_path / "nan.npz"))
    assert b == a and not b.truncated and not b.terminated  # NaN rewards equal their copy
    b.observations[1] += 1
    assert b != a  # compared by content
    b.truncations = np.array([False, False, True])
    assert b.truncated and not b.terminated
    (tmp_path / ".nan.npz.tmp.npz").write_bytes(b"a write in progress")
    assert [p.name for p, _ in list_replays(tmp_path)] == ["nan.npz"]
