"""``lab gen train``: one generative model trained from a spec into its run directory, resumable.

runs/<name>/
  spec.yaml            the resolved spec (the model's hyperparameters filled in)
  run.json             status, step, timings, the final quality figures
  metrics.csv          every ``log_interval`` steps: the mean losses and the learning rate
  eval.csv             each evaluation: held-out loss (VAE: ELBO, bits/dim), and at the end the
                       Frechet ratio and conditional accuracy
  tb/                  the same figures as TensorBoard events
  samples/             a PNG grid of samples at each evaluation (step-<k>.png) and final.png
  checkpoints/         ckpt-<step>.npz: weights, EMA, optimiser states (see generative.checkpoint)
                       and the trainer's own state; the newest ``keep_checkpoints`` are kept
  model.npz            the final model (the same format; lab gen sample/eval/watch read it)
  learning_curve.png   losses against steps, with the held-out figures

Training is a pure function of (spec, step): batch ``k`` comes from the permutation of epoch
``k // batches_per_epoch`` drawn with the seed, and every random draw of step ``k`` from a generator
seeded with (seed, k). So a run resumed from its last checkpoint repeats the uninterrupted run
exactly, with nothing but the weights, optimiser states and step in the checkpoint (plus the loss
sums of a metrics row in progress, for a run stopped with Ctrl-C between two rows). A run killed after
its final checkpoint only redoes its final evaluation, measurement and files.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from generative.base import GenerativeModel
from generative.data import ImageData, load_dataset
from lab.core.errors import LabError
from lab.curves import plot_generative_curves
from lab.gen.models import build_model, model_meta
from lab.gen.seeding import Batches, eval_generator, mix, quality_seed, step_generator
from lab.gen.spec import GenSpec, load_gen_spec
from lab.nets import flush_denormals
from lab.progress import measuring_bar
from lab.run_logs import keep_rows_until, write_figures
from lab.runs import RunDir, RunStopped, StopOnInterrupt, disk_full_is_an_error
from lab.spec import save_spec

if TYPE_CHECKING:
    from generative.metrics import Classifier, Quality


class MetricsFiles:
    """metrics.csv and eval.csv with TensorBoard; a resumed run first drops rows after its checkpoint."""

    def __init__(
        self,
        run: RunDir,
        metric_fields: list[str],
        eval_fields: list[str],
        start: int,
        eval_rows: int | None = None,
    ) -> None:
        from tensorboardX import SummaryWriter

        self.run = run
        self.metric_fields = ["step", *metric_fields]
        self.eval_fields = ["step", *eval_fields]
        keep_rows_until(run.metrics, self.metric_fields, start)
        self.eval_rows = keep_rows_until(run.evals, self.eval_fields, start, eval_rows)
        self._metrics = run.metrics.open("a", newline="")
        self.tb = SummaryWriter(str(run.tensorboard), purge_step=start or None)

    def metrics(self, step: int, row: dict[str, float]) -> None:
        write_figures(csv.writer(self._metrics), self.tb, step, self.metric_fields[1:], row, "train/")

    def evaluation(self, step: int, row: dict[str, Any]) -> None:
        """One eval.csv row (columns the row lacks stay empty)."""
        figures = {k: v for k, v in row.items() if k != "summary"}  # the one line of text
        with self.run.evals.open("a", newline="") as f:
            write_figures(csv.writer(f), self.tb, step, self.eval_fields[1:], figures, "eval/")
        self.eval_rows += 1

    def flush(self) -> None:
        self._metrics.flush()
        self.tb.flush()

    def close(self) -> None:
        self.flush()
        self._metrics.close()
        self.tb.close()


QUALITY_COLUMNS = ["frechet_ratio", "frechet", "floor", "conditional_accuracy", "classifier_accuracy"]


class GenTrainer:
    """Trains one spec: metrics, evaluations with sample grids, checkpoints, the final model."""

    def __init__(
        self,
        spec: GenSpec,
        run: RunDir,
        resume: bool = False,
        progress: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.spec, self.run, self.progress = spec, run, progress
        self.cache_dir = Path(cache_dir) if cache_dir is not None else run.path.parent / ".classifiers"
        self.data = load_dataset(spec.dataset, spec.dataset_options, spec.seed, spec.test_fraction)
        skipped = self.data.info.get("skipped_files") or []
        if skipped:  # an image folder with files Pillow cannot read: train on the rest, and say so
            count = self.data.info["skipped"]
            print(f"lab: skipped {count} unreadable file(s) in {self.data.info['path']}: "
                  f"{', '.join(skipped[:3])}{' ...' if count > 3 else ''} (run.json lists them)",
                  file=sys.stderr)  # fmt: skip
        from generative.models import model_class

        if "domains" in self.data.info and not model_class(spec.model).translates:
            raise LabError(
                f"the {spec.dataset} data set holds two image domains, for the translation models "
                f"(cyclegan, pix2pix); a {spec.model} learns one: use digits, grid or folder"
            )
        self.resuming = resume
        self.state: dict[str, Any] = {}  # the trainer's part of the checkpoint resumed from
        loaded = run.load_latest(self._load) if resume else None
        if loaded is not None:
            checkpoint, (self.model, meta) = loaded
            self.state = meta.get("trainer") if isinstance(meta.get("trainer"), dict) else {}
            if self.model.shape != self.data.shape:
                now = f"the data set now gives {self.data.shape}"
                raise LabError(f"{checkpoint} makes {self.model.shape} images but {now}")
        else:
            if resume:
                print(
                    f"lab: {run.path} has no checkpoint yet: starting it again from step 0", file=sys.stderr
                )
            self.model = build_model(spec, self.data)
            spec.hyperparameters = dict(self.model.hp)
        self.translates = bool(getattr(self.model, "translates", False))
        if getattr(self.model, "needs_pairs", False) and not self.data.info.get("paired"):
            raise LabError(
                f"a {spec.model} trains on pairs: use the themes data set with dataset_options.paired=true"
            )
        self.start = self.model.step
        self.stop = StopOnInterrupt()
        self.x = torch.from_numpy(self.data.train_x)
        self.y = torch.from_numpy(self.data.train_y)
        if len(self.x) < self.model.min_batch:
            raise LabError(
                f"a {spec.model} trains on batches of at least {self.model.min_batch} images; the training "
                f"split holds {len(self.x)}: give it more images"
            )
        self.batches = Batches(len(self.x), int(self.model.hp["batch_size"]), mix(spec.seed, 4))

    # ----- pieces -----

    def _load(self, path: Path) -> tuple[GenerativeModel, dict[str, Any]]:
        from generative.checkpoint import load_model

        return load_model(path, family=self.spec.model)

    def sample_grid(self, name: str) -> Path:
        """A grid of samples drawn with a fixed seed (rows of labels for conditional models)."""
        from generative.images import tile, write_png

        model, n = self.model, self.spec.samples
        if self.translates:  # rows a, G(a), F(G(a)), b of held-out images
            from generative.translation_metrics import translation_grid

            images, columns = translation_grid(model, self.data, min(n, 16))  # type: ignore[arg-type]
            return write_png(tile(images, columns), self.run.path / "samples" / f"{name}.png")
        labels, columns = None, None
        if model.conditional:
            columns = max(1, n // model.n_classes) if n >= model.n_classes else None
            labels = torch.arange(n) // columns if columns else torch.arange(n) % model.n_classes
            labels = labels.clamp(max=model.n_classes - 1)
        images = model.sample(n, labels, torch.Generator().manual_seed(mix(self.spec.seed, 5)))
        return write_png(tile(images.numpy(), columns), self.run.path / "samples" / f"{name}.png")

    def evaluate(self) -> dict[str, float]:
        step = self.model.step
        generator = eval_generator(self.spec.seed)
        x, y = torch.from_numpy(self.data.test_x), torch.from_numpy(self.data.test_y)
        if self.translates:
            from generative.translation_metrics import measure_translation

            row = measure_translation(
                self.model,  # type: ignore[arg-type]
                self.data,
                seed=quality_seed(self.spec.seed),
                cache_dir=self.cache_dir,
                progress=self.progress,
            )
        else:
            row = self.model.evaluate(x, y, generator)
        self.sample_grid(f"step-{step:07d}")
        return row

    def checkpoint(self, log: MetricsFiles, trainer: dict[str, Any]) -> Path:
        """A checkpoint at the model's step; ``trainer`` is the loop's state that goes with it."""
        from generative.checkpoint import save_model

        log.flush()
        path = self.run.checkpoint_path(self.model.step)
        save_model(path, self.model, model_meta(self.spec, self.data) | {"trainer": trainer})
        self.run.prune_checkpoints(self.spec.keep_checkpoints)
        self.run.write_status(step=self.model.step, last_checkpoint=path.name)
        return path

    def measure(self) -> dict[str, Any]:
        from generative.metrics import load_classifier

        classifier = load_classifier(self.data, self.cache_dir, self.spec.seed, progress=self.progress)
        quality = measure_with_progress(
            self.model, self.data, classifier, quality_seed(self.spec.seed), progress=self.progress
        )
        return quality.as_row() | {"summary": quality.summary()}

    # ----- the loop -----

    def fit(self) -> dict[str, Any]:
        """Train to ``steps`` (or ``minutes``), then save, measure and plot; returns the final figures."""
        with self.run.claim(fresh=not self.resuming), disk_full_is_an_error(self.run, "lab gen train"):
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        from rich.progress import BarColumn, TextColumn

        from lab.progress import timed_progress

        spec, model, run = self.spec, self.model, self.run
        final_done = bool(self.state.get("final"))
        if self.start == 0:
            if self.resuming:
                run.clear_outputs()
            save_spec(spec, run.spec)
        run.remove_temporary_files()
        eval_rows = self.state.get("eval_rows") if final_done else None
        log = MetricsFiles(
            run, [*model.loss_names, "lr"], [*model.eval_names, *QUALITY_COLUMNS], self.start, eval_rows
        )
        started = time.perf_counter()
        trained_images, train_seconds = 0, 0.0
        sums: dict[str, float] = dict(self.state.get("sums") or {})
        count = int(self.state.get("count", 0))
        try:
            started_with = {"name": spec.name, "model": spec.model, "started_at_step": self.start}
            run.write_status(status="running", data=self.data.info, **started_with)
            columns = (
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
                TextColumn("{task.completed:,}/{task.total:,} steps"), TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} img/s"),
            )  # fmt: skip
            bar = timed_progress(*columns, disable=not self.progress or final_done)
            with bar, self.stop, flush_denormals():  # for the evaluations too (train_step flushes itself)
                task = bar.add_task(spec.name, total=spec.steps, completed=self.start, loss="-", rate="-")
                deadline = None if spec.minutes is None else started + 60.0 * spec.minutes
                while model.step < spec.steps and not final_done:
                    if deadline is not None and time.perf_counter() >= deadline:
                        break
                    step = model.step
                    index = self.batches.indices(step)
                    tick = time.perf_counter()
                    try:
                        losses = model.train_step(
                            self.x[index], self.y[index], step_generator(spec.seed, step)
                        )
                    except LabError as exc:
                        last = run.latest_checkpoint()
                        kept = f"; the last good checkpoint is {last}" if last else ""
                        run.write_status(status="failed", error=str(exc))
                        raise LabError(f"training stopped: {exc}{kept}") from None
                    train_seconds += time.perf_counter() - tick
                    trained_images += len(index)
                    for key, value in losses.items():
                        sums[key] = sums.get(key, 0.0) + value
                    count += 1
                    done = model.step
                    if done % spec.log_interval == 0 or done == spec.steps:
                        row = {k: v / count for k, v in sums.items()}
                        row["lr"] = next(iter(model.optimizers().values())).param_groups[0]["lr"]
                        log.metrics(done, row)
                        sums, count = {}, 0
                    if spec.eval_interval and done % spec.eval_interval == 0 and done < spec.steps:
                        log.evaluation(done, self.evaluate())
                    periodic = spec.checkpoint_interval and done % spec.checkpoint_interval == 0
                    stopping = self.stop.requested and done < spec.steps
                    if (periodic and done < spec.steps) or stopping:
                        path = self.checkpoint(log, {"sums": sums, "count": count})
                    rate = trained_images / max(train_seconds, 1e-9)
                    bar.update(task, completed=done, loss=f"{losses['loss']:.4f}", rate=f"{rate:,.0f}")
                    if stopping:
                        run.write_status(status="stopped")
                        raise RunStopped(
                            f"stopped at step {done:,} ({path.name} written); "
                            f"continue with: lab gen train --resume {run.path}"
                        )
            if count:  # stopped by the time limit between two rows
                log.metrics(model.step, {k: v / count for k, v in sums.items()})
            final = self.evaluate()
            self.sample_grid("final")
            if not final_done:  # from here a resumed run only redoes the final figures and files
                self.checkpoint(log, {"final": True, "eval_rows": log.eval_rows})
            from generative.checkpoint import save_model

            save_model(run.model, model, model_meta(spec, self.data))
            if spec.measure and not self.translates:  # a translation model's evaluation is its measure
                try:
                    quality = self.measure()
                except KeyboardInterrupt:  # the measurement can take minutes; the model is safe
                    run.write_status(status="stopped")
                    raise RunStopped(
                        f"stopped during the final measurement (the final checkpoint is written); "
                        f"finish it with: lab gen train --resume {run.path}"
                    ) from None
                final |= {k: quality[k] for k in QUALITY_COLUMNS}
                final["summary"] = quality["summary"]
            log.evaluation(model.step, final)
        finally:
            log.close()
        plot_generative_curves(run, f"{spec.name}: {spec.model} on {spec.dataset}")
        seconds = time.perf_counter() - started
        status = {
            "status": "finished", "step": model.step, "model": run.model.name,
            "train_seconds": round(train_seconds, 2), "seconds": round(seconds, 2),
            "images_per_second": round(trained_images / max(train_seconds, 1e-9), 1),
            "final": {k: v for k, v in final.items() if k != "summary"},
        }  # fmt: skip
        run.write_status(**status)
        return final


def measure_with_progress(
    model: GenerativeModel,
    data: ImageData,
    classifier: Classifier,
    seed: int,
    progress: bool = True,
    **options: Any,
) -> Quality:
    """:func:`generative.metrics.measure` with a bar counting the images it generates."""
    from generative.metrics import DRAWS, measure

    per_class = 50
    total = len(data.test_x) * DRAWS + (data.n_classes * per_class if model.conditional else 0)
    what = "Frechet ratio" + (" and conditional accuracy" if model.conditional else "")
    sample = model.sample

    with measuring_bar(f"generating images for the {what}", disable=not progress) as bar:
        task = bar.add_task("", total=total)

        def counted(n: int, *args: Any, **kwargs: Any) -> torch.Tensor:
            images = sample(n, *args, **kwargs)
            bar.advance(task, n)
            return images

        model.sample = counted  # type: ignore[method-assign]  # only while measuring
        try:
            return measure(model, data, classifier, seed=seed, per_class=per_class, **options)
        finally:
            del model.sample


def train(
    spec: GenSpec,
    runs_dir: str | Path = "runs",
    progress: bool = True,
    cache_dir: str | Path | None = None,
    force: bool = False,
) -> tuple[RunDir, dict[str, Any]]:
    """Train ``spec`` into ``runs_dir/<name>``; nothing is written before the data and model are built.
    ``force`` moves an existing run of that name aside (``<name>.old-<time>``) and starts afresh."""
    run = RunDir.new(runs_dir, str(spec.name), "lab gen train", force=force)
    for key in ("path", "path_a", "path_b"):  # image folders, as absolute paths: the run (its spec and
        value = spec.dataset_options.get(key)  # model file) is read again from other folders (lab gen eval)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            spec.dataset_options[key] = str(Path(value).resolve())
    trainer = GenTrainer(spec, run, progress=progress, cache_dir=cache_dir)
    return trainer.run, trainer.fit()


def resume(
    path: str | Path, progress: bool = True, cache_dir: str | Path | None = None
) -> tuple[RunDir, dict[str, Any]]:
    """Continue a killed or stopped run from its last good checkpoint to the spec's steps (from step 0
    when it has none; a run killed after its final checkpoint only redoes its final figures)."""
    run = RunDir.open(path, "generative model", "train --resume")
    spec = load_gen_spec(run.spec)
    run.refuse_if_finished()
    trainer = GenTrainer(spec, run, resume=True, progress=progress, cache_dir=cache_dir)
    return run, trainer.fit()
