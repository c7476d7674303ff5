"""CycleGAN (unpaired) and pix2pix (paired) between the grid worlds' rendering themes, trained from
configs/gen-themes-*.yaml and scored exactly on held-out states.

    python benchmarks/bench_translation.py                     # classic <-> paper, both (10 min each)
    python benchmarks/bench_translation.py --only cyclegan --seeds 0 1 2    # the target's pass rule
    python benchmarks/bench_translation.py --only cyclegan-blueprint        # classic <-> blueprint
    python benchmarks/bench_translation.py --quick             # 20 steps each, a smoke test
    python benchmarks/bench_translation.py --minutes 5         # another time limit
    python benchmarks/bench_translation.py --restarts 8 --restart-steps 250 600  # a diagnosis, below

Targets (CycleGAN, 32x32 frames, 200 held-out states, within 10 minutes of training on 2 CPU
cores): per-cell accuracy >= 99% and PSNR >= 30 dB, in both directions, on at least 2 of the
seeds run. Reported beside them: SSIM, the cycle error, the steganography probe (F(G(a)) with and
without Gaussian noise of sigma 0.02 on G(a)), training throughput (images/s of ``train_step``, as
run.json records it) and translation time per image (a batch of the held-out images, after a
warm-up batch). On a machine shared with other work the steps/s is what the 10-minute limit turns
into a step count.

``--restarts K --restart-steps S...`` is a diagnosis, not a training run, of the blueprint case:
could restarts picked without labels help? It trains K short CycleGAN candidates of
configs/gen-themes-cyclegan-blueprint.yaml (candidate 0 is the run's own start; candidate k > 0
draws its initial weights, batch order and noise from a seed derived from the run's), and at each
of the steps S prints, per candidate, unpaired criteria measured on training images only (the
cycle L1; the generators' least-squares adversarial losses under the candidate's own PatchGANs and
global critics; the loss of a fresh global critic trained on real B vs G(a) and real A vs F(b); the
L1 distance of 64-bin colour histograms of G(a) and real B, F(b) and real A) beside the held-out
cell accuracy, then Spearman's rank correlation of each criterion with the accuracy. The accuracy
is for the diagnosis only; nothing selects with it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from generative.translation_metrics import measure_translation, summary
from lab.gen.spec import load_gen_spec

ROOT = Path(__file__).resolve().parent.parent
TARGET_ACCURACY, TARGET_PSNR = 0.99, 30.0
CONFIGS = ("cyclegan", "pix2pix", "cyclegan-blueprint")


def translate_seconds(model, data, batch: int = 200) -> float:
    a, _ = model.split(torch.from_numpy(data.test_x[:batch]))
    model.translate(a[:8])  # warm-up
    tick = time.perf_counter()
    model.translate(a)
    return (time.perf_counter() - tick) / len(a)


def run(config: str, runs_dir: Path, quick: bool, minutes: float | None, seed: int | None) -> bool | None:
    """Train and score ``configs/gen-themes-<config>.yaml``; for a CycleGAN, whether it met the target."""
    from lab.gen.train import GenTrainer
    from lab.runs import RunDir

    spec = load_gen_spec(ROOT / "configs" / f"gen-themes-{config}.yaml")
    spec.name = f"bench-{config}-seed{spec.seed if seed is None else seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    if quick:
        spec.steps, spec.eval_interval, spec.checkpoint_interval = 20, 0, 0
    if minutes is not None:
        spec.minutes = minutes
    if seed is not None:
        spec.seed = seed
    trainer = GenTrainer(spec, RunDir.new(runs_dir, spec.name, "bench_translation"), progress=not quick)
    final = trainer.fit()
    status = trainer.run.read_status()
    print(f"\n{config} (seed {spec.seed}): {trainer.run.path}, step {status['step']} of {spec.steps}, "
          f"{status['train_seconds']:.0f} s of training on {torch.get_num_threads()} thread(s)")  # fmt: skip
    print(f"  {summary(final)}")
    rate = status["images_per_second"]
    print(f"  training {rate:.1f} images/s ({rate / spec.hyperparameters['batch_size']:.2f} steps/s); "
          f"translation {1000 * translate_seconds(trainer.model, trainer.data):.2f} ms/image")  # fmt: skip
    if spec.model != "cyclegan":
        return None
    met = all(
        final[f"accuracy_{k}"] >= TARGET_ACCURACY and final[f"psnr_{k}"] >= TARGET_PSNR for k in ("ab", "ba")
    )
    target = f"cells >= {100 * TARGET_ACCURACY:.0f}% and PSNR >= {TARGET_PSNR:.0f} dB, both directions"
    print(f"  target ({target}): {'met' if met else 'NOT met'}")
    return met


def colour_histogram(images: torch.Tensor) -> torch.Tensor:
    """The share of pixels in each of 64 colours (4 levels per RGB channel)."""
    levels = ((images.clamp(-1, 1) + 1) / 2 * 3.999).long()
    index = levels[:, 0] * 16 + levels[:, 1] * 4 + levels[:, 2]
    return torch.bincount(index.flatten(), minlength=64).float() / index.numel()


def fresh_critic_loss(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = 150) -> float:
    """The least-squares loss, on the second half of the images, of a new global critic trained on
    the first half to tell ``real`` from ``fake`` (higher: the fakes are harder to tell apart)."""
    from generative.cyclegan import least_squares
    from generative.translation import GlobalDiscriminator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = GlobalDiscriminator(tuple(real.shape[1:]), 16)
    opt = torch.optim.Adam(critic.parameters(), lr=5e-4, betas=(0.5, 0.999))
    half, generator = len(real) // 2, torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(0, half, (32,), generator=generator)
        loss = least_squares(critic(real[i]), 1.0) + least_squares(critic(fake[i]), 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(
            0.5 * (least_squares(critic(real[half:]), 1.0) + least_squares(critic(fake[half:]), 0.0))
        )


@torch.no_grad()
def unpaired_criteria(model, images: torch.Tensor, seed: int) -> dict[str, float]:
    """The criteria above on training images ``images`` (both domains' halves)."""
    from generative.cyclegan import least_squares

    for module in model.modules().values():
        module.eval()
    a, b = model.split(images)
    fake_b, fake_a = model.g_ab(a), model.g_ba(b)
    critics = model.critics  # the blueprint config has them (lambda_global 1)
    with torch.enable_grad():
        fresh = fresh_critic_loss(b, fake_b, seed) + fresh_critic_loss(a, fake_a, seed + 1)
    return {
        "cycle": float(F.l1_loss(model.g_ba(fake_b), a) + F.l1_loss(model.g_ab(fake_a), b)),
        "adv_patch": float(least_squares(model.d_b(fake_b), 1.0) + least_squares(model.d_a(fake_a), 1.0)),
        "adv_global": float(
            least_squares(critics["c_b"](fake_b), 1.0) + least_squares(critics["c_a"](fake_a), 1.0)
        ),
        "fresh_critic": fresh,
        "colours": float(
            (colour_histogram(fake_b) - colour_histogram(b)).abs().sum()
            + (colour_histogram(fake_a) - colour_histogram(a)).abs().sum()
        ),
    }


def restarts_diagnosis(restarts: int, checkpoints: list[int], seed: int | None) -> None:
    from scipy.stats import spearmanr

    from generative.data import load_dataset
    from lab.gen.train import Batches, build_model, mix, step_generator

    spec = load_gen_spec(ROOT / "configs" / "gen-themes-cyclegan-blueprint.yaml")
    run_seed = spec.seed if seed is None else seed
    data = load_dataset(spec.dataset, spec.dataset_options, run_seed, spec.test_fraction)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    table: dict[int, list[dict[str, float]]] = {s: [] for s in checkpoints}
    for k in range(restarts):
        spec.seed = run_seed if k == 0 else mix(run_seed, 100 + k)  # candidate 0: the run's own start
        model = build_model(spec, data)
        batches = Batches(len(x), int(model.hp["batch_size"]), mix(spec.seed, 4))
        for step in range(max(checkpoints)):
            index = batches.indices(step)
            model.train_step(x[index], y[index], step_generator(spec.seed, step))
            if step + 1 in table:
                row = unpaired_criteria(model, x[:400], mix(run_seed, 5))
                final = measure_translation(model, data)
                row["accuracy"] = (final["accuracy_ab"] + final["accuracy_ba"]) / 2
                table[step + 1].append(row)
                cells = "  ".join(f"{key} {value:.4f}" for key, value in row.items())
                print(f"candidate {k}, step {step + 1}: {cells}", flush=True)
    for step, rows in table.items():
        accuracy = [r["accuracy"] for r in rows]
        for key in rows[0]:
            if key != "accuracy":
                rho = spearmanr([r[key] for r in rows], accuracy).statistic
                print(f"step {step}: Spearman rho of {key} with the held-out cell accuracy: {rho:+.2f}")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--only", choices=CONFIGS, default=None, help="one config (default: cyclegan and pix2pix)"
    )
    parser.add_argument("--quick", action="store_true", help="20 steps each: a smoke test")
    parser.add_argument("--minutes", type=float, default=None, help="training time limit (default: configs')")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="the runs' seeds (default: the config's; restarts: the first)",
    )
    parser.add_argument("--runs-dir", default="runs", help="where the run directories go")
    parser.add_argument("--restarts", type=int, default=0, help="the restarts diagnosis: K candidates")
    parser.add_argument("--restart-steps", type=int, nargs="+", default=[250], help="its steps S...")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.restarts:
        if args.restarts < 2 or min(args.restart_steps) < 1:
            parser.error("--restarts needs 2 or more candidates and --restart-steps positive step counts")
        restarts_diagnosis(args.restarts, sorted(set(args.restart_steps)), (args.seeds or [None])[0])
        return
    for config in [args.only] if args.only else ["cyclegan", "pix2pix"]:
        met = [
            run(config, Path(args.runs_dir), args.quick, args.minutes, seed) for seed in args.seeds or [None]
        ]
        if met[0] is not None and len(met) > 1:
            rule = "met" if sum(met) >= 2 else "NOT met"
            print(
                f"\n{config}: the target met on {sum(met)} of {len(met)} seeds; pass rule (2 seeds): {rule}"
            )


if __name__ == "__main__":
    main()
