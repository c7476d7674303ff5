"""Actor-critic networks for the policy-gradient agents, and running mean/std normalisers.

:class:`ActorCritic` reads observations of any space the supervised core has an encoder for and
gives a distribution over actions and a state value:

- ``Discrete`` actions: a categorical over logits.
- ``Box`` actions: a diagonal Gaussian, with a learned state-independent log std (SB3's default) or
  a state-dependent one (``state_dependent_std``); ``squash_output`` passes samples through tanh and
  scales them to the action bounds (with the log-probability corrected for the change of variables).
  Unsquashed samples are clipped to the bounds when sent to the env, as SB3 does, while the
  unclipped sample is what is trained on.

Its layout follows stable-baselines3's ``MlpPolicy``/``CnnPolicy``: vector observations go straight
into separate policy and value MLPs (``net_arch=[64, 64]`` for both, or ``dict(pi=[...], vf=[...])``),
tanh activations and orthogonal initialisation (policy output gain 0.01, value 1); images and state
numbers first pass through one shared encoder (a CNN, an embedding; ``features_dim`` and
``cnn_channels`` size it). ``shared_trunk=True`` makes the policy and value share their hidden
layers too.

:mod:`agents.common.numpy_actor` acts for a plain MLP policy in numpy, without torch's per-call
overhead on a few observations.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.common.errors import AgentError
from lab.core.limits import check_widths

LOG_STD_BOUNDS = (-20.0, 2.0)
# Fewer actions than this: the categorical's log-softmax runs over the batch dimension. Torch's CPU
# kernel over a short last dimension does not vectorise (about 6 ns an element: 95 us for 2,048 rows
# of 4 actions, against 24 us for 16); over the first dimension of the transpose it vectorises across
# the batch, which takes 2-3x off the categorical's forward and backward for 4-12 actions at 2,048 rows
# and is no slower for 2 (from 16 on, the last-dimension kernel is the faster). The values are the
# same to rounding.
FEW_ACTIONS = 16
POLICY_KWARGS = {
    "net_arch": [64, 64],
    "activation_fn": "tanh",
    "ortho_init": True,
    "log_std_init": 0.0,
    "squash_output": False,
    "state_dependent_std": False,
    "shared_trunk": False,
    "features_dim": None,  # images and state numbers: the shared encoder's output size (256 / 64)
    "cnn_channels": None,  # the grid CNN's channels per layer (32, 64 by default)
    # text envs: a lab lm train model.npz whose logits start the actor, or a model's architecture
    # (LanguageModel.config: how a checkpoint rebuilds it before putting its weights back)
    "language_model": None,
}


def _mlp(width: int, sizes: list[int], activation: str) -> tuple[nn.Module, int]:
    from lab.nets import layers

    stack: list[nn.Module] = []
    for size in sizes:
        stack += [nn.Linear(width, size), layers.activation(activation)]
        width = size
    return nn.Sequential(*stack), width


def split_net_arch(net_arch: Any) -> tuple[list[int], list[int]]:
    """SB3's ``net_arch``: one list for both networks, or ``{"pi": [...], "vf": [...]}``."""
    if isinstance(net_arch, dict):
        if set(net_arch) - {"pi", "vf"}:
            raise ValueError(f"net_arch as a mapping takes pi and vf; got {sorted(net_arch)}")
        return list(net_arch.get("pi", [])), list(net_arch.get("vf", []))
    return list(net_arch), list(net_arch)


def policy_kwargs_not_a_mapping(value: Any) -> AgentError:
    """The error for a ``policy_kwargs`` that is not a mapping, rl-zoo's text form named as such."""
    text = isinstance(value, str)
    zoo = " (rl-zoo's text form is read from zoo files, with lab train --zoo)" if text else ""
    return AgentError(
        f"policy_kwargs must be a mapping: {{net_arch: [64, 64]}} in YAML, dict(net_arch=[64, 64]) in "
        f"Python; got {value!r:.80}{zoo}"
    )


def check_policy_kwargs(value: Any) -> dict[str, Any]:
    """``policy_kwargs`` as given, checked (an :class:`AgentError` naming what is wrong)."""
    if not isinstance(value, dict):
        raise policy_kwargs_not_a_mapping(value)
    unknown = set(value) - set(POLICY_KWARGS)
    if unknown:
        raise AgentError(f"policy_kwargs has no {sorted(unknown)[0]!r} (it takes {', '.join(POLICY_KWARGS)})")
    resolved = {**POLICY_KWARGS, **value}
    try:
        pi, vf = split_net_arch(resolved["net_arch"])
    except (TypeError, ValueError) as exc:
        raise AgentError(f"net_arch must be a list of widths or dict(pi=[...], vf=[...]): {exc}") from None
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in [*pi, *vf]):
        raise AgentError(f"net_arch widths must be whole numbers >= 1; got {resolved['net_arch']!r}")
    check_widths("net_arch", pi, AgentError)
    check_widths("net_arch", vf, AgentError)
    from lab.nets.layers import ACTIVATIONS

    if resolved["activation_fn"] not in ACTIVATIONS:
        raise AgentError(
            f"activation_fn must be one of {', '.join(ACTIVATIONS)}; got {resolved['activation_fn']!r}"
        )
    for flag in ("ortho_init", "squash_output", "state_dependent_std", "shared_trunk"):
        if not isinstance(resolved[flag], bool):
            raise AgentError(f"policy_kwargs {flag} must be true or false; got {resolved[flag]!r}")
    for key in ("features_dim", "cnn_channels"):
        value_ = resolved[key]
        sizes = value_ if key == "cnn_channels" and isinstance(value_, (list, tuple)) else [value_]
        if value_ is not None and not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in sizes
        ):
            raise AgentError(f"policy_kwargs {key} must be whole numbers >= 1; got {value_!r}")
        if value_ is not None:
            check_widths(f"policy_kwargs {key}", list(sizes), AgentError)
    lm = resolved["language_model"]
    if lm is not None and not isinstance(lm, (str, dict)):
        raise AgentError(
            f"policy_kwargs language_model must be a path to a model.npz (or a model's architecture, "
            f"as checkpoints record it); got {lm!r}"
        )
    log_std = resolved["log_std_init"]
    if isinstance(log_std, bool) or not isinstance(log_std, (int, float)) or not math.isfinite(log_std):
        raise AgentError(f"log_std_init must be a number; got {log_std!r}")
    return copy.deepcopy(value)  # the caller's dict and its lists stay theirs to change


class ActorCritic(nn.Module):
    """Observations -> (action distribution parameters, value)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, **kwargs: Any) -> None:
        super().__init__()
        from lab.nets import encoder_for_space, layers
        from lab.nets.encoders import token_layout

        options = {**POLICY_KWARGS, **kwargs}
        activation = options["activation_fn"]
        vector = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
        if vector and token_layout(observation_space) is None:
            self.encoder: nn.Module = nn.Flatten()
            width = int(observation_space.shape[0])
        else:
            features = options["features_dim"] or (256 if _is_image(observation_space) else 64)
            self.encoder = encoder_for_space(
                observation_space, features=features, cnn_channels=options["cnn_channels"]
            )
            width = self.encoder.out_features
        pi_arch, vf_arch = split_net_arch(options["net_arch"])
        if options["shared_trunk"]:
            self.trunk, width = _mlp(width, pi_arch, activation)
            self.pi_body, pi_width = nn.Identity(), width
            self.vf_body, vf_width = nn.Identity(), width
        else:
            self.trunk = nn.Identity()
            self.pi_body, pi_width = _mlp(width, pi_arch, activation)
            self.vf_body, vf_width = _mlp(width, vf_arch, activation)
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            n_out = int(action_space.n)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            n_out = int(action_space.shape[0])
        else:
            raise ValueError(f"policies take Discrete or 1-D Box action spaces; got {action_space}")
        self.action_dim = n_out
        self.language_model: nn.Module | None = None
        lm = options["language_model"]
        if lm is not None:
            from lab.nets.language_model import LanguageModelActor, build_language_model, load_language_model

            if isinstance(lm, dict):  # the architecture only: the weights come from a checkpoint
                model = build_language_model(lm, "policy_kwargs language_model")
            else:
                model = load_language_model(lm)[0]
            self.language_model = LanguageModelActor(model, observation_space)
        self.state_dependent_std = bool(options["state_dependent_std"]) and not self.discrete
        self.squash = bool(options["squash_output"]) and not self.discrete
        self.action_head = nn.Linear(pi_width, 2 * n_out if self.state_dependent_std else n_out)
        self.value_head = nn.Linear(vf_width, 1)
        if not self.discrete:
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))
            self.log_std = nn.Parameter(
                torch.full((n_out,), float(options["log_std_init"])),
                requires_grad=not self.state_dependent_std,
            )
        if options["ortho_init"]:
            for body in (self.trunk, self.pi_body, self.vf_body):
                layers.initialize(body, "orthogonal", gain_value=math.sqrt(2))
            layers.initialize(self.action_head, "orthogonal", gain_value=0.01)
            layers.initialize(self.value_head, "orthogonal", gain_value=1.0)
            if self.state_dependent_std:
                with torch.no_grad():
                    self.action_head.bias[n_out:] = float(options["log_std_init"])

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits or mean, log std (empty for categorical), value)`` for a batch of observations."""
        x = self.encoder(obs)
        if x.dtype != torch.float32:
            x = x.float()
        x = self.trunk(x)
        out = self.action_head(self.pi_body(x)) if self.language_model is None else self.language_model(obs)
        value = self.value_head(self.vf_body(x)).squeeze(-1)
        if self.discrete:
            return out, out[:, :0], value
        if self.state_dependent_std:
            mean, log_std = out.chunk(2, dim=-1)
            return mean, log_std.clamp(*LOG_STD_BOUNDS), value
        return out, self.log_std.expand_as(out), value

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs)[2]

    def log_prob_entropy(
        self,
        params: torch.Tensor,
        log_std: torch.Tensor,
        actions: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of the stored ``actions`` (pre-squash samples) and the entropy (per sample).

        ``mask`` (categorical only, ``(N, n)`` booleans): the distribution over the allowed actions
        alone (see :func:`mask_logits`). For a squashed Gaussian the entropy has no closed form; the
        Gaussian's is used, as SB3 does (as a bonus it only needs to grow with the spread).
        """
        if self.discrete:
            logits = mask_logits(params, mask)
            few = logits.shape[-1] < FEW_ACTIONS
            dim = 0 if few else 1  # the actions' dimension: laid out (actions, batch) when few
            log_p = torch.log_softmax(logits.t() if few else logits, dim=dim)
            chosen = log_p.gather(dim, actions.long().unsqueeze(dim)).squeeze(dim)
            return chosen, -(log_p.exp() * log_p).sum(dim)
        z = (actions - params) * torch.exp(-log_std)
        log_prob = (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        entropy = (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(-1)
        if self.squash:
            log_prob = log_prob - _tanh_log_det(actions).sum(-1)
        return log_prob, entropy

    @torch.inference_mode()
    def sample(
        self,
        obs: torch.Tensor,
        generator: torch.Generator,
        deterministic: bool = False,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(raw actions, log-probabilities, values)``; raw actions go through :meth:`to_env`.
        ``mask``: draw among the allowed actions only (categorical)."""
        params, log_std, value = self.forward(obs)
        if self.discrete:
            params = mask_logits(params, mask)
            if deterministic:
                actions = params.argmax(-1)
            else:
                u = torch.rand(params.shape[0], 1, generator=generator)
                cdf = torch.softmax(params, dim=-1).cumsum(-1)
                actions = (u > cdf).sum(-1).clamp_(max=params.shape[1] - 1)
        else:
            actions = (
                params
                if deterministic
                else params + log_std.exp() * torch.randn(params.shape, generator=generator)
            )
        log_prob, _ = self.log_prob_entropy(params, log_std, actions)  # params already masked
        return actions, log_prob, value

    def mask_rows(self, action_masks: Any, rows: int) -> torch.Tensor:
        """A user's ``action_masks`` as ``(rows, n)`` booleans, checked against the action space."""
        if not self.discrete:
            raise AgentError("action_masks apply to Discrete actions only")
        mask, n = np.asarray(action_masks, dtype=bool), self.action_dim
        if mask.size != rows * n:
            whole = rows and mask.size % rows == 0
            got = str(mask.size // rows) if whole else f"{mask.size} entries for {rows} observations"
            raise AgentError(f"action_masks need {n} entries a row, one row per observation; got {got}")
        mask = mask.reshape(rows, n)
        blocked = ~mask.any(axis=1)
        if blocked.any():  # every logit masked: the choice would fall among the forbidden actions
            raise AgentError(
                f"action_masks row {int(np.flatnonzero(blocked)[0])} allows no action: each observation "
                "needs at least one allowed (True) action"
            )
        return torch.from_numpy(mask)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """What the env receives for raw sampled actions: indices, or actions within the bounds."""
        if self.discrete:
            return actions.numpy().astype(np.int64)
        if self.squash:
            scaled = self.low + (torch.tanh(actions) + 1.0) * 0.5 * (self.high - self.low)
            return scaled.numpy()
        return torch.maximum(torch.minimum(actions, self.high), self.low).numpy()


# The logit of a masked-out action: its probability underflows to exactly 0 in float32, while the
# entropy's p * log p stays finite (0 * -1e8), which -inf would make NaN (sb3-contrib uses -1e8 too).
MASKED_LOGIT = -1e8


def mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``logits`` with the actions ``mask`` rules out (False) set to :data:`MASKED_LOGIT`, so the
    categorical distribution is the policy's renormalised over the allowed actions."""
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)``, computed stably as ``2 (log 2 - u - softplus(-2u))``."""
    return 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))


def _is_image(space: spaces.Space) -> bool:
    from lab.nets.encoders import image_layout

    return image_layout(space) is not None


class RunningMeanStd:
    """Mean and variance of everything seen so far, merged batch by batch (Chan et al.'s parallel rule)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        n = batch.shape[0]
        if n == 0:
            return
        mean, var = batch.mean(axis=0), batch.var(axis=0)
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def normalize(self, x: np.ndarray, clip: float = 10.0) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -clip, clip).astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.mean": self.mean,
            f"{prefix}.var": self.var,
            f"{prefix}.count": np.array(self.count),
        }

    def restore(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        if f"{prefix}.mean" in arrays:
            self.mean = np.array(arrays[f"{prefix}.mean"], dtype=np.float64)
            self.var = np.array(arrays[f"{prefix}.var"], dtype=np.float64)
            self.count = float(arrays[f"{prefix}.count"])
