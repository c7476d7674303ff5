"""``lab train``: a scripted run from a spec, into its run directory, resumable from its checkpoints."""

from __future__ import annotations

import difflib
import sys
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym

from lab.core.environments import make_env, resolve_env_id
from lab.core.errors import LabError
from lab.evaluation import EvalResult, evaluate
from lab.runs import MetricsLog, RunDir
from lab.spec import RunSpec, load_spec_file, save_spec, spec_from_dict


def agent_class(name: str) -> type:
    from agents import AGENTS

    if name not in AGENTS:
        close = difflib.get_close_matches(name, list(AGENTS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of: {', '.join(AGENTS)}"
        raise LabError(f"unknown agent {name!r}{hint}")
    return AGENTS[name]


def make_run_env(spec: RunSpec, **extra: Any) -> gym.Env:
    extra = dict(extra)
    if spec.max_episode_steps is not None:
        extra["max_episode_steps"] = spec.max_episode_steps
    return make_env(spec.env, spec.env_kwargs, **extra)


def load_model(path: str | Path, env: gym.Env | None = None) -> Any:
    """Load any saved agent, turning the agents' errors into one-line lab errors."""
    from agents import load_agent
    from agents.common.errors import AgentError

    try:
        return load_agent(path, env=env)
    except AgentError as exc:
        raise LabError(str(exc)) from None


def saved_env(path: str | Path) -> tuple[str | None, dict[str, Any], int | None]:
    """The env id, kwargs and step limit a saved model records (``(None, {}, None)`` when it records none)."""
    from agents.common.checkpoint import read_checkpoint
    from agents.common.errors import AgentError

    try:
        meta, _ = read_checkpoint(path)
    except AgentError as exc:
        raise LabError(str(exc)) from None
    env = meta.get("env") if isinstance(meta.get("env"), dict) else {}
    kwargs = {k: v for k, v in (env.get("kwargs") or {}).items() if k != "render_mode"}
    return env.get("id"), kwargs, env.get("max_episode_steps")


def use_threads(threads: int) -> None:
    """Torch's intra-op threads for this process. The lab's networks are small: one thread is the
    fastest, and more threads on a busy machine spin-wait each other into a crawl (10-100x slower)."""
    import torch

    torch.set_num_threads(threads)


class Trainer:
    """Runs one spec: learning, episode metrics, periodic evaluation and checkpoints, the final model."""

    def __init__(self, spec: RunSpec, run: RunDir, resume: bool = False, progress: bool = True) -> None:
        from agents.common.errors import AgentError

        self.spec, self.run, self.progress_enabled = spec, run, progress
        self.env = make_run_env(spec)
        self.eval_env = make_run_env(spec)
        checkpoint = run.latest_checkpoint() if resume else None
        if resume and checkpoint is None:
            raise LabError(f"{run.path} has no checkpoint to resume from; start it again with 'lab train'")
        try:
            if checkpoint is not None:
                self.agent = load_model(checkpoint, env=self.env)
            else:
                self.agent = agent_class(spec.agent)(self.env, seed=spec.seed, **spec.hyperparameters)
        except (AgentError, TypeError) as exc:
            raise LabError(str(exc)) from None
        if "torch" in sys.modules:  # a neural agent (the tabular ones never import torch)
            use_threads(spec.threads)
        self.start = int(self.agent.num_timesteps)
        if not resume:
            spec.hyperparameters = dict(self.agent.hyperparameters)
        self.next_checkpoint = self._next(self.start, spec.checkpoint_interval)
        self.next_eval = self._next(self.start, spec.eval_interval)
        self.eval_round = int(run.read_status().get("eval_round", 0)) if resume else 0
        self.recent: deque[float] = deque(maxlen=100)
        self.last_eval: EvalResult | None = None
        self.bar: Any = None
        self.task: Any = None

    @staticmethod
    def _next(start: int, interval: int) -> int | None:
        return (start // interval + 1) * interval if interval else None

    def checkpoint(self) -> Path:
        path = self.run.checkpoint_path(int(self.agent.num_timesteps))
        self.agent.save(path)
        self.run.write_status(
            timesteps=int(self.agent.num_timesteps), last_checkpoint=path.name, eval_round=self.eval_round
        )
        return path

    def evaluate(self) -> EvalResult:
        spec = self.spec
        result = evaluate(
            self.agent, self.eval_env, spec.eval_episodes, seed=spec.seed, round_index=self.eval_round,
            record=spec.record_episodes, record_dir=self.run.replays, source=f"eval:{spec.agent}",
        )  # fmt: skip
        self.eval_round += 1
        self.log.evaluation(int(self.agent.num_timesteps), result.as_row())
        self.last_eval = result
        return result

    def on_episode(self, event: dict[str, Any]) -> bool:
        timestep = int(event["timestep"])
        self.log.episode(timestep, int(event["episode"]), float(event["return"]), int(event["length"]))
        self.log.training(timestep, self.agent.training_figures())
        self.recent.append(float(event["return"]))
        # Evaluate before checkpointing: a checkpoint then always includes the evaluations before it,
        # and a resumed run redoes exactly those after it.
        if self.next_eval is not None and timestep >= self.next_eval:
            self.evaluate()
            self.next_eval = self._next(timestep, self.spec.eval_interval)
        if self.next_checkpoint is not None and timestep >= self.next_checkpoint:
            self.log.flush()
            self.checkpoint()
            self.next_checkpoint = self._next(timestep, self.spec.checkpoint_interval)
        if self.bar is not None:
            mean = sum(self.recent) / len(self.recent)
            self.bar.update(
                self.task, completed=timestep, episodes=int(event["episode"]) + 1, mean_return=mean
            )
        return True

    def fit(self) -> EvalResult:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from agents.common.errors import AgentError

        spec = self.spec
        if self.start == 0:
            self.run.path.mkdir(parents=True, exist_ok=True)
            save_spec(spec, self.run.spec)
        self.log = MetricsLog(self.run, start_timestep=self.start)
        self.run.write_status(status="running", name=spec.name, started_at_timestep=self.start)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} steps"),
            TextColumn("episodes {task.fields[episodes]:,}"),
            TextColumn("mean return {task.fields[mean_return]:.3g}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, disable=not self.progress_enabled) as bar:
                self.bar = bar
                self.task = bar.add_task(
                    spec.name,
                    total=spec.total_timesteps,
                    completed=self.start,
                    episodes=0,
                    mean_return=float("nan"),
                )
                try:
                    self.agent.learn(
                        spec.total_timesteps, callback=self.on_episode, reset_num_timesteps=self.start == 0
                    )
                except AgentError as exc:  # e.g. a non-finite loss: the checkpoints so far stay as they are
                    last = self.run.latest_checkpoint()
                    kept = f"; the last good checkpoint is {last}" if last else ""
                    raise LabError(f"training stopped: {exc}{kept}") from None
                bar.update(self.task, completed=spec.total_timesteps)
            final = self.evaluate()
            model_path = self.agent.save(self.run.model)
            self.checkpoint()
        finally:
            self.log.close()
        self._plot()
        self.run.write_status(
            status="finished", timesteps=int(self.agent.num_timesteps), model=model_path.name
        )
        return final

    def _plot(self) -> None:
        from lab.curves import plot_learning_curve

        optimum = None
        result = self.last_eval
        if result is not None and result.optimal_value is not None and float(self.agent.gamma) == 1.0:
            optimum = result.optimal_value
        plot_learning_curve(self.run, f"{self.spec.name}: {self.spec.agent} on {self.spec.env}", optimum)


def spec_from_args(
    spec_file: str | None,
    env: str | None,
    agent: str | None,
    steps: int | None,
    seed: int | None,
    name: str | None,
    overrides: list[str],
    zoo: str | None = None,
) -> RunSpec:
    """The spec of ``lab train``: a spec file (or none), then the flags over it; ``zoo`` is an
    rl-baselines3-zoo hyperparameter file whose entry for the env gives the hyperparameters (and
    ``total_timesteps`` from its ``n_timesteps``) under the spec's own."""
    from lab.spec import apply_overrides

    data: dict[str, Any] = load_spec_file(spec_file) if spec_file else {}
    source = spec_file or "the flags"
    if not isinstance(data, dict):
        raise LabError(f"{source} must be a mapping of keys to values")
    if zoo is not None:
        from lab.zoo import zoo_entry

        env_id = env or data.get("env")
        if not isinstance(env_id, str):
            raise LabError("--zoo reads the entry of the run's env: give --env (or env: in the spec)")
        hyperparameters, n_timesteps = zoo_entry(zoo, resolve_env_id(env_id))
        data["hyperparameters"] = {**hyperparameters, **(data.get("hyperparameters") or {})}
        if n_timesteps is not None and "total_timesteps" not in data:
            data["total_timesteps"] = n_timesteps
    for key, value in (
        ("env", env),
        ("agent", agent),
        ("total_timesteps", steps),
        ("seed", seed),
        ("name", name),
    ):
        if value is not None:
            data[key] = value
    data = apply_overrides(data, overrides)
    spec = spec_from_dict(data, source)
    spec.env = resolve_env_id(spec.env)
    agent_class(spec.agent)
    return spec


def train(
    spec: RunSpec, runs_dir: str | Path = "runs", progress: bool = True
) -> list[tuple[RunDir, EvalResult]]:
    """Train every seed of ``spec``; returns each run's directory and final evaluation."""
    results = []
    for one in spec.per_seed():
        trainer = Trainer(one, RunDir.new(runs_dir, one.name), progress=progress)  # checks all before writing
        results.append((trainer.run, trainer.fit()))
    return results


def resume(path: str | Path, progress: bool = True) -> tuple[RunDir, EvalResult]:
    """Continue a killed run from its last checkpoint, to the spec's total."""
    run = RunDir.open(path)
    spec = spec_from_dict(load_spec_file(run.spec), str(run.spec))
    trainer = Trainer(spec, run, resume=True, progress=progress)
    if trainer.start >= spec.total_timesteps and run.model.is_file():
        raise LabError(f"{run.path} already finished ({spec.total_timesteps:,} steps); nothing to resume")
    return run, trainer.fit()
