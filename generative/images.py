"""Pictures of samples: image grids (PNG) and animations (GIF), written atomically."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from generative.data import to_uint8
from lab.core.errors import LabError
from lab.core.files import atomic_path

BACKGROUND = (36, 41, 51)  # the viewer's bar colour, between tiles


def tile(images: np.ndarray, columns: int | None = None, scale: int = 4, gap: int = 1) -> np.ndarray:
    """``(N, C, H, W)`` images in [-1, 1] as one ``(rows*H', columns*W', 3)`` uint8 picture, each
    image enlarged ``scale`` times (nearest neighbour) and ``gap`` pixels apart."""
    pictures = to_uint8(np.asarray(images))
    n, h, w, _ = pictures.shape
    if n == 0:
        raise ValueError("no images to tile")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pictures = pictures.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    out = np.empty((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    for i, picture in enumerate(pictures):
        r, c = divmod(i, columns)
        out[gap + r * (h + gap) : gap + r * (h + gap) + h, gap + c * (w + gap) : gap + c * (w + gap) + w] = (
            picture
        )
    return out


def write_png(picture: np.ndarray, path: str | Path) -> Path:
    import imageio.v3 as iio

    path = Path(path)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, picture, extension=".png")
    return path


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 12.0, hold: float = 1.0) -> Path:
    """An endlessly looping GIF; the last frame stays ``hold`` seconds."""
    import imageio.v3 as iio

    if not frames:
        raise LabError("no frames to write")
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise LabError(f"animations are written as .gif; got {path.name!r}")
    step_ms = max(20, round(1000 / fps))
    durations = [step_ms] * len(frames)
    durations[-1] = max(step_ms, round(1000 * hold))
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, [np.asarray(f) for f in frames], extension=".gif", duration=durations, loop=0)
    return path


def check_picture_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        raise LabError(f"sample grids are written as .png (or .jpg, .bmp); got {path.name!r}")
    return path
