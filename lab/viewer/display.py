"""Whether a window can open: commands that need one say so in one line, naming what works headless."""

from __future__ import annotations

from lab.core.errors import LabError


def require_display(command: str, instead: str) -> None:
    """Raise a :class:`LabError` naming ``instead`` (what to run headless) when no window can open."""
    from envs.window import has_display

    if not has_display():
        raise LabError(
            f"{command} opens a window, and there is no display here (no DISPLAY or WAYLAND_DISPLAY, "
            f"one that cannot be reached, or SDL_VIDEODRIVER=dummy); {instead}"
        )
