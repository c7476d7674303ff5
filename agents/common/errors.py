"""The error agents raise for bad input. Each message names the problem and the fix."""

from __future__ import annotations


class AgentError(ValueError):
    """Bad input to an agent: an env it cannot handle, a hyperparameter, a checkpoint file."""
