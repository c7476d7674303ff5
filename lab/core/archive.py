"""Array archives: one ``.npz`` of named arrays plus a JSON metadata string, never pickle.

Agent checkpoints (``agents/common/checkpoint.py``) and generative model files
(``generative/checkpoint.py``) share this layout, each with its own ``format`` name in the
metadata. Files cross machines, so they are data, never code: :func:`read_archive` loads with
``allow_pickle=False`` and turns every way a file can be wrong (truncated, not a zip, a pickled
object inside, metadata that is not a JSON object, an array header declaring more than the bounds of
:mod:`lab.core.limits`, checked before anything is allocated) into one error of the caller's class. Writes are
atomic: a temporary file in the same folder, then ``os.replace``, so a reader never sees half a
file.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.files import atomic_path
from lab.core.limits import MAX_ARCHIVE_BYTES, MAX_ARRAY_BYTES, MAX_ENTRIES, MAX_META_BYTES


def write_archive(
    path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], what: str = "archive",
    error: type[Exception] = ValueError,
) -> Path:  # fmt: skip
    """Write ``arrays`` and ``meta`` (stored as the 0-d unicode array ``"meta"``) atomically; metadata
    that is not JSON is ``error(f"{what} metadata must be JSON ...")`` before any file is touched."""
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the metadata string")
    try:
        document = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as exc:  # a caller's metadata (an object, keys of mixed kinds)
        raise error(f"{what} metadata must be JSON (numbers, text, lists, maps): {exc}") from None
    with atomic_path(path) as temp, open(temp, "wb") as f:
        np.savez(f, meta=np.array(document), **arrays)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename makes it the file
    return path


def read_archive(
    path: Path, what: str, error: type[Exception], arrays: bool = True, headers_only: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of an existing file; ``error(f"{what}...")`` when it is not an archive.

    ``what`` names the file ("x.npz", or "x.npz is not an agent checkpoint"), and each message adds
    ``: <the reason>`` to it; the format name in the metadata is left for the caller to check.
    ``arrays=False`` reads the metadata alone (the arrays come back empty): enough to tell what a file
    is without loading its weights. Entries named in ``headers_only`` come back as read-only
    stand-ins of their shape and dtype, read from their headers (no data).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(b"\x80"):
        raise error(f"{what}: it is a Python pickle; pickles can run code, so they are never loaded")
    if head.startswith(b"\x93NUMPY"):
        raise error(f"{what}: it is a single .npy array, not an .npz archive")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise error(f"{what}: it is not an .npz archive")
    if not zipfile.is_zipfile(path):
        raise error(f"{what}: it is damaged or incomplete (truncated?)")
    _check_directory(path, what, error)
    _check_sizes(path, what, error)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                listed = ", ".join(data.files) or "none"
                raise error(f"{what}: it has no 'meta' entry (entries: {listed})")
            names = data.files if arrays else ["meta"]
            contents = {
                name: _header_only(data, name) if name in headers_only else data[name] for name in names
            }
    except error:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise error(
                f"{what}: it holds pickled Python objects, which could run code and are never loaded"
            ) from None
        raise error(f"{what}: it is damaged ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, RuntimeError) as exc:
        raise error(f"{what}: it is truncated or damaged ({exc})") from None
    raw = contents.pop("meta")
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise error(f"{what}: 'meta' must be a JSON string (0-d unicode array); got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise error(f"{what} ('meta' is not valid JSON: {exc})") from None
    except RecursionError:
        raise error(f"{what} ('meta' nests lists or objects too deeply)") from None
    if not isinstance(meta, dict):
        raise error(f"{what} ('meta' is not a JSON object)")
    return meta, contents


def _check_directory(path: Path, what: str, error: type[Exception]) -> None:
    """Refuse an archive of more than :data:`MAX_ENTRIES` entries from its end record, before
    ``zipfile`` reads the directory (a few bytes per entry on disk, about a kilobyte in memory)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise error(f"{what}: it is damaged or incomplete (truncated?)")
    (entries, directory_bytes) = struct.unpack("<HI", tail[at + 10 : at + 16])
    # zipfile walks the directory by its size, not the count: bound both (an entry's record is 46
    # bytes and its name; the lab's names are short)
    if entries > MAX_ENTRIES or directory_bytes > MAX_ENTRIES * 1024:
        raise error(f"{what}: it has over {MAX_ENTRIES:,} entries; the lab's files have a few hundred")


def _check_sizes(path: Path, what: str, error: type[Exception]) -> None:
    """Refuse, from the ``.npy`` headers alone, an archive whose arrays would not fit the lab's bounds
    (:mod:`lab.core.limits`) or claim more data than the archive holds: nothing is allocated first."""
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            if len(archive.infolist()) > MAX_ENTRIES:
                raise error(
                    f"{what}: it has over {MAX_ENTRIES:,} entries; the lab's files have a few hundred"
                )
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):  # numpy would hand back its raw bytes
                    raise error(f"{what}: its entry {info.filename!r} is not an array (.npy)")
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as f:
                    shape, dtype, offset = _read_header(f)
                if dtype.hasobject:
                    raise error(
                        f"{what}: {name!r} holds pickled Python objects, "
                        "which could run code and are never loaded"
                    )
                nbytes = math.prod(shape) * dtype.itemsize
                limit = MAX_META_BYTES if name == "meta" else MAX_ARRAY_BYTES
                if nbytes > limit:
                    raise error(
                        f"{what}: its {name!r} entry declares {_size(nbytes)} ({shape} {dtype}); "
                        f"the lab reads at most {_size(limit)} per entry"
                    )
                if nbytes > info.file_size - offset:
                    raise error(
                        f"{what}: its {name!r} entry declares {_size(nbytes)} but holds "
                        f"{_size(max(info.file_size - offset, 0))} (damaged or forged)"
                    )
                total += nbytes
    except error:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, RuntimeError) as exc:
        raise error(f"{what}: it is truncated or damaged ({exc})") from None
    if total > MAX_ARCHIVE_BYTES:
        raise error(
            f"{what}: its arrays declare {_size(total)}; the lab reads at most {_size(MAX_ARCHIVE_BYTES)}"
        )


def _read_header(f: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, dtype and data offset of an open ``.npy`` stream, from its header only."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    return tuple(int(n) for n in shape), dtype, f.tell()


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} bytes"


def _header_only(data: Any, name: str) -> np.ndarray:
    """A stand-in of an entry's shape and dtype, read from its ``.npy`` header only (no data)."""
    with data.zip.open(f"{name}.npy") as f:
        shape, dtype, _ = _read_header(f)
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)
