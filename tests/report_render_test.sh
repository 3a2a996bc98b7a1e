#!/usr/bin/env bash
# `tessera run report` renders in a real browser: a tiny real federation on 127.0.0.1 (an
# --insecure tessera-coordinator, two tessera-client processes on 300 Fashion-MNIST examples
# each) runs 2 rounds of FedAvg with central differential privacy, its initial weights read
# from a file whose path holds "<script>" (names and client names cannot, but the path shows
# in the config); the CLI writes the run's HTML report; headless Chromium loads it.
# Checks, on the DOM Chromium built: no <script> element (the hostile path is text), the
# four plots with one point (bar group) per round, one table row per round, every participant
# by name, the config; then a screenshot that is far from blank.
# Usage: report_render_test.sh BIN_DIR SOURCE_DIR. Exit 77 (skipped) without chromium or the
# dataset. KEEP=1 keeps the work directory (report.html, report.png, logs).
set -euo pipefail
BIN=$(cd "$1" && pwd)
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP: chromium is not installed (apt-get install chromium; scripts/install_deps.sh)"
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
  if [ "${KEEP:-0}" = 0 ]; then rm -rf "$dir"; else echo "kept $dir"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$dir"/*.log; do echo "--- $f"; tail -20 "$f"; done
  exit 1
}

"$BIN/tessera-coordinator" --insecure --listen 127.0.0.1:0 --port-file "$dir/port" \
  --state-dir "$dir/state" > "$dir/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
[ -s "$dir/port" ] || fail "the coordinator did not start"
addr=127.0.0.1:$(cat "$dir/port")
clients=(site-a site-b)
for i in 0 1; do
  "$BIN/tessera-client" --insecure --coordinator "$addr" --name "${clients[$i]}" --device cpu \
    --threads 1 --partition iid --num-partitions 2 --partition-index $i --limit 600 \
    > "$dir/client$i.log" 2>&1 &
  pids+=($!)
done

evil="w<script>alert(1)</script>.safetensors"
mkdir -p "$dir/w<script>alert(1)<"
"$BIN/tessera-model" init --architecture mlp --seed 1 --out "$dir/$evil" > "$dir/model.log" 2>&1 ||
  fail "tessera-model init"
cat > "$dir/run.toml" <<'TOML'
name = "report-render"
rounds = 2
seed = 3
[model]
architecture = "mlp"
initial_weights = "w<script>alert(1)</script>.safetensors"
seed = 1
[train]
batch_size = 32
learning_rate = 0.05
max_steps = 5
[selection]
min_clients = 2
wait_for_clients_seconds = 60
[round]
deadline_seconds = 120
max_retries = 0
[evaluation]
every = 1
deadline_seconds = 60
[differential_privacy]
mode = "central"
noise_multiplier = 1.0
clip_norm = 1.0
population = 2
expected_clients_per_round = 2
epsilon = 100
delta = 1e-5
dataset = "report-render"
TOML

cli=("$BIN/tessera" --insecure --coordinator "$addr")
run=$("${cli[@]}" --json run create "$dir/run.toml" --start |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])') ||
  fail "run create"
"${cli[@]}" run watch "$run" > "$dir/watch.log" 2>&1 || fail "run $run did not complete"

# The default path (RUN.html in the current directory), then --out.
(cd "$dir" && "${cli[@]}" run report "$run") > "$dir/report_default.log" 2>&1 ||
  fail "run report"
[ -s "$dir/$run.html" ] || fail "no $run.html in the current directory"
"${cli[@]}" run report "$run" --out "$dir/report.html" > "$dir/report.log" 2>&1 ||
  fail "run report --out"
grep -qE "to $dir/report.html \([0-9.]+ [KM]?B\)" "$dir/report.log" ||
  fail "run report did not say where and how big: $(cat "$dir/report.log")"
echo "ok:   $(cat "$dir/report.log")"

chrome=(timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
        --no-first-run --user-data-dir="$dir/chrome" --hide-scrollbars)
"${chrome[@]}" --dump-dom "file://$dir/report.html" > "$dir/dom.html" 2> "$dir/chromium.log" ||
  fail "chromium --dump-dom"
python3 - "$dir/dom.html" "$run" "${clients[@]}" <<'PY' || fail "the rendered DOM"
import collections, html.parser, sys
dom_path, run_id, clients = sys.argv[1], sys.argv[2], sys.argv[3:]
ROUNDS = 2

class Dom(html.parser.HTMLParser):
    """Counts what the checks need; text is collected per key, one entry per element."""
    def __init__(self):
        super().__init__()
        self.tags = collections.Counter()
        self.svg = None                      # the id of the <svg> we are in
        self.marks = collections.Counter()   # (svg id, kind, series) -> count
        self.rows = collections.Counter()    # <tr> classes
        self.text = collections.defaultdict(list)  # key -> the texts of its elements
        self.open = []                       # (tag, key) of the elements collecting text
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] += 1
        cls = a.get("class", "")
        if tag == "svg":
            self.svg = a.get("id")
        elif tag in ("circle", "rect") and cls in ("pt", "bar") and self.svg:
            self.marks[(self.svg, cls, a.get("data-series"))] += 1
        elif tag == "tr" and cls:
            self.rows[cls.split()[0]] += 1
        key = ("client" if tag == "span" and cls == "client" else
               "config" if a.get("id") == "config" else
               "h1" if tag == "h1" else
               ("tip:" + self.svg if self.svg else "title") if tag == "title" else None)
        if key:
            self.open.append((tag, key))
            self.text[key].append("")
    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None
        if self.open and self.open[-1][0] == tag:
            self.open.pop()
    def handle_data(self, data):
        if self.open:
            self.text[self.open[-1][1]][-1] += data

d = Dom()
d.feed(open(dom_path, encoding="utf-8").read())
errors = []
def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        errors.append(what)

check(d.tags["script"] == 0, "no <script> element in the DOM (%d)" % d.tags["script"])
check(d.tags["svg"] == 4, "4 plots (accuracy, loss, epsilon, clients): %d <svg>" % d.tags["svg"])
for svg, series, want in [("plot-accuracy", "0", ROUNDS), ("plot-loss", "0", ROUNDS),
                          ("plot-epsilon", "0", ROUNDS)]:
    got = d.marks[(svg, "pt", series)]
    check(got == want, "%s: %d points, want one per round (%d)" % (svg, got, want))
tips = d.text["tip:plot-loss"]
check(len(tips) == ROUNDS and all(t.startswith("test loss, round ") for t in tips),
      "plot-loss: test loss only, no train loss under differential privacy: %r" % tips)
bars = sum(v for (svg, kind, _), v in d.marks.items() if svg == "plot-participants")
check(bars == 3 * ROUNDS, "plot-participants: %d bars, want 3 per round" % bars)
check(d.rows["round"] == ROUNDS, "metrics table: %d round rows" % d.rows["round"])
check(d.rows["participants"] == ROUNDS, "participants table: %d rows" % d.rows["participants"])
spans = d.text["client"]
for c in clients:
    n = spans.count(c)
    check(n == ROUNDS, "participant %r listed as text in %d rounds" % (c, n))
check(d.text["h1"] == ["Run report-render COMPLETED"], "the heading: %r" % d.text["h1"])
check(d.text["title"] == ["tessera run %s (report-render)" % run_id],
      "the page title names the run: %r" % d.text["title"])
config = "".join(d.text["config"])
check('mode: CENTRAL' in config and 'architecture: "mlp"' in config,
      "the config is shown: %d characters" % len(config))
check('"safetensors:w<script>alert(1)</script>.safetensors"' in config,
      "the config's <script> path is text in the <pre>")
sys.exit(1 if errors else 0)
PY

# A screenshot of the report, against one of a blank page of the same size.
"${chrome[@]}" --window-size=1400,2600 --screenshot="$dir/report.png" \
  "file://$dir/report.html" >> "$dir/chromium.log" 2>&1 || fail "chromium --screenshot"
echo "<html><body></body></html>" > "$dir/blank.html"
"${chrome[@]}" --window-size=1400,2600 --screenshot="$dir/blank.png" \
  "file://$dir/blank.html" >> "$dir/chromium.log" 2>&1 || fail "chromium --screenshot (blank)"
python3 - "$dir/report.png" "$dir/blank.png" <<'PY' || fail "the screenshot"
import struct, sys
def png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path + " is not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    return len(data), w, h
size, w, h = png(sys.argv[1])
blank, _, _ = png(sys.argv[2])
print("ok:   screenshot %dx%d, %d bytes (a blank page: %d bytes)" % (w, h, size, blank))
assert (w, h) == (1400, 2600), (w, h)
assert size > 50_000 and size > 10 * blank, "the screenshot looks blank"
PY
echo "PASS: run $run's report renders in $("$CHROMIUM" --version 2>/dev/null | head -1)"
