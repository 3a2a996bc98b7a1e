#!/usr/bin/python3
"""Crash torture for the coordinator (docs/testing.md, "Crash torture").

For each mode (plain FedAvg, secure aggregation, central DP) this runs the same small run
twice on loopback with mTLS: once undisturbed (the reference) and once while SIGKILLing the
coordinator at random moments (restarting it on the same --state-dir and port) and SIGKILLing
clients (restarting them). Then it checks:
  * no completed round was lost: completed_rounds never went down across a restart, and the
    run ends COMPLETED with every round 1..R committed exactly once in its history;
  * plain FedAvg: the final model's tensors are bit-identical to the reference run's (the
    aggregation is order-independent and client training is seeded by run seed, round and
    client name, so both runs compute the same rounds);
  * secure aggregation and DP: the clients' stochastic rounding and the DP noise come from
    secure randomness by design, so the models cannot be compared bit for bit; these modes
    compare the round structure and the checks below instead;
  * DP: the ledger's rounds_charged equals the independent recount of released attempts in
    the run's history, and epsilon_spent equals the epsilon recomputed here (own RDP
    accountant: Gaussian at q = 1 on the ledger's orders, Balle et al. 2020 conversion);
  * the audit log exported after the torture verifies (`tessera audit verify`).
Randomness comes from TORTURE_SEED (printed), so a failure reproduces with the same seed
(up to the scheduler's timing).

Usage: scripts/crash_torture.py --bin build/bin [--modes plain,secagg,dp] [--rounds 20]
       [--coordinator-kills 4] [--client-kills 2] [--seed N] [--out DIR]
Exit status 0 when every check passed; 1 with the failed checks listed otherwise.
"""
import argparse
import hashlib
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = ["site-a", "site-b", "site-c"]
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
DP_Z = 1.5
DP_DELTA = 1e-5
TRIES = 3  # tortured runs per mode at most, when one ends before its first kill


def log(msg):
    print(f"[torture {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_config(mode, rounds):
    """A tiny run: 3 clients, all selected every round, an MLP on 300 examples each."""
    c = (f'name = "torture-{mode}"\nrounds = {rounds}\nseed = 11\n'
         '[model]\narchitecture = "mlp"\nseed = 1\n'
         '[train]\nlocal_epochs = 1\nbatch_size = 32\nlearning_rate = 0.05\nmax_steps = 2\n'
         f'[selection]\nclients_per_round = {len(CLIENTS)}\nmin_clients = {len(CLIENTS)}\n'
         'wait_for_clients_seconds = 120\n'
         # A killed client's task is given up at the deadline; the round is then retried
         # (a coordinator restart does not count against max_retries).
         '[round]\ndeadline_seconds = 8\nmax_retries = 50\n'
         f'[evaluation]\nevery = {rounds}\ndeadline_seconds = 30\n')
    if mode == "secagg":
        c += ('[secure_aggregation]\ndropout_fraction = 0.0\ncorrupt_fraction = 0.0\n'
              'security_bits = 40\nclip = 1.0\nvalue_bits = 32\nphase_deadline_seconds = 8\n')
    if mode == "dp":
        c = c.replace(f"clients_per_round = {len(CLIENTS)}", "fraction = 1.0")
        c += ('[differential_privacy]\nmode = "central"\n'
              f'noise_multiplier = {DP_Z}\nclip_norm = 1.0\npopulation = {len(CLIENTS)}\n'
              f'expected_clients_per_round = {len(CLIENTS)}\nepsilon = 1000\n'
              f'delta = {DP_DELTA}\ndataset = "torture-notes"\n')
    return c


def gaussian_epsilon(noise_multipliers, delta):
    """Epsilon of Gaussian rounds at q = 1 with the given noise multipliers, written from the
    closed form (not the coordinator's code): RDP(alpha) = sum_i alpha / (2 z_i^2) at the
    ledger's orders, converted with
    eps = rdp + log(1 - 1/alpha) - (log delta + log alpha) / (alpha - 1) (Balle et al. 2020)."""
    if not noise_multipliers:
        return 0.0
    orders = [1 + x / 10 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]
    best = math.inf
    for a in orders:
        if a <= 1.01:
            continue
        rdp = sum(a / (2 * z * z) for z in noise_multipliers)
        eps = rdp + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, max(0.0, eps))
    return best


def safetensors_digest(path):
    """SHA-256 over the tensors (name, dtype, shape, bytes) in name order; the file's
    metadata (export time, provenance) is left out."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    h = hashlib.sha256()
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        lo, hi = t["data_offsets"]
        h.update(f"{name}|{t['dtype']}|{t['shape']}|".encode())
        h.update(data[lo:hi])
    return h.hexdigest()


class Federation:
    """A coordinator and the clients, as processes, in `work`."""

    def __init__(self, binary, work, rng):
        self.bin, self.work, self.rng = binary, work, rng
        self.pki = os.path.join(work, "pki")
        self.port = None
        self.coordinator = None
        self.clients = {}
        self.starts = {"coordinator": 0}
        self.kills = {"coordinator": 0, "client": 0}
        os.makedirs(os.path.join(work, "logs"), exist_ok=True)
        subprocess.run([os.path.join(ROOT, "scripts/make_pki.sh"), self.pki] + CLIENTS,
                       check=True, stdout=subprocess.DEVNULL)

    def _log(self, name):
        n = self.starts.get(name, 0)
        return open(os.path.join(self.work, "logs", f"{name}.{n}.log"), "w")

    def start_coordinator(self):
        """Starts (or restarts, on the same port) the coordinator. While it was down, the
        kernel may have given its port to an outgoing connection as a source port; a restart
        whose bind fails that way ("cannot listen on") is tried again, up to 10 times."""
        port_file = os.path.join(self.work, "port")
        for attempt in range(10):
            if os.path.exists(port_file):
                os.remove(port_file)
            listen = f"127.0.0.1:{self.port or 0}"
            self.starts["coordinator"] += 1
            log_path = os.path.join(self.work, "logs",
                                    f"coordinator.{self.starts['coordinator']}.log")
            self.coordinator = subprocess.Popen(
                [os.path.join(self.bin, "tessera-coordinator"), "--listen", listen,
                 "--port-file", port_file, "--state-dir", os.path.join(self.work, "state"),
                 "--ca", f"{self.pki}/ca.pem", "--cert", f"{self.pki}/coordinator.pem",
                 "--key", f"{self.pki}/coordinator.key"],
                stdout=self._log("coordinator"), stderr=subprocess.STDOUT)
            for _ in range(600):
                if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                    self.port = int(open(port_file).read().strip())
                    return
                if self.coordinator.poll() is not None:
                    break
                time.sleep(0.05)
            if (self.port is None or self.coordinator.poll() is None or
                    "cannot listen on" not in open(log_path).read()):
                break
            log(f"coordinator could not bind port {self.port} (attempt {attempt + 1}); again")
            time.sleep(0.5)
        raise RuntimeError("coordinator did not start; see " + self.work + "/logs")

    def start_client(self, i):
        name = CLIENTS[i]
        self.starts[name] = self.starts.get(name, 0) + 1
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        self.clients[name] = subprocess.Popen(
            [os.path.join(self.bin, "tessera-client"), "--coordinator",
             f"127.0.0.1:{self.port}", "--name", name, "--ca", f"{self.pki}/ca.pem", "--cert",
             f"{self.pki}/{name}.pem", "--key", f"{self.pki}/{name}.key", "--device", "cpu",
             "--threads", "1", "--train-without-record-dp", "--data", f"idx:{FASHION_MNIST}",
             "--partition", "iid", "--num-partitions", str(len(CLIENTS)), "--partition-index",
             str(i), "--limit", "300"],
            stdout=self._log(name), stderr=subprocess.STDOUT, env=env)

    def kill(self, proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def cli(self, *args, check=True, timeout=120):
        cmd = [os.path.join(self.bin, "tessera"), "--coordinator", f"127.0.0.1:{self.port}",
               "--ca", f"{self.pki}/ca.pem", "--cert", f"{self.pki}/operator.pem", "--key",
               f"{self.pki}/operator.key"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
        return p

    def status(self, run):
        p = self.cli("--json", "run", "status", run, check=False, timeout=30)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout.strip().splitlines()[-1])

    def stop(self):
        for proc in list(self.clients.values()) + [self.coordinator]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in list(self.clients.values()) + [self.coordinator]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)


def start(fed, mode, rounds):
    fed.start_coordinator()
    for i in range(len(CLIENTS)):
        fed.start_client(i)
    path = os.path.join(fed.work, "run.toml")
    with open(path, "w") as f:
        f.write(run_config(mode, rounds))
    out = fed.cli("--json", "run", "create", path, "--start").stdout
    return json.loads(out.strip().splitlines()[-1])["run_id"]


def wait_done(fed, run, deadline_s):
    end = time.time() + deadline_s
    while time.time() < end:
        s = fed.status(run)
        if s is not None and s.get("state") in ("COMPLETED", "FAILED", "CANCELLED"):
            return s
        time.sleep(0.5)
    raise RuntimeError(f"run {run} did not finish within {deadline_s} s")


def collect(fed, run, status, label):
    """What the two runs are compared on."""
    model = os.path.join(fed.work, "model", "model.safetensors")
    fed.cli("model", "export", "--run", run, "--out", model)
    audit = os.path.join(fed.work, "audit.jsonl")
    fed.cli("audit", "export", "--out", audit)
    verify = fed.cli("audit", "verify", audit, check=False)
    with open(os.path.join(fed.work, "status.json"), "w") as f:
        json.dump(status, f, indent=1)
    return {
        "label": label,
        "status": status,
        "model_digest": safetensors_digest(model),
        "audit_ok": verify.returncode == 0,
        "audit_out": (verify.stdout + verify.stderr).strip(),
    }


def committed_rounds(status):
    return sorted(r["round"] for r in status.get("rounds", [])
                  if r.get("state") == "ROUND_COMPLETED")


def torture(fed, run, rng, rounds, coordinator_kills, client_kills, deadline_s, round_s):
    """Kills at random points until the planned kills are spent, then lets the run finish:
    each kill waits for a random number of completed rounds (so every kill lands before the
    run ends), then a random delay of up to one round (`round_s`, measured on the reference
    run, at most 0.6 s): any phase of the next round (selection, training, upload,
    aggregation, commit). Returns the problems seen (completed rounds lost across a restart,
    or no kill at all)."""
    problems = []
    events = ["coordinator"] * coordinator_kills + ["client"] * client_kills
    rng.shuffle(events)
    # The first kill is the coordinator's, before the middle of the run: a client kill and
    # its restart (up to 1.6 s) could otherwise outlast a short run's remaining rounds, and
    # the run would end before any coordinator kill (CrashTorture.Short did, 1 run in ~10).
    # The delay after the target round is at most one round, not a fixed 0.6 s: on CI's
    # faster machine a round of the plain run took 0.28 s, and 6 rounds ended before a kill.
    if coordinator_kills > 0:
        events.remove("coordinator")
        events.insert(0, "coordinator")
    targets = sorted(rng.randrange(max(1, rounds - 1)) for _ in events)
    if coordinator_kills > 0:
        targets[0] = min(targets[0], max(0, rounds // 2 - 1))
    max_delay = min(0.6, round_s)
    seen = 0
    end = time.time() + deadline_s
    for what, target in zip(events, targets):
        s = None
        while time.time() < end:
            s = fed.status(run)
            if s is not None and (s.get("completed_rounds", 0) >= target or
                                  s.get("state") == "COMPLETED"):
                break
            time.sleep(0.02)
        if s is not None:
            seen = max(seen, s.get("completed_rounds", 0))
            if s.get("state") == "COMPLETED":
                break
        time.sleep(rng.uniform(0.0, max_delay))
        fed.kills[what] += 1
        if what == "coordinator":
            log(f"SIGKILL coordinator (completed rounds seen: {seen})")
            fed.kill(fed.coordinator)
            time.sleep(rng.uniform(0.0, 1.0))
            fed.start_coordinator()
            after = None
            while after is None and time.time() < end:
                after = fed.status(run)
                time.sleep(0.2)
            if after is None:
                problems.append("coordinator did not answer after a restart")
                return problems
            if after.get("completed_rounds", 0) < seen:
                problems.append(f"completed rounds went from {seen} to "
                                f"{after.get('completed_rounds')} across a restart")
        else:
            i = rng.randrange(len(CLIENTS))
            log(f"SIGKILL client {CLIENTS[i]} (completed rounds seen: {seen})")
            fed.kill(fed.clients[CLIENTS[i]])
            time.sleep(rng.uniform(0.0, 1.0))
            fed.start_client(i)
    if coordinator_kills > 0 and fed.kills["coordinator"] == 0:
        problems.append("the run ended before any coordinator kill: nothing was tested")
    return problems


def ledger_problems(status):
    """DP: the ledger against an independent recount from the run's history: every attempt
    whose noised model was released (completed or interrupted after the release) is charged
    once, at the noise multiplier recorded for it."""
    p = status.get("privacy", {})
    released = [r["privacy"] for r in status.get("rounds", [])
                if r.get("privacy", {}).get("released")]
    problems = []
    if p.get("rounds_charged") != len(released):
        problems.append(f"ledger charged {p.get('rounds_charged')} rounds, the history shows "
                        f"{len(released)} released attempts")
    # Every client is selected in every round (q = 1). An attempt that a kill interrupted
    # after its release is recorded without its sampling rate (0): it was charged at the
    # run's q, which is 1 here.
    if any(r.get("sampling_rate", 0) not in (0, 1) for r in released):
        problems.append("a released round has sampling rate other than 1: this recount "
                        "handles q = 1")
        return problems
    zs = [r["noise_multiplier"] for r in released]
    if zs and any(z != DP_Z for z in zs):
        problems.append(f"recorded noise multipliers {sorted(set(zs))}, the config says {DP_Z}")
    want = gaussian_epsilon(zs, DP_DELTA)
    got = p.get("epsilon_spent")
    if got is None or abs(got - want) > 1e-9 * max(1.0, want):
        problems.append(f"ledger epsilon {got}, independent recount {want} "
                        f"({len(released)} releases)")
    return problems


def compare(mode, ref, tor, rounds):
    problems = []
    for r in (ref, tor):
        s = r["status"]
        if s.get("state") != "COMPLETED" or s.get("completed_rounds") != rounds:
            problems.append(f"{r['label']}: state {s.get('state')}, completed rounds "
                            f"{s.get('completed_rounds')} of {rounds}")
        got = committed_rounds(s)
        if got != list(range(1, rounds + 1)):
            problems.append(f"{r['label']}: committed rounds {got}, want each of 1..{rounds} once")
        if not r["audit_ok"]:
            problems.append(f"{r['label']}: audit verify failed: {r['audit_out']}")
    if mode == "plain" and ref["model_digest"] != tor["model_digest"]:
        problems.append(f"final model differs: reference {ref['model_digest']}, "
                        f"tortured {tor['model_digest']}")
    if mode == "dp":
        for r in (ref, tor):
            problems += [f"{r['label']}: {p}" for p in ledger_problems(r["status"])]
    return problems


def one_run(args, mode, label, rng, round_s=None):
    """One run from scratch: undisturbed, or tortured when `round_s` (the reference run's
    seconds per round) is given."""
    work = os.path.join(args.out, mode, label)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    fed = Federation(args.bin, work, rng)
    t0 = time.time()
    try:
        run = start(fed, mode, args.rounds)
        problems = []
        if round_s is not None:
            problems = torture(fed, run, rng, args.rounds, args.coordinator_kills,
                               args.client_kills, args.deadline, round_s)
        status = wait_done(fed, run, args.deadline)
        result = collect(fed, run, status, f"{mode}/{label}")
        result["problems"] = problems
        result["seconds"] = time.time() - t0
        result["kills"] = dict(fed.kills)
    finally:
        fed.stop()
    log(f"{mode}/{label}: {status.get('state')} {status.get('completed_rounds')} rounds, "
        f"{len(status.get('rounds', []))} attempts, "
        f"SIGKILLed: coordinator {fed.kills['coordinator']}x, clients {fed.kills['client']}x, "
        f"{result['seconds']:.1f} s, model {result['model_digest'][:16]}")
    return result


def one_mode(args, mode, seed):
    """The reference run, then the tortured run. A tortured run that ended before its first
    coordinator kill tested nothing; it is run again from scratch (at most TRIES times)."""
    rng = random.Random(f"{seed}:{mode}")
    results = {"reference": one_run(args, mode, "reference", rng)}
    round_s = results["reference"]["seconds"] / args.rounds
    for attempt in range(TRIES):
        if attempt > 0:
            log(f"{mode}/tortured ended before its first coordinator kill: running it again")
        results["tortured"] = one_run(args, mode, "tortured", rng, round_s)
        if results["tortured"]["kills"]["coordinator"] > 0 or args.coordinator_kills == 0:
            break
    problems = results["tortured"]["problems"] + compare(mode, results["reference"],
                                                         results["tortured"], args.rounds)
    return problems, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin"))
    ap.add_argument("--modes", default="plain,secagg,dp")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--coordinator-kills", type=int, default=4)
    ap.add_argument("--client-kills", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None,
                    help="default: $TORTURE_SEED, else a random seed (printed)")
    ap.add_argument("--deadline", type=float, default=900, help="seconds per run")
    ap.add_argument("--out", default=os.path.join(ROOT, "out/crash_torture"))
    args = ap.parse_args()
    seed = args.seed
    if seed is None:
        seed = int(os.environ.get("TORTURE_SEED", random.SystemRandom().randrange(1 << 31)))
    log(f"TORTURE_SEED={seed} rounds={args.rounds} modes={args.modes} "
        f"coordinator kills={args.coordinator_kills} client kills={args.client_kills}")
    failed = []
    summary = {}
    for mode in args.modes.split(","):
        problems, results = one_mode(args, mode, seed)
        summary[mode] = {k: {"seconds": round(v["seconds"], 1),
                             "kills": v["kills"],
                             "attempts": len(v["status"].get("rounds", [])),
                             "model_digest": v["model_digest"]} for k, v in results.items()}
        failed += [f"{mode}: {p}" for p in problems]
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"seed": seed, "modes": summary, "problems": failed}, f, indent=1)
    if failed:
        log(f"FAILED (TORTURE_SEED={seed}):")
        for p in failed:
            print("  " + p)
        return 1
    log(f"passed (TORTURE_SEED={seed}); summary in {args.out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
