"""The lab: the foundation (``lab.core``, and ``lab.nets``, the supervised core) under everything, and
the application on top: the ``lab`` command, runs, replays, the viewer, and ``lab.gen`` for the
generative models. See docs/design.md for the layers."""

from lab.core.version import lab_version

__version__ = lab_version()
