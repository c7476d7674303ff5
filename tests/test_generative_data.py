"""Data sets of the generative models: digits, grid-world frames, image folders, and their split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generative.data import load_dataset, scale_levels, split, to_uint8
from lab.core.errors import LabError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_digits_are_scaled_split_and_fixed_by_the_seed():
    data = load_dataset("digits", seed=0)
    assert data.shape == (1, 8, 8) and data.n_classes == 10 and data.levels == 17
    assert len(data.train_x) + len(data.test_x) == 1797
    assert data.train_x.dtype == np.float32 and data.train_x.min() == -1.0 and data.train_x.max() == 1.0
    # the 17 grey levels land on the grid 2k/16 - 1 exactly
    levels = np.unique(np.concatenate([data.train_x.ravel(), data.test_x.ravel()]))
    assert np.array_equal(levels, scale_levels(np.arange(17), 17))
    # stratified: every digit keeps about a fifth of its images for testing
    counts = np.bincount(data.test_y, minlength=10) / np.bincount(np.concatenate([data.train_y, data.test_y]))
    assert np.all(np.abs(counts - 0.2) < 0.01)
    again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert np.array_equal(again.test_x, data.test_x) and again.key() == data.key()
    assert not np.array_equal(other.test_y, data.test_y) and other.key() != data.key()


def test_digits_doubled_to_16x16():
    data = load_dataset("digits", {"size": 16}, seed=0)
    small = load_dataset("digits", seed=0)
    assert data.shape == (1, 16, 16)
    assert np.array_equal(data.train_x[:, :, ::2, ::2], small.train_x)


def test_grid_frames_are_every_reachable_state():
    data = load_dataset("grid", {"env": "IceLake", "tile": 4})
    assert data.shape == (3, 16, 16) and data.levels == 256
    assert data.n_classes == len(data.train_x) == 16  # all 16 cells of the 4x4 lake can be reached
    assert len({frame.tobytes() for frame in data.train_x}) == 16  # one distinct frame per state
    assert np.array_equal(data.test_x, data.train_x)


def test_unknown_names_suggest_the_closest(tmp_path):
    with pytest.raises(LabError, match=r"unknown data set 'digit'; did you mean 'digits'\?"):
        load_dataset("digit")
    with pytest.raises(
        LabError, match=r"unknown option of the digits data set 'sise'; did you mean 'size'\?"
    ):
        load_dataset("digits", {"sise": 16})


def _write(path, size, colour=128, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_image_folder_skips_broken_files_and_reads_classes_from_subfolders(tmp_path):
    for k in range(5):
        _write(tmp_path / "cats" / f"{k}.png", (8, 8), 10 * k)
        _write(tmp_path / "dogs" / f"{k}.png", (8, 8), 200 + k)
    (tmp_path / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_dataset("folder", {"path": str(tmp_path)}, seed=0, test_fraction=0.4)
    assert data.info["skipped"] == 2 and sorted(data.info["skipped_files"]) == [
        "cats/broken.png",
        "notes.txt",
    ]
    assert data.class_names == ["cats", "dogs"] and data.shape == (1, 8, 8)
    assert len(data.train_x) == 6 and len(data.test_x) == 4
    dogs = np.concatenate([data.train_x[data.train_y == 1], data.test_x[data.test_y == 1]])
    assert np.all(dogs > 0.5)  # grey levels 200..204 of 255


def test_image_folder_with_mixed_sizes_is_an_error_unless_resized(tmp_path):
    _write(tmp_path / "a.png", (8, 8), mode="RGB", colour=(255, 0, 0))
    _write(tmp_path / "b.png", (12, 10), mode="RGB", colour=(0, 0, 255))
    _write(tmp_path / "c.png", (8, 8), mode="RGB", colour=(0, 255, 0))
    with pytest.raises(
        LabError, match=r"2 sizes \(8x8, 10x12\); resize them all with dataset_options.resize"
    ):
        load_dataset("folder", {"path": str(tmp_path)})
    data = load_dataset("folder", {"path": str(tmp_path), "resize": "8x8"}, test_fraction=0.34)
    assert data.shape == (3, 8, 8) and data.n_classes == 1


def test_image_folder_errors(tmp_path):
    with pytest.raises(LabError, match="no image folder at"):
        load_dataset("folder", {"path": str(tmp_path / "missing")})
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(LabError, match=r"no readable images in .* \(1 unreadable file\(s\) skipped\)"):
        load_dataset("folder", {"path": str(tmp_path)})
    with pytest.raises(LabError, match="needs a path"):
        load_dataset("folder")


def test_split_is_stratified_and_needs_two_per_class():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    train_x, _, test_x, test_y = split(x, y, 0.25, seed=3)
    assert sorted(test_y.tolist()) == [0, 1]  # one of each class with 4+ images; the lone 2 stays
    assert sorted(np.concatenate([train_x, test_x]).ravel().tolist()) == list(range(10))


def test_to_uint8_round_trips_the_level_grid():
    raw = np.arange(256).reshape(1, 1, 16, 16)
    pictures = to_uint8(scale_levels(raw, 256))
    assert pictures.shape == (1, 16, 16, 3) and np.array_equal(pictures[0, :, :, 1], raw[0, 0])


def test_sixteen_bit_grey_pictures_keep_their_levels(tmp_path):
    (tmp_path / "c").mkdir()
    levels = (np.arange(64).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65,520: 64 grey levels
    for i in range(4):
        Image.fromarray(levels).save(tmp_path / "c" / f"{i}.png")
    data = load_dataset("folder", {"path": str(tmp_path)})
    pixels = np.concatenate([data.train_x.ravel(), data.test_x.ravel()])
    expected = 2 * np.round(levels.astype(float) * 255 / 65535) / 255 - 1  # 8-bit levels in [-1, 1]
    np.testing.assert_allclose(np.unique(pixels), np.unique(expected), atol=1e-6)  # not black and white


def test_image_folder_over_its_values_stops_before_decoding_the_rest(tmp_path, monkeypatch):
    """The pixel-value bound is checked image by image, not after every image is held decoded."""
    from generative import data as module

    for k in range(6):
        _write(tmp_path / f"{k}.png", (40, 40), 10 * k)
    decoded = []
    eight_bit = module.eight_bit
    monkeypatch.setattr(module, "eight_bit", lambda image: decoded.append(1) or eight_bit(image))
    monkeypatch.setattr(module, "MAX_DATASET_VALUES", 2 * 40 * 40)
    with pytest.raises(LabError, match=r"the first 3 images in .* hold 4,800 pixel values"):
        load_dataset("folder", {"path": str(tmp_path)})
    assert len(decoded) == 3


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_image_folder_resized_as_read_gives_the_values_of_resizing_at_the_end(tmp_path, channels):
    """Each picture is shrunk as it is read (a folder of photos need not fit decoded), with the values
    a conversion then a resize of the whole picture gives."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8), "RGB").save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (25, 25), dtype=np.uint8), "L").save(tmp_path / "b.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(tmp_path / "c.png")
    options = {"path": str(tmp_path), "resize": "8x8", "channels": channels}
    data = load_dataset("folder", options, test_fraction=0.34)
    mode = "L" if channels == 1 else "RGB"
    expected = []
    for name in ("a.png", "b.png", "c.png"):
        with Image.open(tmp_path / name) as image:
            picture = image.convert(mode)
        if picture.size != (8, 8):
            picture = picture.resize((8, 8), Image.Resampling.BILINEAR)
        expected.append(np.asarray(picture, dtype=np.int64).reshape(8, 8, -1).transpose(2, 0, 1))
    got = np.concatenate([data.train_x, data.test_x])
    want = scale_levels(np.stack(expected), 256)
    assert sorted(map(bytes, got)) == sorted(map(bytes, want.astype(got.dtype)))
