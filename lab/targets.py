"""What ``lab eval`` and ``lab watch`` accept: a run directory or a saved model, and the env it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from lab.core.errors import LabError
from lab.runs import RunDir
from lab.spec import RunSpec, load_spec_file, spec_from_dict


@dataclass
class Target:
    """A model to load and the environment to run it in."""

    model_path: Path
    env_id: str
    env_kwargs: dict[str, Any]
    max_episode_steps: int | None
    seed: int
    spec: RunSpec | None = None


def resolve_target(target: str | Path, env_id: str | None = None, action: str = "eval") -> Target:
    """A run directory (its final model, or its latest checkpoint) or a model file; ``env_id`` overrides.
    ``action`` names the command for the error that a run of another kind than an agent's gets."""
    from lab.core.environments import resolve_env_id
    from lab.train import saved_env

    path = Path(target)
    if path.is_dir():
        run = RunDir.open(path, "agent", action)
        spec = spec_from_dict(load_spec_file(run.spec), str(run.spec))
        model = run.model_file()
        if env_id is not None:
            return Target(model, resolve_env_id(env_id), {}, None, spec.seed, spec)
        return Target(model, spec.env, dict(spec.env_kwargs), spec.max_episode_steps, spec.seed, spec)
    if not path.exists():
        raise LabError(f"{path} is neither a run directory nor a model file")
    saved_id, saved_kwargs, saved_steps = saved_env(path)
    if env_id is not None:
        return Target(path, resolve_env_id(env_id), {}, None, 0)
    if saved_id is None:
        raise LabError(f"{path} does not say which environment it was trained on; pass --env ENV_ID")
    return Target(path, saved_id, saved_kwargs, saved_steps, 0)


def make_target_env(target: Target, **extra: Any) -> gym.Env:
    from lab.core.environments import make_env

    if target.max_episode_steps is not None:
        extra["max_episode_steps"] = target.max_episode_steps
    return make_env(target.env_id, target.env_kwargs, **extra)


def evaluate_target(
    target: str | Path, env_id: str | None = None, episodes: int = 100, seed: int = 0, progress: bool = True
) -> Any:
    """``lab eval``: load, check the model fits the env, and evaluate greedily (with a bar counting
    the episodes unless ``progress`` is false)."""
    from lab.evaluation import eval_copies, evaluate
    from lab.progress import measuring_bar
    from lab.train import load_model

    if episodes < 1:
        raise LabError("--episodes must be at least 1")
    resolved = resolve_target(target, env_id)
    env = make_target_env(resolved)
    agent = load_model(resolved.model_path, env=env)
    copies = eval_copies(lambda: make_target_env(resolved), episodes, first=env)
    with measuring_bar("episodes", disable=not progress) as bar:
        task = bar.add_task("", total=episodes)
        return evaluate(
            agent, copies, episodes, seed=seed, round_index=1_000_000, on_episode=lambda: bar.advance(task)
        )
