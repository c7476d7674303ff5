"""The interactive viewer: a pygame loop that plays a stream of frames with a HUD and keyboard control.

``sources`` holds what it plays (:class:`ReplaySource`, :class:`LiveSource`), ``loop`` the window,
keys and HUD (:class:`Viewer`) and the same pictures for videos (:func:`video_frames`), ``overlays``
the drawings toggled over the frame (the value heatmap), ``display`` the one-line error of a command
that needs a window where there is no display (:func:`require_display`).
"""

from lab.viewer.display import require_display
from lab.viewer.loop import (
    FPS_STEPS,
    KeyReader,
    Viewer,
    save_screenshot,
    screenshot_failure,
    short_number,
    status_lines,
    video_frames,
    window_keys,
    with_overlays,
)
from lab.viewer.overlays import Overlay, cached, tinted_states, value_heatmap, value_overlay
from lab.viewer.sources import FrameSource, LiveSource, ReplaySource, ViewFrame, episode_stream

__all__ = [
    "FPS_STEPS",
    "FrameSource",
    "KeyReader",
    "LiveSource",
    "Overlay",
    "ReplaySource",
    "ViewFrame",
    "Viewer",
    "cached",
    "episode_stream",
    "require_display",
    "save_screenshot",
    "screenshot_failure",
    "short_number",
    "status_lines",
    "tinted_states",
    "value_heatmap",
    "value_overlay",
    "video_frames",
    "window_keys",
    "with_overlays",
]
