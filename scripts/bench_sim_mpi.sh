#!/usr/bin/env bash
# tessera-sim across MPI ranks (docs/simulation.md, "Across machines with Open MPI"):
#  1. training throughput (images/s) of the NIID-Bench CNN with CLIENTS virtual clients (IID
#     split of Fashion-MNIST, 10% per round, no evaluation) for K = 1 (one process, one
#     training thread) and K = 2..KMAX ranks (`mpirun -np K`, one training thread each), rounds
#     2..ROUNDS (round 1 builds the models); efficiency = images/s / (K x images/s at K = 1);
#     and, since a shared machine's load can dominate wall time, the CPU time of all the job's
#     processes (user + sys, /usr/bin/time): images per CPU-second over the whole job (every
#     round, plus each rank's start: data loading, LibTorch), against K = 1's;
#  2. memory: MEM_CLIENTS virtual clients over MEM_RANKS ranks (2 rounds of 100 clients), peak
#     RSS summed over ranks. A partition needs an example per client: past 60,000 clients the
#     Fashion-MNIST training set is repeated (uncompressed IDX files in OUT_DIR/fmnist-xN).
# Prints a Markdown table and the load average around each run (shared machines drift).
#   scripts/bench_sim_mpi.sh [BUILD_DIR] [OUT_DIR]
# Environment: CLIENTS (1000), ROUNDS (6), KMAX (2), MEM_CLIENTS (100000; 0 skips part 2),
# MEM_RANKS (4).
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-out/bench-sim-mpi}
SIM="$BUILD/bin/tessera-sim"
CLIENTS=${CLIENTS:-1000} ROUNDS=${ROUNDS:-6} KMAX=${KMAX:-2}
MEM_CLIENTS=${MEM_CLIENTS:-100000} MEM_RANKS=${MEM_RANKS:-4}
MPI_ARGS=(--oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPI_ARGS+=(--allow-run-as-root); fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$OUT"

config() {  # FILE CLIENTS PER_ROUND ROUNDS [DATASET_DIR]
  cat > "$1" <<TOML
name = "bench-mpi-$2"
rounds = $4
seed = 1
[model]
architecture = "niid_cnn"
[train]
batch_size = 32
learning_rate = 0.01
momentum = 0.9
[selection]
clients_per_round = $3
min_clients = 1
[round]
deadline_seconds = 86400
[simulation]
dataset = "idx:${5:-/usr/share/datasets/fashion-mnist}"
partition = "iid"
clients = $2
test_every = 0
TOML
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
run() {  # K CONFIG OUTPUT; writes OUTPUT.cpu: the CPU seconds of every process of the job
  if [ "$1" = 1 ]; then
    /usr/bin/time -o "$3.cpu" -f "%U %S" "$SIM" "$2" --output "$3" --threads 1 --no-plot \
      > "$3.log"
  else
    /usr/bin/time -o "$3.cpu" -f "%U %S" \
      mpirun "${MPI_ARGS[@]}" -np "$1" "$SIM" "$2" --output "$3" --no-plot > "$3.log"
  fi
}

config "$OUT/throughput.toml" "$CLIENTS" $((CLIENTS / 10)) "$ROUNDS"
echo "| ranks | clients | per round | wall s/round | images/s | vs K x 1 rank | images per CPU-s (job) | vs 1 rank | in partial sums | peak RSS MB, all ranks | load before → after |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
base=""
for k in $(seq 1 "$KMAX"); do
  before=$(load)
  run "$k" "$OUT/throughput.toml" "$OUT/throughput-$k"
  after=$(load)
  base=$(/usr/bin/python3 - "$OUT/throughput-$k" "$k" "$base" "$before" "$after" <<'PY'
import json, sys
out = sys.argv[1]; k = int(sys.argv[2]); base = sys.argv[3]
m = json.load(open(f"{out}/metrics.json"))
cpu = sum(float(x) for x in open(f"{out}.cpu").read().split()[-2:])
rows = m["rounds"][1:]  # round 1 builds the models
wall = sum(r["wall_seconds"] for r in rows); images = sum(r["examples"] for r in rows)
ips = images / wall
ipc = sum(r["examples"] for r in m["rounds"]) / cpu
base_ips, base_ipc = (float(x) for x in base.split(",")) if base else (ips, ipc)
per_round = rows[0]["selected"]
print(f"| {k} | {m['clients']:,} | {per_round} | {wall / len(rows):.3f} | {ips:,.0f} | "
      f"{ips / (k * base_ips):.2f} | {ipc:,.0f} | {ipc / base_ipc:.2f} | "
      f"{m.get('updates_in_partial_sums', 0):,} | {m['peak_rss_bytes_all_ranks'] / 1e6:,.0f} | "
      f"{sys.argv[4]} → {sys.argv[5]} |", file=sys.stderr)
print(f"{base_ips},{base_ipc}")
PY
)
done 2>&1

if [ "$MEM_CLIENTS" = 0 ]; then exit 0; fi  # throughput only
copies=$(( (MEM_CLIENTS + 59999) / 60000 ))
data=/usr/share/datasets/fashion-mnist
if [ "$copies" -gt 1 ]; then
  data="$OUT/fmnist-x$copies"
  mkdir -p "$data"
  /usr/bin/python3 - /usr/share/datasets/fashion-mnist "$data" "$copies" <<'PY'
import gzip, shutil, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for kind, header in (("images-idx3", 16), ("labels-idx1", 8)):
    raw = gzip.open(f"{src}/train-{kind}-ubyte.gz").read()
    count = struct.unpack(">I", raw[4:8])[0]
    with open(f"{dst}/train-{kind}-ubyte", "wb") as f:
        f.write(raw[:4] + struct.pack(">I", count * n) + raw[8:header])
        for _ in range(n):
            f.write(raw[header:])
    shutil.copy(f"{src}/t10k-{kind}-ubyte.gz", dst)
PY
fi
config "$OUT/memory.toml" "$MEM_CLIENTS" 100 2 "$data"
before=$(load)
start=$(date +%s)
run "$MEM_RANKS" "$OUT/memory.toml" "$OUT/memory"
end=$(date +%s)
/usr/bin/python3 - "$OUT/memory/metrics.json" "$MEM_RANKS" "$((end - start))" "$before" "$(load)" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print()
print("| ranks | virtual clients | rounds | peak RSS rank 0 MB | peak RSS all ranks MB | job wall s | load before → after |")
print("|---:|---:|---:|---:|---:|---:|---|")
print(f"| {sys.argv[2]} | {m['clients']:,} | {len(m['rounds'])} | {m['peak_rss_bytes'] / 1e6:,.0f} | "
      f"{m['peak_rss_bytes_all_ranks'] / 1e6:,.0f} | {sys.argv[3]} | {sys.argv[4]} → {sys.argv[5]} |")
PY
