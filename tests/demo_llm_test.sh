#!/usr/bin/env bash
# scripts/demo_llm.sh end to end on this build, with short settings: a tiny Llama-architecture
# base pretrained here, three tessera-client processes fine-tuning LoRA adapters on their own
# text with secure aggregation. The federated held-out loss must fall, every partner's held-out
# perplexity must end below the base model's, and the exports (adapter with model card and
# signed BOM naming the base checkpoint; PEFT directory; merged checkpoint) must be complete.
# Usage: tests/demo_llm_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
[ -f /usr/share/games/fortunes/computers ] || {
  echo "SKIP: Debian's fortunes collections are not installed"; exit 77; }
work=$(mktemp -d /tmp/tessera-demo-llm-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$work/demo.out
if ! DEMO_SKIP_SETUP=1 DEMO_BIN="$bin" DEMO_DIR="$work/demo" PRETRAIN_STEPS=${PRETRAIN_STEPS:-150} \
    ROUNDS=${ROUNDS:-3} bash "$src/scripts/demo_llm.sh" > "$out" 2>&1; then
  tail -60 "$out"; tail -30 "$work"/demo/logs/*.log || true; exit 1
fi
python3 - "$work/demo" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
status = json.load(open(f"{d}/run_status.json"))
rounds = [r for r in status["rounds"] if r.get("state") == "ROUND_COMPLETED"]
assert len(rounds) == status["total_rounds"], (len(rounds), status["total_rounds"])
losses = [r["eval_loss"] for r in rounds]
assert losses[-1] < losses[0], f"federated held-out loss did not fall: {losses}"
assert all("secagg" in r for r in rounds), "a round without secure aggregation"
rows = [l.split() for l in open(f"{d}/perplexity.txt").read().splitlines()[1:]]
assert len(rows) == 3, rows
for name, base, fed in rows:
    assert float(fed) < float(base), f"{name}: federated perplexity {fed} >= base {base}"
# The PEFT directory: PEFT's config fields and tensor names.
cfg = json.load(open(f"{d}/peft/adapter_config.json"))
assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "CAUSAL_LM", cfg
assert cfg["r"] == 8 and cfg["lora_alpha"] == 16, cfg
with open(f"{d}/peft/adapter_model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
keys = [k for k in header if k != "__metadata__"]
assert keys and all(k.startswith("base_model.model.model.layers.") for k in keys), keys[:3]
assert any(k.endswith("self_attn.q_proj.lora_A.weight") for k in keys), keys[:3]
# Merged weights: a full checkpoint with the tokenizer.
for f in ("config.json", "model.safetensors", "tokenizer.json"):
    assert os.path.exists(f"{d}/merged/{f}"), f
# The model card and the signed BOM name the base checkpoint and the adapter.
base_sha = open(f"{d}/run.toml").read().split('base_sha256 = "')[1][:64]
card = open(f"{d}/model/README.md").read()
assert base_sha in card and "LoRA adapter" in card, "model card does not name the base"
bom = json.load(open(f"{d}/model/bom.json"))
assert bom["base_model"]["checkpoint_sha256"] == base_sha, bom["base_model"]
assert bom["model"]["adapter"]["rank"] == 8, bom["model"]
assert open(f"{d}/sample.txt").read().strip(), "no generated sample"
print(f"demo_llm: held-out loss {losses[0]:.4f} -> {losses[-1]:.4f}; perplexity", rows)
PY
grep -q "verification FAILED" "$out" && { echo "model verify failed in the demo"; exit 1; }
echo "PASS: federated LoRA demo"
