#!/usr/bin/env bash
# The README's main job (scripts/demo.sh, embedded default config) end to end on this build:
# it must print where the model card and the bill of materials of the demo run were
# written; the model card's front matter must be valid YAML and the card must list the three
# demo organizations; the export and the audit log must verify; every site reports its own
# record-level epsilon within its budget and the model learns.
# Usage: tests/demo_model_card_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || {
  echo "SKIP: dataset-fashion-mnist is not installed"; exit 77; }
work=$(mktemp -d /tmp/tessera-demo-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$work/demo.out
if ! DEMO_SKIP_SETUP=1 DEMO_BIN="$bin" DEMO_DIR="$work/demo" bash "$src/scripts/demo.sh" \
    > "$out" 2>&1; then
  tail -50 "$out"; tail -30 "$work"/demo/logs/coordinator.log || true; exit 1
fi
grep -F "model card: $work/demo/model/README.md" "$out"
grep -F "bill of materials (signed): $work/demo/model/bom.json" "$out"
python3 - "$work/demo/model/README.md" "$work/demo/model/bom.json" <<'PY'
import json, sys, yaml
card = open(sys.argv[1]).read()
assert card.startswith("---\n"), "model card does not start with front matter"
front = yaml.safe_load(card[4:card.index("\n---\n", 4)])
assert isinstance(front, dict), front
for key in ("license", "datasets", "tags", "metrics"):
    assert key in front, f"front matter lacks {key}: {sorted(front)}"
orgs = ["Northwind Health", "Lakeside Clinics", "Riverside Medical Center"]
missing = [o for o in orgs if o not in card]
assert not missing, f"model card lacks organizations {missing}"
# The clients read idx: Fashion-MNIST; the card must say how they normalized it (the published
# training-set pixel mean and std), or users feeding raw pixels lose accuracy.
assert "## Preprocessing" in card, "model card has no preprocessing section"
assert "(x / 255 - 0.2860) / 0.3530" in card, "model card lacks the input normalization"
bom = json.load(open(sys.argv[2]))
found = sorted({p.get("organization") for p in bom["participants"]})
assert found == sorted(orgs), found
print("demo model card: front matter keys", sorted(front), "organizations", found)
PY
# Record-level DP: every site reported its own epsilon each round, within its budget of 8, and
# the private model learned (the demo ends above 80% on the runs measured for docs/privacy.md;
# 75% here leaves room for the fresh noise of each run).
python3 - "$work/demo/run_status.json" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
rounds = [r for r in status["rounds"] if r.get("state") == "ROUND_COMPLETED"]
assert len(rounds) == status["total_rounds"], (len(rounds), status["total_rounds"])
for r in rounds:
    sites = r.get("site_privacy", [])
    assert len(sites) == 5, f"round {r['round']}: {len(sites)} site reports"
    for s in sites:
        assert not s.get("refused", False), s
        assert 0 < s["epsilon"] <= s["epsilon_budget"] == 8, s
        assert s["delta"] == 1e-5, s
final = rounds[-1]["eval_accuracy"]
assert final >= 0.75, f"final test accuracy {final}"
print(f"demo record-level DP: {len(rounds)} rounds, final accuracy {final:.4f}, max site epsilon",
      max(s["epsilon"] for s in rounds[-1]["site_privacy"]))
PY
grep -q "verification FAILED" "$out" && { echo "model verify failed in the demo"; exit 1; }
echo "PASS: demo model card, bill of materials and audit log"
