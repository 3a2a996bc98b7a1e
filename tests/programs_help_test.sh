#!/usr/bin/env bash
# Every program the build installs in its bin directory answers --help with exit code 0 and
# a usage text that names it. A program must be listed below: an executable in BIN_DIR that
# is neither listed nor a test (*_test) fails the test, so a new program cannot ship without
# a working --help.
# Usage: programs_help_test.sh BIN_DIR [--no-benchmarks]
set -uo pipefail
bin=${1:?usage: programs_help_test.sh BIN_DIR [--no-benchmarks]}
programs=(tessera tessera-coordinator tessera-client tessera-model tessera-sim
          tessera-bench-aggregation tessera-bench-federation tessera-bench-secagg
          tessera-bench-prg tessera-bench-commit-latency tessera-bench-startup tessera-bench-scale)
# Google Benchmark programs: built with TESSERA_BUILD_BENCHMARKS (else pass --no-benchmarks).
benchmarks=(ddg_bench tessera-bench-trust)
[ "${2:-}" = "--no-benchmarks" ] || programs+=("${benchmarks[@]}")
fail=0

# Executables that are not in the list (tests and shared libraries aside).
for path in "$bin"/*; do
  name=$(basename "$path")
  [ -f "$path" ] && [ -x "$path" ] || continue
  # Tests, shared libraries, and the fuzzers' corpus replays (ctest Fuzz.*, tests/fuzz).
  case "$name" in *_test | lib*.so | lib*.so.* | fuzz_*_replay) continue ;; esac
  listed=0
  for p in "${programs[@]}" "${benchmarks[@]}"; do [ "$p" = "$name" ] && listed=1; done
  if [ $listed = 0 ]; then
    echo "FAIL: $name is a program in $bin but not in tests/programs_help_test.sh"
    fail=1
  fi
done

for name in "${programs[@]}"; do
  if [ ! -x "$bin/$name" ]; then
    echo "FAIL: $name was not built in $bin"
    fail=1
    continue
  fi
  out=$(OPENBLAS_NUM_THREADS=1 timeout 60 "$bin/$name" --help 2>&1)
  rc=$?
  if [ $rc != 0 ]; then
    echo "FAIL: $name --help exited $rc:"
    echo "$out" | head -5
    fail=1
  elif ! grep -qE "^Usage: (.*/)?$name( |$)" <<<"$out"; then
    echo "FAIL: $name --help prints no \"Usage: $name ...\" line:"
    echo "$out" | head -5
    fail=1
  elif grep -q "never called" <<<"$out"; then
    echo "FAIL: $name --help: $(grep "never called" <<<"$out")"
    fail=1
  else
    echo "ok:   $name --help ($(wc -l <<<"$out") lines)"
  fi
done
exit $fail
