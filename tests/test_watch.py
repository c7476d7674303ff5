"""``lab watch``: a trained agent in the viewer (fed keys, headless), recording, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from lab.core.errors import LabError
from lab.replays import load_episode, verify_episode
from lab.spec import spec_from_dict
from lab.train import train
from lab.watch import watch

SPEC = {
    "name": "cliff",
    "env": "lab/CliffWalk-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.1, "gamma": 1.0},
    "total_timesteps": 6000,
    "eval_interval": 0,
    "eval_episodes": 1,
    "record_episodes": 0,
    "checkpoint_interval": 0,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    [(run, _)] = train(spec_from_dict(SPEC), runs_dir=tmp_path_factory.mktemp("runs"), progress=False)
    return run.path


def keys(*names):
    queue = list(names)
    return lambda timeout_ms: queue.pop(0) if queue else "q"


def test_watch_records_the_episodes_it_shows(run_dir, tmp_path):
    # playing at a high frame rate, an idle key reader lets the 13-step optimal episode finish
    saved = watch(run_dir, episodes=1, fps=1000, record_dir=tmp_path, keys=keys(*[None] * 60))
    assert len(saved) == 1
    episode = load_episode(saved[0])
    assert episode.length == 13 and episode.total_return == -13.0 and episode.source == "watch:q_learning"
    assert verify_episode(episode).ok


def test_watch_screenshot_shows_the_value_overlay(run_dir, tmp_path):
    import imageio.v3 as iio

    watch(run_dir, paused=True, keys=keys("right", "right", "s"), screenshot_dir=tmp_path)
    [shot] = tmp_path.glob("*.png")
    with_values = iio.imread(shot)
    shot.unlink()
    watch(run_dir, paused=True, keys=keys("right", "right", "v", "s"), screenshot_dir=tmp_path)
    [shot] = tmp_path.glob("*.png")
    assert with_values.shape == iio.imread(shot).shape
    assert (with_values != iio.imread(shot)).any()  # 'v' toggled the heatmap off


def test_watch_on_an_env_with_other_spaces_is_a_clear_error(run_dir):
    with pytest.raises(
        LabError, match=r"trained on Discrete\(48\) observations; this env has Discrete\(16\)"
    ):
        watch(run_dir, env_id="IceLake", keys=keys())
    with pytest.raises(
        LabError, match=r"trained on Discrete\(48\) observations; this env has Discrete\(123\)"
    ):
        watch(run_dir / "model.npz", env_id="KeyDoor", keys=keys())


class FakeClock:
    """A clock that moves 0.1 s each time it is read, so waits end without sleeping."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.1
        return self.t


def test_watch_closes_by_itself_after_the_episodes_asked_for(run_dir, tmp_path):
    calls: list[int] = []

    def idle(timeout_ms):  # never a key: only --episodes can end the viewer
        calls.append(timeout_ms)
        assert len(calls) < 500, "the viewer did not close after its episodes"

    saved = watch(run_dir, episodes=2, fps=1000, record_dir=tmp_path, keys=idle, clock=FakeClock())
    assert len(saved) == 2


def test_watch_writes_the_episodes_as_a_video_with_the_hud(run_dir, tmp_path):
    import imageio.v3 as iio

    plain, with_hud = tmp_path / "plain.gif", tmp_path / "hud.gif"
    replay, video = watch(run_dir, episodes=1, record_dir=tmp_path, to=with_hud, hud=True)
    assert video == with_hud
    assert watch(run_dir, to=plain) == [plain]  # one episode by default, no window
    frames, bare = iio.imread(with_hud), iio.imread(plain)
    assert len(frames) == load_episode(replay).length + 1  # every frame differs: the HUD counts steps
    assert bare.shape[1:3] == (200, 600) and frames.shape[1] > 200  # the cliff, and the status lines under it
    big = iio.imread(watch(run_dir, to=tmp_path / "big.gif", scale=3)[0])  # --scale: each pixel 3 x 3
    np.testing.assert_array_equal(big[0], bare[0].repeat(3, axis=0).repeat(3, axis=1))
    with pytest.raises(LabError, match="--hud goes with --to"):
        watch(run_dir, hud=True, keys=keys())
    with pytest.raises(LabError, match=r"videos are \.gif or \.mp4"):
        watch(run_dir, to=tmp_path / "x.png")


def test_a_video_too_large_for_its_format_is_refused_after_the_first_frame(run_dir, tmp_path, monkeypatch):
    import envs.window

    drawn: list[int] = []
    draw = envs.window.with_status_bar
    monkeypatch.setattr(envs.window, "with_status_bar", lambda *a, **k: drawn.append(1) or draw(*a, **k))
    with pytest.raises(LabError, match=r"600x\d+ frames enlarged 28 times .* ask for --scale 27 or less"):
        watch(run_dir, to=tmp_path / "big.mp4", hud=True, scale=28)  # 16,800 pixels wide
    assert drawn == [1] and list(tmp_path.iterdir()) == []


def test_a_video_path_where_no_file_can_be_written_is_refused_before_the_agent_loads(run_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("a file where a folder would be")
    with pytest.raises(LabError, match=r"notes\.txt is a file, so .*out\.mp4 cannot be written"):
        watch(run_dir, to=tmp_path / "notes.txt" / "out.mp4")
