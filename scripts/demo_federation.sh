# Sourced by the demos (scripts/demo.sh, scripts/demo_llm.sh): a throw-away PKI and a
# tessera-coordinator with mTLS on a free loopback port, stopped with every process the demo
# started when it exits.
# Needs: BIN (the programs), DEMO_DIR (output), the identities as "name[=Organization]"
# arguments of demo_federation_start. Sets: PKI, ADDR, and pids (append the clients' pids).
# It also exports the operator's TESSERA_* variables for the `tessera` CLI.

pids=()
demo_federation_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# demo_federation_start LABEL IDENTITY...
demo_federation_start() {
  local label=$1
  shift
  scripts/make_pki.sh "$DEMO_DIR/pki" "$@" >/dev/null
  PKI=$DEMO_DIR/pki
  trap demo_federation_cleanup EXIT
  "$BIN/tessera-coordinator" --listen 127.0.0.1:0 --port-file "$DEMO_DIR/port" \
    --state-dir "$DEMO_DIR/state" --ca "$PKI/ca.pem" --cert "$PKI/coordinator.pem" \
    --key "$PKI/coordinator.key" > "$DEMO_DIR/logs/coordinator.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$DEMO_DIR/port" ] && break; sleep 0.1; done
  [ -s "$DEMO_DIR/port" ] || { cat "$DEMO_DIR/logs/coordinator.log"; exit 1; }
  ADDR=127.0.0.1:$(cat "$DEMO_DIR/port")
  echo "$label: coordinator on $ADDR (mTLS), logs in $DEMO_DIR/logs"
  export TESSERA_COORDINATOR=$ADDR TESSERA_CA=$PKI/ca.pem TESSERA_CERT=$PKI/operator.pem \
    TESSERA_KEY=$PKI/operator.key
}
