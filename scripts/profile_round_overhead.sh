#!/bin/bash
# Profiles the steady state of `tessera-bench-federation --only overhead`: starts the bench,
# waits until round 3 of the N-client run has completed, then runs `perf record -g` on the
# coordinator and every client process for SECONDS, and prints where their CPU went
# (scripts/perf_breakdown.py). docs/benchmarks.md, "Round overhead", has the results.
#
# Usage: scripts/profile_round_overhead.sh BUILD_DIR [CLIENTS=10|50] [SECONDS=10] [OUT_DIR]
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [10|50] [SECONDS] [OUT_DIR]}
clients=${2:-10}
seconds=${3:-10}
out=${4:-$(mktemp -d /tmp/tessera-profile-XXXXXX)}
case "$clients" in 10|50) ;; *) echo "CLIENTS must be 10 or 50 (the bench's runs)" >&2; exit 2;; esac
mkdir -p "$out"
"$build/bin/tessera-bench-federation" --only overhead --repeat 1 --rounds 14 >"$out/bench.txt" 2>&1 &
bench=$!
children=""
cleanup() {
  kill "$bench" 2>/dev/null || true
  [ -n "$children" ] && kill $children 2>/dev/null || true
}
trap cleanup EXIT
log=""
for _ in $(seq 1 1200); do  # up to 10 minutes
  dir=$(grep -o "/tmp/tessera-bench-[0-9]*" "$out/bench.txt" | head -1 || true)
  log="$dir/ovh$clients-0.log"
  if [ -n "$dir" ] && [ -f "$log" ] && grep -q "round 3 completed" "$log"; then break; fi
  sleep 0.5
done
grep -q "round 3 completed" "$log" || { echo "round 3 never completed; see $out/bench.txt" >&2; exit 1; }
children=$(pgrep -P "$bench" | tr '\n' ' ')
coordinator=$(pgrep -P "$bench" -f tessera-coordinator)
echo "load: $(uptime)" | tee "$out/load.txt"
perf record -F 999 -g -o "$out/perf.data" -p "$(echo $children | tr ' ' ',')" -- sleep "$seconds"
grep "round .* completed" "$log" | tail -3
python3 "$(dirname "$0")/perf_breakdown.py" "$out/perf.data" "$coordinator"
echo "perf data and the bench's output: $out"
