"""``lab train``: a scripted run from a spec, into its run directory, resumable from its checkpoints."""

from __future__ import annotations

import difflib
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym

from lab.core.environments import make_env, resolve_env_id
from lab.core.errors import LabError
from lab.core.files import absolute_language
from lab.evaluation import EvalResult, eval_copies, evaluate
from lab.progress import progress_fields, training_progress
from lab.run_logs import MetricsLog
from lab.runs import RunDir, RunStopped, StopOnInterrupt, disk_full_is_an_error
from lab.spec import RunSpec, load_spec_file, save_spec, spec_from_dict


def agent_class(name: str) -> type:
    from agents import AGENTS

    if name not in AGENTS:
        close = difflib.get_close_matches(name.lower(), list(AGENTS), n=1)  # 'DQN' as SB3 spells it
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


def checkpoint_metadata(path: Path) -> dict[str, Any]:
    """The trainer's state a checkpoint records (``{}`` for one written without it)."""
    from lab.core.archive import read_archive

    meta, _ = read_archive(path, f"{path} is not an agent checkpoint", LabError, arrays=False)
    state = meta.get("metadata")
    return state if isinstance(state, dict) else {}


def far_below(final: float, best: float) -> bool:
    """Whether a final evaluation lost much of the best one: more than a tenth of the best's size."""
    return best - final > 0.1 * max(abs(best), 1e-9)


def run_summary(run: RunDir, result: EvalResult) -> str:
    """The line ``lab train`` prints for a finished run, with a pointer to best.npz when the final
    model is far worse than the best evaluated one."""
    line = f"{run.path}: {result.summary()}"
    best = run.read_status().get("best")
    if isinstance(best, dict) and far_below(result.mean_return, float(best["mean_return"])):
        line += (
            f"; final {result.mean_return:.4g} is far below the best {float(best['mean_return']):.4g} "
            f"at step {int(best['timestep']):,}: lab eval {run.path} --best"
        )
    return line


class Trainer:
    """Runs one spec: learning, episode metrics, periodic evaluation and checkpoints, the final model.

    Everything that decides the rest of a run lives in its checkpoints: the agent, and in their
    metadata the evaluation counter (which seeds evaluation episodes), the best evaluation so far and
    whether the final evaluation is done. So a run resumed from any checkpoint ends as the
    uninterrupted run does, and one killed after its final checkpoint only finishes its files.

    ``on_evaluation(timestep, result)``, when given, is called after each evaluation (the periodic
    ones and the final one), once the evaluation is logged; raising from it stops the run there
    (``lab tune``'s pruner does, with ``optuna.TrialPruned``).
    """

    def __init__(
        self,
        spec: RunSpec,
        run: RunDir,
        resume: bool = False,
        progress: bool = True,
        on_evaluation: Callable[[int, EvalResult], None] | None = None,
    ) -> None:
        from agents.common.errors import AgentError

        self.spec, self.run, self.progress_enabled = spec, run, progress
        self.on_evaluation = on_evaluation
        self.resuming = resume
        self.env = make_run_env(spec)
        self._eval_envs: list[gym.Env] = []  # made at the first evaluation (eval_copies)
        self.eval_round = 0
        self.best: dict[str, Any] | None = None
        self.final_done = False
        loaded = run.load_latest(lambda path: load_model(path, env=self.env)) if resume else None
        try:
            if loaded is not None:
                checkpoint, self.agent = loaded
                state = checkpoint_metadata(checkpoint)
                self.eval_round = int(state.get("eval_round", run.read_status().get("eval_round", 0)))
                self.best = state.get("best")
                self.final_done = bool(state.get("final_evaluated", False))
            else:
                if resume:
                    print(
                        f"lab: {run.path} has no checkpoint yet: starting it again from step 0",
                        file=sys.stderr,
                    )
                self.agent = agent_class(spec.agent)(self.env, seed=spec.seed, **spec.hyperparameters)
        except (AgentError, TypeError) as exc:
            raise LabError(str(exc)) from None
        if "torch" in sys.modules:  # a neural agent (the tabular ones never import torch)
            use_threads(spec.threads)
        self.start = int(self.agent.num_timesteps)
        if not resume:
            # resolved, defaults included; the seed is the spec's own field
            spec.hyperparameters = {k: v for k, v in self.agent.hyperparameters.items() if k != "seed"}
        self.next_checkpoint = self._next(self.start, spec.checkpoint_interval)
        self.next_eval = self._next(self.start, spec.eval_interval)
        self.recent: deque[float] = deque(maxlen=100)
        self.last_eval: EvalResult | None = None
        self.stop = StopOnInterrupt()
        self.bar: Any = None
        self.task: Any = None

    @staticmethod
    def _next(start: int, interval: int) -> int | None:
        return (start // interval + 1) * interval if interval else None

    def state(self) -> dict[str, Any]:
        """The trainer's part of a checkpoint."""
        return {"eval_round": self.eval_round, "best": self.best, "final_evaluated": self.final_done}

    def checkpoint(self) -> Path:
        self.log.flush()  # the rows up to a checkpoint are on disk before it is
        path = self.run.checkpoint_path(int(self.agent.num_timesteps))
        self.agent.save(path, metadata=self.state())
        self.run.prune_checkpoints(self.spec.keep_checkpoints)
        self.run.write_status(
            timesteps=int(self.agent.num_timesteps), last_checkpoint=path.name, eval_round=self.eval_round
        )
        return path

    def eval_envs(self) -> list[gym.Env]:
        """The copies of the env the evaluations run side by side in (made once)."""
        if not self._eval_envs:
            self._eval_envs = eval_copies(lambda: make_run_env(self.spec), self.spec.eval_episodes)
        return self._eval_envs

    def evaluate(self) -> EvalResult:
        spec = self.spec
        result = evaluate(
            self.agent, self.eval_envs(), spec.eval_episodes, seed=spec.seed, round_index=self.eval_round,
            record=spec.record_episodes, record_dir=self.run.replays, source=f"eval:{spec.agent}",
        )  # fmt: skip
        self.eval_round += 1
        timestep = int(self.agent.num_timesteps)
        self.log.evaluation(timestep, result.as_row())
        self.last_eval = result
        if self.best is None or result.mean_return > float(self.best["mean_return"]):
            self.agent.save(self.run.best)
            self.best = {"mean_return": result.mean_return, "timestep": timestep}
            self.run.write_status(best=self.best)
        if self.on_evaluation is not None:
            self.on_evaluation(timestep, result)
        return result

    def final_evaluation_again(self) -> EvalResult:
        """The final evaluation of a run killed after its final checkpoint: the same seeds, so the same
        figures as the row already in eval.csv (nothing logged or recorded again)."""
        spec = self.spec
        result = evaluate(
            self.agent, self.eval_envs(), spec.eval_episodes, seed=spec.seed, round_index=self.eval_round - 1
        )
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
            self.checkpoint()
            self.next_checkpoint = self._next(timestep, self.spec.checkpoint_interval)
        if self.bar is not None:
            self.bar.update(self.task, **self._progress(timestep, int(event["episode"]) + 1))
        return not self.stop.requested  # Ctrl-C: stop at this episode's end, where a checkpoint is exact

    def _progress(self, timestep: int, episodes: int) -> dict[str, Any]:
        """The bar's state at ``timestep``: completed, total and figures. Past the total (PPO and A2C
        finish the rollout they are in, as in stable-baselines3: a budget below one rollout runs a
        whole one) the total grows with the run."""
        total = max(timestep, self.spec.total_timesteps)
        mean = sum(self.recent) / len(self.recent) if self.recent else float("nan")
        return {"completed": timestep, "total": total, **progress_fields(timestep, total, episodes, mean)}

    def fit(self) -> EvalResult:
        with self.run.claim(fresh=not self.resuming), disk_full_is_an_error(self.run, "lab train"):
            return self._fit()

    def _fit(self) -> EvalResult:
        from agents.common.errors import AgentError

        spec, run = self.spec, self.run
        if self.start == 0:
            if self.resuming:
                run.clear_outputs()
            save_spec(spec, run.spec)
        run.remove_temporary_files()
        self.log = MetricsLog(run, start_timestep=self.start)
        run.write_status(status="running", name=spec.name, started_at_timestep=self.start)
        try:
            if not self.final_done:
                with training_progress(disable=not self.progress_enabled) as bar, self.stop:
                    self.bar = bar
                    if self.progress_enabled:
                        what = f"{spec.agent} on {spec.env}, {spec.total_timesteps:,} steps"
                        bar.console.print(f"{run.path}: {what}", highlight=False)
                    self.task = bar.add_task(
                        spec.name, **self._progress(self.start, int(self.agent.num_episodes))
                    )
                    try:
                        # a resumed run carries on for the steps it has left (none when a PPO
                        # run's last rollout went past the total before it was stopped)
                        self.agent.learn(
                            max(0, spec.total_timesteps - self.start),
                            callback=self.on_episode,
                            reset_num_timesteps=self.start == 0,
                        )
                    except AgentError as exc:
                        # e.g. a non-finite loss: the checkpoints so far stay as they are
                        last = run.latest_checkpoint()
                        kept = f"; the last good checkpoint is {last}" if last else ""
                        run.write_status(status="failed", error=str(exc))
                        raise LabError(f"training stopped: {exc}{kept}") from None
                    if self.stop.requested and self.agent.num_timesteps < spec.total_timesteps:
                        path = self.checkpoint()
                        run.write_status(status="stopped")
                        raise RunStopped(
                            f"stopped at step {self.agent.num_timesteps:,} ({path.name} written); "
                            f"continue with: lab train --resume {run.path}"
                        )
                    done = max(spec.total_timesteps, int(self.agent.num_timesteps))
                    bar.update(self.task, **self._progress(done, int(self.agent.num_episodes)))
                final = self.evaluate()
                self.final_done = True
                self.checkpoint()  # from here a resumed run only finishes its files
            else:
                final = self.final_evaluation_again()
            model_path = self.agent.save(run.model)
        finally:
            self.log.close()
        self._plot()
        run.write_status(status="finished", timesteps=int(self.agent.num_timesteps), model=model_path.name)
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
    from lab.spec import apply_overrides, spec_mapping

    flags = {"env": env, "agent": agent, "total_timesteps": steps, "seed": seed, "name": name}
    data, source = spec_mapping(spec_file, flags, [])
    if zoo is not None:  # the zoo's entry goes under what the spec and the flags set
        from lab.zoo import zoo_entry

        env_id, given = data.get("env"), data.get("hyperparameters")
        if not isinstance(env_id, str):
            raise LabError("--zoo reads the entry of the run's env: give --env (or env: in the spec)")
        if given is not None and not isinstance(given, dict):  # spec_from_dict's check, before the merge
            raise LabError(f"hyperparameters must be a mapping (key: value); got {given!r:.80}")
        hyperparameters, n_timesteps = zoo_entry(zoo, resolve_env_id(env_id))
        data["hyperparameters"] = {**hyperparameters, **(given or {})}
        if n_timesteps is not None and "total_timesteps" not in data:
            data["total_timesteps"] = n_timesteps
    data = apply_overrides(data, overrides)
    if seed is not None and data.get("seeds") is not None:  # per_seed would drop --seed unsaid
        raise LabError(
            f"--seed {seed} and the spec's seeds: {data['seeds']!r} disagree: drop --seed to run every "
            f"listed seed, or add --set seeds=null to run seed {seed} alone"
        )
    spec = spec_from_dict(data, source)
    spec.env = resolve_env_id(spec.env)
    agent_class(spec.agent)
    return spec


def train(
    spec: RunSpec, runs_dir: str | Path = "runs", progress: bool = True, force: bool = False
) -> list[tuple[RunDir, EvalResult]]:
    """Train every seed of ``spec``; returns each run's directory and final evaluation. ``force``
    moves an existing run of the same name aside (``<name>.old-<time>``) and starts afresh."""
    results = []
    language = spec.env_kwargs.get("language")  # the text envs' grammar or text file, from any folder
    if isinstance(language, str):
        spec = replace(spec, env_kwargs={**spec.env_kwargs, "language": absolute_language(language)})
    seeds = spec.per_seed()
    # every seed's directory is checked before the first trains: one that exists is refused up front
    runs = [RunDir.new(runs_dir, str(one.name), force=force) for one in seeds]
    for k, (one, run) in enumerate(zip(seeds, runs, strict=True)):
        trainer = Trainer(one, run, progress=progress)  # checks all before writing
        try:
            results.append((trainer.run, trainer.fit()))
        except RunStopped as stopped:
            later = seeds[k + 1 :]
            if not later:
                raise
            names = ", ".join(str(s.name) for s in later)
            rest = ", ".join(str(s.seed) for s in later)
            raise RunStopped(
                f"{stopped}; not started: {names} (start them with --set 'seeds=[{rest}]')"
            ) from None
    return results


def resume(path: str | Path, progress: bool = True) -> tuple[RunDir, EvalResult]:
    """Continue a killed or stopped run from its last good checkpoint to the spec's total (a run killed
    before its first checkpoint starts again from step 0; one killed after its final checkpoint only
    finishes its files)."""
    run = RunDir.open(path, "agent", "train --resume")
    spec = spec_from_dict(load_spec_file(run.spec), str(run.spec))
    run.refuse_if_finished(f"{spec.total_timesteps:,} steps")
    trainer = Trainer(spec, run, resume=True, progress=progress)
    return run, trainer.fit()
