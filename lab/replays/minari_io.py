"""Replays to and from `Minari <https://minari.farama.org/>`_ datasets, the offline-RL format.

A replay already has Minari's episode layout (``observations`` with one row more than ``actions``;
``rewards``, ``terminations``, ``truncations``; ``infos``), so the round trip is exact: every array
keeps its values, shape and dtype, and each episode keeps its reset seed. The dataset records the
environment's spec (id, arguments, step limit), so ``dataset.recover_environment()`` rebuilds it
after ``import envs``. What a replay has beyond Minari's fields (its id, source, creation time and
lab version) travels in each episode's metadata. Frames are not exported: the environment renders
them again from the states.

Reading a dataset never imports code: the env id it names must already be registered here, with
the entry point registered under that id (a dataset's ``entry_point`` is data, not an instruction).
Minari is an optional dependency (``pip install -e '.[minari]'``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lab.replays.format import Episode, ReplayError, load_episode, replay_path, save_episode

# Each episode's metadata in the dataset carries these replay fields under one key, as JSON. The
# spec's kwargs include the registered defaults; ``env_kwargs`` keeps the replay's own, as written.
LAB_METADATA = "lab_replay"
REPLAY_FIELDS = ("id", "env_kwargs", "max_episode_steps", "source", "created", "lab_version")

# Minari's id form, ``(namespace/)name-vN``, in plain letters, digits, ``_`` and ``-``: Minari makes
# the dataset's folder from the id before it checks it, so the lab checks first
DATASET_ID = re.compile(r"(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+-v[0-9]+")


def check_dataset_id(dataset_id: str) -> str:
    if not DATASET_ID.fullmatch(dataset_id):
        raise ReplayError(
            f"a Minari dataset id is (namespace/)name-vVERSION in letters, digits, _ and -, such as "
            f"lab/maze-expert-v0; got {dataset_id!r}"
        )
    return dataset_id


def _local_datasets(minari: Any) -> Any:
    """The local datasets, or a ReplayError when Minari's folder holds one it cannot read."""
    try:
        return minari.list_local_datasets()
    except (ValueError, OSError, KeyError) as exc:
        raise ReplayError(f"Minari cannot list its local datasets: {exc}") from None


@contextmanager
def _minari() -> Iterator[Any]:
    """The ``minari`` module, its advisory warnings (no author, no code link) silenced."""
    try:
        import minari
    except ImportError:
        raise ReplayError(
            "Minari datasets need the minari package: pip install -c constraints.txt -e '.[minari]'"
        ) from None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"minari(\.|$)")
        yield minari


def export_minari(
    paths: Sequence[str | Path], dataset_id: str, description: str | None = None, author: str | None = None
) -> tuple[str, int, int]:
    """Write the replays at ``paths`` as the local Minari dataset ``dataset_id``.

    All replays must come from one environment (id, arguments and step limit), as a dataset has
    one env spec. Returns ``(dataset_id, episodes, steps)``. An existing dataset is never replaced.
    """
    import gymnasium as gym

    from lab.core.environments import make_env

    if not paths:
        raise ReplayError("no replays to export")
    check_dataset_id(dataset_id)
    episodes = [load_episode(path) for path in paths]
    for path, episode in zip(paths, episodes, strict=True):
        if episode.length == 0:
            raise ReplayError(f"{path} has no steps; a Minari episode holds at least one")
    groups: dict[str, list[Path]] = {}
    for path, episode in zip(paths, episodes, strict=True):
        key = json.dumps([episode.env_id, episode.env_kwargs, episode.max_episode_steps], sort_keys=True)
        groups.setdefault(key, []).append(Path(path))
    if len(groups) > 1:
        shown = [f"{key} ({len(files)} files, e.g. {files[0].name})" for key, files in groups.items()]
        more = f"; and {len(shown) - 4} more" if len(shown) > 4 else ""
        raise ReplayError(
            f"a Minari dataset holds one environment, but these replays come from {len(groups)}: "
            f"{'; '.join(shown[:4])}{more}; export each on its own (lab replays FOLDER --export-minari "
            "ID --env ENV_ID)"
        )
    first = episodes[0]
    env = make_env(first.env_id, first.env_kwargs, max_episode_steps=first.max_episode_steps)
    # Gymnasium cannot write a callable vector entry point as JSON; the dataset rebuilds single envs.
    spec = dataclasses.replace(env.spec, vector_entry_point=None)
    observation_space, action_space = env.observation_space, env.action_space
    env.close()
    with _minari() as minari:
        from minari.data_collector import EpisodeBuffer

        if dataset_id in _local_datasets(minari):
            raise ReplayError(f"a local Minari dataset {dataset_id!r} exists already; choose another name")
        buffers = [
            EpisodeBuffer(
                id=index,
                seed=episode.seed,
                observations=episode.observations,
                actions=episode.actions,
                rewards=list(episode.rewards),
                terminations=list(episode.terminations),
                truncations=list(episode.truncations),
                infos=dict(episode.infos),
            )
            for index, episode in enumerate(episodes)
        ]
        sources = sorted({episode.source for episode in episodes})
        try:
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=spec,
                algorithm_name=", ".join(sources),
                author=author,
                description=description or f"{len(episodes)} replays of {first.env_id} recorded by rl-lab",
                observation_space=observation_space,
                action_space=action_space,
                jpeg_encoding=False,  # lossless: pixel observations come back bit for bit
            )
            metadata = [{LAB_METADATA: json.dumps({k: e.meta()[k] for k in REPLAY_FIELDS})} for e in episodes]
            dataset.storage.update_episode_metadata(metadata, range(len(episodes)))
        except BaseException as exc:
            _remove_dataset(minari, dataset_id)  # it did not exist before: nothing half-made stays
            if isinstance(exc, ValueError | gym.error.Error):
                raise ReplayError(f"Minari refused dataset {dataset_id!r}: {exc}") from None
            raise
        return dataset_id, len(episodes), int(sum(episode.length for episode in episodes))


def _remove_dataset(minari: Any, dataset_id: str) -> None:
    """Delete what Minari made of a dataset whose export failed."""
    import shutil

    from minari.storage import get_dataset_path

    path = get_dataset_path(dataset_id)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def import_minari(dataset_id: str, folder: str | Path) -> list[Path]:
    """Write each episode of the local Minari dataset ``dataset_id`` as a replay in ``folder``."""
    with _minari() as minari:
        if dataset_id not in _local_datasets(minari):
            raise ReplayError(f"no local Minari dataset {dataset_id!r} (see `minari list local`)")
        dataset = minari.load_dataset(dataset_id)
        env_id, env_kwargs, max_steps = _env_of(dataset.storage.metadata, dataset_id)
        indices = list(dataset.episode_indices)
        metadata = list(dataset.storage.get_episode_metadata(indices))
        episodes: list[Episode] = []  # all read and checked before the first file is written
        for meta, data in zip(metadata, dataset.iterate_episodes(indices), strict=True):
            try:
                lab_meta = json.loads(str(meta.get(LAB_METADATA, "{}")))
            except ValueError:
                lab_meta = None
            if not isinstance(lab_meta, dict):
                raise ReplayError(f"{dataset_id}: episode {data.id} has malformed {LAB_METADATA} metadata")
            if not isinstance(data.observations, np.ndarray) or not isinstance(data.actions, np.ndarray):
                raise ReplayError(
                    f"{dataset_id}: episode {data.id} has structured spaces; replays hold arrays only"
                )
            seed = meta.get("seed")
            if seed is None:
                raise ReplayError(
                    f"{dataset_id}: episode {data.id} has no reset seed, so it cannot be replayed"
                )
            kwargs = lab_meta.get("env_kwargs", env_kwargs)
            steps = lab_meta.get("max_episode_steps", max_steps)  # the replay's own: null stays null
            if not isinstance(kwargs, dict) or not (steps is None or isinstance(steps, int)):
                raise ReplayError(f"{dataset_id}: episode {data.id} has malformed env arguments")
            episode = Episode(
                id=str(lab_meta.get("id", f"minari-{data.id}")),
                seed=int(seed),
                env_id=env_id,
                env_kwargs=kwargs,
                max_episode_steps=steps,
                observations=data.observations,
                actions=data.actions,
                rewards=np.asarray(data.rewards, dtype=np.float64),
                terminations=np.asarray(data.terminations, dtype=bool),
                truncations=np.asarray(data.truncations, dtype=bool),
                infos={k: np.asarray(v) for k, v in (data.infos or {}).items()},
                source=str(lab_meta.get("source", f"minari:{dataset_id}")),
                **{k: str(lab_meta[k]) for k in ("created", "lab_version") if k in lab_meta},
            )
            episodes.append(episode)
        if not episodes:
            raise ReplayError(f"{dataset_id} holds no episodes")
        written: list[Path] = []
        try:
            for episode in episodes:
                written.append(save_episode(episode, replay_path(folder, env_id, episode.source)))
        except BaseException:
            for path in written:  # all or nothing: a retry does not duplicate the first ones
                path.unlink(missing_ok=True)
            raise
        return written


def _env_of(metadata: dict[str, Any], dataset_id: str) -> tuple[str, dict[str, Any], int | None]:
    """The env id, arguments and step limit a dataset records, checked against this installation."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the lab/ ids)

    raw = metadata.get("env_spec")
    if not raw:
        raise ReplayError(f"{dataset_id} records no environment, so its episodes cannot be replayed")
    try:
        spec = json.loads(raw)
        env_id, kwargs, steps = spec["id"], spec.get("kwargs") or {}, spec.get("max_episode_steps")
    except (ValueError, KeyError, TypeError):
        raise ReplayError(f"{dataset_id}: its env spec is not readable JSON with an id") from None
    if not isinstance(env_id, str) or ":" in env_id or env_id not in gym.registry:
        raise ReplayError(
            f"{dataset_id} names env {env_id!r}, which is not registered here; nothing imported"
        )
    registered = gym.registry[env_id].entry_point
    if isinstance(registered, str) and spec.get("entry_point") not in (None, registered):
        raise ReplayError(
            f"{dataset_id} says {env_id} is {spec.get('entry_point')!r}, but here it is {registered!r}; "
            "nothing imported"
        )
    if not isinstance(kwargs, dict) or not (steps is None or isinstance(steps, int)):
        raise ReplayError(f"{dataset_id}: its env arguments or step limit are malformed")
    return env_id, kwargs, steps
