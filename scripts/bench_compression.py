#!/usr/bin/env python3
"""Update compression against float32 on the NIID-Bench CNN (docs/compression.md): Fashion-MNIST,
Dirichlet(0.5) over 10 clients, all 10 per round, 20 rounds, the same seed for every method.
Runs tessera-sim once per method and prints a Markdown table of the final test accuracy, the
mean upload bytes per round and their ratio to float32.

Usage: scripts/bench_compression.py [--build build] [--rounds 20] [--threads 0]
                                    [--methods none,fp16,bf16,int8,int8-noef,topk]
Methods: none, fp16, bf16, int8 (block 256), int8-noef, int8-block0 (one scale per tensor),
int8-block4096 (the default block), topk (10%), topk-noef.
                                    [--limit 0] [--out out/bench-compression]
"""
import argparse
import csv
import os
import subprocess
import sys

CONFIG = """name = "compression-{label}"
rounds = {rounds}
seed = 1
[model]
architecture = "niid_cnn"
seed = 1
[train]
local_epochs = 1
batch_size = 32
learning_rate = 0.01
momentum = 0.9
[selection]
clients_per_round = 10
min_clients = 10
[round]
deadline_seconds = 86400
[strategy]
name = "fedavg"
{compression}
[simulation]
dataset = "idx:/usr/share/datasets/fashion-mnist"
partition = "dirichlet:0.5"
clients = 10
threads = {threads}
limit = {limit}
test_every = {rounds}
"""

METHODS = {
    "none": "",
    "fp16": '[compression]\nmethod = "fp16"\n',
    "bf16": '[compression]\nmethod = "bf16"\n',
    "int8": '[compression]\nmethod = "int8"\nblock_size = 256\n',
    "int8-noef": '[compression]\nmethod = "int8"\nblock_size = 256\nerror_feedback = false\n',
    "int8-block0": '[compression]\nmethod = "int8"\nblock_size = 0\n',
    "int8-block4096": '[compression]\nmethod = "int8"\nblock_size = 4096\n',
    "topk": '[compression]\nmethod = "topk"\ntopk_fraction = 0.1\n',
    "topk-noef": '[compression]\nmethod = "topk"\ntopk_fraction = 0.1\nerror_feedback = false\n',
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--methods", default="none,fp16,bf16,int8,int8-noef,topk")
    ap.add_argument("--out", default="out/bench-compression")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for label in args.methods.split(","):
        path = os.path.join(args.out, label + ".toml")
        with open(path, "w") as f:
            f.write(CONFIG.format(label=label, rounds=args.rounds, threads=args.threads,
                                  limit=args.limit, compression=METHODS[label]))
        out = os.path.join(args.out, label)
        subprocess.run([os.path.join(args.build, "bin", "tessera-sim"), path, "--output", out,
                        "--no-plot"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "metrics.csv")) as f:
            metrics = list(csv.DictReader(f))
        up = [int(r["bytes_up"]) for r in metrics]
        acc = [r["test_accuracy"] for r in metrics if r["test_accuracy"] not in ("", "nan")]
        rows.append((label, float(acc[-1]), sum(up) / len(up),
                     sum(float(r["wall_seconds"]) for r in metrics)))
        print(f"{label}: accuracy {rows[-1][1]:.4f}, {rows[-1][2]:.0f} bytes up per round",
              file=sys.stderr)
    base = next((r for r in rows if r[0] == "none"), rows[0])
    print("| method | final test accuracy | vs float32 (points) | upload bytes per round | "
          "fewer bytes than float32 | wall seconds |")
    print("|---|---|---|---|---|---|")
    for label, acc, up, wall in rows:
        print(f"| {label} | {acc * 100:.2f}% | {(acc - base[1]) * 100:+.2f} | {up:,.0f} | "
              f"{base[2] / up:.3f}x | {wall:.0f} |")


if __name__ == "__main__":
    main()
