"""Training throughput of the supervised core on the digits CNN of tests/test_fit.py.

    python benchmarks/bench_supervised.py          # 10 epochs, best of 3, at 1 and 2 threads
    python benchmarks/bench_supervised.py --quick  # 3 epochs, once

For torch.set_num_threads(1) and (2): fit()'s training samples per second (forward, backward,
optimiser step; validation excluded), predict()'s samples per second, the wall time of the whole
fit() and the held-out accuracy reached (scikit-learn's digits, stratified 75/25 split,
random_state=0). Small convolutions gain little from a second thread, and on a busy machine two
threads can be far slower than one: compare the rows on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from lab.nets import GridCNN, accuracy, fit, predict


def digits_cnn() -> nn.Module:
    """The model of tests/test_fit.py::digits_cnn."""
    features = GridCNN(1, 8, 8, out_features=64, channels=(16, 32), norm="batch")
    return nn.Sequential(features, nn.Linear(64, 10))


def measure(threads: int, epochs: int, repeats: int, data: tuple) -> dict[str, float]:
    X_train, X_test, y_train, y_test = data
    torch.set_num_threads(threads)
    options = {"lr": 2e-3, "schedule": "cosine", "seed": 0, "progress": False}
    fit(digits_cnn(), X_train, y_train, epochs=1, **options)  # warm-up: the first calls set kernels up
    best: dict[str, float] = {}
    for _ in range(repeats):
        torch.manual_seed(0)
        model = digits_cnn()
        start = time.perf_counter()
        history = fit(model, X_train, y_train, epochs=epochs, **options)
        seconds = time.perf_counter() - start
        tick = time.perf_counter()
        for _ in range(5):
            predict(model, X_test, batch_size=256)
        predict_rate = 5 * len(X_test) / (time.perf_counter() - tick)
        run = {
            "train": history.samples_per_second,
            "predict": predict_rate,
            "seconds": seconds,
            "accuracy": accuracy(model, X_test, y_test),
        }
        if not best or run["train"] > best["train"]:
            best = run
    return best


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--quick", action="store_true", help="3 epochs, one repeat (a smoke run)")
    parser.add_argument("--epochs", type=int, help="epochs per fit (default 10; 3 with --quick)")
    parser.add_argument("--repeats", type=int, help="best of this many (default 3; 1 with --quick)")
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 10)
    repeats = args.repeats or (1 if args.quick else 3)
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    data = train_test_split(X, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    n_train = round(0.9 * len(data[0]))  # fit() holds out val_fraction=0.1
    print(
        f"digits CNN (GridCNN 16-32 + BatchNorm, linear head): {n_train} training images, "
        f"{len(data[1])} held out, {epochs} epochs, batch 64, AdamW + cosine; best of {repeats}"
    )
    print()
    print("| threads | train samples/s | predict samples/s | fit seconds | held-out accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for threads in (1, 2):
        r = measure(threads, epochs, repeats, data)
        print(
            f"| {threads} | {r['train']:,.0f} | {r['predict']:,.0f} | {r['seconds']:.2f} "
            f"| {100 * r['accuracy']:.2f}% |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
