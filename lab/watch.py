"""``lab watch``: a trained agent plays in the viewer, with its state values drawn over the grid
(tabular agents), or a bar chart under it: a DQN's Q-values, a policy's action probabilities (or
Gaussian mean) with its value estimate, for the state on screen.

Without a display it runs only what needs no window: ``--to OUT`` writes the episodes as a video,
``--record --episodes N`` records N episodes as replays; anything else is a one-line error.
"""

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
    to: str | Path | None = None,
    hud: bool = False,
    **viewer_args: Any,
) -> list[Path]:
    """Open the viewer on the agent of a run or model file; returns the files written: the replays
    recorded (``record_dir``) and the video (``to``: ``episodes`` episodes, default 1, no window).

    With ``episodes`` the viewer closes after that many. Without a display (and without a test's
    own ``keys`` reader) only ``to`` or ``record_dir`` with ``episodes`` run; they need no window.
    ``viewer_args`` go to :class:`lab.viewer.Viewer` (``scale``, ``paused``, and for tests ``window``
    and ``keys``).
    """
    from envs.window import has_display

    if episodes is not None and episodes < 1:
        raise LabError("--episodes must be at least 1")
    if fps <= 0:
        raise LabError("--fps must be positive")
    if hud and to is None:
        raise LabError("--hud goes with --to (the window always shows the status lines)")
    if to is not None:
        from lab.video import check_video_path

        check_video_path(to, fps)
    window = to is None and not (record_dir is not None and episodes is not None)
    if window and "keys" not in viewer_args and not has_display():
        from lab.viewer import require_display

        require_display(
            "lab watch",
            f"without one: lab watch {target} --to out.gif (or .mp4), "
            f"or lab watch {target} --record --episodes N",
        )

    from lab.evaluation import env_action, greedy_action, grid_world
    from lab.panels import agent_panel
    from lab.recording import RecordEpisodes
    from lab.targets import make_target_env, resolve_target
    from lab.train import load_model
    from lab.viewer import LiveSource, Viewer, episode_stream, value_overlay

    resolved = resolve_target(target, env_id, "watch")
    env = make_target_env(resolved, render_mode="rgb_array")
    agent = load_model(resolved.model_path, env=env)
    algorithm = getattr(agent, "name", type(agent).__name__)
    if record_dir is not None:
        env = RecordEpisodes(env, record_dir, f"watch:{algorithm}")

    def act(obs: Any, info: dict[str, Any]) -> Any:
        return env_action(greedy_action(agent, obs, info), env.action_space)

    overlays = []
    grid = grid_world(env)
    if grid is not None and hasattr(agent, "values") and hasattr(agent, "greedy_policy"):
        overlays.append(value_overlay(grid.model, agent.values(), agent.greedy_policy(), enabled=True))
    panel = agent_panel(agent, env)  # Q-values, action probabilities or a Gaussian's mean, as bars
    if panel is not None:
        overlays.append(panel)
    title = f"{env.spec.id if env.spec else resolved.env_id} - {algorithm} ({resolved.model_path.name})"
    written: list[Path] = []
    try:
        if to is not None:
            from lab.video import check_video_size, write_video
            from lab.viewer import video_frames

            scale = viewer_args.get("scale", 1)
            stream = LiveSource(
                lambda: episode_stream(env, act, seed=seed, episodes=episodes or 1), title=title
            )
            frames = video_frames(
                stream, overlays, hud=hud, check=lambda f: check_video_size(to, *f.shape[:2], scale)
            )
            written.append(write_video(frames, to, fps, scale))
        elif not window:  # record N episodes, no window
            for _ in episode_stream(env, act, seed=seed, episodes=episodes):
                pass
        else:
            source = LiveSource(lambda: episode_stream(env, act, seed=seed, episodes=episodes), title=title)
            Viewer(source, fps, overlays=overlays, quit_at_end=episodes is not None, **viewer_args).run()
    finally:
        env.close()
    return (list(env.saved) if isinstance(env, RecordEpisodes) else []) + written
