"""``lab replay`` (export, verify, watch) and ``lab replays``, through the ``lab`` command's own main()."""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from lab import cli
from lab.replay_cmd import add_commands
from lab.replays import EpisodeRecorder, episode_frames, load_episode, save_episode

EXAMPLES = Path(__file__).resolve().parents[1] / "replays" / "examples"


@pytest.fixture(autouse=True)
def replay_commands(monkeypatch):
    """``lab replay`` and ``lab replays`` on the parser (a no-op once lab/cli.py adds them itself)."""
    build = cli.build_parser

    def build_with_replays() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "replay" not in sub.choices:
            add_commands(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_with_replays)


def lab(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def distinct_runs(frames) -> int:
    """GIF writers merge identical consecutive frames into one longer frame."""
    return 1 + sum(not np.array_equal(frames[i], frames[i - 1]) for i in range(1, len(frames)))


def test_gif_export_works_out_of_the_box(tmp_path, capsys):
    replay = EXAMPLES / "KeyDoor-v0.npz"
    code, out, err = lab(capsys, "replay", replay, "--to", tmp_path / "kd.gif")
    assert code == 0, err
    assert "wrote" in out and "10 frames at 8 fps" in out
    gif = iio.imread(tmp_path / "kd.gif")
    expected = episode_frames(load_episode(replay))
    assert gif.shape == (distinct_runs(expected), *expected[0].shape)
    np.testing.assert_allclose(gif[-1].astype(float).mean(), expected[-1].astype(float).mean(), atol=2)
    assert iio.immeta(tmp_path / "kd.gif", index=0)["duration"] in (120, 130)  # 8 fps, in GIF's 10 ms units
    assert iio.immeta(tmp_path / "kd.gif", index=len(gif) - 1)["duration"] == 1000  # the ending holds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kd.gif"]  # written atomically
    code, out, err = lab(capsys, "replay", replay, "--to", tmp_path / "kd2.gif", "--scale", "2")
    big = iio.imread(tmp_path / "kd2.gif")
    assert code == 0 and big.shape == (len(gif), 2 * gif.shape[1], 2 * gif.shape[2], 3), err
    np.testing.assert_array_equal(big[0], gif[0].repeat(2, axis=0).repeat(2, axis=1))


def test_mp4_export_has_one_frame_per_step_at_the_chosen_rate(tmp_path, capsys):
    replay = EXAMPLES / "IceLake-v0.npz"
    expected = episode_frames(load_episode(replay))
    code, _, err = lab(capsys, "replay", replay, "--to", tmp_path / "ice.mp4", "--fps", 16)
    assert code == 0, err
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "ice.mp4"))
    meta = next(reader)
    frames = list(reader)
    assert len(frames) == len(expected) and meta["fps"] == 16
    h, w = expected[0].shape[:2]
    assert meta["size"] == (w, h)
    decoded = np.frombuffer(frames[-1], np.uint8).reshape(h, w, 3)
    assert np.abs(decoded.astype(int) - expected[-1].astype(int)).mean() < 4  # H.264 is close, not exact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ice.mp4"]


def test_export_uses_stored_frames_and_pads_odd_sizes_for_mp4(tmp_path, capsys):
    env = gym.make("lab/CliffWalk-v0", render_mode="rgb_array", render_tile_size=7)
    rec = EpisodeRecorder.for_env(env, 0, "test", record_frames=True)
    obs, info = env.reset(seed=0)
    rec.start(obs, info, env.render())
    for action in (0, 1, 1):
        rec.step(action, *env.step(action), frame=env.render())
    episode = rec.finish()
    assert episode.frames.shape[1:] == (28, 84, 3)
    path = save_episode(episode, tmp_path / "cliff.npz")
    code, _, err = lab(capsys, "replay", path, "--to", tmp_path / "cliff.mp4")
    assert code == 0, err
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "cliff.mp4"))
    assert next(reader)["size"] == (84, 28)
    assert len(list(reader)) == 4
    code, _, err = lab(capsys, "replay", path, "--to", tmp_path / "cliff.gif")
    gif = iio.imread(tmp_path / "cliff.gif")
    assert code == 0 and gif.shape == (4, 28, 84, 3)
    assert np.abs(gif.astype(int) - episode.frames.astype(int)).mean() < 3  # GIF palettes are near-exact


def test_verify_prints_the_result_and_sets_the_exit_status(tmp_path, capsys):
    code, out, _ = lab(capsys, "replay", EXAMPLES / "Maze-v0.npz", "--verify")
    assert (code, out.strip()) == (0, f"{EXAMPLES / 'Maze-v0.npz'}: matches exactly (24 steps)")
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.rewards[10] = 0.5
    tampered = save_episode(episode, tmp_path / "tampered.npz")
    code, out, _ = lab(capsys, "replay", tampered, "--verify")
    assert code == 1
    assert "differs at step 11: rewards recorded 0.5, re-simulated -0.01" in out


def test_export_refuses_a_replay_that_no_longer_matches(tmp_path, capsys):
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.observations[5] += 1
    tampered = save_episode(episode, tmp_path / "tampered.npz")
    code, _, err = lab(capsys, "replay", tampered, "--to", tmp_path / "t.gif")
    assert code == 2 and "no longer matches its environment at step 5: observations" in err
    assert not (tmp_path / "t.gif").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "nope.npz"), "no replay at nope.npz"),
        (("replay", "{garbage}"), "not an .npz archive"),
        (("replay", EXAMPLES / "Maze-v0.npz", "--to", "out.png"), "videos are .gif or .mp4"),
        (("replay", EXAMPLES / "Maze-v0.npz", "--fps", "0", "--to", "x.gif"), "--fps must be positive"),
        (("replay", EXAMPLES / "Maze-v0.npz"), "lab replay opens a window, and there is no display here"),
        (("replay", "{unknown_env}", "--verify"), "'lab/Gone-v0' is not registered here"),
        (("replays", "{missing}"), "no replay folder"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    episode = load_episode(EXAMPLES / "Maze-v0.npz")
    episode.env_id = "lab/Gone-v0"
    unknown = save_episode(episode, tmp_path / "gone.npz")
    fill = {"{garbage}": str(garbage), "{unknown_env}": str(unknown), "{missing}": str(tmp_path / "missing")}
    code, _, err = lab(capsys, *(fill.get(str(a), a) for a in args))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_replay_opens_the_viewer_when_there_is_a_display(monkeypatch, capsys, tmp_path):
    import pygame

    from envs.window import FrameWindow

    monkeypatch.setattr("envs.window.has_display", lambda: True)
    monkeypatch.chdir(tmp_path)  # screenshots go to the current folder
    replay = tmp_path / "kd.npz"
    replay.write_bytes((EXAMPLES / "KeyDoor-v0.npz").read_bytes())
    codes = [pygame.K_END, pygame.K_v, pygame.K_s, pygame.K_ESCAPE]
    monkeypatch.setattr(FrameWindow, "wait_key", lambda self, timeout_ms=50: codes.pop(0))
    code, out, err = lab(capsys, "replay", replay, "--paused")
    assert code == 0, err
    assert (tmp_path / "kd_step0009.png").exists() and "screenshot: " in out and not codes


def test_replays_lists_a_table_with_corrupt_files_and_their_reason(tmp_path, capsys):
    folder = tmp_path / "replays"
    (folder / "examples").mkdir(parents=True)
    for name in ("KeyDoor-v0.npz", "CliffWalk-v0.npz"):
        (folder / "examples" / name).write_bytes((EXAMPLES / name).read_bytes())
    half = (EXAMPLES / "Maze-v0.npz").read_bytes()
    (folder / "cut.npz").write_bytes(half[: len(half) // 2])
    (folder / "notes.npz").write_text("hello")
    before = {p: p.read_bytes() for p in folder.rglob("*.npz")}
    code, out, err = lab(capsys, "replays", folder)
    assert code == 0, err
    for word in ("file", "env", "source", "steps", "return", "created"):
        assert word in out
    lines = {line.split()[1]: line for line in out.splitlines() if ".npz" in line}
    assert "KeyDoor-v0" in lines["examples/KeyDoor-v0.npz"] and " 9 " in lines["examples/KeyDoor-v0.npz"]
    assert (
        "0.92" in lines["examples/KeyDoor-v0.npz"]
        and "agent:value_iteration" in lines["examples/KeyDoor-v0.npz"]
    )
    assert "-13" in lines["examples/CliffWalk-v0.npz"]
    assert "unreadable" in lines["cut.npz"] and "damaged or incomplete" in lines["cut.npz"]
    assert "unreadable" in lines["notes.npz"] and "not an .npz archive" in lines["notes.npz"]
    assert "2 file(s) could not be read" in out
    assert {p: p.read_bytes() for p in folder.rglob("*.npz")} == before


def test_replays_of_an_empty_folder_and_the_default_folder(tmp_path, capsys, monkeypatch):
    code, out, _ = lab(capsys, "replays", tmp_path)
    assert code == 0 and "no replays in" in out
    monkeypatch.chdir(EXAMPLES.parents[1])
    code, out, _ = lab(capsys, "replays")
    assert code == 0 and "examples/Maze-v0.npz" in out


def test_a_video_path_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "out.gif").mkdir()
    code, _, err = lab(capsys, "replay", EXAMPLES / "KeyDoor-v0.npz", "--to", tmp_path / "out.gif")
    assert code == 2 and "out.gif is a folder: give a file name" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out.gif"]  # no temporary file left beside it


def zero_step_replay(folder: Path) -> Path:
    env = gym.make("lab/Maze-v0")
    recorder = EpisodeRecorder.for_env(env, seed=3, source="agent:none")
    recorder.start(*env.reset(seed=3))
    return save_episode(recorder.finish(), folder / "zero.npz")


def test_a_replay_of_no_steps_exports_a_one_frame_gif(tmp_path, capsys):
    code, out, err = lab(capsys, "replay", zero_step_replay(tmp_path), "--to", tmp_path / "zero.gif")
    assert code == 0 and "1 frames" in out, err
    assert iio.imread(tmp_path / "zero.gif").shape[0] == 1


def test_replays_lists_odd_text_as_text_and_filters_by_env(tmp_path, capsys):
    episode = load_episode(EXAMPLES / "KeyDoor-v0.npz")
    episode.created = "[/bold]2026"  # rich markup would break the whole table
    save_episode(episode, tmp_path / "odd.npz")
    (tmp_path / "maze.npz").write_bytes((EXAMPLES / "Maze-v0.npz").read_bytes())
    code, out, err = lab(capsys, "replays", tmp_path)
    assert code == 0 and "[/bold]2026" in out and "maze.npz" in out, err
    code, out, err = lab(capsys, "replays", tmp_path, "--env", "Maze")
    assert code == 0 and "maze.npz" in out and "odd.npz" not in out, err
    code, out, err = lab(capsys, "replays", tmp_path, "--env", "CliffWalk")
    assert code == 0 and "no replays of lab/CliffWalk-v0 in" in out, err


def test_frames_of_a_replay_whose_states_were_saved_as_floats(tmp_path, capsys):
    episode = load_episode(EXAMPLES / "KeyDoor-v0.npz")
    episode.infos["state"] = episode.infos["state"].astype(np.float64)  # same values, another type
    path = save_episode(episode, tmp_path / "floats.npz")
    code, out, err = lab(capsys, "replay", path, "--to", tmp_path / "floats.gif")
    assert code == 0 and "10 frames" in out, err


def thin_replay(folder: Path) -> Path:
    """A replay of three steps whose stored frames are 8 x 4096 pixels (the widest a frame may be)."""
    env = gym.make("lab/CliffWalk-v0")
    recorder = EpisodeRecorder.for_env(env, 0, "test", record_frames=True)
    thin = np.zeros((8, 4096, 3), dtype=np.uint8)
    recorder.start(*env.reset(seed=0), thin)
    for action in (0, 1, 1):
        recorder.step(action, *env.step(action), frame=thin + 60 * action)
    return save_episode(recorder.finish(), folder / "thin.npz")


@pytest.mark.parametrize(("name", "scale", "fits"), [("thin.mp4", 5, 4), ("thin.gif", 16, 15)])
def test_frames_larger_than_the_format_allows_are_one_line_before_any_work(
    tmp_path, capsys, name, scale, fits
):
    # H.264 wrote an empty MP4 and said "wrote"; a GIF was an internal OverflowError (65,536 wide)
    code, out, err = lab(capsys, "replay", thin_replay(tmp_path), "--to", tmp_path / name, "--scale", scale)
    assert code == 2 and out == "", err
    [line] = err.strip().splitlines()
    assert f"4096x8 frames enlarged {scale} times are {4096 * scale}x{8 * scale} pixels" in line
    assert f"ask for --scale {fits} or less" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thin.npz"]
    code, _, err = lab(capsys, "replay", tmp_path / "thin.npz", "--to", tmp_path / name, "--scale", fits)
    assert code == 0, err


@pytest.mark.parametrize("steps", [1, 3])
def test_an_mp4_that_ffmpeg_cannot_encode_is_an_error_and_the_old_file_stays(tmp_path, monkeypatch, steps):
    from lab.core.errors import LabError
    from lab.video import MAX_VIDEO_SIDE, write_video

    monkeypatch.setitem(MAX_VIDEO_SIDE, ".mp4", 10**6)  # past the size check: libx264 itself refuses
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier video")
    frames = [np.full((8, 4096, 3), 40 * i, dtype=np.uint8) for i in range(steps)]
    with pytest.raises(LabError, match=r"ffmpeg could not encode .*out\.mp4") as raised:
        write_video(frames, out, 8.0, scale=5)
    assert "\n" not in str(raised.value)
    assert out.read_bytes() == b"an earlier video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary file left


def test_a_gif_above_50_fps_keeps_one_frame_in_k_and_the_last_and_says_so(tmp_path, capsys):
    from lab.video import gif_stride

    assert [gif_stride(fps) for fps in (8, 50, 51, 100, 200, 1000)] == [1, 1, 2, 2, 4, 20]
    replay = EXAMPLES / "Maze-v0.npz"  # 25 frames
    expected = episode_frames(load_episode(replay))
    code, out, err = lab(capsys, "replay", replay, "--to", tmp_path / "fast.gif", "--fps", 200)
    assert code == 0, err
    assert "(25 frames at 200 fps); a GIF plays at most 50 frames a second, so it keeps 1 frame in 4" in out
    gif = iio.imread(tmp_path / "fast.gif")
    kept = [expected[i] for i in range(0, 25, 4)]  # 0, 4, ..., 24: the last one too
    assert len(gif) == distinct_runs(kept) == 7
    delays = [iio.immeta(tmp_path / "fast.gif", index=i)["duration"] for i in range(len(gif))]
    assert delays == [20] * 6 + [1000]  # a delay of 0 (200 fps) plays at about 100 ms in a browser
    np.testing.assert_allclose(gif[-1].astype(float).mean(), expected[-1].astype(float).mean(), atol=2)
    code, out, err = lab(capsys, "replay", replay, "--to", tmp_path / "fifty.gif", "--fps", 50)
    assert code == 0 and "a GIF plays" not in out, err
    assert len(iio.imread(tmp_path / "fifty.gif")) == distinct_runs(expected)


def test_a_video_path_where_no_file_can_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    def rendered(*args):
        raise AssertionError("the frames were made before the path was checked")

    monkeypatch.setattr("lab.replays.episode_frames", rendered)
    (tmp_path / "notes.txt").write_text("a file where a folder would be")
    out_path = tmp_path / "notes.txt" / "videos" / "out.gif"
    code, out, err = lab(capsys, "replay", EXAMPLES / "Maze-v0.npz", "--to", out_path)
    assert code == 2 and out == ""
    [line] = err.strip().splitlines()
    assert f"{tmp_path / 'notes.txt'} is a file, so {out_path} cannot be written" in line
