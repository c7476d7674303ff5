"""The lab: the ``lab`` command, runs, replays and the viewer (and, in ``lab.nets``, the supervised core)."""

__version__ = "0.1.0"
