"""``lab gen``: train, sample, evaluate and watch generative models.

:func:`add_gen_parser` adds the ``gen`` command to the ``lab`` command's subparsers, whose error
rules it follows: a :class:`LabError` is one line on stderr and exit status 2. Handlers import
what they need, so ``lab --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lab.cli_types import (
    finite,
    folder,
    frame_rate,
    random_seed,
    refuse_with_resume,
    sample_count,
    scale,
    thread_count,
)
from lab.core.errors import LabError


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        import torch

        if args.threads < 1:
            raise LabError(f"--threads must be at least 1; got {args.threads}")
        torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> int:
    from lab.gen.train import resume, train
    from lab.runs import RunStopped

    _threads(args)
    progress = not args.no_progress
    try:
        if args.resume:
            flags = ["spec", "--model", "--dataset", "--steps", "--minutes", "--seed", "--name", "--set"]
            refuse_with_resume(args, [*flags, "--force"])
            run, final = resume(args.resume, progress=progress, cache_dir=args.cache)
        else:
            from lab.gen.spec import spec_from_args

            if not args.spec and not args.model:
                raise LabError(
                    "give a spec file (lab gen train SPEC.yaml) or --model "
                    "(diffusion, vae, gan, cyclegan, pix2pix)"
                )
            spec = spec_from_args(
                args.spec, args.set or [], model=args.model, dataset=args.dataset, steps=args.steps,
                minutes=args.minutes, seed=args.seed, name=args.name,
            )  # fmt: skip
            run, final = train(
                spec, runs_dir=args.runs_dir, progress=progress, cache_dir=args.cache, force=args.force
            )
    except RunStopped as stopped:  # Ctrl-C: the checkpoint is written; say how to go on
        print(f"lab: {stopped}", file=sys.stderr)
        return 130
    print(f"{run.path}: trained to step {run.read_status().get('step')}")
    if "summary" in final:
        print(final["summary"])
    for key in ("test_loss", "elbo", "bits_per_dim"):
        if key in final:
            print(f"{key} {final[key]:.4g}")
    return 0


def _sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"sampler": args.sampler, "steps": args.sample_steps, "eta": args.eta, "guidance": args.guidance}


def cmd_sample(args: argparse.Namespace) -> int:
    from lab.gen.sample import sample_to_files

    _threads(args)
    written = sample_to_files(
        args.model,
        n=args.n,
        out=args.out,
        label=args.label,
        gif=args.gif,
        seed=args.seed,
        **_sampling_options(args),
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from generative.metrics import load_classifier
    from lab.gen.models import data_from_meta
    from lab.gen.sample import check_sampling_options, open_model
    from lab.gen.seeding import eval_generator, quality_seed
    from lab.gen.train import measure_with_progress

    _threads(args)
    loaded = open_model(args.model)
    model = loaded.model
    options = check_sampling_options(model, _sampling_options(args))
    data = data_from_meta(loaded.meta)
    if data.shape != model.shape:
        raise LabError(f"the model makes {model.shape} images but its data set now gives {data.shape}")
    cache = Path(args.cache) if args.cache else _default_cache(loaded.path)
    if getattr(model, "translates", False):
        from generative.translation_metrics import measure_translation

        seed = (
            quality_seed(int(loaded.meta.get("spec", {}).get("seed", 0))) if args.seed is None else args.seed
        )
        print(f"{loaded.path}: {model.describe()}, step {model.step}, {len(data.test_x)} held-out pairs")
        row = measure_translation(model, data, seed=seed, cache_dir=cache, progress=True)  # type: ignore[arg-type]
        print(row["summary"])
        return 0
    seed = int(loaded.meta.get("spec", {}).get("seed", 0))
    classifier = load_classifier(data, cache, seed, progress=True)
    where = f"data {data.name} ({len(data.test_x)} test images)"
    print(f"{loaded.path}: {model.describe()}, step {model.step}, {where}")
    x, y = torch.from_numpy(data.test_x), torch.from_numpy(data.test_y)
    if args.seed is None:  # the draws of the run's own final measurement
        extra = model.evaluate(x, y, eval_generator(seed))
        quality = measure_with_progress(model, data, classifier, quality_seed(seed), **options)
    else:
        extra = model.evaluate(x, y, torch.Generator().manual_seed(args.seed))
        quality = measure_with_progress(model, data, classifier, args.seed, **options)
    quality.extra.update(extra)
    print(quality.summary())
    return 0


def _default_cache(model_file: Any) -> Any:
    """Beside the runs: ``runs/.classifiers`` for ``runs/<name>/model.npz`` (and its checkpoints)."""
    from pathlib import Path

    path = Path(model_file).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if (run_dir / "spec.yaml").is_file():
        return run_dir.parent / ".classifiers"
    return path.parent / ".classifiers"


def cmd_watch(args: argparse.Namespace) -> int:
    from lab.gen.watch import watch

    _threads(args)
    saved = watch(
        args.model, n=args.n, label=args.label, fps=args.fps, seed=args.seed, scale=args.scale,
        frames=args.frames, seconds=args.seconds,
    )  # fmt: skip
    for path in saved:
        print(f"saved {path}")
    return 0


def _diffusion_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sampler",
        choices=("ddim", "ddpm"),
        default=None,
        help="diffusion: the sampler (default: the model's)",
    )
    p.add_argument(
        "--sample-steps", type=int, default=None, help="diffusion: DDIM steps (default: the model's)"
    )
    p.add_argument(
        "--eta", type=finite, default=None, help="diffusion: DDIM noise, 0 deterministic .. 1 ancestral"
    )
    p.add_argument("--guidance", type=finite, default=None, help="diffusion: classifier-free guidance scale")


def add_gen_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``gen`` (train, sample, eval, watch) to the ``lab`` command's subparsers."""
    gen = subparsers.add_parser(
        "gen",
        help="generative models (diffusion, VAE, GAN, CycleGAN, pix2pix): train, sample, eval, watch",
        description="Train generative models on digits, grid-world frames or an image folder; sample, "
        "measure (Frechet ratio, conditional accuracy) and watch them.",
    )
    sub = gen.add_subparsers(dest="gen_command", metavar="GEN_COMMAND", required=True)
    threads = {"type": thread_count, "default": None, "help": "torch CPU threads (default: torch's choice)"}

    p = sub.add_parser(
        "train", help="train a model from a spec (configs/gen-*.yaml) or flags, into runs/<name>/"
    )
    p.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="a generative run spec")
    p.add_argument("--model", default=None, help="diffusion, vae, gan, cyclegan or pix2pix")
    p.add_argument("--dataset", default=None, help="digits, grid, folder, themes or folders")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    p.add_argument(
        "--seed", type=random_seed, default=None, help="the run's seed (default: the spec's, else 0)"
    )
    p.add_argument("--name", default=None, help="the run's name: runs/<name>/")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE",
        help="override a spec key (hyperparameters.conditional=true, dataset_options.path=imgs/)",
    )  # fmt: skip
    p.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    p.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a killed run from its last checkpoint"
    )
    p.add_argument(
        "--cache",
        type=folder,
        default=None,
        metavar="DIR",
        help="evaluation classifiers (default: RUNS_DIR/.classifiers)",
    )
    p.add_argument(
        "--force", action="store_true", help="move an existing run of the same name aside and start afresh"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_train)

    model_help = "a run directory or a model file (.npz)"
    p = sub.add_parser(
        "sample", help="a PNG grid of samples, and a GIF of the denoising chain or a latent walk"
    )
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--n", type=sample_count, default=64, help="how many samples (default: 64)")
    p.add_argument("--out", default="samples.png", help="the PNG grid (default: samples.png)")
    p.add_argument("--label", type=int, default=None, help="conditional models: all samples of this label")
    p.add_argument(
        "--gif", default=None, metavar="PATH", help="diffusion: the denoising chain; GAN/VAE: a latent walk"
    )
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the samples")
    _diffusion_flags(p)
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("eval", help="classifier accuracy, Frechet ratio and conditional accuracy of a model")
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument(
        "--seed",
        type=random_seed,
        default=None,
        help="seed of the generated images (default: those of the run's own measurement)",
    )
    p.add_argument(
        "--cache",
        type=folder,
        default=None,
        metavar="DIR",
        help="evaluation classifiers (default: beside the runs)",
    )
    _diffusion_flags(p)
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser(
        "watch",
        help="live samples in a window (keys: space pause, r resample, left/right label, s save, q quit)",
    )
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--n", type=int, default=16, help="samples on screen (default: 16)")
    p.add_argument("--label", type=int, default=None, help="conditional models: the first label shown")
    p.add_argument("--fps", type=frame_rate, default=12.0, help="frames per second")
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the first samples")
    p.add_argument("--scale", type=scale, default=4, help="enlarge the picture this many times")
    p.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_watch)
    return gen
