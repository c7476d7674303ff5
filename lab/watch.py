"""``lab watch``: a trained agent plays in the viewer, with its state values drawn over the grid
(tabular agents), or a bar chart under it: a DQN's Q-values, a policy's action probabilities (or
Gaussian mean) with its value estimate, for the state on screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.core.errors import LabError


def watch(
    target: str | Path,
    env_id: str | None = None,
    episodes: int | None = None,
    fps: float = 8.0,
    seed: int = 0,
    record_dir: str | Path | None = None,
    **viewer_args: Any,
) -> list[Path]:
    """Open the viewer on the agent of a run or model file; returns the replays recorded (``record_dir``).

    ``viewer_args`` go to :class:`lab.viewer.Viewer` (``scale``, ``paused``, and for tests ``window``
    and ``keys``).
    """
    from lab.evaluation import env_action, grid_world
    from lab.panels import agent_panel
    from lab.recording import RecordEpisodes
    from lab.targets import make_target_env, resolve_target
    from lab.train import load_model
    from lab.viewer import LiveSource, Viewer, episode_stream, value_overlay

    if episodes is not None and episodes < 1:
        raise LabError("--episodes must be at least 1")
    if fps <= 0:
        raise LabError("--fps must be positive")
    resolved = resolve_target(target, env_id)
    env = make_target_env(resolved, render_mode="rgb_array")
    agent = load_model(resolved.model_path, env=env)
    algorithm = getattr(agent, "name", type(agent).__name__)
    if record_dir is not None:
        env = RecordEpisodes(env, record_dir, f"watch:{algorithm}")

    def act(obs: Any, info: dict[str, Any]) -> Any:
        action, _ = agent.predict(obs, deterministic=True)
        return env_action(action, env.action_space)

    overlays = []
    grid = grid_world(env)
    if grid is not None and hasattr(agent, "values") and hasattr(agent, "greedy_policy"):
        overlays.append(value_overlay(grid.model, agent.values(), agent.greedy_policy(), enabled=True))
    panel = agent_panel(agent, env)  # Q-values, action probabilities or a Gaussian's mean, as bars
    if panel is not None:
        overlays.append(panel)
    title = f"{env.spec.id if env.spec else resolved.env_id} - {algorithm} ({resolved.model_path.name})"
    source = LiveSource(lambda: episode_stream(env, act, seed=seed, episodes=episodes), title=title)
    Viewer(source, fps, overlays=overlays, **viewer_args).run()
    env.close()
    return list(env.saved) if isinstance(env, RecordEpisodes) else []
