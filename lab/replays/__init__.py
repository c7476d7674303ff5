"""Replays: one episode (an agent's, a person's, an evaluation's) saved as one ``.npz`` file.

``format`` is the file format (:class:`Episode`, :func:`save_episode`, :func:`load_episode`,
:func:`list_replays`), ``recorder`` collects an episode as it is played (:class:`EpisodeRecorder`),
``verify`` re-simulates one (:func:`verify_episode`, :func:`episode_frames`).
"""

from lab.replays.format import (
    ARRAYS,
    FORMAT_VERSION,
    INFO_PREFIX,
    MAKE_ARGS,
    META_KEYS,
    SUFFIX,
    Episode,
    ReplayError,
    ReplaySummary,
    list_replays,
    load_episode,
    replay_path,
    save_episode,
)
from lab.replays.recorder import EpisodeRecorder
from lab.replays.verify import (
    Difference,
    VerifyResult,
    env_fps,
    episode_frames,
    make_replay_env,
    simulate,
    verify_episode,
)

__all__ = [
    "ARRAYS",
    "FORMAT_VERSION",
    "INFO_PREFIX",
    "MAKE_ARGS",
    "META_KEYS",
    "SUFFIX",
    "Difference",
    "Episode",
    "EpisodeRecorder",
    "ReplayError",
    "ReplaySummary",
    "VerifyResult",
    "env_fps",
    "episode_frames",
    "list_replays",
    "load_episode",
    "make_replay_env",
    "replay_path",
    "save_episode",
    "simulate",
    "verify_episode",
]
