#!/usr/bin/env bash
# A federation across Linux network namespaces (docs/multihost.md): the coordinator and 3
# clients each in their own namespace, joined by veth links to a bridge in a "switch"
# namespace, with `tc netem` delay and loss on the client links. Runs a real run over mTLS
# and checks, from the operator CLI's round history:
#   1. a round completes with all 3 clients;
#   2. site-3's link is cut mid-round: that round completes with the other 2 at its deadline;
#   3. the link is restored: site-3 takes part in a later round;
#   4. the coordinator is killed (SIGKILL) and restarted on its state dir: the clients
#      reconnect by themselves and the run completes, a round after the restart with all 3.
# Usage (as root): scripts/netns_federation.sh [BIN_DIR]   (default build/bin)
# Knobs (environment): NETEM="delay 20ms 5ms loss 1%" (netem arguments, both directions of
# each client link), NETEM_MODE=auto|require|off (auto: run without netem where the kernel
# has no sch_netem; require: skip there), CUT=partition|down (take site-3's port off the
# bridge, silently, or set it down, so site-3 sees no carrier), DOWN_SECONDS=5 (coordinator
# downtime), ROUNDS=N (default: the config's), LIMIT=3000 (examples, split over the 3
# clients), CONFIG=run.toml, KEEP=1 (keep the work dir and logs).
# Exits 0 (PASS), 1 (FAIL) or 77 (SKIP: not root, no network namespaces/veth/bridge, no
# iproute2, no Fashion-MNIST; with NETEM_MODE=require, no netem).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-${BIN_DIR:-$SRC/build/bin}}" 2>/dev/null && pwd) || BIN=${1:-$SRC/build/bin}
NETEM=${NETEM:-delay 20ms 5ms loss 1%}
NETEM_MODE=${NETEM_MODE:-auto}
CUT=${CUT:-partition}
DOWN_SECONDS=${DOWN_SECONDS:-5}
ROUNDS=${ROUNDS:-}
LIMIT=${LIMIT:-3000}
CONFIG=${CONFIG:-$SRC/deploy/config/netns.toml}
FMNIST=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3  # not a slow pyenv shim: it runs every poll
PORT=7800 NET=10.77.0 COORD_IP=10.77.0.1
CLIENTS=(site-1 site-2 site-3)
CUT_NAME=site-3
P=tessera-nf-$$                        # namespace prefix: unique per run, names its owner
SW=$P-sw CO=$P-co
T0=$(date +%s.%N)
NSES=() PIDS=() FAILS=() NETEM_ON=0
COORD_PID=""
WORK=""
# gRPC would route the clients' connections through a proxy named in the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY grpc_proxy all_proxy ALL_PROXY
export OPENBLAS_NUM_THREADS=1

log() { printf '[%6.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*"; }
skip() { echo "SKIP: $*"; exit 77; }
ok() { log "ok:   $*"; }
fail() { log "FAIL: $*"; FAILS+=("$*"); }
die() { fail "$*"; finish; }
finish() {  # the verdict; exits
  local elapsed
  elapsed=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.0f", a-b}')
  if [ ${#FAILS[@]} = 0 ]; then
    local netem="no netem"
    [ "$NETEM_ON" = 1 ] && netem="netem '$NETEM'"
    echo "PASS: netns federation ($netem, cut=$CUT): $ROUNDS rounds, link cut and rejoin," \
      "coordinator restart, in ${elapsed}s"
    exit 0
  fi
  echo "FAIL: ${#FAILS[@]} check(s) failed in ${elapsed}s:"
  printf '  - %s\n' "${FAILS[@]}"
  exit 1
}

cleanup() {
  local rc=$?
  exec 2>/dev/null  # no "Killed" job notices
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$WORK" ]; then
    if [ "$rc" = 0 ] && [ "${KEEP:-0}" = 0 ]; then rm -rf "$WORK"; else echo "logs: $WORK/logs"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- preflight: skip (77) where this machine cannot run it ----------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (ip netns add, veth, tc); run: sudo $0"
command -v ip >/dev/null && command -v tc >/dev/null ||
  skip "iproute2 (ip, tc) is not installed: apt-get install iproute2 (scripts/install_deps.sh)"
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] ||
  skip "dataset-fashion-mnist is not installed (scripts/install_deps.sh)"
for b in tessera-coordinator tessera-client tessera tessera-model; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: build first (scripts/build.sh) or pass BIN_DIR"
done
case "$CUT" in partition|down) ;; *) die "CUT must be partition or down, got '$CUT'";; esac
case "$NETEM_MODE" in auto|require|off) ;; *) die "NETEM_MODE must be auto|require|off";; esac

# Namespaces left by runs that died without their trap: delete the empty ones, name the rest.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^tessera-nf-[0-9]*-'); do
  owner=${ns#tessera-nf-}; owner=${owner%%-*}
  kill -0 "$owner" 2>/dev/null && continue
  if [ -z "$(ip netns pids "$ns" 2>/dev/null)" ]; then
    ip netns del "$ns" 2>/dev/null && log "deleted stale namespace $ns"
  else
    log "warning: stale namespace $ns still holds processes $(ip netns pids "$ns" | xargs)"
  fi
done

probe=$P-probe
err=$(ip netns add "$probe" 2>&1) ||
  skip "cannot create a network namespace (ip netns add: $err); needs CAP_SYS_ADMIN and" \
    "a kernel with CONFIG_NET_NS, not a restricted container"
NSES+=("$probe")
err=$(ip -n "$probe" link add v0 type veth peer name v1 2>&1) ||
  skip "cannot create a veth pair ($err): the kernel lacks CONFIG_VETH"
err=$(ip -n "$probe" link add br0 type bridge 2>&1) ||
  skip "cannot create a bridge ($err): the kernel lacks CONFIG_BRIDGE"
if [ "$NETEM_MODE" != off ]; then
  if err=$(tc -n "$probe" qdisc add dev v0 root netem delay 1ms 2>&1); then
    NETEM_ON=1
    # shellcheck disable=SC2086  # NETEM is a list of netem arguments
    err=$(tc -n "$probe" qdisc add dev v1 root netem $NETEM 2>&1) ||
      die "tc rejects NETEM='$NETEM': $err"
  elif [ "$NETEM_MODE" = require ]; then
    skip "tc netem does not work here ($err): load sch_netem (modprobe sch_netem; on" \
      "Ubuntu it may be in linux-modules-extra), or NETEM_MODE=auto to run without it"
  else
    log "WARNING: tc netem is unavailable ($err; the kernel has no sch_netem):" \
      "running WITHOUT delay and loss (NETEM_MODE=require skips instead)"
  fi
fi
ip netns del "$probe"; NSES=()

# ---- work dir, PKI, run config --------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-netns.XXXXXX")
mkdir -p "$WORK/logs"
PKI=$WORK/pki
# The federation PKI with `tessera pki` (docs/pki.md); the coordinator's certificate names
# the address the clients dial in its namespace, and the CRL is checked on every connection.
{
  "$BIN/tessera" pki init --dir "$PKI" --org "Tessera netns test" &&
    "$BIN/tessera" pki issue --dir "$PKI" --role coordinator --name coordinator \
      --san "DNS:localhost,IP:127.0.0.1,IP:$COORD_IP" --days 1 &&
    "$BIN/tessera" pki issue --dir "$PKI" --role operator --name operator --days 1 &&
    for c in "${CLIENTS[@]}"; do
      "$BIN/tessera" pki issue --dir "$PKI" --role client --name "$c" --days 1 || exit 1
    done
} >/dev/null || die "tessera pki could not issue the federation's certificates"
[ -f "$CONFIG" ] || die "no run config $CONFIG"
if [ -n "$ROUNDS" ]; then
  sed -E "s/^rounds *=.*/rounds = $ROUNDS/" "$CONFIG" > "$WORK/run.toml"
else
  cp "$CONFIG" "$WORK/run.toml"
  ROUNDS=$(sed -nE 's/^rounds *= *([0-9]+).*/\1/p' "$CONFIG")
fi
DEADLINE=$(sed -nE 's/^deadline_seconds *= *([0-9.]+).*/\1/p' "$WORK/run.toml" | head -1)
DEADLINE=${DEADLINE%.*}; DEADLINE=${DEADLINE:-300}

# ---- the network: a bridge in $SW, one veth link per node -----------------------------------
ns_add() {
  ip netns add "$1" || die "ip netns add $1 failed"
  NSES+=("$1")
  ip -n "$1" link set lo up
}
ns_add "$SW"
ip -n "$SW" link add br0 type bridge && ip -n "$SW" link set br0 up || die "bridge setup failed"
link() {  # node namespace, port name on the bridge, address
  local ns=$1 port=$2 addr=$3
  ns_add "$ns"
  ip -n "$SW" link add "$port" type veth peer name eth0 netns "$ns" &&
    ip -n "$SW" link set "$port" master br0 up &&
    ip -n "$ns" addr add "$addr/24" dev eth0 && ip -n "$ns" link set eth0 up ||
    die "cannot link $ns to the switch"
}
link "$CO" co "$COORD_IP"
for i in 1 2 3; do
  link "$P-c$i" "c$i" "$NET.1$i"
  if [ "$NETEM_ON" = 1 ]; then
    # shellcheck disable=SC2086
    tc -n "$P-c$i" qdisc add dev eth0 root netem $NETEM &&
      tc -n "$SW" qdisc add dev "c$i" root netem $NETEM || die "tc netem on c$i failed"
  fi
done
log "namespaces $P-{sw,co,c1,c2,c3}: coordinator $COORD_IP, clients $NET.11-13 on bridge br0;" \
  "client links: $([ "$NETEM_ON" = 1 ] && echo "netem $NETEM each way" || echo "no netem")"

# ---- processes --------------------------------------------------------------------------------
start_coordinator() {
  rm -f "$WORK/port"
  ip netns exec "$CO" "$BIN/tessera-coordinator" --listen "0.0.0.0:$PORT" \
    --port-file "$WORK/port" --state-dir "$WORK/state" --ca "$PKI/ca.pem" \
    --cert "$PKI/coordinator.pem" --key "$PKI/coordinator.key" --crl "$PKI/crl.pem" >> "$WORK/logs/coordinator.log" 2>&1 &
  COORD_PID=$!; PIDS+=("$COORD_PID")
  disown "$COORD_PID"  # it is killed on purpose: no "Killed" job notice
  for _ in $(seq 150); do [ -s "$WORK/port" ] && return 0; sleep 0.1; done
  tail -20 "$WORK/logs/coordinator.log"; die "the coordinator did not start"
}
CLI=("$BIN/tessera" --coordinator "127.0.0.1:$PORT" --ca "$PKI/ca.pem"
  --cert "$PKI/operator.pem" --key "$PKI/operator.key")
cli() { ip netns exec "$CO" "${CLI[@]}" --timeout 5 "$@"; }
start_coordinator
log "coordinator up in $CO on $COORD_IP:$PORT (pid $COORD_PID, state $WORK/state)"
for i in 1 2 3; do
  name=${CLIENTS[$((i - 1))]}
  ip netns exec "$P-c$i" "$BIN/tessera-client" --coordinator "$COORD_IP:$PORT" --name "$name" \
    --ca "$PKI/ca.pem" --cert "$PKI/$name.pem" --key "$PKI/$name.key" --device cpu \
    --threads 1 --data "idx:$FMNIST" --partition iid --num-partitions 3 \
    --partition-index $((i - 1)) --limit "$LIMIT" > "$WORK/logs/$name.log" 2>&1 &
  PIDS+=($!)
done
log "clients ${CLIENTS[*]} started in $P-c1..c3 (dialing $COORD_IP:$PORT over mTLS)"

# ---- run status queries (python3 reads the CLI's JSON) --------------------------------------
cat > "$WORK/q.py" <<'PY'
import json, subprocess, sys, time
mode, args = sys.argv[1], sys.argv[2:]
if mode == "act":  # on a `run watch` stream: when round >= N trains with lo..hi reports,
    first, lo, hi, cmd = int(args[0]), int(args[1]), int(args[2]), args[3:]  # run cmd
    live = False  # the stream's first status is a snapshot, maybe old news: act on changes
    for line in iter(sys.stdin.readline, ""):
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        cur = (d.get("rounds") or [{}])[-1]
        if d.get("state") != "RUNNING":
            sys.exit(1)
        if (live and cur.get("state") == "ROUND_TRAINING" and cur["round"] >= first
                and lo <= cur.get("reported", 0) <= hi):
            subprocess.run(cmd, check=True)
            print(cur["round"], cur.get("reported", 0), int(time.time()), flush=True)
            sys.exit(0)
        live = True
    sys.exit(1)
try:
    d = json.loads([l for l in sys.stdin.read().splitlines() if l.startswith("{")][-1])
except Exception:
    print("ERR 0" if mode == "summary" else ""); sys.exit(0)
rounds = d.get("rounds", [])
done = [r for r in rounds if r.get("state") == "ROUND_COMPLETED"]
def row(r):
    return "%d %d %s %d %d %s" % (r["round"], r.get("attempt", 0), r.get("state"),
        r.get("selected", 0), r.get("reported", 0), ",".join(r.get("participants", [])) or "-")
if mode == "summary":  # run state, completed rounds
    print(d.get("state"), d.get("completed_rounds", 0))
elif mode == "rounds":  # every finished attempt
    for r in rounds:
        if r.get("state") in ("ROUND_COMPLETED", "ROUND_FAILED"):
            print(row(r) + (" " + r["failure_reason"] if r.get("failure_reason") else ""))
elif mode in ("without", "with"):  # first completed round >= N without/with NAME
    name, first = args[0], int(args[1])
    for r in done:
        if r["round"] >= first and ((name in r.get("participants", [])) == (mode == "with")):
            print(row(r)); break
elif mode == "connected":  # clients list: the connected names
    print(" ".join(sorted(c["name"] for c in d.get("clients", []) if c.get("connected"))))
PY
q() { "$PY" "$WORK/q.py" "$@"; }
STATUS=""
poll() {  # refreshes STATUS and the summary variables; prints newly finished rounds
  local n a st sel rep who why
  STATUS=$(cli --json run status "$RUN" 2>/dev/null)
  read -r RSTATE DONE <<< "$(q summary <<< "$STATUS")"
  while read -r n a st sel rep who why; do
    [ -n "$n" ] && [ -z "${SEEN[$n/$a]:-}" ] || continue
    SEEN[$n/$a]=1
    if [ "$st" = ROUND_COMPLETED ]; then
      log "round $n done with $rep of $sel clients ($who)"
    else
      log "round $n attempt $a failed: $why"
    fi
  done <<< "$(q rounds <<< "$STATUS")"
}
declare -A SEEN
wait_for() {  # seconds, description, condition (a shell command run after each poll)
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  while [ "$(date +%s)" -lt "$until" ]; do
    poll
    eval "$*" && return 0
    case "$RSTATE" in COMPLETED|FAILED|CANCELLED) break ;; esac
    sleep 0.2
  done
  fail "timed out waiting for $what (run $RSTATE, $DONE rounds done)"
  return 1
}
act() {  # seconds, then q.py act's arguments: acts the moment the watch stream shows it;
  # prints the round, its reports and the time it acted
  local secs=$1; shift
  timeout "$secs" ip netns exec "$CO" "${CLI[@]}" --json run watch "$RUN" 2>/dev/null |
    q act "$@"
}
case "$CUT" in
  partition)  # silent: site-3's own link stays up, its port leaves the bridge
    CUT_CMD=(ip -n "$SW" link set c3 nomaster) RESTORE_CMD=(ip -n "$SW" link set c3 master br0) ;;
  down)  # site-3 sees its carrier go
    CUT_CMD=(ip -n "$SW" link set c3 down) RESTORE_CMD=(ip -n "$SW" link set c3 up) ;;
esac

# ---- the scenario -----------------------------------------------------------------------------
out=$(cli --json run create "$WORK/run.toml" --start 2>&1) || die "run create failed: $out"
RUN=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1].splitlines()[-1])["run_id"])' \
  "$out") || die "no run id in: $out"
log "run $RUN created and started ($ROUNDS rounds, round deadline ${DEADLINE}s, min 2 clients)"

# 1. A round with everyone.
wait_for 60 "a round with all 3 clients" '[ -n "$(q with "$CUT_NAME" 1 <<< "$STATUS")" ]' ||
  finish
r=$(q with "$CUT_NAME" 1 <<< "$STATUS")
if [ "$(cut -d' ' -f5 <<< "$r")" = 3 ]; then
  ok "round ${r%% *} completed with all 3 clients"
else
  fail "the first round with $CUT_NAME had not all 3 clients: $r"
fi

# 2. Cut site-3 as soon as a round's tasks are out, before anyone has reported.
read -r CUT_ROUND CREP T_CUT <<< "$(act 60 $((DONE + 1)) 0 0 "${CUT_CMD[@]}")"
[ -n "$CUT_ROUND" ] || die "never saw a round training to cut $CUT_NAME's link in"
poll  # report the rounds finished before the cut first
log "link cut ($CUT): $CUT_NAME is off the network during round $CUT_ROUND ($CREP of 3 reported)"
wait_for $((3 * DEADLINE + 30)) "a round completed without $CUT_NAME" \
  '[ -n "$(q without "$CUT_NAME" "$CUT_ROUND" <<< "$STATUS")" ]' || finish
read -r n _ _ sel rep who <<< "$(q without "$CUT_NAME" "$CUT_ROUND" <<< "$STATUS")"
if [ "$sel" = 3 ] && [ "$rep" = 2 ]; then
  ok "round $n completed with the other 2 ($who) $(( $(date +%s) - T_CUT ))s after the cut;" \
    "$CUT_NAME was selected and dropped at the deadline"
else
  fail "round $n: expected 2 of 3 selected clients to report, got $rep of $sel ($who)"
fi
[ "$n" = "$CUT_ROUND" ] || log "note: $CUT_NAME reported round $CUT_ROUND before the cut bit"

# 3. Restore the link: site-3 comes back by itself.
"${RESTORE_CMD[@]}" || die "cannot restore the link: ${RESTORE_CMD[*]}"
T_RESTORE=$(date +%s)
log "link restored: $CUT_NAME is back on the bridge"
wait_for 90 "$CUT_NAME to take part in a round again" \
  '[ -n "$(q with "$CUT_NAME" $((n + 1)) <<< "$STATUS")" ]' || finish
r=$(q with "$CUT_NAME" $((n + 1)) <<< "$STATUS")
ok "$CUT_NAME rejoined: round ${r%% *} done with $(cut -d' ' -f5 <<< "$r") clients" \
  "$(( $(date +%s) - T_RESTORE ))s after the restore"

# 4. Kill -9 the coordinator mid-round (tasks out, not all reported), restart it.
if [ "$RSTATE" != RUNNING ] || [ "$DONE" -ge $((ROUNDS - 1)) ]; then
  die "the run is at round $DONE of $ROUNDS already: raise ROUNDS to leave rounds after the restart"
fi
declare -A REGS  # registrations per client before the kill
for name in "${CLIENTS[@]}"; do REGS[$name]=$(grep -c "registered as" "$WORK/logs/$name.log"); done
read -r KILL_ROUND KREP _ <<< "$(act 60 $((DONE + 1)) 0 2 sh -c "kill -9 $COORD_PID")"
[ -n "$KILL_ROUND" ] || die "never saw a round training to kill the coordinator in"
for _ in $(seq 100); do kill -0 "$COORD_PID" 2>/dev/null || break; sleep 0.1; done
keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$COORD_PID" ] || keep+=("$p"); done
PIDS=("${keep[@]}")  # reaped: never signal that pid again
KILL_DONE=$((KILL_ROUND - 1))
log "coordinator killed (SIGKILL) during round $KILL_ROUND ($KREP of 3 reported);" \
  "down for ${DOWN_SECONDS}s"
sleep "$DOWN_SECONDS"
start_coordinator
T_RESTART=$(date +%s)
log "coordinator restarted on the same state dir (pid $COORD_PID)"
poll
if [ "$RSTATE" = RUNNING ] && [ "$DONE" = "$KILL_DONE" ]; then
  ok "the run resumed from RocksDB: RUNNING, $DONE rounds committed, round $KILL_ROUND to redo"
elif [ "$RSTATE" = RUNNING ] && [ "$DONE" = "$KILL_ROUND" ]; then
  ok "the run resumed from RocksDB: RUNNING, $DONE rounds (round $KILL_ROUND committed just" \
    "before the kill)"
else
  fail "after the restart the run is $RSTATE with $DONE rounds (expected RUNNING, $KILL_DONE)"
fi
RESUMED=$DONE
until=$(( $(date +%s) + 60 ))
while :; do
  connected=$(cli --json clients list 2>/dev/null | q connected)
  [ "$(wc -w <<< "$connected")" = 3 ] && break
  if [ "$(date +%s)" -ge "$until" ]; then
    fail "clients connected 60s after the restart: ${connected:-none}"; break
  fi
  sleep 0.3
done
if [ "$(wc -w <<< "$connected")" = 3 ]; then
  ok "all 3 clients reconnected $(( $(date +%s) - T_RESTART ))s after the restart ($connected)"
fi

wait_for 180 "the run to complete" '[ "$RSTATE" = COMPLETED ]'
r=$(q with "$CUT_NAME" $((RESUMED + 1)) <<< "$STATUS")
if [ -n "$r" ] && [ "$(cut -d' ' -f5 <<< "$r")" = 3 ]; then
  ok "round ${r%% *} (after the restart) done with all 3 clients"
else
  fail "no round after the restart had all 3 clients (${r:-none})"
fi
if [ "$RSTATE" = COMPLETED ] && [ "$DONE" = "$ROUNDS" ]; then
  ok "run $RUN COMPLETED: $DONE of $ROUNDS rounds"
else
  fail "run $RUN ended $RSTATE with $DONE of $ROUNDS rounds"
fi
for name in "${CLIENTS[@]}"; do
  [ "$(grep -c "registered as" "$WORK/logs/$name.log")" -gt "${REGS[$name]}" ] ||
    fail "$name never registered again after the coordinator restart (see its log)"
done
finish
