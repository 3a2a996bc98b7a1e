#!/usr/bin/env python3
"""Simulator benchmark: wall time per round, peak RSS, overhead and training throughput for
100, 1,000 and 10,000 virtual clients (10% per round) with the NIID-Bench CNN on
Fashion-MNIST, against the same model trained alone (tessera-model bench-train) measured in
the same run. Prints a Markdown table.

Usage: scripts/bench_sim.py [--build build] [--rounds 5] [--threads 0] [--clients 100,1000,10000]
                            [--model niid_cnn] [--device cpu] [--out out/bench-sim]
Overhead = 1 - (local training seconds summed over clients) / (threads x round wall time):
the share of the workers' time not spent inside LocalModel::Train (scheduling, data
subsets, model loading, deltas, the coordinator's aggregation, idle tails).

"Alone" is one single-threaded bench-train process per simulator thread, all at once: what
the cores deliver without the simulator (they share caches and memory bandwidth), training
the way one client does: one local epoch per call on a slice of as many examples as each
simulated client holds (IID partition: 60,000 / clients), with the per-call setup (optimizer,
inputs). With 10,000 clients each holds 6 examples, and a round of one 6-image step costs far
more per image than steps of 32 over a large set, in the simulator or out of it; the ratio
against plain 32-image steps over the whole data is printed too.
"""
import argparse
import json
import os
import subprocess
import sys

CONFIG = """name = "bench-{n}"
rounds = {rounds}
seed = 1
[model]
architecture = "{model}"
[train]
batch_size = {batch}
learning_rate = 0.01
momentum = 0.9
[selection]
clients_per_round = {per_round}
min_clients = 1
[round]
deadline_seconds = 86400
[simulation]
partition = "iid"
clients = {n}
threads = {threads}
device = "{device}"
test_every = 0
output = "{out}/sim-{n}"
"""


def bench_train(build, model, device, batch, processes, per_call=0):
    """images/s of `processes` concurrent 1-thread tessera-model bench-train runs, summed."""
    cmd = [f"{build}/bin/tessera-model", "bench-train", "--architecture", model,
           "--threads", "1", "--batch-size", str(batch), "--seconds", "4",
           "--data", "/usr/share/datasets/fashion-mnist", "--examples", "60000",
           "--examples-per-call", str(per_call), "--device", device, "--json"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(processes)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("bench-train failed")
        total += json.loads(out)["images_per_second"]
    return total


def run_sim(build, cfg, metrics):
    subprocess.run([f"{build}/bin/tessera-sim", cfg, "--no-plot"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(metrics) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--clients", default="100,1000,10000")
    p.add_argument("--model", default="niid_cnn")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", default="out/bench-sim")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    threads = a.threads or os.cpu_count()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for n in [int(x) for x in a.clients.split(",")]:
        cfg = os.path.join(a.out, f"sim-{n}.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(n=n, rounds=a.rounds, model=a.model, batch=a.batch,
                                  per_round=max(1, n // 10), threads=threads, device=a.device,
                                  out=a.out))
        per_client = 60000 // n
        # This machine's speed drifts: every simulator run sits between two baseline runs,
        # the ratio is taken against their mean, and the median of `repeat` such runs is kept.
        trials = []
        for _ in range(a.repeat):
            before = bench_train(a.build, a.model, a.device, a.batch, threads, per_client)
            m = run_sim(a.build, cfg, os.path.join(a.out, f"sim-{n}", "metrics.json"))
            after = bench_train(a.build, a.model, a.device, a.batch, threads, per_client)
            whole = bench_train(a.build, a.model, a.device, a.batch, threads)
            steady = m["rounds"][1:] or m["rounds"]  # round 1 includes building the models
            wall = sum(r["wall_seconds"] for r in steady)
            train = sum(r["train_seconds"] for r in steady)
            ips = sum(r["examples"] for r in steady) / wall
            trials.append((ips / ((before + after) / 2), wall / len(steady),
                           m["peak_rss_bytes"] / 2**20, 1 - train / (threads * wall), ips,
                           (before + after) / 2, whole))
        trials.sort()
        ratio, w, rss, ovh, ips, matched, whole = trials[len(trials) // 2]
        rows.append((n, max(1, n // 10), w, rss, ovh, ips, per_client, matched, ratio,
                     ips / whole))
    print(f"model {a.model}, {threads} threads, device {a.device}, batch {a.batch}; baseline: "
          f"{threads} concurrent 1-thread processes; median of {a.repeat} runs")
    print()
    print("| clients | per round | wall s/round | peak RSS MiB | overhead | images/s | examples "
          "per client | alone, per client | vs alone, per client | vs alone, whole data |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, k, w, rss, ovh, ips, per_client, matched, ratio, vs_whole in rows:
        print(f"| {n:,} | {k:,} | {w:.3f} | {rss:,.0f} | {100 * ovh:.1f}% | {ips:,.0f} | "
              f"{per_client} | {matched:,.0f} | {100 * ratio:.0f}% | {100 * vs_whole:.0f}% |")


if __name__ == "__main__":
    sys.exit(main())
