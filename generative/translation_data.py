"""Two-domain image data for translation models (CycleGAN, pix2pix).

An :class:`~generative.data.ImageData` whose images carry both domains side by side in channels:
``x[:, :C]`` is domain A and ``x[:, C:]`` domain B, so the trainer's batching serves both at once.

- ``themes``: random grid-world states (a ``rows`` x ``cols`` board of cells, one agent) drawn in
  two rendering themes (:mod:`envs.grid.themes`). Unpaired by default: the A images and the B
  images of the training split show *disjoint* sets of states, so no training pair exists.
  ``paired: true`` (pix2pix) pairs each state with itself. The test split holds other states again,
  as exact pairs with their cells as labels ``(N, rows*cols)``, for scoring only. Each theme is
  deterministic, so :class:`CellDecoder` reads an image back to its cells (nearest template).
- ``folders``: a user's two image folders ``path_a`` and ``path_b`` (unpaired, any counts; the
  smaller is cycled), loaded like the ``folder`` data set with the same errors; each folder gives
  ``test_fraction`` of its images to the test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from generative.data import ImageData, dataset_options, image_folder, scale_levels, unknown
from generative.translation_boards import CELL_KINDS, KIND_NAMES, world_boards
from lab.core.errors import LabError


def theme_templates(theme: str, tile: int) -> np.ndarray:
    """``(kinds, tile, tile, 3)`` uint8: every cell kind drawn in ``theme``."""
    from envs.errors import EnvError
    from envs.grid.themes import THEMES, cell_drawer

    try:
        draw = cell_drawer(theme)
    except EnvError:
        raise unknown("theme", theme, THEMES) from None
    return np.stack([draw(tile, t, ice, 0, phase, agent) for t, ice, phase, agent in CELL_KINDS.values()])


def render(cells: np.ndarray, templates: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Boards ``(N, rows*cols)`` of kinds as ``(N, 3, rows*t, cols*t)`` images in [-1, 1]."""
    t = templates.shape[1]
    pictures = templates[cells.reshape(-1, rows, cols)]  # (N, rows, cols, t, t, 3)
    pictures = pictures.transpose(0, 5, 1, 3, 2, 4).reshape(len(cells), 3, rows * t, cols * t)
    return scale_levels(pictures, 256)


class CellDecoder:
    """Reads a theme's images back to boards: each cell is the kind whose template is nearest.

    With ``rival`` (the other theme of a translation), that theme's templates compete too and a
    cell nearest one of them decodes as ``-1``, never a right answer: a translation that leaves a
    cell looking as it did in the source theme has not translated it, however alike two themes are.
    """

    def __init__(self, theme: str, tile: int, rows: int, cols: int, rival: str | None = None) -> None:
        own = theme_templates(theme, tile)
        self.kinds = np.arange(len(own))
        if rival is not None and rival != theme:
            own = np.concatenate([own, theme_templates(rival, tile)])
            self.kinds = np.concatenate([self.kinds, np.full(len(own) - len(self.kinds), -1)])
        self.templates = scale_levels(own.transpose(0, 3, 1, 2), 256)
        self.tile, self.rows, self.cols = tile, rows, cols

    def decode(self, images: np.ndarray) -> np.ndarray:
        """``(N, 3, rows*t, cols*t)`` images in [-1, 1] to ``(N, rows*cols)`` cell kinds (-1: the rival's)."""
        n, t = len(images), self.tile
        cells = np.asarray(images, dtype=np.float32).reshape(n, 3, self.rows, t, self.cols, t)
        cells = cells.transpose(0, 2, 4, 1, 3, 5).reshape(n * self.rows * self.cols, -1)
        flat = self.templates.reshape(len(self.templates), -1)
        distance = (cells**2).sum(1)[:, None] - 2 * cells @ flat.T + (flat**2).sum(1)[None]
        return self.kinds[distance.argmin(1)].reshape(n, self.rows * self.cols)


def _whole(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise LabError(f"themes option {name} must be a whole number >= {least}; got {value!r}")
    return value


def theme_pairs(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
    """Grid boards drawn in two themes: unpaired (disjoint states) or paired training images, and
    exact held-out pairs labelled with their cells."""
    opts = dataset_options("themes", options, {
        "themes": ["classic", "paper"], "rows": 4, "cols": 4, "tile": 8, "train": 2000, "test": 200,
        "paired": False,
    })  # fmt: skip
    themes = opts["themes"]
    if not isinstance(themes, (list, tuple)) or len(themes) != 2:
        raise LabError(f"themes option themes names two themes (A and B); got {themes!r}")
    if themes[0] == themes[1]:
        raise LabError(f"themes option themes names two different themes; got {themes[0]!r} twice")
    rows, cols = _whole("rows", opts["rows"], 1), _whole("cols", opts["cols"], 1)
    tile, train, test = (
        _whole("tile", opts["tile"], 4),
        _whole("train", opts["train"], 1),
        _whole("test", opts["test"], 1),
    )
    if not isinstance(opts["paired"], bool):
        raise LabError(f"themes option paired is true or false; got {opts['paired']!r}")
    templates = [theme_templates(str(name), tile) for name in themes]
    rng = np.random.default_rng(seed)
    paired = opts["paired"]
    boards = world_boards((1 if paired else 2) * train + test, rows, cols, rng)
    train_a, held = boards[:train], boards[-test:]
    train_b = train_a if paired else boards[train : 2 * train]
    x = np.concatenate(
        [render(train_a, templates[0], rows, cols), render(train_b, templates[1], rows, cols)], 1
    )
    test_x = np.concatenate(
        [render(held, templates[0], rows, cols), render(held, templates[1], rows, cols)], 1
    )
    info = {
        "dataset": "themes", **opts, "themes": list(themes), "seed": seed, "test_fraction": test_fraction,
        "domains": list(themes), "states": rows * cols,
    }  # fmt: skip
    return ImageData("themes", x, train_a, test_x, held, len(KIND_NAMES), 256, list(KIND_NAMES), info)


def folder_pairs(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
    """Two image folders as unpaired domains A and B (the smaller cycled to the larger's count)."""
    opts = dataset_options("folders", options, {"path_a": None, "path_b": None, "resize": None})
    parts = []
    for side in ("a", "b"):
        if opts[f"path_{side}"] is None:
            raise LabError(
                f"the folders data set needs path_a and path_b (dataset_options: {{path_{side}: ...}})"
            )
        parts.append(image_folder({"path": opts[f"path_{side}"], "resize": opts["resize"], "channels": 3},
                                  seed, test_fraction))  # fmt: skip
    a, b = parts
    if a.shape != b.shape:
        size = (
            f"{a.shape[1]}x{a.shape[2]} in {opts['path_a']} but {b.shape[1]}x{b.shape[2]} in {opts['path_b']}"
        )
        raise LabError(
            f"the two folders' images differ in size ({size}); resize both with dataset_options.resize=HxW"
        )
    rng = np.random.default_rng(seed)

    def pack(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        n = max(len(xa), len(xb))
        ia, ib = rng.permutation(n) % len(xa), rng.permutation(n) % len(xb)
        return np.concatenate([xa[ia], xb[ib]], 1)

    x, test_x = pack(a.train_x, b.train_x), pack(a.test_x, b.test_x)
    info = {
        "dataset": "folders", **opts, "seed": seed, "test_fraction": test_fraction, "paired": False,
        "domains": [str(opts["path_a"]), str(opts["path_b"])], "images": [a.info["images"], b.info["images"]],
        "skipped": a.info["skipped"] + b.info["skipped"],
        "skipped_files": a.info["skipped_files"] + b.info["skipped_files"],
        "path": f"{opts['path_a']} and {opts['path_b']}",
    }  # fmt: skip
    zeros = np.zeros(len(x), dtype=np.int64), np.zeros(len(test_x), dtype=np.int64)
    return ImageData("folders", x, zeros[0], test_x, zeros[1], 1, 256, ["image"], info)
