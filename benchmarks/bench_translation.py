"""CycleGAN (unpaired) and pix2pix (paired) between the grid worlds' classic and blueprint themes,
trained from configs/gen-themes-*.yaml and scored exactly on held-out states.

    python benchmarks/bench_translation.py                    # both configs as written (10 min each)
    python benchmarks/bench_translation.py --only cyclegan    # one of them
    python benchmarks/bench_translation.py --quick            # 20 steps each, a smoke test
    python benchmarks/bench_translation.py --minutes 5        # another time limit

Targets (CycleGAN, 32x32 frames, 200 held-out states, within 10 minutes of training on 2 CPU
cores): per-cell accuracy >= 99% and PSNR >= 30 dB, in both directions. Reported beside them:
SSIM, the cycle error, the steganography probe (F(G(a)) with and without Gaussian noise of
sigma 0.02 on G(a)), training throughput (images/s of ``train_step``, as run.json records it) and
translation time per image (a batch of the held-out images, after a warm-up batch). On a machine
shared with other work the steps/s is what the 10-minute limit turns into a step count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from generative.translation_metrics import summary
from lab.gen.spec import load_gen_spec

ROOT = Path(__file__).resolve().parent.parent
TARGET_ACCURACY, TARGET_PSNR = 0.99, 30.0


def translate_seconds(model, data, batch: int = 200) -> float:
    a, _ = model.split(torch.from_numpy(data.test_x[:batch]))
    model.translate(a[:8])  # warm-up
    tick = time.perf_counter()
    model.translate(a)
    return (time.perf_counter() - tick) / len(a)


def run(family: str, runs_dir: Path, quick: bool, minutes: float | None, seed: int | None) -> None:
    from lab.gen.train import GenTrainer
    from lab.runs import RunDir

    spec = load_gen_spec(ROOT / "configs" / f"gen-themes-{family}.yaml")
    spec.name = f"bench-{family}-seed{spec.seed if seed is None else seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    if quick:
        spec.steps, spec.eval_interval, spec.checkpoint_interval = 20, 0, 0
    if minutes is not None:
        spec.minutes = minutes
    if seed is not None:
        spec.seed = seed
    trainer = GenTrainer(spec, RunDir.new(runs_dir, spec.name, "bench_translation"), progress=not quick)
    final = trainer.fit()
    status = trainer.run.read_status()
    print(f"\n{family}: {trainer.run.path}, step {status['step']} of {spec.steps}, "
          f"{status['train_seconds']:.0f} s of training on {torch.get_num_threads()} thread(s)")  # fmt: skip
    print(f"  {summary(final)}")
    rate = status["images_per_second"]
    print(f"  training {rate:.1f} images/s ({rate / spec.hyperparameters['batch_size']:.2f} steps/s); "
          f"translation {1000 * translate_seconds(trainer.model, trainer.data):.2f} ms/image")  # fmt: skip
    if family == "cyclegan":
        for key in ("ab", "ba"):
            ok = final[f"accuracy_{key}"] >= TARGET_ACCURACY and final[f"psnr_{key}"] >= TARGET_PSNR
            print(f"  target {key}: cells >= {100 * TARGET_ACCURACY:.0f}% and PSNR >= {TARGET_PSNR:.0f} dB: "
                  f"{'met' if ok else 'NOT met'}")  # fmt: skip


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--only", choices=("cyclegan", "pix2pix"), default=None)
    parser.add_argument("--quick", action="store_true", help="20 steps each: a smoke test")
    parser.add_argument("--minutes", type=float, default=None, help="training time limit (default: configs')")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: the configs')")
    parser.add_argument("--runs-dir", default="runs", help="where the run directories go")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for family in [args.only] if args.only else ["cyclegan", "pix2pix"]:
        run(family, Path(args.runs_dir), args.quick, args.minutes, args.seed)


if __name__ == "__main__":
    main()
