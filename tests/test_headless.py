"""Without a display the window commands stop at once with one line naming what works headless, the
headless modes (``--record --episodes N``, ``--to``) end on their own, and SDL stays quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from lab.replays import load_episode
from lab.spec import spec_from_dict
from lab.train import train

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "cliff",
    "env": "lab/CliffWalk-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.1, "gamma": 1.0},
    "total_timesteps": 2000,
    "eval_interval": 0,
    "eval_episodes": 1,
    "record_episodes": 0,
    "checkpoint_interval": 0,
}
NOISE = ("XDG_RUNTIME_DIR", "pygame-ce", "Hello from the pygame community", "ALSA")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    [(run, _)] = train(spec_from_dict(SPEC), runs_dir=tmp_path_factory.mktemp("runs"), progress=False)
    return run.path


UNREACHABLE = {"DISPLAY": ":987"}  # no X server there: SDL falls back, unannounced, to its offscreen driver
EXAMPLE = ROOT / "replays" / "examples" / "Maze-v0.npz"


def lab(*args: str, cwd: Path, dummy: bool = True, extra: dict[str, str] | None = None):
    """``lab ARGS`` in a subprocess with no display: SDL's dummy driver, or (``dummy=False``) no
    DISPLAY, WAYLAND_DISPLAY, SDL_VIDEODRIVER nor XDG_RUNTIME_DIR at all, as on a bare server;
    ``extra`` variables are set last."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER"):
        environment.pop(name, None)
    if dummy:
        environment["SDL_VIDEODRIVER"] = "dummy"
    environment.update(extra or {})
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_has_display_reads_the_environment_then_asks_sdl(monkeypatch):
    import envs.window
    from envs.window import has_display

    def no_probe():
        raise AssertionError("SDL started although the environment says there is no display")

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(envs.window, "_video_driver", no_probe)
    assert not has_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not has_display()
    monkeypatch.delenv("SDL_VIDEODRIVER")
    for driver, shown in (("x11", True), ("wayland", True), ("offscreen", False), (None, False)):
        monkeypatch.setattr(envs.window, "_video_driver", lambda driver=driver: driver)
        assert has_display() is shown, driver


def test_a_display_that_cannot_be_reached_is_no_display(monkeypatch):
    from envs.window import has_display

    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", UNREACHABLE["DISPLAY"])
    assert not has_display()


def test_window_commands_with_a_display_that_cannot_be_reached_stop_or_write_the_gif(run_dir, tmp_path):
    # they used to wait for keys in an invisible window (the demo played in it)
    commands = [("play", "CliffWalk", "--no-record"), ("replay", str(EXAMPLE)), ("watch", str(run_dir))]
    for args in commands:
        result = lab(*args, cwd=tmp_path, dummy=False, extra=UNREACHABLE)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "there is no display here" in line and "cannot be reached" in line
    sampled = lab("gen", "watch", str(tmp_path / "model.npz"), cwd=tmp_path, dummy=False, extra=UNREACHABLE)
    assert sampled.returncode == 2 and "no display" in sampled.stderr and "--gif out.gif" in sampled.stderr
    demo = lab("demo", "--env", "IceLake", cwd=tmp_path, dummy=False, extra=UNREACHABLE)
    assert demo.returncode == 0, demo.stderr
    assert "no window shown: wrote the demo to demo.gif" in demo.stdout and (tmp_path / "demo.gif").is_file()


def test_watch_without_a_display_is_one_line_naming_the_headless_ways(run_dir, tmp_path):
    result = lab("watch", str(run_dir), "--record", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "no display" in line and "--to out.gif" in line and "--record --episodes N" in line
    assert not (tmp_path / "replays").exists()  # nothing recorded, no window, no endless loop


def test_watch_records_n_episodes_headless_and_quietly(run_dir, tmp_path):
    result = lab("watch", str(run_dir), "--record", "--episodes", "2", cwd=tmp_path, dummy=False)
    assert result.returncode == 0, result.stderr
    saved = sorted((tmp_path / "replays").glob("*.npz"))
    assert len(saved) == 2 and result.stdout.count("recorded ") == 2
    assert sorted(load_episode(p).seed for p in saved) == [0, 1]
    assert not any(noise in result.stderr for noise in NOISE), result.stderr


def test_play_and_gen_watch_without_a_display_are_one_line(tmp_path):
    played = lab("play", "CliffWalk", cwd=tmp_path)
    assert played.returncode == 2
    assert "lab play opens a window, and there is no display" in played.stderr
    assert len(played.stderr.strip().splitlines()) == 1 and not (tmp_path / "replays").exists()
    watched = lab("gen", "watch", str(tmp_path / "model.npz"), cwd=tmp_path, dummy=False)
    assert watched.returncode == 2 and len(watched.stderr.strip().splitlines()) == 1
    assert "lab gen sample" in watched.stderr and "--gif out.gif" in watched.stderr


def test_demo_gif_shows_progress_and_no_sdl_noise(tmp_path):
    # a terminal as rich sees it, so the progress bar draws; no display, no XDG_RUNTIME_DIR
    tty = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    result = lab("demo", "--env", "IceLake", "--gif", "lake.gif", cwd=tmp_path, dummy=False, extra=tty)
    assert result.returncode == 0, result.stderr
    assert "rendering IceLake-v0, episode 1" in result.stderr and "writing lake.gif" in result.stderr
    assert not any(noise in result.stderr for noise in NOISE), result.stderr
    frames = iio.imread(tmp_path / "lake.gif")
    # the 384-pixel lake and its status lines, cropped: not the old 480-pixel-wide canvas
    assert frames.shape[2] < 480 and frames.shape[1] > 384


def test_a_window_without_a_display_or_runtime_dir_says_nothing_on_stderr(tmp_path):
    # SDL falls back to its off-screen driver here, after warning about XDG_RUNTIME_DIR unless the
    # window sets a private one first
    code = (
        "import numpy as np\n"
        "from envs.window import FrameWindow\n"
        "w = FrameWindow('quiet')\n"
        "w.show(np.zeros((8, 8, 3), dtype=np.uint8), ['a line'])\n"
        "w.close()\n"
        "print('shown')\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    unset = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER", "PYGAME_HIDE_SUPPORT_PROMPT")
    for name in unset:
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "shown\n", result.stderr
    assert result.stderr == "", repr(result.stderr)
