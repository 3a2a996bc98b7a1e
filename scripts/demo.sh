#!/usr/bin/env bash
# The main job: a local federation on this machine, end to end.
#  1. installs what is missing and builds;
#  2. creates a throw-away PKI (mTLS everywhere);
#  3. starts tessera-coordinator and 5 tessera-client processes, each holding a different
#     Dirichlet(alpha=0.5) label-skewed shard of Fashion-MNIST;
#  4. creates and starts the run of deploy/config/fmnist_dp.toml (secure aggregation +
#     record-level differential privacy: DP-SGD at every hospital, each with its own budget
#     of epsilon 8, delta 1e-5 from its data card and its own ledger in $DEMO_DIR/ledgers)
#     with the operator CLI and watches it round by round, each site's epsilon included;
#  5. exports the final global model (safetensors) with its model card (README.md) and signed
#     bill of materials (bom.json), verifies them and the audit log, and plots accuracy and
#     each site's epsilon over rounds.
# The five hospitals belong to three organizations (the O of their certificates) and each
# has a data card in deploy/config/data_cards/ (docs/governance.md).
# Output goes to ${DEMO_DIR:-out/demo}. Set CONFIG=... for another run config and
# DEMO_CLIENTS="a b c" for other client names (e.g. CONFIG=deploy/config/fmnist_demo.toml
# DEMO_CLIENTS="hospital-a hospital-b hospital-c" for plain FedAvg without privacy).
# DEMO_SKIP_SETUP=1 skips installing and building (tests run the demo on their own build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  scripts/install_deps.sh
  scripts/build.sh
fi
BIN=${DEMO_BIN:-$ROOT/${BUILD_DIR:-build}/bin}
CONFIG=${CONFIG:-$ROOT/deploy/config/fmnist_dp.toml}
DEMO_DIR=${DEMO_DIR:-$ROOT/out/demo}
read -r -a CLIENTS <<< "${DEMO_CLIENTS:-hospital-a hospital-b hospital-c hospital-d hospital-e}"
export OPENBLAS_NUM_THREADS=1

declare -A ORG=([hospital-a]="Northwind Health" [hospital-b]="Northwind Health"
                [hospital-c]="Lakeside Clinics" [hospital-d]="Lakeside Clinics"
                [hospital-e]="Riverside Medical Center")
identities=()
for name in "${CLIENTS[@]}"; do identities+=("$name${ORG[$name]:+=${ORG[$name]}}"); done

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/model"
source scripts/demo_federation.sh
demo_federation_start demo "${identities[@]}"

# The hospitals' data cards state a record-level budget, so they train only with record-level
# DP-SGD; the other demo configs (plain FedAvg, organization-level DP) need them to opt out.
record_dp=()
grep -q '^mode = "record"' "$CONFIG" || record_dp=(--train-without-record-dp)
for i in "${!CLIENTS[@]}"; do
  name=${CLIENTS[$i]}
  card=()
  for f in "$ROOT/deploy/config/data_cards/$name".{toml,yaml}; do
    [ -f "$f" ] && card=(--data-card "$f")
  done
  "$BIN/tessera-client" --coordinator "$ADDR" --name "$name" --ca "$PKI/ca.pem" "${card[@]}" \
    --cert "$PKI/$name.pem" --key "$PKI/$name.key" --device auto --threads 1 \
    --privacy-ledger "$DEMO_DIR/ledgers/$name.json" "${record_dp[@]}" \
    --data idx:/usr/share/datasets/fashion-mnist --partition dirichlet:0.5 \
    --num-partitions ${#CLIENTS[@]} --partition-index "$i" --partition-seed 42 \
    > "$DEMO_DIR/logs/$name.log" 2>&1 &
  pids+=($!)
done
echo "demo: started clients ${CLIENTS[*]} (Dirichlet alpha=0.5 shards of Fashion-MNIST)"

RUN=$("$BIN/tessera" --json run create "$CONFIG" --start | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
echo "demo: run $RUN started from $CONFIG"
"$BIN/tessera" run watch "$RUN"
"$BIN/tessera" clients list
"$BIN/tessera" model export --run "$RUN" --out "$DEMO_DIR/model/model.safetensors"
"$BIN/tessera" model verify "$DEMO_DIR/model"
"$BIN/tessera" audit export --out "$DEMO_DIR/audit.jsonl"
"$BIN/tessera" audit verify "$DEMO_DIR/audit.jsonl"
"$BIN/tessera" --json run status "$RUN" > "$DEMO_DIR/run_status.json"
if python3 -c 'import json,sys; sys.exit(0 if "privacy" in json.load(open(sys.argv[1])) else 1)' \
    "$DEMO_DIR/run_status.json"; then
  "$BIN/tessera" privacy spent "$RUN"
fi
python3 scripts/plot_run.py "$DEMO_DIR/run_status.json" "$DEMO_DIR/accuracy.png"
echo "demo: done. model: $DEMO_DIR/model/model.safetensors, plots: $DEMO_DIR/*.png"
echo "demo: model card: $DEMO_DIR/model/README.md"
echo "demo: bill of materials (signed): $DEMO_DIR/model/bom.json"
echo "demo: audit log: $DEMO_DIR/audit.jsonl"
