"""Video files of frames: a GIF (the last frame held a moment) or an H.264 MP4, written
atomically, with the checks that can be made before any frame is rendered (the path, the frame
rate, the size the format holds)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core.errors import LabError

if TYPE_CHECKING:
    import numpy as np

VIDEO_SUFFIXES = (".gif", ".mp4")
# the most pixels a side: GIF stores sizes in 16 bits, and libx264 refuses frames over 16,384 a side
MAX_VIDEO_SIDE = {".gif": 65_535, ".mp4": 16_384}
GIF_HOLD_SECONDS = 1.0  # the last frame of a GIF stays this long before it loops
# GIF delays are hundredths of a second, and browsers play one under 20 ms at about 100 ms
GIF_MIN_DELAY_MS = 20


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
