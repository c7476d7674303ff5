"""lab sweep: the process pool against one trial after another, Ray's overhead, and kills.

    python benchmarks/bench_sweep.py                 # 8 trials: serial vs --workers 2 (a few minutes)
    python benchmarks/bench_sweep.py --ray           # also --backend ray: start time, memory, overhead
    python benchmarks/bench_sweep.py --kills 3       # 12 trials killed 3 times at random moments

(a) Speed. The same 8 trials (CliffWalk Q-learning, 2 learning rates x 4 seeds, ``--steps`` each)
run as ``lab sweep`` commands, each a fresh process so both pay the interpreter and imports:
``--backend serial`` and ``--backend pool --workers 2``. Wall-clock seconds, best of ``--repeats``,
and their ratio. The trials' eval.csv files are compared byte for byte across the backends.

(b) Ray (``--ray``): ``ray.init()`` time on this machine, the memory its processes hold (RSS of
the processes it started), and the same sweep with ``--backend ray``.

(c) Kills (``--kills K``): a 12-trial sweep (pool, 2 workers) is killed (SIGKILL to its process
group) at K random moments (each after that attempt finished a trial), then rerun to the end.
Checked: no trial finished before a kill is rerun or changed (mtime and bytes of every file), and
all 12 end finished.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = """name: bench
env: lab/CliffWalk-v0
agent: q_learning
hyperparameters: {{gamma: 0.99, learning_rate: 0.5, epsilon: 0.1}}
total_timesteps: {steps}
eval_interval: {interval}
eval_episodes: 10
record_episodes: 0
checkpoint_interval: 0
"""


def lab(*args: str, **kwargs: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args], env=env, stdout=subprocess.DEVNULL, **kwargs
    )


def sweep_args(spec: Path, out: Path, seeds: str, *extra: str) -> list[str]:
    grid = "hyperparameters.learning_rate=0.2,0.5"
    return ["sweep", str(spec), "--seeds", seeds, "--grid", grid, "--sweeps-dir", str(out), *extra]


def timed(args: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (the command and its pool workers) of one lab command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = lab(*args)
    if process.wait() != 0:
        raise SystemExit(f"lab {' '.join(args)} failed")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.perf_counter() - start, cpu


def curves(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((out / "bench" / "trials").glob("*/eval.csv"))}


def speed(spec: Path, work: Path, repeats: int, ray: bool) -> None:
    backends = {"serial": ["--backend", "serial"], "pool": ["--backend", "pool", "--workers", "2"]}
    if ray:
        backends["ray"] = ["--backend", "ray"]
    best: dict[str, tuple[float, float]] = {}
    results: dict[str, dict[str, bytes]] = {}
    for _ in range(repeats):
        for name, extra in backends.items():
            out = work / name
            shutil.rmtree(out, ignore_errors=True)
            seconds, cpu = timed(sweep_args(spec, out, "0-3", *extra))
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, cpu)
            results[name] = curves(out)
    for name, (seconds, cpu) in best.items():
        print(f"{name:>6}: {seconds:6.1f} s wall, {cpu:6.1f} s CPU for 8 trials (best of {repeats})")
    print(f"pool speed-up over serial: {best['serial'][0] / best['pool'][0]:.2f}x wall-clock")
    print(f"pool CPU overhead (a second interpreter's imports): {best['pool'][1] - best['serial'][1]:+.1f} s")
    if ray:
        print(f"ray overhead over the pool: {best['ray'][0] - best['pool'][0]:+.1f} s wall-clock")
    same = all(results[name] == results["serial"] for name in results)
    print(f"eval.csv identical across {', '.join(results)}: {same} ({len(results['serial'])} trials)")


def ray_start() -> None:
    import ray

    before = set(os.listdir("/proc"))
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    seconds = time.perf_counter() - start
    rss = 0
    for pid in set(os.listdir("/proc")) - before:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    print(
        f"ray.init(): {seconds:.1f} s; its processes hold {rss / 1024:.0f} MiB RSS (this driver not counted)"
    )
    ray.shutdown()


def finished_files(trials: Path) -> dict[str, tuple[int, bytes]]:
    files = {}
    for run in trials.iterdir() if trials.is_dir() else []:
        status = run / "run.json"
        if status.is_file() and '"finished"' in status.read_text() and (run / "model.npz").is_file():
            files.update(
                {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
            )
    return files


def kills(spec: Path, work: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    out = work / "kills"
    shutil.rmtree(out, ignore_errors=True)
    args = sweep_args(spec, out, "0-5", "--workers", "2")
    trials = out / "bench" / "trials"
    for k in range(count):
        kept = finished_files(trials)
        process = lab(*args, start_new_session=True)
        # a random moment once this attempt has finished a trial (start-up alone takes seconds)
        while process.poll() is None and len(finished_files(trials)) == len(kept):
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 4.0))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(1.0)  # let the workers see their parent gone
        changed = [p for p, v in kept.items() if finished_files(trials).get(p) != v]
        done = len({Path(p).relative_to(trials).parts[0] for p in finished_files(trials)})
        print(
            f"kill {k + 1}: {done}/12 trials finished; finished before it and changed since: {len(changed)}"
        )
    kept = finished_files(trials)
    timed(args)
    if changed := [p for p, v in kept.items() if finished_files(trials).get(p) != v]:
        raise SystemExit(f"finished trials changed by the rerun: {changed[:3]}")
    done = len({Path(p).relative_to(trials).parts[0] for p in finished_files(trials)})
    print(f"after the final rerun: {done}/12 finished; no finished trial rerun or changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30000, help="environment steps per trial")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ray", action="store_true", help="also measure --backend ray")
    parser.add_argument("--kills", type=int, default=0, help="kill a 12-trial sweep this many times")
    parser.add_argument("--seed", type=int, default=0, help="the kill moments' seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        spec = work / "spec.yaml"
        spec.write_text(SPEC.format(steps=args.steps, interval=max(args.steps // 5, 1)))
        print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} before the start")
        if args.kills:
            kills(spec, work, args.kills, args.seed)
        else:
            if args.ray:
                ray_start()
            speed(spec, work, args.repeats, args.ray)


if __name__ == "__main__":
    main()
