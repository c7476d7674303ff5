"""Small image data sets that need no download, as float32 ``(N, C, H, W)`` arrays in [-1, 1].

- ``digits``: scikit-learn's 1,797 handwritten 8x8 digits (17 grey levels, 0..16), labelled 0-9;
  ``size: 16`` doubles every pixel for architectures that want 16x16.
- ``grid``: every state of a lab grid world that can be reached from its start, drawn as a small RGB
  frame by the environment's own painter and labelled by state. The set is finite and complete, so
  its "test split" is the set itself: there is no unseen frame to hold out.
- ``themes`` and ``folders``: two image domains for translation models
  (:mod:`generative.translation_data`).
- ``folder``: any folder of images (Pillow). Sub-folders name the classes (torchvision's
  ``ImageFolder`` layout); images directly in the folder form one class. Unreadable files are
  skipped and counted; images of mixed sizes are an error unless ``resize: HxW`` asks for resizing.
  The path may come from a model file (``lab gen eval``), so the walk is bounded: no system or home
  folder, no symbolic links to folders, at most :data:`~lab.core.limits.MAX_DATASET_FILES` files,
  images of at most 4096 x 4096 pixels, and at most :data:`MAX_DATASET_VALUES` pixel values in all.

Each loader returns an :class:`ImageData` with a fixed, stratified train/test split drawn with
``seed``, so every model and the evaluation classifier see the same held-out images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lab.core.errors import LabError
from lab.core.limits import MAX_DATASET_FILES

if TYPE_CHECKING:  # Pillow loads with the image folders that need it
    from PIL import Image

MAX_IMAGE_PIXELS = 4096 * 4096
"""Larger images are skipped (counted with the unreadable ones) before they are decoded."""
MAX_DATASET_VALUES = 256 * 2**20
"""Pixel values (images x channels x height x width) one folder data set may hold: 1 GiB as float32."""

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)


@dataclass
class ImageData:
    """A data set with its split: images ``(N, C, H, W)`` float32 in [-1, 1], labels int64."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    n_classes: int
    levels: int
    """Grey levels per channel of the raw data (17 for digits, 256 for 8-bit images): the likelihood
    of a discrete image, and so bits per dimension, is measured over these bins."""
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    """What was loaded and how (options, counts, skipped files): stored with models and metrics."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.train_x.shape[1:])  # type: ignore[return-value]

    def key(self) -> str:
        """A short identity of the data and split, for caching what is trained on it."""
        import hashlib

        digest = hashlib.sha256()
        for array in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(np.ascontiguousarray(array).tobytes())
        return f"{self.name}-{digest.hexdigest()[:12]}"


def unknown(kind: str, name: object, options: list[str] | tuple[str, ...]) -> LabError:
    """The supervised core's did-you-mean error for an unknown name, as the :class:`LabError` the
    ``lab`` command prints in one line."""
    from lab.nets.layers import unknown_choice

    return LabError(str(unknown_choice(kind, name, options, cutoff=0.5)))


def scale_levels(raw: np.ndarray, levels: int) -> np.ndarray:
    """Integers ``0..levels-1`` to float32 in [-1, 1]: level k sits at ``2k/(levels-1) - 1``."""
    return (raw.astype(np.float32) * (2.0 / (levels - 1)) - 1.0).astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1] to ``(N, H, W, 3)`` uint8 pictures (grey repeated to RGB)."""
    images = np.asarray(images, dtype=np.float32)
    pixels = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.repeat(pixels, 3, axis=3) if pixels.shape[3] == 1 else pixels


def split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified split: each class gives ``test_fraction`` of its images (at least one when it has
    two or more) to the test set, chosen by ``seed``; order within each part follows the data."""
    if not 0.0 < test_fraction < 1.0:
        raise LabError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(x), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        test[rng.choice(members, size=count, replace=False)] = True
    if not test.any():
        raise LabError(f"{len(x)} images are too few to hold any out for testing")
    return x[~test], y[~test], x[test], y[test]


# ----- the loaders -----


def dataset_options(name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    for key in given:
        if key not in defaults:
            raise unknown(f"option of the {name} data set", key, list(defaults) or ["(none)"])
    return {**defaults, **given}


def load_digits_data(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
    from sklearn.datasets import load_digits

    opts = dataset_options("digits", options, {"size": 8})
    if opts["size"] not in (8, 16):
        raise LabError(f"digits come as 8x8 or, pixels doubled, 16x16; got size {opts['size']!r}")
    digits = load_digits()
    raw = digits.images.astype(np.int64)  # (1797, 8, 8) in 0..16
    if opts["size"] == 16:
        raw = raw.repeat(2, axis=1).repeat(2, axis=2)
    x = scale_levels(raw, 17)[:, None]
    y = digits.target.astype(np.int64)
    train_x, train_y, test_x, test_y = split(x, y, test_fraction, seed)
    return ImageData(
        "digits", train_x, train_y, test_x, test_y, 10, 17, [str(d) for d in range(10)],
        {"dataset": "digits", **opts, "seed": seed, "test_fraction": test_fraction},
    )  # fmt: skip


def grid_frames(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
    """Every reachable state of a grid world as a frame; label = the state's rank among them."""
    from envs.grid.painter import GridPainter
    from lab.core.environments import make_env

    opts = dataset_options("grid", options, {"env": "lab/IceLake-v0", "tile": 4, "env_kwargs": {}})
    if not isinstance(opts["tile"], int) or isinstance(opts["tile"], bool) or opts["tile"] < 4:
        raise LabError(
            f"grid option tile (pixels per cell) must be a whole number >= 4; got {opts['tile']!r}"
        )
    env = make_env(opts["env"], dict(opts["env_kwargs"] or {}))
    world = env.unwrapped
    model = world.model
    mdp = model.transition_model()
    states = np.flatnonzero(mdp.reachable())
    env.close()
    layout = model.layout
    painter = GridPainter(layout.tiles, layout.ice, model.wind, opts["tile"])
    frames = painter.frames(model.state_row[states], model.state_col[states], model.state_phase[states])
    x = scale_levels(frames.transpose(0, 3, 1, 2).astype(np.int64), 256)
    y = np.arange(len(states), dtype=np.int64)
    env_id = env.spec.id if env.spec is not None else str(opts["env"])
    info = {"dataset": "grid", **opts, "env": env_id, "seed": seed, "states": states.tolist()}
    info["note"] = "every reachable state once: the test split is the whole set"
    return ImageData("grid", x, y, x.copy(), y.copy(), len(states), 256, [f"state {s}" for s in states], info)


def _parse_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    text = str(value).lower().replace(" ", "")
    height, sep, width = text.partition("x")
    if sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0:
        return int(height), int(width)
    raise LabError(f"resize takes HxW (e.g. 16x16) or one number; got {value!r}")


def eight_bit(image: Image.Image) -> Image.Image:
    """A copy of ``image`` with 8 bits a channel. Pillow's ``convert("L")`` clips 16-bit grey values
    at 255 instead of rescaling them (a 16-bit picture comes out black and white), so those are
    rescaled here; 32-bit integer and float pictures have no agreed range and are refused."""
    from PIL import Image

    if image.mode.startswith("I;16") or (image.mode == "I" and np.asarray(image).max(initial=0) <= 65535):
        values = np.asarray(image, dtype=np.float64)
        if values.min(initial=0) < 0:
            raise ValueError("negative 16-bit grey values")
        return Image.fromarray(np.round(values * (255 / 65535)).astype(np.uint8), "L")
    if image.mode in ("I", "F"):
        raise ValueError(f"{image.mode} pictures (32-bit) have no agreed range of grey")
    return image.copy()


def image_folder(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
    """Images under ``path``: one class per sub-folder (or one class), Pillow-readable files only."""
    from PIL import Image, UnidentifiedImageError

    opts = dataset_options("folder", options, {"path": None, "resize": None, "channels": None})
    if opts["path"] is None:
        raise LabError("the folder data set needs a path (dataset_options: {path: my_images/})")
    root = Path(str(opts["path"])).expanduser()
    if not root.is_dir():
        raise LabError(f"no image folder at {root}")
    resize = _parse_size(opts["resize"])
    if opts["channels"] not in (None, 1, 3):
        raise LabError(f"channels must be 1 (grey) or 3 (RGB); got {opts['channels']!r}")
    files = _image_files(root)
    images: list[Image.Image] = []
    classes: list[str] = []
    skipped: list[str] = []
    least = 0  # pixel values so far, each image at its own channels: the total is at least this
    for path in files:
        try:
            with Image.open(path) as image:  # reads the header only: the size is known before decoding
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    skipped.append(str(path.relative_to(root)))
                    continue
                image.load()
                picture = eight_bit(image)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
            skipped.append(str(path.relative_to(root)))
            continue
        grey = picture.mode in GREY_MODES
        if resize is not None:  # only the small picture is kept: a folder of photos would not fit decoded
            # its own mode (L or RGB) or the asked one: the later conversion gives the same values
            picture = picture.convert({1: "L", 3: "RGB"}.get(opts["channels"]) or ("L" if grey else "RGB"))
            if (picture.height, picture.width) != resize:
                picture = picture.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
        least += (opts["channels"] or (1 if grey else 3)) * picture.height * picture.width
        if least > MAX_DATASET_VALUES:  # refused before the rest are decoded
            raise _too_many_values(f"first {len(images) + 1}", root, least)
        images.append(picture)
        classes.append(path.parent.relative_to(root).as_posix() if path.parent != root else ".")
    if not images:
        what = f" ({len(skipped)} unreadable file(s) skipped)" if skipped else ""
        raise LabError(f"no readable images in {root}{what}")
    sizes = sorted({(im.height, im.width) for im in images})
    if resize is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (" ..." if len(sizes) > 4 else "")
        raise LabError(
            f"the images in {root} have {len(sizes)} sizes ({shown}); resize them all with "
            f"dataset_options.resize=HxW (e.g. resize={sizes[0][0]}x{sizes[0][1]})"
        )
    grey = all(im.mode in GREY_MODES for im in images)
    channels = opts["channels"] or (1 if grey else 3)
    mode = "L" if channels == 1 else "RGB"
    values = sum(channels * image.height * image.width for image in images)  # resized as they were read
    if values > MAX_DATASET_VALUES:
        raise _too_many_values(str(len(images)), root, values)
    arrays = []
    for image in images:
        converted = image.convert(mode)
        arrays.append(np.asarray(converted, dtype=np.int64).reshape(converted.height, converted.width, -1))
    raw = np.stack(arrays).transpose(0, 3, 1, 2)
    names = sorted(set(classes))
    y = np.array([names.index(c) for c in classes], dtype=np.int64)
    x = scale_levels(raw, 256)
    train_x, train_y, test_x, test_y = split(x, y, test_fraction, seed)
    info = {
        "dataset": "folder", **opts, "path": str(root), "seed": seed, "test_fraction": test_fraction,
        "images": len(images), "skipped": len(skipped), "skipped_files": skipped[:10],
    }  # fmt: skip
    return ImageData("folder", train_x, train_y, test_x, test_y, len(names), 256, names, info)


GREY_MODES = ("1", "L", "I", "I;16", "F")
"""Pillow modes of grey pictures (a folder of them only is read with one channel)."""


def _too_many_values(count: str, root: Path, values: int) -> LabError:
    return LabError(
        f"the {count} images in {root} hold {values:,} pixel values; a data set holds at most "
        f"{MAX_DATASET_VALUES:,}: use fewer or smaller images (dataset_options.resize=HxW)"
    )


def _image_files(root: Path) -> list[Path]:
    """The visible files under ``root`` (symbolic links to folders not followed), refusing a system
    folder and stopping at :data:`MAX_DATASET_FILES`: a path can come from a model file's metadata."""
    resolved = root.resolve()
    if resolved.parent == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise LabError(f"{root} is a system or home folder, not an image folder: give a folder of images")
    files: list[Path] = []
    for folder, dirs, names in os.walk(resolved, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            if len(files) >= MAX_DATASET_FILES:
                raise LabError(
                    f"{root} holds over {MAX_DATASET_FILES:,} files, more than an image folder data set takes"
                )
            files.append(root / Path(folder).relative_to(resolved) / name)
    return sorted(files)


def two_domains(name: str) -> Callable[[dict[str, Any], int, float], ImageData]:
    """A loader of :mod:`generative.translation_data` (two image domains for translation models)."""

    def load(options: dict[str, Any], seed: int, test_fraction: float) -> ImageData:
        from generative import translation_data

        return getattr(translation_data, name)(options, seed, test_fraction)

    return load


Loader = Callable[[dict[str, Any], int, float], ImageData]
DATASETS: dict[str, Loader] = {
    "digits": load_digits_data, "grid": grid_frames, "folder": image_folder,
    "themes": two_domains("theme_pairs"), "folders": two_domains("folder_pairs"),
}  # fmt: skip


def load_dataset(
    name: str, options: dict[str, Any] | None = None, seed: int = 0, test_fraction: float = 0.2
) -> ImageData:
    """The data set ``name`` (``digits``, ``grid`` or ``folder``) with its split for ``seed``."""
    if name not in DATASETS:
        raise unknown("data set", name, list(DATASETS))
    if options is not None and not isinstance(options, dict):
        raise LabError(f"dataset_options must be a mapping (key: value); got {options!r}")
    return DATASETS[name](dict(options or {}), int(seed), float(test_fraction))
