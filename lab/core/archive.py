"""Array archives: one ``.npz`` of named arrays plus a JSON metadata string, never pickle.

Agent checkpoints (``agents/common/checkpoint.py``) and generative model files
(``generative/checkpoint.py``) share this layout, each with its own ``format`` name in the
metadata. Files cross machines, so they are data, never code: :func:`read_archive` loads with
``allow_pickle=False`` and turns every way a file can be wrong (truncated, not a zip, a pickled
object inside, metadata that is not a JSON object) into one error of the caller's class. Writes are
atomic: a temporary file in the same folder, then ``os.replace``, so a reader never sees half a
file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.files import default_file_mode


def write_archive(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` (stored as the 0-d unicode array ``"meta"``) atomically."""
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the metadata string")
    document = json.dumps(meta, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_file_mode())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(document), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def read_archive(
    path: Path, what: str, error: type[Exception], arrays: bool = True, headers_only: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of an existing file; ``error(f"{what}...")`` when it is not an archive.

    ``what`` reads like "x.npz is not an agent checkpoint"; the format name in the metadata is left
    for the caller to check. ``arrays=False`` reads the metadata alone (the arrays come back empty):
    enough to tell what a file is without loading its weights. Entries named in ``headers_only``
    come back as read-only stand-ins of their shape and dtype, read from their headers (no data).
    """
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x80"):
        raise error(f"{what}: it is a Python pickle; pickles can run code, so they are never loaded")
    if head.startswith(b"\x93NUMPY"):
        raise error(f"{what}: it is a single .npy array, not an .npz archive")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise error(f"{what}: it is not an .npz archive")
    if not zipfile.is_zipfile(path):
        raise error(f"{what}: it is damaged or incomplete (truncated?)")
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
        raise error(f"{what}, or it is damaged: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, RuntimeError) as exc:
        raise error(f"{what}, or it is truncated or damaged: {exc}") from None
    raw = contents.pop("meta")
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise error(f"{what}: 'meta' must be a JSON string (0-d unicode array); got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise error(f"{what} ('meta' is not valid JSON: {exc})") from None
    if not isinstance(meta, dict):
        raise error(f"{what} ('meta' is not a JSON object)")
    return meta, contents


def _header_only(data: Any, name: str) -> np.ndarray:
    """A stand-in of an entry's shape and dtype, read from its ``.npy`` header only (no data)."""
    with data.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)
