"""``lab demo`` in a window: one window for the whole tour, q or Esc quits; the GIF's canvas."""

from __future__ import annotations

import numpy as np
import pygame

from envs.window import BAR_BG, FrameWindow
from lab.demo import PAD, fit_frames, run_demo


def test_the_tour_keeps_one_window_and_q_quits(monkeypatch):
    monkeypatch.setattr("envs.window.has_display", lambda: True)
    sizes: list[tuple[int, int]] = []
    set_mode = pygame.display.set_mode
    monkeypatch.setattr(pygame.display, "set_mode", lambda size, *a: sizes.append(size) or set_mode(size))
    shown: list[list[str]] = []
    show = FrameWindow.show

    def spy(self, frame, lines=()):
        shown.append(list(lines))
        show(self, frame, lines)

    def poll(self):  # q once the third scene (the lake) is on screen
        on_lake = shown and "IceLake8x8" in shown[-1][0]
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q)] if on_lake else []

    monkeypatch.setattr(FrameWindow, "show", spy)
    monkeypatch.setattr(FrameWindow, "poll", poll)
    assert run_demo(fps=1000) is None
    assert len(sizes) == 1  # sized for the largest scene before the first frame, never again
    scenes = {lines[0].split(":")[0] for lines in shown}
    assert scenes == {"lab/Maze-v0", "lab/KeyDoor-v0", "lab/IceLake8x8-v0"}  # q ended the tour there
    assert "IceLake8x8" in shown[-1][0] and shown[-1][-1] == "q or Esc quits"


def test_gif_frames_share_one_canvas_cropped_to_what_they_cover():
    small = np.full((50, 80, 3), 255, dtype=np.uint8)
    wide = np.full((30, 120, 3), 128, dtype=np.uint8)
    padded = np.full((400, 600, 3), BAR_BG, dtype=np.uint8)  # a window-sized frame, mostly empty
    padded[:50, :80] = 255
    frames = fit_frames([small, wide, padded])
    assert {f.shape for f in frames} == {(50 + PAD, 120 + PAD, 3)}
    np.testing.assert_array_equal(frames[0][:50, :80], small)
    assert (frames[0][:, 80:] == BAR_BG).all()


def test_the_tour_draws_every_world_at_most_tour_height_tall():
    from lab.core.environments import make_env
    from lab.demo import SCENES, TOUR_HEIGHT, tour_scenes

    heights = {}
    for scene in tour_scenes():
        env = make_env(scene.env_id, scene.kwargs, render_mode="rgb_array")
        env.reset(seed=0)
        heights[scene.env_id] = env.render().shape[0]
        env.close()
    assert max(heights.values()) <= TOUR_HEIGHT and set(heights) == {s.env_id for s in SCENES}
    assert heights["lab/CliffWalk-v0"] == 200  # flat worlds keep their size; the square maze shrinks


def test_a_gif_path_where_no_file_can_be_written_is_refused_before_the_tour_is_rendered(
    monkeypatch, tmp_path
):
    import pytest

    from lab.core.errors import LabError

    def rendered(*args):
        raise AssertionError("the tour was rendered before the path was checked")

    monkeypatch.setattr("lab.demo.episode_frames", rendered)
    (tmp_path / "notes.txt").write_text("a file where a folder would be")
    with pytest.raises(LabError, match=r"notes\.txt is a file, so .*tour\.gif cannot be written"):
        run_demo(env_id="IceLake", gif=str(tmp_path / "notes.txt" / "tour.gif"))
