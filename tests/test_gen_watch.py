"""``lab gen watch``'s loop with a stand-in model: space pauses and resumes the pictures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from envs.window import FrameWindow
from lab.gen import watch as gen_watch


def stand_in(monkeypatch) -> list[tuple[int, list[str]]]:
    """A stand-in model whose pictures count up; returns what the window shows (picture, lines)."""
    model = SimpleNamespace(family="gan", conditional=False, n_classes=0, describe=lambda: "a stand-in")
    loaded = SimpleNamespace(model=model, class_names=[], path=Path("stand-in.npz"))
    monkeypatch.setattr("lab.gen.sample.open_model", lambda target: loaded)
    monkeypatch.setattr("generative.sampling.labels_for", lambda model, n, label: None)

    def pictures(loaded, n, label_box, seed_box, hold_frames=gen_watch.HOLD_FRAMES):
        for i in range(1000):
            yield np.full((8, 8, 3), i, dtype=np.uint8), f"picture {i}"

    monkeypatch.setattr(gen_watch, "live_pictures", pictures)
    shown: list[tuple[int, list[str]]] = []

    def record(self, frame, lines=()):
        shown.append((int(frame[0, 0, 0]), list(lines)))

    monkeypatch.setattr(FrameWindow, "show", record)
    return shown


def test_space_pauses_and_resumes(monkeypatch):
    shown = stand_in(monkeypatch)
    keys = iter([None, "space", None, None, "space", None, "q"])
    gen_watch.watch("stand-in.npz", fps=1000, keys=lambda ms: next(keys))
    assert [i for i, _ in shown] == [0, 1, 1, 1, 1, 2, 3]  # held while paused, then on from where it was
    assert "(paused)" in shown[2][1][1] and "space pause" in shown[0][1][2]


def test_a_picture_that_cannot_be_saved_is_said_and_the_window_stays(monkeypatch, tmp_path):
    shown = stand_in(monkeypatch)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the screenshot folder would be")
    keys = iter(["s", None, "q"])
    saved = gen_watch.watch(
        "stand-in.npz", fps=1000, screenshot_dir=blocker / "shots", keys=lambda ms: next(keys)
    )
    assert saved == [] and len(shown) == 3
    assert shown[1][1][-1] == f"could not save screenshot in {blocker / 'shots'}: Not a directory"
