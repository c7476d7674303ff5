"""Finding and making the lab's environments from the command line, with errors a person can act on."""

from __future__ import annotations

import difflib
import inspect
import re
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from lab.core.errors import LabError
from lab.core.yaml_loader import load_yaml_value


def known_ids() -> list[str]:
    import envs

    return [entry.id for entry in (*envs.ENTRIES, *envs.TEXT_ENTRIES)]


def resolve_env_id(name: str) -> str:
    """A full id from what a person typed: ``lab/Maze-v0``, ``Maze-v0`` or ``Maze`` (any case)."""
    ids = known_ids()
    if name in gym.registry:
        return name
    if ":" in name:  # gymnasium.make would import the module before the name: never from here
        raise LabError(
            f"unknown environment {name!r}: a 'module:Name' id would import that module, and the lab "
            "makes registered environments only; run 'lab envs' to list them"
        )
    wanted = name.lower().removeprefix("lab/")
    for env_id in ids:
        short = env_id.removeprefix("lab/").lower()
        if wanted in (short, short.rsplit("-v", 1)[0]):
            return env_id
    close = difflib.get_close_matches(
        name, ids + [i.removeprefix("lab/").rsplit("-v", 1)[0] for i in ids], n=1
    )
    # gymnasium's own ids share many suffixes ("-v5"): suggest one only when it is nearly the same
    close = close or difflib.get_close_matches(
        name, [i for i in gym.registry if i not in ids], n=1, cutoff=0.8
    )
    if close:
        raise LabError(f"unknown environment {name!r}; did you mean {close[0]!r}?")
    raise LabError(
        f"unknown environment {name!r}: no such id is registered in this installation (an id from "
        "another package needs that package installed and imported); 'lab envs' lists the lab's "
        "worlds, 'lab envs --all' every id gymnasium has here"
    )


def registered_env_id(env_id: Any, source: str, error: type[Exception] = LabError) -> str:
    """``env_id`` when it is already registered (after ``import envs``), else ``error`` naming ``source``.

    For ids read from files (checkpoints, replays, model files): ``gymnasium.make("module:Name-v0")``
    imports ``module`` to find the id, so an id a file names must never reach it unless registered.
    """
    import envs  # noqa: F401  (registers the lab/ ids)

    if not isinstance(env_id, str) or not env_id:
        raise error(f"{source} names no environment (its env id is {env_id!r})")
    if ":" in env_id:
        raise error(
            f"{source}: its environment {env_id!r} is refused: a 'module:' id would import that module, "
            "and a file may only name registered environments ('lab envs' lists them)"
        )
    if env_id not in gym.registry:
        raise error(
            f"{source}: its environment {env_id!r} is not registered here; run 'lab envs' to list them"
        )
    return env_id


def parse_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``["size=15", "king_moves=true"]`` -> ``{"size": 15, "king_moves": True}`` (YAML scalars)."""
    kwargs: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise LabError(f"environment arguments are key=value; got {pair!r}")
        kwargs[key] = load_yaml_value(value)
    return kwargs


def argument_names(env_id: str) -> list[str]:
    """The keyword arguments a registered env's maker takes, following ``**kwargs`` up a class's bases
    (a preset passes them to ``GridWorld``); ``[]`` where they cannot be read."""
    creator = gym.spec(env_id).entry_point
    try:
        if isinstance(creator, str):  # already imported by the gym.make that failed
            creator = load_env_creator(creator)
        makers = [c.__init__ for c in creator.__mro__] if isinstance(creator, type) else [creator]
        names: list[str] = []
        for maker in makers:
            parameters = inspect.signature(maker).parameters.values()
            names += [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                break
    except (ImportError, AttributeError, TypeError, ValueError):
        return []
    return [name for name in names if name != "self"]


def make_env(env_id: str, kwargs: dict[str, Any] | None = None, **extra: Any) -> gym.Env:
    """``gymnasium.make`` with the lab's environments registered and argument errors reworded; the text
    environment's ``Dict(length, tokens)`` observation comes flattened into one integer array."""
    import envs  # noqa: F401  (registers the lab/ ids)

    env_id = resolve_env_id(env_id)
    try:
        env = gym.make(env_id, **(kwargs or {}), **extra)
    except gym.error.DependencyNotInstalled as exc:
        if "box2d" in str(exc).lower():  # gymnasium's advice (swig, then a source build) is not ours
            raise LabError(
                f"{env_id} needs Box2D: pip install -c constraints.txt -e '.[box2d]' "
                "(the lab's box2d extra, prebuilt wheels)"
            ) from None
        raise LabError(f"{env_id} needs a package that is not installed: {exc}") from None
    except ModuleNotFoundError as exc:  # an entry point's import (phys2d/ ids need jax)
        raise LabError(f"{env_id} needs the package {exc.name!r}, which is not installed") from None
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if bad:
            close = difflib.get_close_matches(bad.group(1), argument_names(env_id), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise LabError(
                f"{env_id} takes no argument {bad.group(1)!r}{hint} (see 'lab envs' and the class docstring)"
            ) from None
        raise
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict) and set(space.spaces) == {"length", "tokens"}:
        # the text env's Dict observation, as one array the agents store (lab.nets reads it back)
        env = gym.wrappers.FlattenObservation(env)
    return env
