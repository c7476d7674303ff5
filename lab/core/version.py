"""The lab's version: the installed ``rl-lab`` distribution's, read once from its metadata.

Part of the foundation: it imports nothing from the rest of the lab, so ``agents`` and
``generative`` may use it too.
"""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def lab_version() -> str:
    """The installed rl-lab version (``"unknown"`` when the lab runs without being installed)."""
    try:
        return importlib.metadata.version("rl-lab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
