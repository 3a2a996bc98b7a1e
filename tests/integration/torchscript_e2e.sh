#!/usr/bin/env bash
# End to end with a model from the PyTorch ecosystem: PyTorch (Debian's python3-torch) scripts
# and saves a module with BatchNorm (including its int64 num_batches_tracked buffer); a run
# federates it over mTLS with two clients; the exported TorchScript file opens in PyTorch with
# torch.jit.load, runs, and holds exactly the weights of the exported safetensors file (read
# with a plain-Python reader of the safetensors format).
# Usage: torchscript_e2e.sh BIN_DIR SOURCE_DIR. Exit 77 (skipped) without python3-torch.
set -euo pipefail
BIN=$1
SRC=$2
PY=/usr/bin/python3
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "SKIP: python3-torch is not installed"
  exit 77
fi
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 77
fi
export OPENBLAS_NUM_THREADS=1
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 0 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

# torch.jit.script reads the class's source, so the script must live in a file.
cat > "$dir/make_net.py" <<'PY'
import sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 5)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 12 * 12, 10)
    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(x, 1))
torch.manual_seed(0)
torch.jit.save(torch.jit.script(Net()), sys.argv[1])
PY
"$PY" "$dir/make_net.py" "$dir/net.pt"

bash "$SRC/scripts/make_pki.sh" "$dir/pki" site-a site-b >/dev/null
"$BIN/tessera-coordinator" --listen 127.0.0.1:0 --port-file "$dir/port" --state-dir "$dir/state" \
  --ca "$dir/pki/ca.pem" --cert "$dir/pki/coordinator.pem" --key "$dir/pki/coordinator.key" \
  > "$dir/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
addr=127.0.0.1:$(cat "$dir/port")
i=0
for c in site-a site-b; do
  "$BIN/tessera-client" --coordinator "$addr" --name $c --ca "$dir/pki/ca.pem" \
    --cert "$dir/pki/$c.pem" --key "$dir/pki/$c.key" --device cpu --threads 1 \
    --partition iid --num-partitions 2 --partition-index $i --limit 2000 \
    > "$dir/$c.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done

cat > "$dir/run.toml" <<'TOML'
name = "torchscript-e2e"
rounds = 2
[model]
torchscript = "net.pt"
[train]
batch_size = 32
learning_rate = 0.05
momentum = 0.9
[selection]
clients_per_round = 2
min_clients = 2
[evaluation]
every = 1
TOML

cli=("$BIN/tessera" --coordinator "$addr" --ca "$dir/pki/ca.pem" --cert "$dir/pki/operator.pem"
     --key "$dir/pki/operator.key")
run=$("${cli[@]}" --json run create "$dir/run.toml" --start | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
"${cli[@]}" run watch "$run"
"${cli[@]}" model export --run "$run" --out "$dir/federated.safetensors" --torchscript "$dir/federated.pt"

"$PY" - "$dir/net.pt" "$dir/federated.pt" "$dir/federated.safetensors" <<'PY'
import json, struct, sys
import numpy as np
import torch
base_path, fed_path, st_path = sys.argv[1:4]

def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(body[b:e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out, header.get("__metadata__", {})

weights, meta = read_safetensors(st_path)
base = torch.jit.load(base_path)
fed = torch.jit.load(fed_path)
state = fed.state_dict()
assert set(state) == set(weights), (sorted(state), sorted(weights))
for name, t in state.items():
    assert np.array_equal(t.numpy(), weights[name]), name
assert int(state["bn.num_batches_tracked"]) > 0, "BatchNorm buffers were not federated"
changed = [n for n, t in base.state_dict().items() if not torch.equal(t, state[n])]
assert "conv.weight" in changed and "bn.running_mean" in changed, changed
fed.eval()
out = fed(torch.zeros(3, 1, 28, 28))
assert tuple(out.shape) == (3, 10), out.shape
print("torchscript_e2e: PyTorch loaded the federated module; %d tensors match the safetensors "
      "export (round %s); num_batches_tracked=%d" % (len(state), meta.get("tessera.round"),
      int(state["bn.num_batches_tracked"])))
PY
