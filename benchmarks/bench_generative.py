"""Speed of the generative models on the digits, with the hyperparameters of configs/gen-digits-*.yaml.

    python benchmarks/bench_generative.py                     # throughput and sampling, 1 thread
    python benchmarks/bench_generative.py --quick             # fewer steps, for a smoke test
    python benchmarks/bench_generative.py --ddim runs/gen-digits-diffusion   # + DDIM vs DDPM quality
    python benchmarks/bench_generative.py --ddim RUN --ddim-only --no-ddpm --ddim-steps 100 --eta 1

- Training throughput: images per second of ``train_step`` (forward, backward, optimiser and EMA
  updates) over ``--steps`` steps after a few warm-up steps, at the config's batch size.
- Sampling: seconds per image for a batch of ``--batch`` images (diffusion: DDIM at the config's
  steps, and DDPM over the whole chain), for freshly initialised weights (the cost does not depend
  on the weights).
- ``--ddim RUN``: a trained diffusion model sampled by DDPM (1000 steps) and by DDIM with fewer
  steps; the Frechet ratio (``--draws`` sets of generated images; ``lab gen eval`` uses 5) and
  conditional accuracy of each against the time it takes, so DDIM's speed-up can be read at equal
  quality.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from generative.data import load_dataset
from lab.gen.models import build_model, images_per_second
from lab.gen.spec import load_gen_spec

ROOT = Path(__file__).resolve().parent.parent


def sample_seconds(model, n: int, **options) -> float:
    generator = torch.Generator().manual_seed(0)
    tick = time.perf_counter()
    model.sample(n, None, generator, **options)
    return (time.perf_counter() - tick) / n


def throughput(quick: bool, steps: int, batch: int) -> None:
    data = load_dataset("digits", seed=0)
    print(f"{'model':<40} {'train img/s':>12} {'sample ms/img':>14}")
    for family in ("diffusion", "vae", "gan"):
        spec = load_gen_spec(ROOT / "configs" / f"gen-digits-{family}.yaml")
        model = build_model(spec, data)
        images_per_second(model, data, 3)  # warm-up
        rate = images_per_second(model, data, steps)
        if family == "diffusion":
            ddim = sample_seconds(model, batch)
            ddpm = sample_seconds(model, batch, sampler="ddpm") if not quick else float("nan")
            ddim_steps = model.hp["sample_steps"]
            print(f"{model.describe():<40} {rate:>12,.0f} {1000 * ddim:>14.2f}  (DDIM {ddim_steps} steps)")
            print(f"{'':<40} {'':>12} {1000 * ddpm:>14.2f}  (DDPM {model.hp['timesteps']} steps)")
        else:
            print(f"{model.describe():<40} {rate:>12,.0f} {1000 * sample_seconds(model, batch):>14.3f}")


def ddim_against_ddpm(run: str, quick: bool, draws: int, ddim_steps: list[int], eta: float) -> None:
    from generative.metrics import load_classifier, measure
    from lab.gen.models import data_from_meta
    from lab.gen.sample import open_model

    loaded = open_model(run)
    model = loaded.model
    data = data_from_meta(loaded.meta)
    cache = Path(run).resolve().parent / ".classifiers"
    classifier = load_classifier(data, cache, int(loaded.meta["spec"]["seed"]))
    print(f"\n{loaded.path}: classifier accuracy {classifier.accuracy:.2%}")
    print(f"{'sampler':<16} {'ms/img':>8} {'Frechet ratio':>14} {'cond. acc.':>11}")
    settings = [("ddim", steps) for steps in ddim_steps]
    if not quick:
        settings.append(("ddpm", model.hp["timesteps"]))
    for sampler, steps in settings:
        options = {"sampler": sampler, "steps": steps, "eta": eta if sampler == "ddim" else None}
        per_image = sample_seconds(model, 100, **options)
        quality = measure(model, data, classifier, seed=0, per_class=20, draws=draws, **options)
        accuracy = "-" if quality.conditional_accuracy is None else f"{quality.conditional_accuracy:.1%}"
        name = f"{sampler} {steps}" + (f" eta {eta:g}" if sampler == "ddim" and eta else "")
        print(f"{name:<16} {1000 * per_image:>8.1f} {quality.frechet_ratio:>14.3f} {accuracy:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="training steps timed (default 30, quick 5)")
    parser.add_argument("--batch", type=int, default=256, help="images per sampling batch")
    parser.add_argument(
        "--ddim-steps", default="10,25,50,100,250", help="--ddim: DDIM step counts (comma-separated)"
    )
    parser.add_argument("--eta", type=float, default=0.0, help="--ddim: DDIM's eta (0: deterministic)")
    parser.add_argument("--no-ddpm", action="store_true", help="--ddim: skip the 1000-step DDPM row (slow)")
    parser.add_argument("--ddim-only", action="store_true", help="skip the throughput table")
    parser.add_argument(
        "--draws", type=int, default=2, help="--ddim: sets of generated images per Frechet distance"
    )
    parser.add_argument(
        "--ddim", default=None, metavar="RUN", help="a trained diffusion run to compare samplers"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (5 if args.quick else 30)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.ddim_only:
        throughput(args.quick, steps, 32 if args.quick else args.batch)
    if args.ddim:
        ddim_steps = [int(k) for k in args.ddim_steps.split(",")]
        ddim_against_ddpm(args.ddim, args.quick or args.no_ddpm, args.draws, ddim_steps, args.eta)


if __name__ == "__main__":
    main()
