"""The largest sizes the lab accepts from a file or a flag, checked before anything is allocated.

Files cross machines (:mod:`lab.core.archive`), so a few bytes must never be able to ask for gigabytes
of memory, hours of work or a million threads. Each bound is far above what the lab's own runs use;
the error that enforces it names the bound. (Grid maps have their own bound in ``envs.grid.layout``,
which cannot import the lab.)
"""

from __future__ import annotations

import itertools
import os

MAX_SPEC_BYTES = 1 << 20
"""A YAML spec file (1 MiB; the lab's own specs are under 2 KiB)."""

MAX_ARRAY_BYTES = 1 << 30
"""One array in an ``.npz`` archive, as its header declares it (1 GiB)."""

MAX_ARCHIVE_BYTES = 4 << 30
"""All the arrays of one archive together, as their headers declare them (4 GiB)."""

MAX_ENTRIES = 10_000
"""Entries (arrays) in one ``.npz`` archive, read from its end record before its directory."""

MAX_META_BYTES = 16 << 20
"""The JSON metadata string of an archive (16 MiB)."""

MAX_SAMPLES = 10_000
"""Images one ``lab gen sample`` draws."""

MAX_EPISODES = 10_000
"""Episodes one ``lab eval``, ``lab watch`` or ``lab demo`` plays."""

MAX_VIDEO_BYTES = 2 << 30
"""The frames of one video, held in memory until it is written (2 GiB)."""

MAX_PARAMETERS = 50_000_000
"""Parameters of one network built from a file's or a spec's hyperparameters (200 MB of float32)."""

MAX_BUFFER_BYTES = 8 << 30
"""A replay buffer's arrays (8 GiB)."""

MAX_DATASET_FILES = 200_000
"""Files one image-folder data set may hold (the walk stops there)."""


def max_threads() -> int:
    """The most compute threads a run may ask for: four per CPU core."""
    return 4 * (os.cpu_count() or 1)


MAX_LAYER_WIDTH = 16_384
"""Units in one hidden layer (``net_arch`` widths, channels)."""


def check_widths(name: str, widths: list[int], error: type[Exception]) -> None:
    """Refuse hidden layer widths over :data:`MAX_LAYER_WIDTH`, or whose weights between consecutive
    layers would pass :data:`MAX_PARAMETERS`, before any layer is built."""
    widest = max(widths, default=0)
    if widest > MAX_LAYER_WIDTH:
        raise error(f"{name} widths are at most {MAX_LAYER_WIDTH}; got {widest}")
    weights = sum(a * b for a, b in itertools.pairwise(widths))
    if weights > MAX_PARAMETERS:
        raise error(f"{name} {widths} would hold {weights:,} weights; at most {MAX_PARAMETERS:,}")
