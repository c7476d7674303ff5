"""The error the ``lab`` command reports as one line (no traceback unless ``--debug``)."""

from __future__ import annotations


class LabError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""
