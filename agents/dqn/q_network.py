"""DQN's network: the Q-network (optionally dueling), its ``policy_kwargs`` and its greedy action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.common.errors import AgentError
from agents.common.numpy_mlp import mlp_forward
from agents.common.policies import policy_kwargs_not_a_mapping
from lab.core.limits import check_widths


class QNetwork(nn.Module):
    """Observations -> one value per action; ``dueling`` splits it into V(s) + A(s, a) - mean_a A.

    A vector observation goes straight into an MLP with ``net_arch`` hidden layers (stable-baselines3's
    architecture for the same ``net_arch``); state numbers and images go through the lab's encoder
    for the space, ``net_arch[0]`` features wide, then an MLP with the remaining layers.
    """

    def __init__(self, space: spaces.Space, n_actions: int, net_arch: list[int], dueling: bool) -> None:
        super().__init__()
        from lab.nets import MLP, encoder_for_space
        from lab.nets.encoders import token_layout

        self.vector = isinstance(space, spaces.Box) and len(space.shape) == 1 and token_layout(space) is None
        if self.vector:
            self.encoder: nn.Module = nn.Flatten()
            features, hidden = space.shape[0], tuple(net_arch)
        else:
            self.encoder = encoder_for_space(space, features=net_arch[0] if net_arch else 64)
            features, hidden = self.encoder.out_features, tuple(net_arch[1:])
        self.dueling = dueling
        self.head = MLP(features, n_actions + (1 if dueling else 0), hidden=hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.head(self.encoder(obs).float())
        if not self.dueling:
            return out
        value, advantage = out[:, :1], out[:, 1:]
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def numpy_greedy(self) -> Callable[[np.ndarray], Any] | None:
        """For a vector observation space and a plain Linear/ReLU MLP, a numpy function ``obs ->
        argmax_a Q(obs, a)``: an ``int`` for one observation, an array for a batch; None for other
        networks. It runs over views of the weights: for one observation or a few that is several
        times cheaper than a torch call, and as the optimizer and ``load_state_dict`` write the weights
        in place, the views always hold the current ones."""
        leaves = [m for m in self.head.modules() if not list(m.children())]
        linears = [m for m in leaves if isinstance(m, nn.Linear)]
        plain = [nn.ReLU if i % 2 else nn.Linear for i in range(2 * len(linears) - 1)]
        if not self.vector or [type(m) for m in leaves] != plain:
            return None
        weights = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
        first = 1 if self.dueling else 0  # argmax_a of V + A - mean A is argmax_a A

        def numpy_greedy(obs: np.ndarray) -> Any:
            x = np.asarray(obs, dtype=np.float32)
            advantages = mlp_forward(x, weights, "relu")[..., first:]
            return int(advantages.argmax()) if x.ndim == 1 else advantages.argmax(axis=-1)

        return numpy_greedy


def check_policy_kwargs(value: Any) -> dict[str, list[int]]:
    """DQN's ``policy_kwargs``: ``net_arch``, a list of layer widths, and nothing else."""
    if not isinstance(value, dict):
        raise policy_kwargs_not_a_mapping(value)
    if set(value) - {"net_arch"}:
        raise AgentError(f"DQN's policy_kwargs takes net_arch only; got {sorted(set(value) - {'net_arch'})}")
    arch = value.get("net_arch", [64, 64])
    if not isinstance(arch, (list, tuple)) or not all(
        isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in arch
    ):
        raise AgentError(f"net_arch must be a list of layer widths; got {arch!r}")
    check_widths("net_arch", [int(w) for w in arch], AgentError)
    return {"net_arch": [int(w) for w in arch]}


def check_replay_buffer_kwargs(value: Any) -> dict[str, bool]:
    """DQN's ``replay_buffer_kwargs``: stable-baselines3's ``handle_timeout_termination`` (true: a
    truncated episode's last step bootstraps from the next observation; false: it does not)."""
    if not isinstance(value, dict) or set(value) - {"handle_timeout_termination"}:
        raise AgentError(
            "replay_buffer_kwargs takes handle_timeout_termination only "
            f"(e.g. dict(handle_timeout_termination=False)); got {value!r}"
        )
    handle = value.get("handle_timeout_termination", True)
    if not isinstance(handle, bool):
        raise AgentError(f"handle_timeout_termination must be true or false; got {handle!r}")
    return dict(value)
