#!/usr/bin/env bash
# End-to-end round time with and without secure aggregation, with real local training:
# a tessera-coordinator and N tessera-client processes (mTLS, 127.0.0.1) train the NIID-Bench
# CNN on IID shards of Fashion-MNIST; the same clients run a plain run, then a secure one.
# Prints the per-round seconds of both and the ratio of the medians of rounds 2..R.
# Usage: scripts/bench_secagg_training.sh [clients=10] [examples=20000] [rounds=4]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10} LIMIT=${2:-20000} ROUNDS=${3:-4}
BIN=$PWD/${BUILD_DIR:-build}/bin
DIR=$(mktemp -d /tmp/tessera-bench-secagg-training.XXXXXX)
export OPENBLAS_NUM_THREADS=1
names=(); for i in $(seq 0 $((N - 1))); do names+=("c$i"); done
scripts/make_pki.sh "$DIR/pki" "${names[@]}" >/dev/null
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
"$BIN/tessera-coordinator" --listen 127.0.0.1:0 --port-file "$DIR/port" --state-dir "$DIR/state" \
  --ca "$DIR/pki/ca.pem" --cert "$DIR/pki/coordinator.pem" --key "$DIR/pki/coordinator.key" \
  > "$DIR/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$DIR/port" ] && break; sleep 0.1; done
ADDR=127.0.0.1:$(cat "$DIR/port")
for i in "${!names[@]}"; do
  "$BIN/tessera-client" --coordinator "$ADDR" --name "${names[$i]}" --ca "$DIR/pki/ca.pem" \
    --cert "$DIR/pki/${names[$i]}.pem" --key "$DIR/pki/${names[$i]}.key" --threads 1 \
    --data idx:/usr/share/datasets/fashion-mnist --partition iid --num-partitions "$N" \
    --partition-index "$i" --limit "$LIMIT" > "$DIR/${names[$i]}.log" 2>&1 &
  pids+=($!)
done
export TESSERA_COORDINATOR=$ADDR TESSERA_CA=$DIR/pki/ca.pem TESSERA_CERT=$DIR/pki/operator.pem \
  TESSERA_KEY=$DIR/pki/operator.key
for mode in plain secure; do
  {
    printf 'name = "%s"\nrounds = %d\nseed = 7\n' "$mode" "$ROUNDS"
    printf '[model]\narchitecture = "niid_cnn"\nseed = 1\n'
    printf '[train]\nlocal_epochs = 1\nbatch_size = 32\nlearning_rate = 0.05\nmomentum = 0.9\n'
    printf '[selection]\nclients_per_round = %d\nmin_clients = 3\nwait_for_clients_seconds = 60\n' "$N"
    printf '[round]\ndeadline_seconds = 300\nmax_retries = 1\n'
    printf '[evaluation]\nevery = 0\ndeadline_seconds = 60\n'
    if [ "$mode" = secure ]; then
      printf '[secure_aggregation]\ndropout_fraction = 0.1\ncorrupt_fraction = 0.1\n'
    fi
  } > "$DIR/$mode.toml"
  run=$("$BIN/tessera" --json run create "$DIR/$mode.toml" --start |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
  "$BIN/tessera" run watch "$run" > "$DIR/$mode.watch" 2>&1 || true
  "$BIN/tessera" --json run status "$run" > "$DIR/$mode.json"
done
python3 - "$DIR" <<'PY'
import json, statistics, sys
d = sys.argv[1]
med = {}
print(f"{'mode':8} {'state':10} round seconds")
for mode in ("plain", "secure"):
    st = json.load(open(f"{d}/{mode}.json"))
    secs = [r["seconds"] for r in st["rounds"] if r["state"] == "ROUND_COMPLETED"]
    med[mode] = statistics.median(secs[1:] or secs)
    print(f"{mode:8} {st['state']:10} " + " ".join(f"{s:.2f}" for s in secs))
print(f"median of rounds 2..: plain {med['plain']:.2f} s, secure {med['secure']:.2f} s, "
      f"ratio {med['secure'] / med['plain']:.2f}")
PY
