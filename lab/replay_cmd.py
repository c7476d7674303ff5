"""``lab replay FILE`` (watch, export or verify a replay) and ``lab replays [FOLDER]`` (list them).

:func:`add_commands` adds both to the ``lab`` command's subparsers; :func:`export_video` writes
an episode as a GIF or MP4 without a window.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.errors import LabError
from lab.video import check_video_path, check_video_size, gif_note, write_video

if TYPE_CHECKING:  # numpy and the replay format load with the commands, so `lab --help` stays fast
    import numpy as np

    from lab.replays import Episode


def add_commands(sub: Any) -> None:
    """Add ``replay`` and ``replays`` to the ``lab`` command's subparsers."""
    from lab.cli_types import scale

    p = sub.add_parser(
        "replay",
        help="watch a saved episode (keys: space pause, left/right step, [ ] 10 steps, +/- speed, "
        "r restart, s screenshot, v values, q quit), export it, or verify it",
        description="Watch a replay, export it as a GIF or MP4 (--to), or re-simulate it (--verify).",
    )
    p.add_argument("file", metavar="FILE", help="a replay (.npz), e.g. replays/examples/Maze-v0.npz")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--to", metavar="OUT", default=None, help="write a video (.gif or .mp4) instead of a window"
    )
    what.add_argument(
        "--verify",
        action="store_true",
        help="re-simulate it and check every step (exit status 1 if it differs)",
    )
    p.add_argument("--hud", action="store_true", help="with --to: the viewer's status lines under each frame")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frames per second (default: the environment's; a GIF above 50 keeps 1 frame in k, an MP4 all)",
    )
    p.add_argument(
        "--scale", type=scale, default=1, help="enlarge the picture this many times (window or --to)"
    )
    p.add_argument("--paused", action="store_true", help="open the window paused on the first frame")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser(
        "replays",
        help="list saved replays: environment, source, length, return (or export/import a Minari dataset)",
        description="List the replays in FOLDER; --export-minari writes them as a Minari (offline RL) "
        "dataset, --import-minari writes a local Minari dataset's episodes into FOLDER as replays.",
    )
    p.add_argument("folder", metavar="FOLDER", nargs="?", default="replays", help="default: ./replays")
    minari = p.add_mutually_exclusive_group()
    minari.add_argument(
        "--export-minari",
        metavar="DATASET_ID",
        help="write FOLDER's replays (of one environment) as a local Minari dataset, e.g. lab/maze/expert-v0",
    )
    minari.add_argument(
        "--import-minari", metavar="DATASET_ID", help="write a local Minari dataset's episodes into FOLDER"
    )
    p.add_argument(
        "--env", default=None, metavar="ENV_ID", help="only this env's replays (listed or exported)"
    )
    p.set_defaults(handler=cmd_replays)


def cmd_replay(args: argparse.Namespace) -> int:
    from lab.cli_types import MAX_FPS, MIN_FPS
    from lab.replays import env_fps, load_episode, verify_episode

    if args.fps is not None and not MIN_FPS <= args.fps <= MAX_FPS:
        raise LabError(f"--fps must be positive, from {MIN_FPS:g} to {MAX_FPS:g}; got {args.fps:g}")
    episode = load_episode(args.file)
    if args.verify:
        result = verify_episode(episode)
        print(f"{args.file}: {result}")
        return 0 if result.ok else 1
    fps = args.fps or env_fps(episode.env_id)
    if args.to is not None:
        path = export_video(episode, args.to, fps, hud=args.hud, path=Path(args.file), scale=args.scale)
        print(f"wrote {path} ({episode.length + 1} frames at {fps:g} fps){gif_note(path, fps)}")
        return 0
    if args.hud:
        raise LabError("--hud goes with --to (the window always shows the status lines)")
    from lab.viewer import require_display

    require_display("lab replay", f"export a video instead: lab replay {args.file} --to out.gif")
    play_replay(episode, Path(args.file), fps=fps, scale=args.scale, paused=args.paused)
    return 0


def play_replay(
    episode: Episode, path: Path | None = None, fps: float = 8.0, **viewer_args: Any
) -> list[Path]:
    """Show ``episode`` in the viewer until the user quits; returns the screenshots taken (in the
    current folder, named after the replay: never beside it, where the tracked examples live).

    ``viewer_args`` go to :class:`lab.viewer.Viewer` (``scale``, ``paused``, ``window``, ``keys``...).
    """
    from lab.viewer import Viewer

    source, overlays = replay_source(episode, path)
    viewer_args.setdefault("screenshot_stem", path.stem if path is not None else None)
    viewer = Viewer(source, fps, overlays=overlays, **viewer_args)
    viewer.run()
    return viewer.screenshots


def replay_source(episode: Episode, path: Path | None = None) -> tuple[Any, list[Any]]:
    """The viewer's :class:`~lab.viewer.ReplaySource` for ``episode``, and its overlays.

    On the lab's grid worlds the HUD names actions and how the episode ended, and ``v`` shows the
    optimal values and greedy actions (value iteration, gamma 0.99) over the frame.
    """
    from lab.replays import episode_frames, make_replay_env
    from lab.viewer import ReplaySource, cached, value_overlay

    frames = episode_frames(episode)
    names: Sequence[str] = ()
    ending = "out of time" if episode.truncated else ("episode over" if episode.terminated else "")
    overlays = []
    try:
        env = make_replay_env(episode)
    except LabError:
        env = None
    grid = getattr(env, "unwrapped", None)
    if env is not None:
        from lab.action_names import action_names

        names = action_names(env)
    if grid is not None and hasattr(grid, "model") and hasattr(grid, "transition_model"):
        from lab.play import ending as ending_words

        states = episode.infos.get("state")
        if states is not None and states.ndim == 1 and episode.terminated:
            ending = ending_words(grid, int(states[-1]), True)
        model = grid.model

        def plan() -> tuple[np.ndarray, np.ndarray]:  # computed the first time v is pressed
            from agents.planning import value_iteration

            result = value_iteration(grid.transition_model(), gamma=0.99)
            return result.V, result.policy

        overlays.append(value_overlay(model, cached(plan), name="optimal values"))
    if env is not None:
        env.close()
    label = f"{episode.source}, seed {episode.seed}"
    title = episode.env_id.removeprefix("lab/") + (f" - {path.name}" if path is not None else "")
    return ReplaySource(episode, frames, names, ending, title=title, label=label), overlays


def export_video(
    episode: Episode,
    out: str | Path,
    fps: float,
    hud: bool = False,
    path: Path | None = None,
    scale: int = 1,
) -> Path:
    """Write the episode's frames (stored, or re-rendered by re-simulation) as a GIF or an MP4,
    atomically, enlarged ``scale`` times; with ``hud``, the viewer's status lines (``path`` names the
    replay in them) under each."""
    from lab.replays import episode_frames
    from lab.viewer import video_frames

    check_video_path(out, fps)

    def check_size(frame: np.ndarray) -> None:
        check_video_size(out, *frame.shape[:2], scale)

    if hud:  # the status lines are drawn on every frame: check the first before the others
        source, _ = replay_source(episode, path)
        return write_video(video_frames(source, hud=True, check=check_size), out, fps, scale)
    return write_video(episode_frames(episode), out, fps, scale)  # checked there before scaling


def cmd_replays(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lab.core.environments import resolve_env_id
    from lab.replays import list_replays

    folder = Path(args.folder)
    if args.import_minari or args.export_minari:
        return minari_command(args, folder)
    rows = list_replays(folder)
    env_id = resolve_env_id(args.env) if args.env else None
    if env_id is not None:
        rows = [(path, s) for path, s in rows if s.env_id == env_id]
    if not rows:
        of = f" of {env_id}" if env_id else ""
        print(f"no replays{of} in {folder} (lab play records them; lab replay FILE plays one)")
        return 0
    table = Table(title=f"Replays in {folder} (lab replay FILE to watch one)")
    for name, justify in (("file", "left"), ("env", "left"), ("source", "left"), ("steps", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("return", justify="right")
    table.add_column("created")
    bad = 0
    for path, s in rows:
        name = escape(str(path.relative_to(folder)))
        if s.error is not None:
            bad += 1
            table.add_row(name, f"[red]unreadable: {escape(s.error)}[/red]", "", "", "", "")
            continue
        env = s.env_id.removeprefix("lab/") + (" (frames)" if s.has_frames else "")
        table.add_row(
            name,
            escape(env),
            escape(s.source),
            str(s.length),
            f"{s.total_return:g}",
            escape(s.created[:16].replace("T", " ")),
        )
    Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False).print(table)
    if bad:
        print(f"{bad} file(s) could not be read; they are listed with the reason")
    return 0


def minari_command(args: argparse.Namespace, folder: Path) -> int:
    """``lab replays FOLDER --export-minari ID [--env ENV]`` and ``--import-minari ID``."""
    from lab.core.environments import resolve_env_id
    from lab.replays import list_replays
    from lab.replays.minari_io import export_minari, import_minari

    if args.import_minari:
        if args.env:
            raise LabError(
                "--env picks the replays to list or export; --import-minari imports a whole dataset"
            )
        written = import_minari(args.import_minari, folder)
        print(f"wrote {len(written)} replays from Minari dataset {args.import_minari} into {folder}")
        return 0
    env_id = resolve_env_id(args.env) if args.env else None
    rows = list_replays(folder)
    paths = [p for p, s in rows if s.error is None and env_id in (None, s.env_id)]
    if not paths:
        raise LabError(f"no readable replays{f' of {env_id}' if env_id else ''} in {folder} to export")
    for path, s in rows:
        if s.error is not None:
            print(f"left out {path}: {s.error}", file=sys.stderr)
    name, episodes, steps = export_minari(paths, args.export_minari)
    print(f"wrote Minari dataset {name}: {episodes} episodes, {steps} steps (minari.load_dataset({name!r}))")
    return 0
