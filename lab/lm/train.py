"""``lab lm train``: a language model pre-trained by maximum likelihood on a language's corpus.

runs/<name>/
  spec.yaml            the resolved spec
  run.json             status, step, timings, the final exact figures
  metrics.csv          one row per round: step, train_loss, val_loss (mean nats per token), lr, seconds
  eval.csv             the final exact evaluation (lab lm eval's figures)
  tb/                  the same figures as TensorBoard events
  checkpoints/         ckpt-<step>.npz after every round (the newest keep_checkpoints are kept)
  model.npz            the final model (lab lm sample / eval, and policy_kwargs language_model read it)
  learning_curve.png   training and validation loss against steps

Training runs in rounds of ``checkpoint_interval`` steps: each round is one epoch of the supervised
:func:`lab.nets.fit` over ``steps x batch_size`` fresh sentences of the train split, drawn with a seed
made of (seed, round), at a learning rate that follows a cosine over the rounds; then a checkpoint.
A round depends on nothing but the weights it starts from, so a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

import csv
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.files import absolute_language
from lab.lm.spec import LMSpec, load_lm_spec
from lab.run_logs import add_finite_scalars, keep_rows_until, read_csv
from lab.runs import RunDir, RunStopped, StopOnInterrupt, disk_full_is_an_error
from lab.spec import save_spec

METRIC_FIELDS = ["step", "train_loss", "val_loss", "lr", "seconds"]
VALIDATION_SEED = 1


def round_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index * 7919 + 17) % 2**31


def load_language(name: str, options: dict[str, Any]) -> Any:
    """The text environment's language ``name`` (its errors are one line: ``TextError``)."""
    from envs.text import make_language

    try:
        return make_language(name, **options)
    except TypeError as exc:
        raise LabError(f"the {name} language does not take these options {sorted(options)}: {exc}") from None


def build_model(spec: LMSpec, vocab_size: int) -> Any:
    import torch

    from lab.nets.language_model import LanguageModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(round_seed(spec.seed, -1))
        try:
            return LanguageModel(vocab_size, spec.model, **spec.hyperparameters)
        except (TypeError, ValueError) as exc:
            raise LabError(f"cannot build the {spec.model} language model: {exc}") from None


def corpus(language: Any, n: int, split: str, seed: int, max_length: int | None) -> list[tuple[int, ...]]:
    """``n`` sentences of ``split`` that fit the model (longer ones, rare, are dropped and redrawn).

    A :class:`LabError` when so few fit that ``10 n + 100`` drawn sentences do not give ``n``: a
    language whose sentences (a text file's lines) are mostly longer than the model's context."""
    from envs.text import sample_corpus

    out: list[tuple[int, ...]] = []
    draw = drawn = longest = 0
    while len(out) < n:
        if drawn > 10 * n + 100:
            raise LabError(
                f"only {len(out)} of {drawn} {split} sentences of the {language.name} language fit the "
                f"model's {max_length} tokens (the longest drawn has {longest}); raise its context "
                "(hyperparameters: context) or shorten the sentences"
            )
        batch = sample_corpus(language, n - len(out), split, seed + 104_729 * draw)
        out += [s for s in batch if max_length is None or len(s) <= max_length]
        drawn += len(batch)
        longest = max([longest, *map(len, batch)])
        draw += 1
    return out


class LMTrainer:
    def __init__(self, spec: LMSpec, run: RunDir, resume: bool = False, progress: bool = True) -> None:
        from lab.nets.language_model import check_vocabulary, load_language_model

        self.spec, self.run, self.progress, self.resuming = spec, run, progress, resume
        self.language = load_language(spec.language, spec.language_options)
        self.tokens = list(self.language.vocabulary.tokens)
        loaded = run.load_latest(load_language_model) if resume else None
        if loaded is not None:
            path, (self.model, meta) = loaded
            check_vocabulary(meta, self.tokens, f"the {spec.language} language now", path)
            self.start = int(meta.get("step", 0))
        else:
            self.model = build_model(spec, len(self.tokens))
            self.start = 0
        self.stop = StopOnInterrupt()

    def meta(self, step: int) -> dict[str, Any]:
        return {
            "vocabulary": self.tokens, "language": self.spec.language,
            "language_options": self.spec.language_options, "step": step, "spec": self.spec.to_dict(),
        }  # fmt: skip

    def save(self, path: Path, step: int) -> Path:
        from lab.nets.language_model import save_language_model

        return save_language_model(path, self.model, self.meta(step))

    def fit(self) -> dict[str, Any]:
        with self.run.claim(fresh=not self.resuming), disk_full_is_an_error(self.run, "lab lm train"):
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        from lab.nets import fit, lr_factor
        from lab.nets.language_model import sequence_arrays

        spec, run, model = self.spec, self.run, self.model
        if self.start == 0:
            if self.resuming:
                run.clear_outputs()
            save_spec(spec, run.spec)
        run.remove_temporary_files()
        keep_rows_until(run.metrics, METRIC_FIELDS, self.start)
        vocab, longest = len(self.tokens), model.max_length
        val = corpus(self.language, spec.validation_size, "validation", round_seed(spec.seed, -2), longest)
        X_val, Y_val = sequence_arrays(val, vocab, longest)
        run.write_status(status="running", name=spec.name, language=spec.language, started_at_step=self.start)
        from tensorboardX import SummaryWriter

        tb = SummaryWriter(str(run.tensorboard), purge_step=self.start or None)
        started, step = time.perf_counter(), self.start
        try:
            with self.stop:
                while step < spec.steps:
                    index = step // spec.checkpoint_interval
                    n_steps = min(spec.checkpoint_interval, spec.steps - step)
                    lr = spec.lr * lr_factor("cosine", step, spec.steps)
                    tick = time.perf_counter()
                    sentences = corpus(self.language, n_steps * spec.batch_size, "train",
                                       round_seed(spec.seed, index), longest)  # fmt: skip
                    X, Y = sequence_arrays(sentences, vocab, longest)
                    try:
                        history = fit(
                            model, X, Y, validation=(X_val, Y_val), epochs=1, batch_size=spec.batch_size,
                            lr=lr, grad_clip=spec.grad_clip, seed=round_seed(spec.seed, index),
                            progress=self.progress,
                        )  # fmt: skip
                    except FloatingPointError as exc:
                        run.write_status(status="failed", error=str(exc))
                        raise LabError(f"training stopped at step {step}: {exc}") from None
                    step += n_steps
                    row = {"train_loss": history.train_loss[-1], "val_loss": history.val_loss[-1], "lr": lr,
                           "seconds": time.perf_counter() - tick}  # fmt: skip
                    _append_row(run.metrics, step, row)
                    for key in ("train_loss", "val_loss"):
                        tb.add_scalar(f"train/{key}", row[key], step)
                    tb.flush()
                    path = self.save(run.checkpoint_path(step), step)
                    run.prune_checkpoints(spec.keep_checkpoints)
                    run.write_status(step=step, last_checkpoint=path.name)
                    if self.progress:
                        print(f"step {step}/{spec.steps}: train {row['train_loss']:.4f}  "
                              f"val {row['val_loss']:.4f} nats/token")  # fmt: skip
                    if self.stop.requested and step < spec.steps:
                        run.write_status(status="stopped")
                        raise RunStopped(
                            f"stopped at step {step:,} ({path.name} written); "
                            f"continue with: lab lm train --resume {run.path}"
                        )
            train_seconds = time.perf_counter() - started
            self.save(run.model, step)
            final = self.evaluate()
            add_finite_scalars(tb, step, {k: v for k, v in final.items() if isinstance(v, float)}, "eval/")
        finally:
            tb.close()
        _write_eval(run.evals, step, final)
        plot_curves(run, f"{spec.name}: {spec.model} on {spec.language}")
        run.write_status(status="finished", step=step, model=run.model.name,
                         train_seconds=round(train_seconds, 2), final=final)  # fmt: skip
        return final

    def evaluate(self) -> dict[str, Any]:
        from lab.lm.evaluate import evaluate

        spec = self.spec
        return evaluate(
            self.model, self.language, seed=spec.seed, samples=spec.eval_samples, held_out=spec.eval_held_out
        ).as_dict()


def _append_row(path: Path, step: int, row: dict[str, float]) -> None:
    with path.open("a", newline="") as f:
        csv.writer(f).writerow([step, *(repr(float(row[k])) for k in METRIC_FIELDS[1:])])


def _write_eval(path: Path, step: int, final: dict[str, Any]) -> None:
    from lab.core.files import atomic_path

    keys = [k for k, v in final.items() if isinstance(v, (int, float))]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *keys])
        writer.writerow([step, *(repr(final[k]) for k in keys)])


def plot_curves(run: RunDir, title: str) -> Path:
    """learning_curve.png: training and validation loss (nats per token) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.curves import save_png

    metrics = read_csv(run.metrics)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key in ("train_loss", "val_loss"):
        if metrics.get(key):
            ax.plot(metrics["step"], metrics[key], "o-", markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("nats per token")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, run.curve)
    return run.curve


def train(
    spec: LMSpec, runs_dir: str | Path = "runs", progress: bool = True, force: bool = False
) -> tuple[RunDir, dict[str, Any]]:
    """Train ``spec`` into ``runs_dir/<name>``; ``force`` moves an existing run of that name aside."""
    spec = replace(spec, language=absolute_language(spec.language))
    run = RunDir.new(runs_dir, str(spec.name), "lab lm train", force=force)
    trainer = LMTrainer(spec, run, progress=progress)
    return run, trainer.fit()


def resume(path: str | Path, progress: bool = True) -> tuple[RunDir, dict[str, Any]]:
    """Continue a killed or stopped run from its last checkpoint to the spec's steps."""
    run = RunDir.open(path, "language model", "train --resume")
    spec = load_lm_spec(run.spec)
    run.refuse_if_finished()
    return run, LMTrainer(spec, run, resume=True, progress=progress).fit()
