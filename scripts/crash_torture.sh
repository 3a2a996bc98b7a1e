#!/usr/bin/env bash
# Crash torture (docs/testing.md): 20 rounds each of plain FedAvg, secure aggregation and
# central DP on a loopback mTLS federation of 3 clients, while the coordinator is SIGKILLed at
# random moments and restarted on its state directory (and clients are SIGKILLed and
# restarted); then compares with an undisturbed run of the same config: no completed round
# lost, plain FedAvg's final model bit-identical, the DP ledger equal to an independent
# recount, the audit chain verified. Seeded: TORTURE_SEED=N reproduces a run's kill schedule.
# Usage: scripts/crash_torture.sh [--bin DIR] [--rounds N] [--modes plain,secagg,dp]
#          [--coordinator-kills N] [--client-kills N] [--out DIR]
# Needs the built tessera-coordinator, tessera-client and tessera (default: build/bin, or
# $BUILD_DIR/bin) and Fashion-MNIST (dataset-fashion-mnist); exits 77 without them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
args=("$@")
for i in "${!args[@]}"; do
  [ "${args[$i]}" = --bin ] && bin=${args[$((i + 1))]:-$bin}
done
for p in tessera-coordinator tessera-client tessera; do
  [ -x "$bin/$p" ] || { echo "crash_torture: $bin/$p not built" >&2; exit 77; }
done
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "crash_torture: Fashion-MNIST not installed (dataset-fashion-mnist)" >&2; exit 77; }
export OPENBLAS_NUM_THREADS=1
exec /usr/bin/python3 scripts/crash_torture.py --bin "$bin" "$@"
