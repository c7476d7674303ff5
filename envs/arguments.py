"""Checks of the envs' constructor arguments, which often arrive as text (``-k king_moves=false``
read wrongly, a YAML string): a flag given as the string ``"False"`` must not turn the option on, as
``bool("False")`` would. Each check returns the value as the env stores it, or raises
:class:`~envs.errors.EnvError` naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.errors import EnvError


def flag(name: str, value: Any) -> bool:
    """A true/false option: a bool (numpy's included), else an error."""
    if not isinstance(value, (bool, np.bool_)):
        raise EnvError(f"{name} must be true or false; got {value!r}")
    return bool(value)


def number(name: str, value: Any) -> float:
    """A number (int or float, not a bool or a string), else an error; its range is the env's to
    check."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise EnvError(f"{name} must be a number; got {value!r}")
    return float(value)
