#!/usr/bin/env bash
# Validates deploy/systemd offline: every unit passes `systemd-analyze verify` (pointed at the
# binaries just built), prints nothing, and passes only flags its program accepts (checked
# against the program's --help). Exits 77 (skipped) where systemd-analyze is not installed.
# Usage: deploy_systemd_test.sh SOURCE_DIR BIN_DIR
set -uo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd)
units=("$src"/deploy/systemd/*.service)
fail=0
for unit in "${units[@]}"; do
  prog=$(grep -oE 'ExecStart=/usr/local/bin/[a-z-]+' "$unit" | sed 's#.*/##')
  if [ -z "$prog" ] || [ ! -x "$bin/$prog" ]; then
    echo "FAIL: $unit: ExecStart names no built program (${prog:-none})"; fail=1; continue
  fi
  help=$("$bin/$prog" --help 2>&1)
  for flag in $(grep -oE '(^|[[:space:]])--[a-z-]+' "$unit" | tr -d ' \t'); do
    grep -qE -- "(^|[[:space:],])${flag}([[:space:],=]|$)" <<<"$help" ||
      { echo "FAIL: $unit passes $flag, which $prog does not accept"; fail=1; }
  done
done
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (flags were checked)"
  [ "$fail" = 0 ] && exit 77 || exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in "${units[@]}"; do
  sed "s#/usr/local/bin/#$bin/#; s#/etc/tessera/#$src/deploy/systemd/#" "$unit" >"$tmp/$(basename "$unit")"
done
out=$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1)
rc=$?
if [ "$rc" != 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify (exit $rc):"; echo "$out"; fail=1
else
  echo "ok:   systemd-analyze verify: ${#units[@]} units"
fi
exit $fail
