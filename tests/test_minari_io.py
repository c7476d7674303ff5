"""Replays to a Minari dataset and back: every array identical, the env rebuildable, bad datasets refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the lab/ ids)
from lab.replays import EpisodeRecorder, ReplayError, load_episode, save_episode, verify_episode

minari = pytest.importorskip("minari")
from lab.replays.minari_io import export_minari, import_minari  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "replays" / "examples"


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def record(env_id: str, seeds: list[int], folder: Path, **kwargs) -> list[Path]:
    """Random-policy episodes of ``env_id`` saved as replays (pixel observations keep their uint8 frames)."""
    env = gym.make(env_id, **kwargs)
    paths = []
    for seed in seeds:
        recorder = EpisodeRecorder.for_env(env, seed=seed, source="agent:random")
        obs, info = env.reset(seed=seed)
        recorder.start(obs, info)
        env.action_space.seed(seed)
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            recorder.step(action, obs, reward, terminated, truncated, info)
            done = terminated or truncated
        paths.append(save_episode(recorder.finish(), folder / f"{env_id.removeprefix('lab/')}-{seed}.npz"))
    return paths


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("lab/KeyDoor-v0", {"obs_type": "index"}),
        ("lab/Maze-v0", {"obs_type": "pixels", "size": 7, "max_episode_steps": 12}),  # uint8 images, lossless
        ("lab/IceLake-v0", {"obs_type": "symbolic", "max_episode_steps": 20}),
    ],
)
def test_round_trip_is_exact(env_id, kwargs, tmp_path):
    paths = record(env_id, [0, 1, 2], tmp_path / "in", **kwargs)
    name, episodes, steps = export_minari(paths, "lab/test/roundtrip-v0", author="tests")
    originals = [load_episode(p) for p in paths]
    assert (name, episodes, steps) == ("lab/test/roundtrip-v0", 3, sum(e.length for e in originals))

    back = [load_episode(p) for p in import_minari("lab/test/roundtrip-v0", tmp_path / "out")]
    assert back == originals  # every array (values, shape, dtype) and every metadata field
    assert all(verify_episode(e).ok for e in back)

    dataset = minari.load_dataset("lab/test/roundtrip-v0")
    env = dataset.recover_environment()  # the dataset rebuilds the very environment
    assert env.spec.id == env_id and env.observation_space == gym.make(env_id, **kwargs).observation_space
    data = next(dataset.iterate_episodes([1]))
    np.testing.assert_array_equal(data.actions, originals[1].actions)


def test_the_example_replays_round_trip(tmp_path):
    path = EXAMPLES / "Maze-v0.npz"
    export_minari([path], "lab/examples/maze-v0")
    (back,) = import_minari("lab/examples/maze-v0", tmp_path)
    assert load_episode(back) == load_episode(path)


def test_replays_of_two_environments_are_refused(tmp_path):
    with pytest.raises(ReplayError, match="holds one environment, but these replays come from 2"):
        export_minari([EXAMPLES / "Maze-v0.npz", EXAMPLES / "KeyDoor-v0.npz"], "lab/test/mixed-v0")
    assert "lab/test/mixed-v0" not in minari.list_local_datasets()


def test_an_existing_dataset_is_never_replaced(tmp_path):
    export_minari([EXAMPLES / "Maze-v0.npz"], "lab/test/once-v0")
    with pytest.raises(ReplayError, match="exists already"):
        export_minari([EXAMPLES / "KeyDoor-v0.npz"], "lab/test/once-v0")
    (back,) = import_minari("lab/test/once-v0", tmp_path)
    assert load_episode(back).env_id == "lab/Maze-v0"


def tamper_env_spec(root: Path, dataset_id: str, **changes) -> None:
    meta_file = root / dataset_id / "data" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    spec = json.loads(meta["env_spec"])
    spec.update(changes)
    meta["env_spec"] = json.dumps(spec)
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"id": "evilmod:Evil-v0"}, "not registered here"),
        ({"id": "Nope-v0"}, "not registered here"),
        ({"entry_point": "evilmod:Evil"}, "but here it is"),
    ],
)
def test_a_dataset_naming_code_imports_nothing(changes, message, minari_root, tmp_path, monkeypatch):
    (tmp_path / "evilmod.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    export_minari([EXAMPLES / "Maze-v0.npz"], "lab/test/evil-v0")
    tamper_env_spec(minari_root, "lab/test/evil-v0", **changes)
    with pytest.raises(ReplayError, match=message):
        import_minari("lab/test/evil-v0", tmp_path / "out")
    assert not (tmp_path / "imported").exists() and not (tmp_path / "out").exists()


def test_a_missing_dataset_is_one_line(tmp_path):
    with pytest.raises(ReplayError, match="no local Minari dataset 'lab/none-v0'"):
        import_minari("lab/none-v0", tmp_path)


def test_the_replays_command_exports_and_imports(tmp_path, capsys):
    from lab.cli import main

    assert main(["replays", str(EXAMPLES), "--export-minari", "lab/cli/keydoor-v0", "--env", "KeyDoor"]) == 0
    assert "wrote Minari dataset lab/cli/keydoor-v0: 1 episodes, 9 steps" in capsys.readouterr().out
    assert main(["replays", str(tmp_path / "in"), "--import-minari", "lab/cli/keydoor-v0"]) == 0
    (path,) = (tmp_path / "in").glob("*.npz")
    assert load_episode(path) == load_episode(EXAMPLES / "KeyDoor-v0.npz")
    assert main(["replays", str(EXAMPLES), "--export-minari", "lab/cli/all-v0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--env ENV_ID" in err and "and 4 more" in err
    (tmp_path / "empty").mkdir()
    assert main(["replays", str(tmp_path / "empty"), "--export-minari", "lab/cli/none-v0"]) == 2
    assert "no readable replays" in capsys.readouterr().err


@pytest.mark.parametrize("bad_id", ["bad id", "noversion", "../../escape-v0", "/abs/x-v0", "a/../b-v0"])
def test_a_malformed_dataset_id_is_refused_before_minari_makes_anything(bad_id, minari_root, tmp_path):
    with pytest.raises(ReplayError, match="a Minari dataset id is \\(namespace/\\)name-vVERSION"):
        export_minari([EXAMPLES / "Maze-v0.npz"], bad_id)
    assert not minari_root.exists() or not any(minari_root.iterdir())
    export_minari([EXAMPLES / "Maze-v0.npz"], "lab/test/after-v0")  # nothing left behind breaks the next
    assert minari.list_local_datasets() == {
        "lab/test/after-v0": minari.list_local_datasets()["lab/test/after-v0"]
    }


def test_a_replay_of_no_steps_is_refused_and_leaves_no_dataset(tmp_path):
    env = gym.make("lab/Maze-v0")
    recorder = EpisodeRecorder.for_env(env, seed=3, source="agent:none")
    recorder.start(*env.reset(seed=3))
    zero = save_episode(recorder.finish(), tmp_path / "zero.npz")
    with pytest.raises(ReplayError, match=r"zero\.npz has no steps; a Minari episode holds at least one"):
        export_minari([EXAMPLES / "Maze-v0.npz", zero], "lab/test/zero-v0")
    assert "lab/test/zero-v0" not in minari.list_local_datasets()


def test_a_failed_export_removes_what_minari_made(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        (Path(os.environ["MINARI_DATASETS_PATH"]) / "lab/test/broken-v0/data").mkdir(parents=True)
        raise ValueError("disk trouble")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", broken)
    with pytest.raises(ReplayError, match="Minari refused dataset 'lab/test/broken-v0': disk trouble"):
        export_minari([EXAMPLES / "Maze-v0.npz"], "lab/test/broken-v0")
    assert not (Path(os.environ["MINARI_DATASETS_PATH"]) / "lab/test/broken-v0").exists()


def test_a_replay_without_a_step_limit_comes_back_without_one(tmp_path):
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.max_episode_steps = None
    path = save_episode(episode, tmp_path / "nolimit.npz")
    export_minari([path], "lab/test/nolimit-v0")
    (back,) = import_minari("lab/test/nolimit-v0", tmp_path / "out")
    assert load_episode(back) == load_episode(path)


def test_an_import_that_fails_part_way_writes_nothing(tmp_path):
    paths = record("CartPole-v1", [0, 1], tmp_path / "in")
    export_minari(paths, "lab/test/partial-v0")
    dataset = minari.load_dataset("lab/test/partial-v0")
    dataset.storage.update_episode_metadata([{"lab_replay": "not json"}], [1])
    with pytest.raises(ReplayError, match="episode 1 has malformed lab_replay metadata"):
        import_minari("lab/test/partial-v0", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_export_names_the_replays_it_leaves_out(tmp_path, capsys):
    from lab.cli import main

    (tmp_path / "maze.npz").write_bytes((EXAMPLES / "Maze-v0.npz").read_bytes())
    (tmp_path / "cut.npz").write_bytes((EXAMPLES / "Maze-v0.npz").read_bytes()[:500])
    assert main(["replays", str(tmp_path), "--export-minari", "lab/cli/left-v0"]) == 0
    out, err = capsys.readouterr()
    assert "1 episodes" in out and "left out" in err and "cut.npz" in err
    assert main(["replays", str(tmp_path), "--import-minari", "lab/cli/left-v0", "--env", "Maze"]) == 2
    assert "--env picks the replays to list or export" in capsys.readouterr().err
