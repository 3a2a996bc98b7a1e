#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14 (ASan + UBSan) and runs each for a
# bounded time over a copy of its seed corpus and regressions (docs/fuzzing.md).
# Exits non-zero when any target crashes, leaks, times out or runs out of memory, printing
# the reproducer's path.
#
# Environment:
#   FUZZ_BUILD_DIR  build directory (default ./build-fuzz)
#   FUZZ_SECONDS    seconds per target (default 20)
#   FUZZ_TARGETS    space-separated targets to run (default: all, e.g. "csv idx")
#   FUZZ_RSS_MB     -rss_limit_mb and -malloc_limit_mb (default 2048)
#   FUZZ_TIMEOUT    -timeout: seconds one input may take (default 10)
#   JOBS            build parallelism (default nproc)
#   FUZZ_JOBS       targets fuzzed at once (default nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
JOBS=${JOBS:-$(nproc)}

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTESSERA_FUZZ=ON -DTESSERA_BUILD_TESTS=OFF
fi
build_start=$(date +%s)
ninja -C "$BUILD" -j "$JOBS" fuzzers
echo "fuzz: built the fuzzers in $(( $(date +%s) - build_start )) s"

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<< "$FUZZ_TARGETS"
else
  targets=()
  for src in tests/fuzz/*_fuzz.cc; do
    name=$(basename "$src" _fuzz.cc)
    targets+=("$name")
  done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ARTIFACTS="$BUILD/fuzz-artifacts"
WORK="$BUILD/fuzz-work"
failed=()
# libFuzzer runs one input at a time on one core: FUZZ_JOBS targets run at once (default
# nproc), each for its full FUZZ_SECONDS; the results are printed in target order.
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc)}
# Runs target $1 and writes its exit status to $WORK/$1.rc.
fuzz_one() {
  local t=$1 bin="$BUILD/bin/fuzz_$1" rc
  # libFuzzer adds what it finds to the first directory: a copy, never the committed seeds.
  rm -rf "${WORK:?}/$t"
  mkdir -p "$WORK/$t" "$ARTIFACTS/$t"
  cp tests/fuzz/corpus/"$t"/* "$WORK/$t"/
  if [ -d "tests/fuzz/regressions/$t" ] && [ -n "$(ls -A "tests/fuzz/regressions/$t")" ]; then
    cp tests/fuzz/regressions/"$t"/* "$WORK/$t"/
  fi
  set +e
  (cd "$WORK" && "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" \
     -malloc_limit_mb="$RSS_MB" -timeout="$TIMEOUT" -print_final_stats=1 \
     -artifact_prefix="$ARTIFACTS/$t/" "$WORK/$t") > "$WORK/$t.log" 2>&1
  rc=$?
  set -e
  echo "$rc" > "$WORK/$t.rc"
}
run_start=$(date +%s)
mkdir -p "$WORK"
runnable=()
for t in "${targets[@]}"; do
  if [ ! -x "$BUILD/bin/fuzz_$t" ]; then
    echo "fuzz: no binary $BUILD/bin/fuzz_$t (unknown target \"$t\"?)" >&2
    failed+=("$t")
    continue
  fi
  runnable+=("$t")
  rm -f "$WORK/$t.rc"
  while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
for t in "${runnable[@]}"; do
  log="$WORK/$t.log"
  rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo "no exit status")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc); last lines of $log:" >&2
    tail -40 "$log" >&2
    for a in "$ARTIFACTS/$t"/*; do
      [ -f "$a" ] && echo "fuzz: reproducer: $a (replay: $BUILD/bin/fuzz_$t $a)" >&2
    done
  else
    echo "fuzz: $t ok: ${execs:-?} inputs in ${SECONDS_EACH} s, ${cov:-cov: ?}"
  fi
done
echo "fuzz: ran ${#runnable[@]} targets (${FUZZ_JOBS} at a time) in $(( $(date +%s) - run_start )) s"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (copy each reproducer into tests/fuzz/regressions/<target>/" \
       "once fixed; docs/fuzzing.md)" >&2
  exit 1
fi
