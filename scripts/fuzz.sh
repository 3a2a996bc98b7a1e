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
run_start=$(date +%s)
for t in "${targets[@]}"; do
  bin="$BUILD/bin/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: no binary $bin (unknown target \"$t\"?)" >&2
    failed+=("$t")
    continue
  fi
  # libFuzzer adds what it finds to the first directory: a copy, never the committed seeds.
  rm -rf "${WORK:?}/$t"
  mkdir -p "$WORK/$t" "$ARTIFACTS/$t"
  cp tests/fuzz/corpus/"$t"/* "$WORK/$t"/
  if [ -d "tests/fuzz/regressions/$t" ] && [ -n "$(ls -A "tests/fuzz/regressions/$t")" ]; then
    cp tests/fuzz/regressions/"$t"/* "$WORK/$t"/
  fi
  log="$WORK/$t.log"
  set +e
  (cd "$WORK" && "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" \
     -malloc_limit_mb="$RSS_MB" -timeout="$TIMEOUT" -print_final_stats=1 \
     -artifact_prefix="$ARTIFACTS/$t/" "$WORK/$t") > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc); last lines of $log:" >&2
    tail -40 "$log" >&2
    for a in "$ARTIFACTS/$t"/*; do
      [ -f "$a" ] && echo "fuzz: reproducer: $a (replay: $bin $a)" >&2
    done
  else
    echo "fuzz: $t ok: ${execs:-?} inputs in ${SECONDS_EACH} s, ${cov:-cov: ?}"
  fi
done
echo "fuzz: ran ${#targets[@]} targets in $(( $(date +%s) - run_start )) s"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (copy each reproducer into tests/fuzz/regressions/<target>/" \
       "once fixed; docs/fuzzing.md)" >&2
  exit 1
fi
