#!/usr/bin/env bash
# The main job: a local federation on this machine, end to end.
#  1. installs what is missing and builds;
#  2. creates a throw-away PKI (mTLS everywhere);
#  3. starts tessera-coordinator and 5 tessera-client processes, each holding a different
#     Dirichlet(alpha=0.5) label-skewed shard of Fashion-MNIST;
#  4. creates and starts the run of deploy/config/fmnist_dp.toml (secure aggregation +
#     distributed differential privacy) with the operator CLI and watches it round by round,
#     epsilon included;
#  5. exports the final global model (safetensors), prints the privacy ledger and plots
#     accuracy and epsilon over rounds.
# Output goes to ${DEMO_DIR:-out/demo}. Set CONFIG=... for another run config and
# DEMO_CLIENTS="a b c" for other client names (e.g. CONFIG=deploy/config/fmnist_demo.toml
# DEMO_CLIENTS="hospital-a hospital-b hospital-c" for plain FedAvg without privacy).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/install_deps.sh
scripts/build.sh
BIN=$ROOT/${BUILD_DIR:-build}/bin
CONFIG=${CONFIG:-$ROOT/deploy/config/fmnist_dp.toml}
DEMO_DIR=${DEMO_DIR:-$ROOT/out/demo}
read -r -a CLIENTS <<< "${DEMO_CLIENTS:-hospital-a hospital-b hospital-c hospital-d hospital-e}"
export OPENBLAS_NUM_THREADS=1

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/logs"
scripts/make_pki.sh "$DEMO_DIR/pki" "${CLIENTS[@]}" >/dev/null
PKI=$DEMO_DIR/pki

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$BIN/tessera-coordinator" --listen 127.0.0.1:0 --port-file "$DEMO_DIR/port" \
  --state-dir "$DEMO_DIR/state" --ca "$PKI/ca.pem" --cert "$PKI/coordinator.pem" \
  --key "$PKI/coordinator.key" > "$DEMO_DIR/logs/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$DEMO_DIR/port" ] && break; sleep 0.1; done
[ -s "$DEMO_DIR/port" ] || { cat "$DEMO_DIR/logs/coordinator.log"; exit 1; }
ADDR=127.0.0.1:$(cat "$DEMO_DIR/port")
echo "demo: coordinator on $ADDR (mTLS), logs in $DEMO_DIR/logs"

for i in "${!CLIENTS[@]}"; do
  name=${CLIENTS[$i]}
  "$BIN/tessera-client" --coordinator "$ADDR" --name "$name" --ca "$PKI/ca.pem" \
    --cert "$PKI/$name.pem" --key "$PKI/$name.key" --device auto --threads 1 \
    --data idx:/usr/share/datasets/fashion-mnist --partition dirichlet:0.5 \
    --num-partitions ${#CLIENTS[@]} --partition-index "$i" --partition-seed 42 \
    > "$DEMO_DIR/logs/$name.log" 2>&1 &
  pids+=($!)
done
echo "demo: started clients ${CLIENTS[*]} (Dirichlet alpha=0.5 shards of Fashion-MNIST)"

export TESSERA_COORDINATOR=$ADDR TESSERA_CA=$PKI/ca.pem TESSERA_CERT=$PKI/operator.pem \
  TESSERA_KEY=$PKI/operator.key
RUN=$("$BIN/tessera" --json run create "$CONFIG" --start | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
echo "demo: run $RUN started from $CONFIG"
"$BIN/tessera" run watch "$RUN"
"$BIN/tessera" clients list
"$BIN/tessera" model export --run "$RUN" --out "$DEMO_DIR/model.safetensors"
"$BIN/tessera" --json run status "$RUN" > "$DEMO_DIR/run_status.json"
if python3 -c 'import json,sys; sys.exit(0 if "privacy" in json.load(open(sys.argv[1])) else 1)' \
    "$DEMO_DIR/run_status.json"; then
  "$BIN/tessera" privacy spent "$RUN"
fi
python3 scripts/plot_run.py "$DEMO_DIR/run_status.json" "$DEMO_DIR/accuracy.png"
echo "demo: done. model: $DEMO_DIR/model.safetensors, plots: $DEMO_DIR/*.png"
