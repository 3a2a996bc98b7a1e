#!/usr/bin/env bash
# Federated LoRA fine-tuning of a Llama-architecture language model, end to end on this
# machine (docs/llm.md):
#  1. installs what is missing and builds (unless DEMO_SKIP_SETUP=1);
#  2. makes the partners' text: JSONL from Debian's fortunes collections, one domain per
#     partner (computers, science, politics) and a disjoint set of collections for the base;
#  3. since no open checkpoint can be downloaded here, pretrains a tiny Llama-architecture
#     base model on the base collections (tessera-model pretrain) and writes it as a Hugging
#     Face checkpoint with its model card -- or uses BASE_CHECKPOINT=DIR, any Hugging Face
#     Llama/Mistral/Qwen2 directory (e.g. SmolLM2-135M, Llama-3.2-1B), instead;
#  4. names the base in the run config by the SHA-256 of its files and writes the initial
#     LoRA adapter (tessera-model lm-hash, lora-init);
#  5. starts tessera-coordinator and three tessera-client processes over mTLS, each with its
#     own copy of the base (--base-checkpoint) and its own text (--data jsonl:FILE), and runs
#     deploy/config/fortunes_lora.toml: LoRA adapters trained with AdamW, federated inside
#     secure aggregation, the held-out perplexity evaluated every round;
#  6. exports the federated adapter (safetensors with its model card and signed bill of
#     materials; a PEFT directory; merged weights), prints each partner's held-out
#     perplexity under the base model and under the federated adapter, plots perplexity over
#     rounds and generates a sample.
# Output goes to ${DEMO_DIR:-out/demo_llm}. PRETRAIN_STEPS (default 300) and ROUNDS (default:
# the config's) make it shorter; DEVICE=cuda:0 uses a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  scripts/install_deps.sh
  scripts/build.sh
fi
BIN=${DEMO_BIN:-$ROOT/${BUILD_DIR:-build}/bin}
TEMPLATE=${CONFIG:-$ROOT/deploy/config/fortunes_lora.toml}
DEMO_DIR=${DEMO_DIR:-$ROOT/out/demo_llm}
DEVICE=${DEVICE:-auto}
PARTNERS=(partner-computers partner-science partner-politics)
declare -A DOMAIN=([partner-computers]=computers [partner-science]=science
                   [partner-politics]=politics)
declare -A ORG=([partner-computers]="Northwind Labs" [partner-science]="Lakeside Institute"
                [partner-politics]="Riverside Press")
BASE_COLLECTIONS=(cookie definitions people wisdom songs-poems fortunes humorists men-women
                  work art literature)
export OPENBLAS_NUM_THREADS=1
# Idle OpenMP workers sleep instead of spinning: three clients share this machine's cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/data" "$DEMO_DIR/model"

# 2. Text.
for p in "${PARTNERS[@]}"; do
  python3 scripts/fortunes_to_jsonl.py "$DEMO_DIR/data/$p.jsonl" "${DOMAIN[$p]}"
done

# 3. The base model.
BASE=${BASE_CHECKPOINT:-}
if [ -z "$BASE" ]; then
  python3 scripts/fortunes_to_jsonl.py "$DEMO_DIR/data/base.jsonl" "${BASE_COLLECTIONS[@]}"
  BASE=$DEMO_DIR/base
  "$BIN/tessera-model" pretrain --corpus "$DEMO_DIR/data/base.jsonl" --out "$BASE" \
    --steps "${PRETRAIN_STEPS:-300}" --device "$DEVICE"
fi
echo "demo_llm: base checkpoint $BASE"

# 4. The run config: the base's identity and the initial adapter.
HASH=$("$BIN/tessera-model" lm-hash --checkpoint "$BASE")
CONFIG=$DEMO_DIR/run.toml
sed -e "s|^base_sha256 = .*|base_sha256 = \"$HASH\"|" \
    -e "s|^initial_weights = .*|initial_weights = \"$DEMO_DIR/adapter_init.safetensors\"|" \
    "$TEMPLATE" > "$CONFIG"
if [ -n "${ROUNDS:-}" ]; then sed -i "s|^rounds = .*|rounds = $ROUNDS|" "$CONFIG"; fi
"$BIN/tessera-model" lora-init --checkpoint "$BASE" --config "$CONFIG" \
  --out "$DEMO_DIR/adapter_init.safetensors"
echo "demo_llm: run config $CONFIG (base_sha256 $HASH)"

# 5. The federation.
identities=()
for p in "${PARTNERS[@]}"; do identities+=("$p=${ORG[$p]}"); done
source scripts/demo_federation.sh
demo_federation_start demo_llm "${identities[@]}"
# With record-level DP (fortunes_lora_dp.toml) each partner states its own budget and keeps
# its own ledger.
privacy=()
if grep -q '^mode = "record"' "$CONFIG"; then
  mkdir -p "$DEMO_DIR/ledgers"
  privacy=(--privacy-budget "${PRIVACY_BUDGET:-epsilon=8,delta=1e-5}")
fi
for p in "${PARTNERS[@]}"; do
  ledger=()
  [ ${#privacy[@]} -gt 0 ] && ledger=(--privacy-ledger "$DEMO_DIR/ledgers/$p.json")
  "$BIN/tessera-client" --coordinator "$ADDR" --name "$p" --ca "$PKI/ca.pem" \
    --cert "$PKI/$p.pem" --key "$PKI/$p.key" --device "$DEVICE" --threads 1 \
    "${privacy[@]}" "${ledger[@]}" \
    --base-checkpoint "$BASE" --data "jsonl:$DEMO_DIR/data/$p.jsonl" \
    > "$DEMO_DIR/logs/$p.log" 2>&1 &
  pids+=($!)
done
echo "demo_llm: started ${PARTNERS[*]}"

RUN=$("$BIN/tessera" --json run create "$CONFIG" --start |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
echo "demo_llm: run $RUN started"
"$BIN/tessera" run watch "$RUN"
"$BIN/tessera" --json run status "$RUN" > "$DEMO_DIR/run_status.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get("state") == "RUN_STATE_COMPLETED" or r.get("state") == "COMPLETED" else 1)' \
  "$DEMO_DIR/run_status.json" || { echo "demo_llm: the run did not complete"; exit 1; }

# 6. The federated adapter and what it does.
"$BIN/tessera" model export --run "$RUN" --out "$DEMO_DIR/model/adapter.safetensors"
"$BIN/tessera" model verify "$DEMO_DIR/model"
"$BIN/tessera-model" lm-export --checkpoint "$BASE" --config "$CONFIG" \
  --adapter "$DEMO_DIR/model/adapter.safetensors" --peft-out "$DEMO_DIR/peft" \
  --merged-out "$DEMO_DIR/merged" --base-name "$BASE"
echo "demo_llm: held-out perplexity of each partner (its own 10% split of its text):"
printf '  %-20s %10s %12s\n' partner base federated | tee "$DEMO_DIR/perplexity.txt"
for p in "${PARTNERS[@]}"; do
  before=$("$BIN/tessera-model" lm-eval --checkpoint "$BASE" --config "$CONFIG" \
             --data "$DEMO_DIR/data/$p.jsonl" --device "$DEVICE" --json |
           python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["perplexity"])')
  after=$("$BIN/tessera-model" lm-eval --checkpoint "$BASE" --config "$CONFIG" \
            --adapter "$DEMO_DIR/model/adapter.safetensors" --data "$DEMO_DIR/data/$p.jsonl" \
            --device "$DEVICE" --json |
          python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["perplexity"])')
  printf '  %-20s %10s %12s\n' "$p" "$before" "$after" | tee -a "$DEMO_DIR/perplexity.txt"
done
python3 scripts/plot_run.py "$DEMO_DIR/run_status.json" "$DEMO_DIR/perplexity.png" --perplexity
echo "demo_llm: a sample from the federated adapter:"
"$BIN/tessera-model" generate --checkpoint "$BASE" --adapter "$DEMO_DIR/peft" \
  --prompt "${PROMPT:-Computers are}" --max-new-tokens 40 --temperature 0.8 --top-p 0.9 \
  --seed 1 --device "$DEVICE" | tee "$DEMO_DIR/sample.txt"
echo "demo_llm: done. adapter: $DEMO_DIR/model/adapter.safetensors (model card README.md," \
  "signed bom.json), PEFT: $DEMO_DIR/peft, merged: $DEMO_DIR/merged," \
  "plot: $DEMO_DIR/perplexity.png"
