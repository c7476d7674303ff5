"""rl-baselines3-zoo hyperparameter files, read as they are: ``lab train --zoo dqn.yml --env CartPole-v1``.

A zoo file maps env ids to entries like::

    CartPole-v1:
      n_timesteps: !!float 5e4
      policy: 'MlpPolicy'
      learning_rate: !!float 2.3e-3
      policy_kwargs: "dict(net_arch=[256, 256])"

``n_timesteps`` becomes the run's ``total_timesteps``, ``policy`` is checked (an MLP or CNN policy:
the lab picks the encoder from the observation space), ``n_envs`` is a hyperparameter of the
policy-gradient agents, ``normalize`` (true, or ``"dict(norm_obs=..., norm_reward=...)"``) becomes
their ``normalize_observations`` / ``normalize_reward``, and ``policy_kwargs`` — Python source in the
zoo — is parsed as data, never executed: only ``dict(...)``/``{...}`` of literals, and ``nn.ReLU``-style
activation names, are accepted. Zoo keys the lab does not do (``frame_stack``, gSDE, wrappers,
callbacks) are a clear error rather than silently ignored.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.spec import load_spec_file

POLICIES = ("MlpPolicy", "CnnPolicy")
UNSUPPORTED = ("frame_stack", "env_wrapper", "callback", "vec_env_wrapper", "use_sde", "sde_sample_freq")
ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "ELU": "elu", "LeakyReLU": "leaky_relu", "GELU": "gelu"}


class ZooError(LabError):
    """A zoo file or entry the lab cannot use."""


def zoo_entry(path: str | Path, env_id: str) -> tuple[dict[str, Any], int | None]:
    """The hyperparameters of ``env_id``'s entry in a zoo file, and its ``n_timesteps`` (or None)."""
    path = Path(path)
    data = load_spec_file(path, "zoo hyperparameter file", ZooError, aliases=True)  # !!float is standard
    if not isinstance(data, dict):
        raise ZooError(f"{path} is not a zoo file (a mapping of env ids to hyperparameters)")
    short = env_id.removeprefix("lab/")
    entry = data.get(env_id, data.get(short))
    if entry is None:
        listed = ", ".join(map(str, data)) or "none"
        raise ZooError(f"{path} has no entry for {env_id} (entries: {listed})")
    if not isinstance(entry, dict):
        raise ZooError(f"{path}: the entry for {env_id} is not a mapping")
    return zoo_hyperparameters(entry, f"{path}:{env_id}")


def zoo_hyperparameters(
    entry: dict[str, Any], source: str = "the zoo entry"
) -> tuple[dict[str, Any], int | None]:
    """Split a zoo entry into the agent's hyperparameters and ``n_timesteps``."""
    entry = dict(entry)
    for key in UNSUPPORTED:
        if key in entry:
            raise ZooError(f"{source}: the lab does not support the zoo key {key!r}; remove it to go on")
    steps = entry.pop("n_timesteps", None)
    if steps is not None:
        if (
            isinstance(steps, bool)
            or not isinstance(steps, (int, float))
            or not math.isfinite(steps)
            or steps < 1
            or steps != int(steps)
        ):
            raise ZooError(f"{source}: n_timesteps must be a whole number >= 1; got {steps!r}")
        steps = int(steps)
    policy = entry.pop("policy", None)
    if policy is not None and policy not in POLICIES:
        raise ZooError(f"{source}: policy {policy!r} is not one the lab has ({', '.join(POLICIES)})")
    if isinstance(entry.get("policy_kwargs"), str):
        entry["policy_kwargs"] = parse_policy_kwargs(entry["policy_kwargs"], source)
    if "normalize" in entry:
        entry.update(_normalize_options(entry.pop("normalize"), source))
    return entry, steps


def _normalize_options(value: Any, source: str) -> dict[str, bool]:
    """The zoo's ``normalize``: a bool for both, or a dict of ``norm_obs`` / ``norm_reward``."""
    if isinstance(value, str):  # "dict(norm_obs=True, norm_reward=False)", read as data like policy_kwargs
        value = parse_policy_kwargs(value, f"{source} normalize")
    if isinstance(value, bool):
        return {"normalize_observations": value, "normalize_reward": value}
    if isinstance(value, dict) and set(value) <= {"norm_obs", "norm_reward", "gamma"}:
        if value.get("gamma") not in (None,):
            raise ZooError(f"{source}: normalize's own gamma is not supported (the agent's gamma is used)")
        return {
            "normalize_observations": bool(value.get("norm_obs", True)),
            "normalize_reward": bool(value.get("norm_reward", True)),
        }
    raise ZooError(
        f"{source}: normalize must be true/false or dict(norm_obs=..., norm_reward=...); got {value!r}"
    )


def parse_policy_kwargs(text: str, source: str = "policy_kwargs") -> dict[str, Any]:
    """``"dict(net_arch=[256, 256], activation_fn=nn.ReLU)"`` as data, without running it."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ZooError(f"{source}: policy_kwargs {text!r} is not a dict(...) expression") from None
    value = _literal(tree, text, source)
    if not isinstance(value, dict):
        raise ZooError(f"{source}: policy_kwargs {text!r} is not a dict(...) expression")
    return value


def _literal(node: ast.AST, text: str, source: str) -> Any:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(kw.arg is not None for kw in node.keywords)  # no ** unpacking
    ):
        return {kw.arg: _literal(kw.value, text, source) for kw in node.keywords}
    if isinstance(node, ast.Dict) and None not in node.keys:  # a None key is a ** unpacking
        pairs = zip(node.keys, node.values, strict=True)
        return {_literal(k, text, source): _literal(v, text, source) for k, v in pairs}  # type: ignore[arg-type]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item, text, source) for item in node.elts]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
    ):
        return -node.operand.value
    if (
        isinstance(node, ast.Attribute)
        and ast.unparse(node.value) in ("nn", "th.nn", "torch.nn")
        and node.attr in ACTIVATIONS
    ):
        return ACTIVATIONS[node.attr]
    raise ZooError(
        f"{source}: cannot read {ast.unparse(node)!r} in policy_kwargs {text!r} "
        "(only literals, dict(...) and nn.<Activation> names are read; nothing is executed)"
    )
