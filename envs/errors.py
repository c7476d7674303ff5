"""Errors the environments raise for bad input. Each message names the problem and the fix."""

from __future__ import annotations


class EnvError(ValueError):
    """Bad input to an environment: a map, an argument, an action."""


class MapError(EnvError):
    """A map or a grid-world argument that cannot make a valid environment."""


class InvalidActionError(EnvError):
    """An action outside the environment's action space."""
