"""A sweep directory: one run directory per trial under ``trials/``, and ``sweep.json``, the index.

sweeps/<name>/
  sweep.json     the base spec, the grid, and per trial: name, configuration, seed, overrides,
                 status (pending / finished / failed) and its final evaluation figures
  trials/<trial>/  an ordinary run directory (lab eval, lab watch and lab train --resume read it)

Running the same command again finishes only what is missing: a finished trial (its run.json says
finished and its model.npz exists) is never touched; an unfinished one (killed midway) is started
over from nothing, so it gives the same numbers as a trial that was never interrupted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.files import write_text_atomic
from lab.run_logs import EVAL_FIELDS, read_csv
from lab.runs import RunDir, now
from lab.sweeps.grid import Trial, expand
from lab.sweeps.runner import check_backend, run_jobs

INDEX = "sweep.json"
FORMAT = 1


@dataclass
class SweepResult:
    path: Path
    ran: int  # trials run by this command
    skipped: int  # trials already finished before it
    failed: dict[str, str]  # trial name -> why


def final_figures(run: RunDir) -> dict[str, float | None]:
    """The last evaluation of a run (``eval.csv``'s last row), NaN cells as None."""
    columns = read_csv(run.evals)
    if not columns.get("timestep"):
        return {}
    return {k: None if math.isnan(columns[k][-1]) else columns[k][-1] for k in EVAL_FIELDS}


def is_finished(run: RunDir) -> bool:
    return run.read_status().get("status") == "finished" and run.model.is_file()


def read_index(path: Path) -> dict[str, Any]:
    """A sweep's ``sweep.json``, with one clear line when it is missing or damaged."""
    file = path / INDEX
    if not file.is_file():
        raise LabError(f"{path} is not a sweep directory (it has no {INDEX}); make one with 'lab sweep SPEC'")
    try:
        index = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"{file} is damaged ({exc}); delete it and rerun 'lab sweep' to rebuild it") from None
    if not isinstance(index, dict) or not isinstance(index.get("trials"), list) or "spec" not in index:
        raise LabError(f"{file} is not a sweep index (no spec or trials); was it written by 'lab sweep'?")
    for number, entry in enumerate(index["trials"]):
        if not (
            isinstance(entry, dict)
            and _trial_name(entry.get("name"))
            and isinstance(entry.get("config"), str)
        ):
            raise LabError(
                f"{file} is damaged (its trial {number} is not a record with a trial folder's name and a "
                "config); delete it and rerun 'lab sweep' to rebuild it"
            )
    grid = index.get("grid", {})
    if not (isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values())):
        raise LabError(
            f"{file} is damaged (its grid is not lists of values); delete it and rerun 'lab sweep'"
        )
    return index


def _trial_name(name: Any) -> bool:
    """Whether ``name`` names a folder directly under ``trials/`` (not a path that leaves it)."""
    return (
        isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
    )


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in {*old, *new} if old.get(k) != new.get(k))


def sweep_spec(data: dict[str, Any]) -> dict[str, Any]:
    """The sweep's base spec as it is recorded and compared: validated, env id resolved, defaults
    filled, without seeds (the sweep gives them)."""
    from lab.core.environments import resolve_env_id
    from lab.spec import spec_from_dict

    data = {k: v for k, v in data.items() if k != "seeds"}
    spec = spec_from_dict(data, "the sweep's spec")
    spec.env = resolve_env_id(spec.env)
    recorded = spec.to_dict()
    del recorded["seeds"], recorded["seed"]
    return recorded


def run_sweep(
    data: dict[str, Any],
    seeds: list[int],
    grid: dict[str, list[Any]],
    sweeps_dir: str | Path = "sweeps",
    backend: str = "pool",
    workers: int | None = None,
    address: str | None = None,
    on_trial: Callable[[str, str | None, int, int], None] | None = None,
) -> SweepResult:
    """Run every trial of the sweep that is not finished yet into ``sweeps_dir/<name>/``.

    ``data`` is the spec mapping; ``on_trial(name, error, done, total)`` hears of each trial's end."""
    check_backend(backend, address)  # before anything is written
    base = sweep_spec(data)
    trials = expand({**base, "seed": seeds[0]}, seeds, grid)
    path = Path(sweeps_dir) / str(base["name"])
    if not (path / INDEX).is_file() and path.exists() and any(p.name != ".lock" for p in path.iterdir()):
        raise LabError(f"{path} exists and is not a sweep directory; pick another --sweeps-dir or name")
    with exclusive(path):
        return run_trials(path, base, trials, grid, backend, workers, address, on_trial)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the sweep folder's lock: a second ``lab sweep`` on it would start over the trials this
    one is running. The lock goes with the process that holds it, even when it is killed."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LabError(
                f"another 'lab sweep' is running on {path}; wait for it or stop it first"
            ) from None
        yield


def run_trials(
    path: Path,
    base: dict[str, Any],
    trials: list[Trial],
    grid: dict[str, list[Any]],
    backend: str,
    workers: int | None,
    address: str | None,
    on_trial: Callable[[str, str | None, int, int], None] | None,
) -> SweepResult:
    trials_dir = path / "trials"
    index = open_index(path, base)
    entries = {t["name"]: t for t in index["trials"]}
    for trial in trials:
        entry = entries.setdefault(trial.name, {"name": trial.name})
        entry.update(config=trial.config, seed=trial.seed, overrides=trial.overrides)
    index["trials"] = list(entries.values())
    recorded = index.setdefault("grid", {})
    for key, values in grid.items():  # a rerun with more values adds them
        recorded[key] = [*recorded.get(key, []), *(v for v in values if v not in recorded.get(key, []))]
    todo: list[Trial] = []
    for trial in trials:
        run = RunDir(trials_dir / trial.name)
        if is_finished(run):
            entries[trial.name].update(status="finished", final=final_figures(run))
            continue
        if run.path.exists():  # killed midway: start it over, so its numbers match an uninterrupted trial
            shutil.rmtree(run.path)
        entries[trial.name].update(status="pending", final={})
        entries[trial.name].pop("error", None)
        todo.append(trial)
    write_index(path, index)
    failed: dict[str, str] = {}
    ended = [0]

    def done(name: str, error: str | None) -> None:
        run = RunDir(trials_dir / name)
        if error is None:
            entries[name].update(status="finished", final=final_figures(run), finished_at=now())
        else:
            entries[name].update(status="failed", error=error)
            failed[name] = error
        write_index(path, index)
        ended[0] += 1
        if on_trial is not None:
            on_trial(name, error, ended[0], len(todo))

    jobs = [(t.name, t.spec_data(base), str(trials_dir)) for t in todo]
    run_jobs(jobs, done, backend, workers or os.cpu_count() or 1, address)
    return SweepResult(path, len(todo) - len(failed), len(trials) - len(todo), failed)


def open_index(path: Path, base: dict[str, Any]) -> dict[str, Any]:
    """The sweep's index, new or the one already there; a sweep made from another spec is refused."""
    if not (path / INDEX).is_file():
        return {"format": FORMAT, "spec": base, "grid": {}, "trials": [], "created": now()}
    index = read_index(path)
    if index["spec"] != base:
        keys = ", ".join(spec_differences(index["spec"], base))
        raise LabError(
            f"{path} holds a sweep of another spec (it differs in: {keys}); "
            "rerun with that spec, or give this one another name or --sweeps-dir"
        )
    return index


def write_index(path: Path, index: dict[str, Any]) -> None:
    write_text_atomic(path / INDEX, json.dumps({**index, "updated": now()}, indent=2, default=str) + "\n")
