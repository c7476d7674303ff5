"""``lab gen watch``: a window of live samples. A diffusion model denoises in front of you, one chain
step per frame, then holds the samples a moment and starts again from new noise; a GAN or VAE
walks a loop through its latent space.

Keys: space pause/resume, ``r`` new samples, left/right the previous/next label (conditional
models), ``s`` save the picture as a PNG, ``q`` or Esc quit. ``frames`` / ``seconds`` stop it on
their own, also headless (SDL's dummy driver); without a display and without such a limit it stops
at once with an error pointing at ``lab gen sample MODEL --gif out.gif``, which writes the pictures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lab.core.errors import LabError

if TYPE_CHECKING:
    from lab.gen.sample import LoadedModel

KeyReader = Callable[[int], "str | None"]
HOLD_SECONDS = 4.0  # a finished diffusion chain stays this long before the next (new) one starts
HOLD_FRAMES = 48  # HOLD_SECONDS at the default 12 fps


def live_pictures(
    loaded: LoadedModel,
    n: int,
    label_box: list[int | None],
    seed_box: list[int],
    hold_frames: int = HOLD_FRAMES,
) -> Iterator[tuple[np.ndarray, str]]:
    """Endless ``(picture, status)`` pairs for the current label and seed (read at each restart);
    a finished diffusion chain is repeated ``hold_frames`` times."""
    from generative.images import tile
    from generative.sampling import labels_for, latent_walk

    model = loaded.model
    if getattr(model, "translates", False):
        yield from translation_pictures(loaded, n, seed_box)
    while True:
        label, seed = label_box[0], seed_box[0]
        labels = labels_for(model, n, label)
        if model.family == "diffusion":
            generator = torch.Generator().manual_seed(seed)
            x = torch.empty(0)
            for i, total, x in model.chain(n, labels, generator):
                yield tile(x.clamp(-1, 1).numpy()), f"denoising step {i + 1}/{total}"
            for _ in range(hold_frames):
                yield tile(x.clamp(-1, 1).numpy()), "samples (space holds them, r for new ones)"
            seed_box[0] += 1  # the next chain starts from new noise rather than replaying this one
        else:
            for images in latent_walk(model, n, labels, seed):
                yield tile(images.numpy()), "walking through the latent space"


def translation_pictures(
    loaded: LoadedModel, n: int, seed_box: list[int]
) -> Iterator[tuple[np.ndarray, str]]:
    """A translation model on held-out images, a new random set every ``HOLD_FRAMES`` frames."""
    from generative.images import tile
    from generative.translation_metrics import translation_grid
    from lab.gen.models import data_from_meta

    data = data_from_meta(loaded.meta)
    rows = "A, G(A), F(G(A)), true B" if "ba" in loaded.model.directions else "A, G(A), true B"  # type: ignore[attr-defined]
    while True:
        images, columns = translation_grid(loaded.model, data, n, seed_box[0])  # type: ignore[arg-type]
        for _ in range(HOLD_FRAMES):
            yield tile(images, columns), f"held-out images, rows: {rows} (r for others)"
        seed_box[0] += 1


def watch(
    target: str | Path,
    n: int = 16,
    label: int | None = None,
    fps: float = 12.0,
    seed: int = 0,
    scale: int = 2,
    frames: int | None = None,
    seconds: float | None = None,
    screenshot_dir: str | Path | None = None,
    keys: KeyReader | None = None,
) -> list[Path]:
    """Show live samples until quit (or ``frames`` / ``seconds``); returns the screenshots saved."""
    from envs.window import FrameWindow, has_display
    from generative.images import write_png
    from generative.sampling import labels_for
    from lab.gen.sample import open_model
    from lab.viewer import screenshot_failure, window_keys

    if n < 1:
        raise LabError(f"--n must be at least 1; got {n}")
    if fps <= 0:
        raise LabError(f"--fps must be positive; got {fps:g}")
    if frames is not None and frames < 1:
        raise LabError(f"--frames must be at least 1; got {frames}")
    if keys is None and frames is None and seconds is None and not has_display():
        from lab.viewer import require_display  # without a limit it would run, unseen, forever

        require_display(
            "lab gen watch",
            f"without one: lab gen sample {target} --gif out.gif (or --frames N / --seconds S to stop)",
        )
    loaded = open_model(target)
    model = loaded.model
    labels_for(model, 1, label)  # checks --label before a window opens
    label_box: list[int | None] = [label if label is not None else (0 if model.conditional else None)]
    seed_box = [seed]
    names = loaded.class_names
    window = FrameWindow(f"lab gen watch - {model.family} ({loaded.path.name})", scale=scale)
    read_key = keys if keys is not None else window_keys(window)
    folder = Path(screenshot_dir) if screenshot_dir is not None else Path.cwd()
    saved: list[Path] = []
    hold = max(1, round(HOLD_SECONDS * fps))

    def restart() -> Iterator[tuple[np.ndarray, str]]:
        return live_pictures(loaded, n, label_box, seed_box, hold)

    stream = restart()
    shown, started, message, paused = 0, time.monotonic(), "", False
    picture, status = next(stream)
    try:
        while not window.closed:
            if not paused and shown:
                picture, status = next(stream)
            current = label_box[0]
            what = (
                "" if current is None else f"   label {names[current] if current < len(names) else current}"
            )
            lines = [
                f"{model.describe()}   seed {seed_box[0]}{what}",
                status + ("   (paused)" if paused else ""),
            ]
            lines.append(message or "space pause   r new samples   left/right label   s save   q quit")
            window.show(picture, lines)
            shown += 1
            if frames is not None and shown >= frames:
                break
            if seconds is not None and time.monotonic() - started >= seconds:
                break
            key = read_key(max(1, int(1000 / fps)))
            if key is None:
                continue
            message = ""
            if key in ("q", "escape"):
                break
            if key == "space":
                paused = not paused
            elif key == "r" or (key in ("left", "right") and model.conditional):
                if key == "r":
                    seed_box[0] += 1
                else:
                    step = 1 if key == "right" else -1
                    label_box[0] = ((label_box[0] or 0) + step) % model.n_classes
                stream, paused = restart(), False
            elif key in ("left", "right"):
                message = "an unconditional model has no labels to switch"
            elif key == "s":
                path = folder / f"gen-{model.family}-seed{seed_box[0]}-{shown:05d}.png"
                try:
                    saved.append(write_png(picture, path))
                    message = f"saved {path}"
                except OSError as exc:  # the window stays; its message line says why
                    message = screenshot_failure(folder, exc)
    finally:
        window.close()
    return saved
