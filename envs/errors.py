"""Errors the environments raise for bad input. Each message names the problem and the fix."""

from __future__ import annotations


class EnvError(ValueError):
    """Bad input to an environment: a map, an argument, an action."""


class MapError(EnvError):
    """A map or a grid-world argument that cannot make a valid environment."""


class InvalidActionError(EnvError):
    """An action outside the environment's action space."""


class TextError(EnvError):
    """A text-generation argument that cannot make a valid environment (task, prompt, length)."""


class GrammarError(TextError):
    """A grammar file that cannot be read, or whose probabilities do not make a proper language."""


class VocabularyError(TextError):
    """A token outside the vocabulary, or a vocabulary over its configured size."""


class CorpusError(TextError):
    """A corpus file that is missing, empty or not UTF-8 text."""
