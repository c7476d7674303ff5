"""What the viewer plays: a :class:`FrameSource` of :class:`ViewFrame` s.

A recorded episode (:class:`ReplaySource`, seekable) for ``lab replay``, or a live stream
(:class:`LiveSource`, e.g. :func:`episode_stream`: an agent acting in an environment; not seekable
but restartable) for ``lab watch``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lab.replays import Episode


@dataclass(frozen=True)
class ViewFrame:
    """One frame to show and what the HUD says about it.

    ``step`` counts actions since the episode's reset (0 = just reset); ``action``, ``reward`` are
    those of the step that led here (None at reset); ``total`` is the return so far; ``state`` the
    environment state index when known (overlays use it); ``note`` says how an episode ended;
    ``obs`` is the observation the agent acts on next (live streams only; action panels read it).
    """

    frame: np.ndarray
    step: int
    episode: int | str | None = None
    action: str | None = None
    reward: float | None = None
    total: float = 0.0
    state: int | None = None
    note: str = ""
    obs: Any = field(default=None, repr=False, compare=False)  # what the agent acts on next (live only)


class FrameSource:
    """What the viewer plays. Subclasses provide :meth:`current`, :meth:`forward` and :meth:`restart`;
    seekable ones also :attr:`length`, :attr:`position` and :meth:`seek`."""

    title: str = ""
    seekable: bool = False

    def current(self) -> ViewFrame:
        raise NotImplementedError

    def forward(self) -> bool:
        """Move one frame on; False (staying put) at the end."""
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    @property
    def length(self) -> int:
        """The index of the last frame (the number of steps), seekable sources only."""
        raise TypeError(f"{type(self).__name__} is not seekable")

    @property
    def position(self) -> int:
        raise TypeError(f"{type(self).__name__} is not seekable")

    def seek(self, t: int) -> None:
        raise TypeError(f"{type(self).__name__} is not seekable")


class ReplaySource(FrameSource):
    """A recorded episode: frame ``t`` shows the state after ``t`` steps, ``0..episode.length``."""

    seekable = True

    def __init__(
        self,
        episode: Episode,
        frames: Sequence[np.ndarray],
        action_names: Sequence[str] = (),
        ending: str = "",
        title: str = "",
        label: str | None = None,
    ) -> None:
        if len(frames) != episode.length + 1:
            raise ValueError(
                f"an episode of {episode.length} steps has {episode.length + 1} frames; got {len(frames)}"
            )
        self.episode = episode
        self.frames = frames
        self.action_names = tuple(action_names)
        self.ending = ending
        self.title = title or episode.env_id
        self.label = label if label is not None else f"{episode.source}, seed {episode.seed}"
        self._returns = np.concatenate([[0.0], np.cumsum(episode.rewards)])
        self._states = episode.infos.get("state")
        self._t = 0

    @property
    def length(self) -> int:
        return self.episode.length

    @property
    def position(self) -> int:
        return self._t

    def seek(self, t: int) -> None:
        self._t = int(np.clip(t, 0, self.length))

    def forward(self) -> bool:
        if self._t >= self.length:
            return False
        self._t += 1
        return True

    def restart(self) -> None:
        self._t = 0

    def _action_name(self, action: np.ndarray) -> str:
        if action.ndim == 0 and action.dtype.kind in "iu" and 0 <= int(action) < len(self.action_names):
            return self.action_names[int(action)]
        return str(action.tolist())

    def current(self) -> ViewFrame:
        t, ep = self._t, self.episode
        return ViewFrame(
            frame=np.asarray(self.frames[t]),
            step=t,
            episode=self.label,
            action=None if t == 0 else self._action_name(ep.actions[t - 1]),
            reward=None if t == 0 else float(ep.rewards[t - 1]),
            total=float(self._returns[t]),
            state=None if self._states is None or self._states.ndim != 1 else int(self._states[t]),
            note=self.ending if t == self.length else "",
        )


class LiveSource(FrameSource):
    """A live stream: ``factory()`` returns a fresh iterator of :class:`ViewFrame` (e.g. an agent
    acting in an environment, episode after episode); :meth:`restart` calls it again."""

    def __init__(self, factory: Callable[[], Iterator[ViewFrame]], title: str = "") -> None:
        self.factory = factory
        self.title = title
        self._it: Iterator[ViewFrame] = iter(())
        self._view: ViewFrame | None = None
        self.restart()

    def restart(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
        self._it = iter(self.factory())
        try:
            self._view = next(self._it)
        except StopIteration:
            raise ValueError("the live source yielded no frame") from None

    def forward(self) -> bool:
        try:
            self._view = next(self._it)
        except StopIteration:
            return False
        return True

    def current(self) -> ViewFrame:
        assert self._view is not None
        return self._view


def episode_stream(
    env: Any, act: Callable[[Any, dict[str, Any]], Any], seed: int = 0, episodes: int | None = None
) -> Iterator[ViewFrame]:
    """Frames of ``env`` (made with ``render_mode="rgb_array"``) acted on by ``act(obs, info)``,
    episode after episode (``reset(seed=seed + k)`` for episode ``k``; forever when ``episodes`` is None).

    For a :class:`LiveSource`: ``LiveSource(lambda: episode_stream(env, act), title=...)``.
    On the lab's grid worlds actions are named and the last frame says how the episode ended.
    """
    from lab.action_names import action_names

    grid = env.unwrapped
    names = action_names(env)
    for k in itertools.count() if episodes is None else range(episodes):
        obs, info = env.reset(seed=seed + k)
        total, t, done = 0.0, 0, False
        state = info.get("state")
        yield ViewFrame(env.render(), 0, episode=k + 1, state=state, obs=obs)
        while not done:
            action = act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            t, total, done = t + 1, total + float(reward), bool(terminated or truncated)
            state = info.get("state")
            note = ""
            if done:
                note = "out of time" if not terminated else "episode over"
                if state is not None and hasattr(grid, "model"):
                    from lab.play import ending

                    note = ending(grid, int(state), bool(terminated))
            discrete = isinstance(action, (int, np.integer)) and 0 <= action < len(names)
            name = names[int(action)] if discrete else str(np.asarray(action).tolist())
            yield ViewFrame(
                env.render(), t, k + 1, name, float(reward), total, state, note, obs=None if done else obs
            )
