"""Training throughput of the supervised core: the digits CNN of tests/test_nets.py.

    python benchmarks/bench_supervised.py          # 15 epochs at 1 and 2 threads
    python benchmarks/bench_supervised.py --quick  # 3 epochs

Reports samples per second of fit() (forward, backward, optimiser step, validation) and the
held-out accuracy reached, for torch.set_num_threads(1) and (2).
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

from lab.nets import GridCNN, accuracy, fit


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    epochs = 3 if args.quick else 15
    data = load_digits()
    X = (data.images / 16.0).astype(np.float32)[:, None]
    X_train, X_test, y_train, y_test = train_test_split(
        X, data.target, test_size=0.25, random_state=0, stratify=data.target
    )
    print(f"digits CNN (GridCNN 32-64 + linear), {len(X_train)} training images, {epochs} epochs, batch 64")
    print(f"  {'threads':>7}  {'samples/s':>10}  {'seconds':>8}  {'held-out accuracy':>17}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = nn.Sequential(GridCNN(1, 8, 8, out_features=64, channels=(32, 64)), nn.Linear(64, 10))
        start = time.perf_counter()
        history = fit(
            model, X_train, y_train, epochs=epochs, batch_size=64, lr=2e-3, schedule="cosine", seed=0
        )
        seconds = time.perf_counter() - start
        acc = accuracy(model, X_test, y_test)
        print(f"  {threads:>7}  {history.samples_per_second:>10,.0f}  {seconds:>8.2f}  {100 * acc:>16.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
