#!/usr/bin/env python3
"""DP-SGD training throughput next to non-private training of the same model, same run.

Usage: bench_dp_sgd.py [--bin build/bin] [--batch 256] [--seconds 5] [--threads 1]
                       [--architectures niid_cnn,mcmahan_cnn] [--data DIR]

For each architecture it measures, with `tessera-model bench-train --json`:
  sgd      plain mini-batch SGD at batch B (the baseline),
  dp-sgd   record-level DP-SGD at expected batch B (Poisson sampling, per-example gradients
           from one backward pass, clipping, CSPRNG Gaussian noise),
  naive    SGD at batch 1: one forward/backward pass per example, the cost floor of computing
           per-example gradients with a loop of batch-size-1 passes,
and prints images/s with the ratios to the baseline measured in the same run.
"""
import argparse
import json
import os
import subprocess
import sys


def bench(binary, arch, batch, seconds, threads, data, dp):
    cmd = [binary, "bench-train", "--architecture", arch, "--batch-size", str(batch),
           "--seconds", str(seconds), "--threads", str(threads), "--json"]
    if data:
        cmd += ["--data", data]
    if dp:
        cmd.append("--dp-sgd")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--architectures", default="niid_cnn,mcmahan_cnn")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    binary = os.path.join(a.bin, "tessera-model")
    data = a.data if os.path.isdir(a.data) else ""
    print(f"batch {a.batch}, {a.threads} LibTorch thread(s), {a.seconds:g} s per cell, "
          f"{'Fashion-MNIST' if data else 'synthetic'} data")
    print(f"{'model':<12} {'sgd img/s':>10} {'dp-sgd img/s':>13} {'dp/sgd':>7} "
          f"{'naive img/s':>12} {'naive/sgd':>10} {'dp/naive':>9}")
    for arch in a.architectures.split(","):
        sgd = bench(binary, arch, a.batch, a.seconds, a.threads, data, False)
        dp = bench(binary, arch, a.batch, a.seconds, a.threads, data, True)
        naive = bench(binary, arch, 1, a.seconds, a.threads, data, False)
        s, d, n = (r["images_per_second"] for r in (sgd, dp, naive))
        print(f"{arch:<12} {s:>10.0f} {d:>13.0f} {d / s:>7.2f} {n:>12.0f} {n / s:>10.3f} "
              f"{d / n:>9.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
