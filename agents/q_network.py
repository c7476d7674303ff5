"""DQN's networks: the Q-network (optionally dueling), its ``policy_kwargs`` and greedy action, its
Adam optimizer, and their state as checkpoint arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.errors import AgentError
from agents.numpy_mlp import mlp_forward


class QNetwork(nn.Module):
    """Observations -> one value per action; ``dueling`` splits it into V(s) + A(s, a) - mean_a A.

    A vector observation goes straight into an MLP with ``net_arch`` hidden layers (stable-baselines3's
    architecture for the same ``net_arch``); state numbers and images go through the lab's encoder
    for the space, ``net_arch[0]`` features wide, then an MLP with the remaining layers.
    """

    def __init__(self, space: spaces.Space, n_actions: int, net_arch: list[int], dueling: bool) -> None:
        super().__init__()
        from lab.nets import MLP, encoder_for_space

        self.vector = isinstance(space, spaces.Box) and len(space.shape) == 1
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

    def greedy_action(self) -> Callable[[np.ndarray], int]:
        """A function ``obs -> argmax_a Q(obs, a)`` for one observation.

        On a vector through a plain Linear/ReLU MLP it runs in numpy over views of the weights: at
        batch size 1 that is several times cheaper than a torch call, and as the optimizer and
        ``load_state_dict`` write the weights in place, the views always hold the current ones.
        """
        leaves = [m for m in self.head.modules() if not list(m.children())]
        linears = [m for m in leaves if isinstance(m, nn.Linear)]
        plain = [nn.ReLU if i % 2 else nn.Linear for i in range(2 * len(linears) - 1)]
        if not self.vector or [type(m) for m in leaves] != plain:

            @torch.inference_mode()
            def torch_greedy(obs: np.ndarray) -> int:
                return int(self(torch.as_tensor(np.asarray(obs)[None])).argmax())

            return torch_greedy

        weights = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
        first = 1 if self.dueling else 0  # argmax_a of V + A - mean A is argmax_a A

        def numpy_greedy(obs: np.ndarray) -> int:
            return int(mlp_forward(np.asarray(obs, dtype=np.float32), weights, "relu")[first:].argmax())

        return numpy_greedy


def check_policy_kwargs(value: Any) -> dict[str, list[int]]:
    """DQN's ``policy_kwargs``: ``net_arch``, a list of layer widths, and nothing else."""
    if not isinstance(value, dict) or set(value) - {"net_arch"}:
        raise AgentError(f"policy_kwargs takes net_arch only (e.g. dict(net_arch=[64, 64])); got {value!r}")
    arch = value.get("net_arch", [64, 64])
    if not isinstance(arch, (list, tuple)) or not all(
        isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in arch
    ):
        raise AgentError(f"net_arch must be a list of layer widths; got {arch!r}")
    return {"net_arch": [int(w) for w in arch]}


def make_adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """torch's Adam in one fused kernel for all parameters (on the CPU since torch 2.4), else foreach:
    for networks this small the per-tensor calls of the default form are much of a gradient step."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def network_arrays(nets: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> dict[str, np.ndarray]:
    """The networks' weights (``<prefix>.<name>``) and Adam's state (``adam.<i>.<key>``) as arrays."""
    arrays = {
        f"{prefix}.{k}": v.numpy().copy() for prefix, net in nets.items() for k, v in net.state_dict().items()
    }
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            arrays[f"adam.{i}.{key}"] = np.array(value.numpy() if torch.is_tensor(value) else value)
    return arrays


def restore_networks(
    arrays: dict[str, np.ndarray], nets: dict[str, nn.Module], optimizer: torch.optim.Optimizer
) -> None:
    """Put :func:`network_arrays` back, into the existing tensors (views of them stay valid)."""
    for prefix, net in nets.items():
        saved = {
            k[len(prefix) + 1 :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix + ".")
        }
        expected = net.state_dict()
        if set(saved) != set(expected) or any(saved[k].shape != expected[k].shape for k in expected):
            raise AgentError(
                "the checkpoint's network does not fit this DQN (another net_arch, dueling setting or "
                "observation space); load it with the hyperparameters it was saved with"
            )
        net.load_state_dict(saved)
    state = optimizer.state_dict()
    try:
        state["state"] = {
            i: {k: torch.as_tensor(arrays[f"adam.{i}.{k}"]) for k in ("step", "exp_avg", "exp_avg_sq")}
            for i in state["param_groups"][0]["params"]
            if f"adam.{i}.exp_avg" in arrays
        }
    except KeyError as exc:
        raise AgentError(f"the checkpoint's optimizer state is incomplete (no {exc})") from None
    optimizer.load_state_dict(state)
