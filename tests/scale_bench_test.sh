#!/usr/bin/env bash
# The coordinator's open-file limits (docs/operations.md, "Limits"):
#  1. with a hard RLIMIT_NOFILE of 1024, `--max-clients 1000` (which needs 1768) is refused at
#     start-up with a message that names the numbers and how to raise the limit;
#  2. started with a soft limit of 64 (below the connections it will hold), the coordinator
#     raises it to the hard limit and serves 100 clients, each on its own connection, through
#     two rounds of tessera-bench-scale (mTLS and plaintext) -- a coordinator that kept the
#     soft limit would stop accepting connections after about 50.
# Usage: scale_bench_test.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: scale_bench_test.sh BIN_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

out=$( (ulimit -n 1024 && exec "$bin/tessera-coordinator" --listen 127.0.0.1:0 --insecure \
          --state-dir "$work/state" --max-clients 1000) 2>&1)
rc=$?
if [ $rc != 1 ]; then
  echo "FAIL: --max-clients 1000 under a hard limit of 1024 exited $rc, not 1:"; echo "$out"
  fail=1
elif ! grep -q "needs up to 1768 open files" <<<"$out" ||
     ! grep -q "(RLIMIT_NOFILE) is 1024" <<<"$out" ||
     ! grep -q "set --max-clients to at most 256" <<<"$out"; then
  echo "FAIL: the refusal does not say what is needed and what fits:"; echo "$out"
  fail=1
else
  echo "ok:   refused: $(grep -o 'needs up to.*' <<<"$out" | head -c 160)..."
fi

if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 1024 ]; then
  echo "skip: the hard limit on open files here is $(ulimit -Hn)"
  exit $((fail ? 1 : 77))
fi
out=$(OPENBLAS_NUM_THREADS=1 timeout 120 "$bin/tessera-bench-scale" --clients=100 --rounds=2 \
        --security=both --coordinator_soft_nofile=64 2>&1)
rc=$?
echo "$out"
if [ $rc != 0 ]; then
  echo "FAIL: tessera-bench-scale --clients=100 --coordinator_soft_nofile=64 exited $rc"
  fail=1
elif ! grep -qE '^\| mTLS \| 100 \|' <<<"$out" || ! grep -qE '^\| insecure \| 100 \|' <<<"$out"; then
  echo "FAIL: the bench printed no row for 100 clients"
  fail=1
elif grep -E '^\| (mTLS|insecure) \| 100 \|' <<<"$out" | grep -q '| 64/'; then
  echo "FAIL: the coordinator kept its soft limit of 64"
  fail=1
else
  echo "ok:   100 clients on a coordinator started with a soft limit of 64"
fi
exit $fail
