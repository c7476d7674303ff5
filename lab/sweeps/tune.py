"""``lab tune SPEC --trials N``: hyperparameter search with Optuna, as rl-baselines3-zoo tunes.

A TPE sampler proposes values for the ``--param`` keys, each trial trains the spec into an ordinary
run directory, every evaluation is reported to a median pruner (a trial whose evaluation curve falls
below the median of earlier trials at the same step is stopped), and the study lives in a journal
file that survives crashes and is shared by parallel workers (``--workers``, or the same command run
in several shells). Rerunning the command continues until N trials have completed or been pruned.

tunes/<name>/
  journal.log          the Optuna study (JournalStorage)
  trials/<name>-trial<k>/  each trial's run directory
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.yaml_loader import load_yaml_value
from lab.sweeps.grid import check_keys, known_values, split_values

KINDS = ("float", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched key: ``float:lo:hi[:log]``, ``int:lo:hi[:log]`` or ``choice:a,b,c``."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.key, list(self.choices))


def search_record(param: Param) -> dict[str, Any]:
    """``param`` as the study records it (JSON)."""
    return {**dataclasses.asdict(param), "choices": list(param.choices)}


def describe_search(search: dict[str, Any]) -> str:
    """A recorded search as the flags that give it."""
    flags = []
    for p in search.get("params", []):
        if p["kind"] == "choice":
            flags.append(f"{p['key']}=choice:{','.join(map(str, p['choices']))}")
        else:
            flags.append(f"{p['key']}={p['kind']}:{p['low']:g}:{p['high']:g}{':log' if p['log'] else ''}")
    return " ".join([*(f"--param {f}" for f in flags), f"--metric {search.get('metric')}"])


def parse_param(text: str) -> Param:
    key, sep, rest = text.partition("=")
    kind, _, spec = rest.partition(":")
    usage = f"--param takes KEY=float:LO:HI[:log], KEY=int:LO:HI[:log] or KEY=choice:A,B; got {text!r}"
    if not sep or not key or kind not in KINDS or not spec:
        raise LabError(usage)
    if kind == "choice":
        choices = tuple(load_yaml_value(v) for v in split_values(spec))
        if len(choices) < 2:
            raise LabError(f"--param {key}: choice needs at least two values; got {spec!r}")
        return Param(key, kind, choices=choices)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise LabError(usage)
    try:
        low, high = (int(p) for p in parts[:2]) if kind == "int" else (float(p) for p in parts[:2])
    except ValueError:
        raise LabError(f"--param {key}: {parts[0]!r} and {parts[1]!r} must be {kind} numbers") from None
    log = len(parts) == 3
    if not low < high or (log and low <= 0):
        raise LabError(f"--param {key}: need LO < HI{' and LO > 0 for log' if log else ''}; got {spec!r}")
    return Param(key, kind, low, high, log)


def check_params(params: list[Param], base: dict[str, Any]) -> list[Param]:
    """The params with their choices typed as their keys; an unknown key names the closest one."""
    from lab.spec import spec_from_dict

    if not params:
        raise LabError(
            "give at least one --param to search (e.g. hyperparameters.learning_rate=float:0.01:1:log)"
        )
    keys = [p.key for p in params]
    if len(set(keys)) < len(keys):
        raise LabError("a --param key is given twice")
    known = known_values(spec_from_dict(base, "the spec"))
    typed = check_keys(
        {p.key: list(p.choices) if p.kind == "choice" else [p.low, p.high] for p in params}, known, "--param"
    )
    for key, values in typed.items():  # every choice and both ends of every range make a valid agent
        for value in values:
            known_values(spec_from_dict(with_values(base, {key: value}, str(base["name"])), f"--param {key}"))
    return [dataclasses.replace(p, choices=tuple(typed[p.key])) if p.kind == "choice" else p for p in params]


def with_values(base: dict[str, Any], values: dict[str, Any], name: str) -> dict[str, Any]:
    data = {**base, "name": name}
    for key, value in values.items():
        head, _, rest = key.partition(".")
        data[head] = {**(data.get(head) or {}), rest: value} if rest else value
    return data


def require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise LabError("lab tune needs Optuna: pip install -c constraints.txt -e '.[tune]'") from None


def open_study(path: Path, name: str) -> Any:
    """The study in ``path/journal.log``, made or loaded; a damaged journal is one clear line."""
    require_optuna()
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.mkdir(parents=True, exist_ok=True)
    journal = path / "journal.log"
    try:
        storage = JournalStorage(JournalFileBackend(str(journal)))
        return optuna.create_study(
            study_name=name,
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(n_startup_trials=5),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
        )
    except Exception as exc:  # optuna raises JSON, assertion and key errors on a damaged journal
        raise LabError(
            f"{journal} is not a readable Optuna journal ({type(exc).__name__}: {exc}); "
            "move it away to start a new study"
        ) from None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: Any) -> list[int]:
    """Mark FAIL the trials left RUNNING by a killed worker on this machine (each trial records
    its worker's host and process id), so the study's state says what happened; returns their
    numbers. Trials of live workers, or of other machines, are left alone."""
    from optuna.trial import TrialState

    dead = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()) or process_alive(int(pid)):
            continue
        # optuna's public API has no call for another process's trial; its storage does
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        dead.append(trial.number)
    return dead


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: a pid no process can have
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def counted(study: Any) -> int:
    """Trials that count towards --trials: completed or pruned."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def objective(trial: Any, base: dict[str, Any], params: list[Param], trials_dir: Path, metric: str) -> float:
    """Train one trial; each evaluation goes to the pruner, which may stop it."""
    import optuna

    from lab.runs import RunDir
    from lab.spec import spec_from_dict
    from lab.train import Trainer

    trial.set_user_attr("worker", worker_id())
    values = {p.key: p.suggest(trial) for p in params}
    name = f"{base['name']}-trial{trial.number}"
    spec = spec_from_dict(with_values(base, values, name), f"trial {trial.number}")

    evaluations = 0

    def report(timestep: int, result: Any) -> None:
        nonlocal evaluations
        evaluations += 1
        figure = result.as_row()[metric]
        if figure is not None:  # step: the evaluation's number, the same in every trial (timesteps are not)
            trial.report(float(figure), step=evaluations)
        if trial.should_prune():
            trainer.run.write_status(status="pruned")
            raise optuna.TrialPruned(f"pruned at {timestep:,} steps")

    run = RunDir.new(trials_dir, name, command="lab train")
    trainer = Trainer(spec, run, progress=False, on_evaluation=report)
    result = trainer.fit()
    trial.set_user_attr("run", str(trainer.run.path))
    figure = result.as_row()[metric]
    if figure is None:
        raise LabError(f"{spec.env} reports no {metric}; tune another --metric")
    return float(figure)


def tune_worker(
    path: str, name: str, base: dict[str, Any], params: list[Param], trials: int, metric: str
) -> None:
    """One worker: trials until the study holds ``trials`` completed or pruned ones."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = open_study(Path(path), name)
    if counted(study) >= trials:
        return
    stop = MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    study.optimize(lambda t: objective(t, base, params, Path(path) / "trials", metric), callbacks=[stop])


def run_tune(
    data: dict[str, Any],
    params: list[Param],
    trials: int,
    tunes_dir: str | Path = "tunes",
    workers: int = 1,
    metric: str = "mean_return",
) -> Any:
    """Run the study to ``trials`` counted trials; returns it."""
    from lab.sweeps.sweep import sweep_spec

    require_optuna()
    if trials < 1:
        raise LabError(f"--trials must be at least 1; got {trials}")
    if metric not in ("mean_return", "success_rate", "policy_value"):
        raise LabError(f"--metric must be mean_return, success_rate or policy_value; got {metric!r}")
    base = sweep_spec(data)
    base["seed"] = int(data.get("seed", 0))
    params = check_params(params, base)
    path = Path(tunes_dir) / str(base["name"])
    study = open_study(path, str(base["name"]))  # a damaged journal is reported before any worker starts
    recorded = study.user_attrs.get("spec")
    if recorded is None:
        study.set_user_attr("spec", base)
    elif recorded != base:
        from lab.sweeps.sweep import spec_differences

        keys = ", ".join(spec_differences(recorded, base))
        raise LabError(
            f"{path} holds a study of another spec (it differs in: {keys}); "
            "rerun with that spec, or give this one another name or --tunes-dir"
        )
    search = {"params": [search_record(p) for p in params], "metric": metric}
    recorded = study.user_attrs.get("search")
    if recorded is None:
        study.set_user_attr("search", search)
    elif recorded != search:  # its trials answer another question: continuing would mix them
        raise LabError(
            f"{path} holds a study of another search ({describe_search(recorded)}); "
            "rerun with those flags, or give this search another --tunes-dir"
        )
    dead = fail_dead_trials(study)
    if dead:
        print(f"trial(s) {', '.join(map(str, dead))} were left running by a killed process; marked failed")
    if workers <= 1:
        tune_worker(str(path), str(base["name"]), base, params, trials, metric)
    else:
        from lab.sweeps.runner import pool_worker

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=pool_worker
        ) as pool:
            args = (str(path), str(base["name"]), base, params, trials, metric)
            for future in [pool.submit(tune_worker, *args) for _ in range(workers)]:
                future.result()
    return open_study(path, str(base["name"]))
