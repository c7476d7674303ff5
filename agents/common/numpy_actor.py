"""Acting for a plain MLP actor-critic in numpy: the same numbers as :meth:`ActorCritic.sample`
without torch's per-call overhead, which costs more than the arithmetic for the handful of
observations a vector env gives (the rollouts) or one at a time (greedy ``predict``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.common.numpy_mlp import log_softmax, mlp_forward
from agents.common.policies import ActorCritic


def mlp_tower(body: nn.Module, head: nn.Linear) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str] | None:
    """The (weight, bias) pairs of ``Linear -> act -> ... -> head`` and the activation, or None."""
    layers = list(body.children()) if isinstance(body, nn.Sequential) else None
    if layers is None or len(layers) % 2:
        return None
    kinds = {nn.Tanh if isinstance(m, nn.Tanh) else type(m) for m in layers[1::2]}  # lab.nets' Tanh too
    if not all(isinstance(m, nn.Linear) for m in layers[0::2]) or kinds not in ({nn.Tanh}, {nn.ReLU}, set()):
        return None
    activation = "relu" if kinds == {nn.ReLU} else "tanh"
    return [(m.weight, m.bias) for m in [*layers[0::2], head]], activation


def plain_mlp_policy(policy: ActorCritic) -> bool:
    """Vector observations, separate tanh/ReLU MLPs, a categorical or state-independent Gaussian: the
    shape :func:`numpy_actor` knows."""
    return (
        isinstance(policy.encoder, nn.Flatten)
        and isinstance(policy.trunk, nn.Identity)
        and not policy.state_dependent_std
        and not policy.squash
        and mlp_tower(policy.pi_body, policy.action_head) is not None
        and mlp_tower(policy.vf_body, policy.value_head) is not None
    )


def numpy_actor(policy: ActorCritic) -> Any:
    """For a :func:`plain_mlp_policy`, a numpy function ``(obs batch, rng, deterministic) -> (raw
    actions, log-probabilities, values)``, the same as :meth:`ActorCritic.sample` without torch's
    per-call overhead (several times cheaper for the handful of observations a vector env gives).
    The weights are views of the torch parameters, so they never go stale. None for other policies."""
    if not plain_mlp_policy(policy):
        return None
    towers = []
    for body, head in ((policy.pi_body, policy.action_head), (policy.vf_body, policy.value_head)):
        layers, activation = mlp_tower(body, head)  # type: ignore[misc]
        towers.append(([(w.detach().numpy(), b.detach().numpy()) for w, b in layers], activation))
    log_std = None if policy.discrete else policy.log_std.detach().numpy()
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def act(obs: np.ndarray, rng: np.random.Generator, deterministic: bool = False) -> tuple:
        x = np.asarray(obs, dtype=np.float32)
        x = x.reshape(len(x), math.prod(x.shape[1:]))  # not -1: an empty batch has no size to infer
        out = mlp_forward(x, *towers[0])
        values = mlp_forward(x, *towers[1])[:, 0]
        if log_std is None:
            log_p = log_softmax(out)
            if deterministic:
                actions = log_p.argmax(axis=1)
            else:
                cdf = np.exp(log_p).cumsum(axis=1)
                actions = np.minimum((rng.random((len(x), 1)) > cdf).sum(axis=1), out.shape[1] - 1)
            log_probs = log_p[np.arange(len(x)), actions]
        else:
            std = np.exp(log_std)
            actions = (
                out if deterministic else (out + std * rng.standard_normal(out.shape)).astype(np.float32)
            )
            z = (actions - out) / std
            log_probs = (-0.5 * z * z - log_std - half_log_2pi).sum(axis=1)
        return actions, log_probs.astype(np.float32), values.astype(np.float32)

    return act
