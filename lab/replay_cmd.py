"""``lab replay FILE`` (watch, export or verify a replay) and ``lab replays [FOLDER]`` (list them).

:func:`add_commands` adds both to the ``lab`` command's subparsers; :func:`export_video` writes
an episode as a GIF or MP4 without a window.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.errors import LabError

if TYPE_CHECKING:  # numpy and the replay format load with the commands, so `lab --help` stays fast
    import numpy as np

    from lab.replays import Episode

VIDEO_SUFFIXES = (".gif", ".mp4")
# the most pixels a side: GIF stores sizes in 16 bits, and libx264 refuses frames over 16,384 a side
MAX_VIDEO_SIDE = {".gif": 65_535, ".mp4": 16_384}
GIF_HOLD_SECONDS = 1.0  # the last frame of a GIF stays this long before it loops
# GIF delays are hundredths of a second, and browsers play one under 20 ms at about 100 ms
GIF_MIN_DELAY_MS = 20


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


def check_video_path(out: str | Path, fps: float) -> None:
    """A clear error, before any frame is made, for a video path that is not .gif or .mp4, is a
    folder or lies where no file can be written, or a frame rate that is not positive."""
    path = Path(out)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise LabError(f"videos are .gif or .mp4; got {path.name!r}")
    if fps <= 0:
        raise LabError(f"the frame rate must be positive; got {fps:g}")
    if path.is_dir():
        raise LabError(f"{path} is a folder: give a file name")
    _check_writable_folder(path)


def _check_writable_folder(path: Path) -> None:
    """A :class:`LabError` when the folders that ``path`` lies in cannot be made or written to (the
    first of them there already must be a folder this process may write in)."""
    there = path.parent
    while not there.exists() and there != there.parent:  # the folders still missing are made on writing
        there = there.parent
    if not there.is_dir():
        raise LabError(f"{there} is a file, so {path} cannot be written: give another path")
    if not os.access(there, os.W_OK | os.X_OK):
        raise LabError(f"{path} cannot be written: no permission to write in {there} (or it is read-only)")


def check_video_size(out: str | Path, height: int, width: int, scale: int = 1) -> None:
    """A clear error for ``height`` x ``width`` frames that, enlarged ``scale`` times, are larger than
    the format of ``out`` (``.gif`` or ``.mp4``) allows: call it before the frames are rendered."""
    suffix = Path(out).suffix.lower()
    limit = MAX_VIDEO_SIDE[suffix]
    if max(height, width) * scale <= limit:
        return
    fits = limit // max(height, width)
    hint = f"ask for --scale {fits} or less" if fits >= 1 else "the frames themselves are too large"
    raise LabError(
        f"{Path(out).name}: {width}x{height} frames enlarged {scale} times are {width * scale}x"
        f"{height * scale} pixels, and {'a GIF' if suffix == '.gif' else 'an H.264 MP4'} holds at most "
        f"{limit:,} a side: {hint}"
    )


def gif_stride(fps: float) -> int:
    """A GIF at ``fps`` keeps 1 frame in this many (and the last), so that each frame stays at least
    :data:`GIF_MIN_DELAY_MS`: above 50 frames a second a browser would play it slower, not faster."""
    return max(1, math.ceil(fps * GIF_MIN_DELAY_MS / 1000 - 1e-9))


def gif_note(out: str | Path, fps: float) -> str:
    """What the "wrote" line adds for a video at ``fps``: the frames a GIF leaves out ("" for none)."""
    stride = gif_stride(fps) if Path(out).suffix.lower() == ".gif" else 1
    if stride == 1:
        return ""
    return (
        f"; a GIF plays at most {1000 // GIF_MIN_DELAY_MS} frames a second, so it keeps 1 frame in "
        f"{stride}, at {fps / stride:g} fps (an .mp4 keeps them all)"
    )


def write_video(frames: Sequence[np.ndarray], out: str | Path, fps: float, scale: int = 1) -> Path:
    """Write equally sized ``(H, W, 3)`` frames as a GIF (the last held a moment) or an H.264 MP4,
    atomically (a temporary file, then a rename); ``scale`` enlarges each frame that many times
    (each pixel a ``scale`` x ``scale`` block, as the window shows it). A GIF above 50 fps keeps 1
    frame in :func:`gif_stride` and the last. An MP4 that ffmpeg could not encode is a
    :class:`LabError`, and a file already at ``out`` is left as it was."""
    import numpy as np

    from lab.core.files import atomic_path
    from lab.core.limits import MAX_VIDEO_BYTES

    check_video_path(out, fps)
    out = Path(out)
    if len(frames):
        check_video_size(out, *np.asarray(frames[0]).shape[:2], scale)
    stride = gif_stride(fps) if out.suffix.lower() == ".gif" else 1
    if stride > 1:
        kept = [*range(0, len(frames) - 1, stride), len(frames) - 1]
        frames, fps = [frames[i] for i in kept], fps / stride
    if scale != 1:
        if sum(np.asarray(f).nbytes for f in frames) * scale**2 > MAX_VIDEO_BYTES:
            raise LabError(
                f"{len(frames):,} frames enlarged {scale} times would pass the {MAX_VIDEO_BYTES / 2**30:g} "
                "GiB a video may hold: ask for a smaller --scale or fewer --episodes"
            )
        frames = [np.asarray(f).repeat(scale, axis=0).repeat(scale, axis=1) for f in frames]
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".gif":
            _write_gif(frames, tmp, fps)
        else:
            _write_mp4(frames, tmp, fps, out)
    return out


def _write_gif(frames: Sequence[np.ndarray], path: Path, fps: float) -> None:
    import imageio.v3 as iio
    import numpy as np

    step_ms = round(1000 / fps)
    durations = [step_ms] * len(frames)
    durations[-1] = max(step_ms, round(1000 * GIF_HOLD_SECONDS))
    # Pillow takes one number, not a list, for a GIF of a single frame (a replay of no steps)
    duration = durations if len(frames) > 1 else durations[0]
    iio.imwrite(path, [np.asarray(f) for f in frames], extension=".gif", duration=duration, loop=0)


def _write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float, out: Path) -> None:
    """H.264 in yuv420p (plays everywhere), so odd frame sizes are padded by one pixel. ffmpeg's
    writer reports no failure when it closes, so the file is read back: it must hold every frame."""
    import imageio_ffmpeg
    import numpy as np

    first = np.asarray(frames[0])
    h, w = first.shape[:2]
    ph, pw = h + h % 2, w + w % 2
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (pw, ph),
        fps=fps,
        codec="libx264",
        macro_block_size=1,
        quality=8,
        output_params=["-f", "mp4"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    try:
        for frame in frames:
            frame = np.asarray(frame, dtype=np.uint8)
            if frame.shape[:2] != (h, w):
                raise LabError(f"the episode's frames change size ({first.shape} then {frame.shape})")
            if (ph, pw) != (h, w):
                frame = np.pad(frame, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            writer.send(np.ascontiguousarray(frame))
    except OSError:  # ffmpeg stopped reading frames
        raise LabError(f"ffmpeg could not encode {out} (its message is above); nothing was written") from None
    finally:
        writer.close()
    written = _frames_in(path)
    if written != len(frames):
        raise LabError(
            f"ffmpeg could not encode {out}: {written} of {len(frames)} frames written "
            "(its message is above); nothing was written"
        )


def _frames_in(path: Path) -> int:
    """The video frames of the MP4 at ``path``, counted without decoding (0 when ffmpeg cannot read it)."""
    import re
    import subprocess

    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    command += ["-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    return int(counts[-1]) if result.returncode == 0 and counts else 0


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
    if args.env:
        env_id = resolve_env_id(args.env)
        rows = [(path, s) for path, s in rows if s.env_id == env_id]
    if not rows:
        of = f" of {resolve_env_id(args.env)}" if args.env else ""
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
