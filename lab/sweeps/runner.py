"""Where a sweep's trials run: one after another (``serial``), in a local process pool (``pool``,
the default) or as a Ray Tune experiment on this machine or a cluster (``ray``). Each backend calls
:func:`run_trial`, the same code, so a trial gives the same numbers wherever it runs."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.core.errors import LabError

BACKENDS = ("pool", "serial", "ray")
Job = tuple[str, dict[str, Any], str]  # trial name, its spec mapping, the folder its run directory goes in
Done = Callable[[str, "str | None"], None]  # called with a trial's name and its error (None: finished)


def one_thread() -> None:
    """A worker's start: one OpenMP and one torch thread, so parallel trials do not fight for cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def pool_worker() -> None:
    """A pool worker's start: one thread, and exit when the sweep's process dies (killed), so no
    orphan goes on writing a trial that the rerun starts over."""
    one_thread()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_trial(spec_data: dict[str, Any], trials_dir: str) -> str | None:
    """Train one trial into ``trials_dir/<name>/``; returns None, or the one-line reason it failed."""
    from lab.spec import spec_from_dict
    from lab.train import train

    try:
        train(
            spec_from_dict(spec_data, f"trial {spec_data.get('name')}"), runs_dir=trials_dir, progress=False
        )
    except LabError as exc:
        return str(exc)
    except Exception as exc:  # a bug, not bad input: the other trials go on, the index says what happened
        return f"internal error: {type(exc).__name__}: {exc}"
    return None


def run_serial(jobs: list[Job], done: Done) -> None:
    for name, spec_data, trials_dir in jobs:
        done(name, run_trial(spec_data, trials_dir))


def run_pool(jobs: list[Job], done: Done, workers: int) -> None:
    """A process pool of fresh interpreters (``spawn``: no state copied from this process)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=pool_worker) as pool:
        futures = {
            pool.submit(run_trial, spec_data, trials_dir): name for name, spec_data, trials_dir in jobs
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                done(futures[future], future.result())
        except BaseException:  # Ctrl-C or a kill: start no queued trial (the running ones end with the pool)
            for future in futures:
                future.cancel()
            raise


def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when a Ray head at ``host:port`` does not answer (ray.init would wait long)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise LabError(
            f"--address takes 'auto' or HOST:PORT of a Ray head (e.g. 10.0.0.5:6379); got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise LabError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with 'ray start --head'"
        ) from None


def run_ray(jobs: list[Job], done: Done, address: str | None) -> None:
    """The trials as a Ray Tune experiment (a grid over the trial names, one CPU each), on this
    machine (``address`` None) or on a cluster. Tune schedules, places and restarts nothing by
    itself (``max_failures=0``); the sweep's index stays the record of what finished, so a rerun
    skips finished trials whichever backend ran them. Tune's own files go to ``<sweep>/ray_tune/``."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise LabError("--backend ray needs Ray Tune: pip install -c constraints.txt -e '.[ray]'") from None
    owned = not ray.is_initialized()  # a Ray the caller started (a script, a test) is used as it is
    if owned:
        if address not in (None, "auto"):
            check_address(address)
        try:
            ray.init(
                address=address,
                runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except ConnectionError as exc:
            raise LabError(
                f"could not join the Ray cluster at {address}: {str(exc).splitlines()[0]}"
            ) from None
    # Tune's legacy console output honours verbose=0; its new one prints tables (the sweep has its lines)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ctrl-C stops the sweep as on the other backends (exit 130; a rerun finishes what is left), not
    # Tune's way (it would save its state and point at Tuner.restore, which the sweep does not use)
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    specs = {name: (spec_data, str(Path(trials_dir).resolve())) for name, spec_data, trials_dir in jobs}
    reporter = tune_reporter(done)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(tune_trial, specs=specs, cwd=os.getcwd()), {"cpu": 1}),
            param_space={"trial": tune.grid_search(list(specs))},
            tune_config=tune.TuneConfig(
                trial_name_creator=trial_name, trial_dirname_creator=trial_name, reuse_actors=True
            ),
            run_config=tune.RunConfig(
                storage_path=str(Path(jobs[0][2]).resolve().parent / "ray_tune"),
                failure_config=tune.FailureConfig(max_failures=0),
                callbacks=[reporter],
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        if owned:
            ray.shutdown()
    missing = len(specs) - reporter.ended
    if missing:
        raise LabError(
            f"Ray Tune stopped with {missing} trial(s) not run; rerun the same command to finish them"
        )


def tune_trial(config: dict[str, Any], specs: dict[str, tuple[dict[str, Any], str]], cwd: str) -> None:
    """Ray Tune's function trainable: one trial, reported once as ``{"error": reason or ""}``."""
    from ray import tune

    one_thread()
    os.chdir(cwd)  # the spec's relative paths (maps, language models) mean what they mean to the command
    spec_data, trials_dir = specs[config["trial"]]
    tune.report({"error": run_trial(spec_data, trials_dir) or ""})


def trial_name(trial: Any) -> str:
    return str(trial.config["trial"])


def tune_reporter(done: Done) -> Any:
    """A Ray Tune callback passing each ended trial to the sweep's ``done``: finished, with the error
    the trial reported, or failed by Ray itself. (Made here so that this module imports without Ray.)"""
    from ray.tune import Callback

    class Reporter(Callback):
        ended = 0

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended += 1
            done(trial_name(trial), (trial.last_result or {}).get("error") or None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended += 1
            done(trial_name(trial), f"Ray could not run the trial; see {trial.error_file or 'the Ray logs'}")

    return Reporter()


def check_backend(backend: str, address: str | None = None) -> None:
    """A :class:`LabError` for a backend this module does not know, or an address without Ray."""
    if backend not in BACKENDS:
        raise LabError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise LabError("--address joins a Ray cluster; use it with --backend ray")


def run_jobs(jobs: list[Job], done: Done, backend: str, workers: int, address: str | None = None) -> None:
    """Run ``jobs`` on ``backend``, calling ``done`` as each trial ends (in the order they end)."""
    check_backend(backend, address)
    if not jobs:
        return
    if backend == "serial" or (backend == "pool" and min(workers, len(jobs)) == 1):
        run_serial(jobs, done)
    elif backend == "pool":
        run_pool(jobs, done, min(workers, len(jobs)))
    else:
        run_ray(jobs, done, address)
