"""Pixel art and the pygame window, headless (SDL dummy drivers, set in conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from envs.grid import OBS_TYPES, Tile
from envs.grid.painter import AGENT, PHASES, GridPainter


def painter_for(env_id: str, tile: int, **kwargs) -> GridPainter:
    model = gym.make(env_id, **kwargs).unwrapped.model
    return GridPainter(model.layout.tiles, model.layout.ice, model.wind, tile)


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [("lab/KeyDoor-v0", {}), ("lab/WindyGrid-v0", {}), ("lab/IceLake-v0", {}), ("lab/CliffWalk-v0", {})],
)
@pytest.mark.parametrize("tile", [4, 7])
def test_frames_equal_frame(env_id, kwargs, tile):
    painter = painter_for(env_id, tile, **kwargs)
    h, w = painter._tiles.shape
    rng = np.random.default_rng(0)
    rows, cols, phases = rng.integers(h, size=40), rng.integers(w, size=40), rng.integers(PHASES, size=40)
    batch = painter.frames(rows, cols, phases)
    assert batch.shape == (40, h * tile, w * tile, 3) and batch.dtype == np.uint8
    for i in range(40):
        np.testing.assert_array_equal(batch[i], painter.frame(rows[i], cols[i], phases[i]))
    # a fresh painter gives the same frames (no order dependence in the caches)
    fresh = painter_for(env_id, tile, **kwargs)
    np.testing.assert_array_equal(fresh.frame(rows[0], cols[0], phases[0]), batch[0])


def test_frame_differs_from_background_only_at_agent():
    painter = painter_for("lab/KeyDoor-v0", 8)
    t = 8
    frame = painter.frame(2, 2, 0)
    bg = painter.background(0)
    diff = np.any(frame != bg, axis=2)
    rows, cols = np.nonzero(diff)
    assert diff.any()
    assert rows.min() >= 2 * t and rows.max() < 3 * t and cols.min() >= 2 * t and cols.max() < 3 * t
    # the agent's colour is there
    assert (np.abs(frame[2 * t : 3 * t, 2 * t : 3 * t].astype(int) - AGENT).sum(axis=2) < 30).any()
    # the background is read-only and the frame is a copy
    assert not bg.flags.writeable
    frame[...] = 0
    assert painter.background(0).any()


def test_phases_change_only_key_and_door_cells():
    painter = painter_for("lab/KeyDoor-v0", 6)
    t = 6
    tiles = painter._tiles

    def changed(a, b):
        diff = np.any(painter.background(a) != painter.background(b), axis=2)
        return {(r // t, c // t) for r, c in zip(*np.nonzero(diff), strict=True)}

    key = tuple(int(x) for x in np.argwhere(tiles == Tile.KEY)[0])
    door = tuple(int(x) for x in np.argwhere(tiles == Tile.DOOR)[0])
    assert changed(0, 1) == {key}
    assert changed(1, 2) == {door}


def test_bad_painter_arguments():
    tiles = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="tile_size"):
        GridPainter(tiles, np.zeros((2, 3), bool), np.zeros(3), 3)
    with pytest.raises(ValueError, match="wind"):
        GridPainter(tiles, np.zeros((2, 3), bool), np.zeros(2), 8)
    painter = GridPainter(tiles, np.zeros((2, 3), bool), np.zeros(3), 4)
    with pytest.raises(IndexError):
        painter.frame(2, 0, 0)
    with pytest.raises(ValueError, match="phase"):
        painter.frame(0, 0, 3)


def test_pixels_obs_and_render_share_the_art():
    env = gym.make(
        "lab/KeyDoor-v0", obs_type="pixels", render_mode="rgb_array", obs_tile_size=8, render_tile_size=8
    ).unwrapped
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, env.render())


# ----- the window -----


def test_human_render_mode_window():
    env = gym.make("lab/CliffWalk-v0", render_mode="human", max_episode_steps=5)
    inner = env.unwrapped
    inner.metadata = {**inner.metadata, "render_fps": 1000}  # barely any frame pacing in tests
    env.reset(seed=0)
    window = inner._window
    assert window is not None and not window.closed
    for a in (0, 1, 1):
        assert env.step(a)[0] is not None
    snap = window.snapshot()
    frame = inner.frame()
    assert snap.shape[0] > frame.shape[0] and snap.shape[1] >= frame.shape[1]  # status bar below
    left = (snap.shape[1] - frame.shape[1]) // 2  # a narrow frame may be centred
    np.testing.assert_array_equal(snap[: frame.shape[0], left : left + frame.shape[1]], frame)
    assert env.render() is None
    env.close()
    assert inner._window is None and window.closed
    env.close()  # twice is fine
    # a closed env can be reset again and reopens its window
    env.reset(seed=1)
    assert inner._window is not None
    env.close()


def test_closing_a_human_render_window_closes_it_and_the_env_goes_on():
    import pygame

    env = gym.make("lab/CliffWalk-v0", render_mode="human")
    inner = env.unwrapped
    inner.metadata = {**inner.metadata, "render_fps": 1000}
    env.reset(seed=0)
    window = inner._window
    pygame.event.post(pygame.event.Event(pygame.QUIT))  # the user closes the window
    env.step(1)
    assert window.closed and not pygame.display.get_init()  # gone, not left on screen unanswered
    assert env.step(1)[0] is not None  # the env steps on without a window
    env.close()


def test_human_render_default_fps_paces_frames():
    env = gym.make("lab/IceLake-v0", render_mode="human").unwrapped
    assert env.metadata["render_fps"] == 8
    env.reset(seed=0)
    env.step(1)
    env.close()
    env.close()


def _run_python(code: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_import_does_not_load_pygame():
    result = _run_python(
        """
        import sys
        import envs, envs.grid, envs.window, agents.planning
        assert 'pygame' not in sys.modules, 'pygame imported'
        print('ok')
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_pixels_and_rgb_array_do_not_load_pygame():
    obs_types = repr(OBS_TYPES)
    result = _run_python(
        f"""
        import sys
        import gymnasium as gym
        import numpy as np
        import envs
        for obs_type in {obs_types}:
            env = gym.make('lab/KeyDoor-v0', obs_type=obs_type, render_mode='rgb_array')
            env.reset(seed=0)
            env.step(1)
            assert env.render().ndim == 3
        venv = gym.make_vec('lab/IceLake-v0', num_envs=2, vectorization_mode='vector_entry_point',
                            obs_type='pixels', render_mode='rgb_array')
        venv.reset(seed=0)
        venv.step(np.array([0, 1]))
        venv.render()
        env = gym.make('lab/IceLake-v0', render_mode='ansi')
        env.reset(seed=0)
        env.render()
        env.close()
        assert 'pygame' not in sys.modules, 'pygame imported'
        print('ok')
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_human_render_does_load_pygame():
    # the control: the check above would notice pygame if it were imported
    result = _run_python(
        """
        import sys
        import gymnasium as gym
        import envs
        env = gym.make('lab/IceLake-v0', render_mode='human')
        env.reset(seed=0)
        env.close()
        assert 'pygame' in sys.modules
        print('ok')
        """
    )
    assert result.returncode == 0, result.stderr


def test_the_agent_wears_a_key_badge_while_it_carries_the_key():
    from envs.grid.painter import KEY

    t = 48
    painter = painter_for("lab/KeyDoor-v0", t)
    cell = (slice(2 * t, 3 * t), slice(2 * t, 3 * t))  # a floor cell

    def gold(phase: int) -> int:
        pixels = painter.frame(2, 2, phase)[cell].astype(int)
        return int((np.abs(pixels - KEY).sum(axis=-1) < 30).sum())

    assert gold(0) == 0 and gold(2) == 0  # before the key is picked up, and once the door is open
    assert gold(1) > 10  # carrying it: the badge
    np.testing.assert_array_equal(painter.background(1)[cell], painter.background(0)[cell])  # agent only
