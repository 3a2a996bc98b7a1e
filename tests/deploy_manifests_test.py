#!/usr/bin/env python3
"""Validates deploy/docker, deploy/compose and deploy/k8s offline (the checks: deploy/README.md,
"Validation"); `docker compose config -q` and `kubectl kustomize` only where installed.
Usage: deploy_manifests_test.py SOURCE_DIR BIN_DIR. Exits 77 (skipped) without python3-yaml.
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed")
    sys.exit(77)

SRC, BIN = (os.path.abspath(a) for a in sys.argv[1:3])
DEPLOY = os.path.join(SRC, "deploy")
PROGRAMS = {"tessera", "tessera-coordinator", "tessera-client", "tessera-model", "tessera-sim"}
PREFIXES = {"sudo", "exec", "env", "command", "nohup", "time"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "then", "do", "else", "{", "}", "!"}
TEMPLATE = {"PARTNER_NAME": "hospital-x", "COORDINATOR_ADDRESS": "coordinator.example.org:7800"}
PATH_FLAGS = ("--ca", "--cert", "--key", "--crl", "--state-dir", "--data")
IN_BASE_IMAGE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}  # dpkg and apt need them
BINARY_RE = re.compile(r"/bin/(tessera[\w-]*)")
NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
results = {"ok": 0, "failed": 0, "skipped": 0}

def check(cond, what):
    results["ok" if cond else "failed"] += 1
    if not cond:
        print(f"FAIL: {what}")
    return cond

def skip(what):
    results["skipped"] += 1
    print(f"skip: {what}")

def rel(path):
    return os.path.relpath(path, SRC)

def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)

# ------------------------------------------------------------------ flags against --help
def program_help(prog, path, _helps={}):  # noqa: B006 (the cache)
    """({flag: takes_value}, {subcommand}) from `prog path... --help`; None if none."""
    key, exe = (prog, tuple(path)), os.path.join(BIN, prog)
    if key not in _helps:
        out = run([exe, *path, "--help"]) if os.access(exe, os.X_OK) else None
        ok, options, subs, section = out and out.returncode == 0, {}, set(), ""
        for line in out.stdout.splitlines() if ok else []:
            section = line if re.match(r"^\S.*:$", line) else section
            m = re.match(r"^  ((?:-\w,)?--[\w-]+(?:,--[\w-]+)*)( [A-Z])?", line)
            if m and section == "Options:":
                options.update((n, bool(m[2])) for n in re.findall(r"--[\w-]+", m[1]))
            m = re.match(r"^  ([a-z][\w-]*)\s{2,}", line)
            if m and section == "Subcommands:":
                subs.add(m[1])
        _helps[key] = (options, subs) if ok else None
    return _helps[key]

def check_invocation(prog, args, where):
    """Every --flag of `prog args` belongs to prog or to the subcommand it names."""
    path, chain, i = [], [program_help(prog, [])], 0
    if not check(chain[0] is not None, f"{where}: {BIN}/{prog} is missing or has no --help"):
        return
    while i < len(args):
        arg, name = args[i], " ".join([prog] + path)
        if arg.startswith("--"):
            flag, eq, _ = arg.partition("=")
            takes = next((h[0][flag] for h in reversed(chain) if flag in h[0]), None)
            check(takes is not None, f"{where}: `{name}` has no option {flag}")
            i += 1 if takes and not eq else 0
        elif not arg.startswith("-") and chain[-1][1]:
            sub = program_help(prog, path + [arg]) if arg in chain[-1][1] else None
            if not check(sub is not None, f"{where}: `{name}` has no subcommand {arg}"):
                return
            path.append(arg)
            chain.append(sub)
        i += 1

def scan_tokens(toks, where):
    """Checks each of our programs that stands in command position."""
    command_pos, i = True, 0
    is_separator = lambda t: t in SEPARATORS or t.startswith(("<", ">"))  # noqa: E731
    while i < len(toks):
        if is_separator(toks[i]):
            command_pos = True
        elif command_pos and not (toks[i] in PREFIXES or re.match(r"^\w+=", toks[i])):
            command_pos = False
            m = re.fullmatch(r"(?:\S*/bin/)?(tessera(?:-[a-z]+)?)", toks[i])
            end = next((j for j in range(i + 1, len(toks)) if is_separator(toks[j])), len(toks))
            if m and m[1] in PROGRAMS:
                check_invocation(m[1], toks[i + 1:end], where)
                i = end - 1
        i += 1

def scan_shell(text, where):
    """Each line of a shell script; a quote left open goes on over the next lines."""
    pending = ""
    for line in re.sub(r"\\\n", " ", text).splitlines():
        pending += line + "\n"
        try:
            lexer = shlex.shlex(pending, posix=True, punctuation_chars=";&|()<>")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            continue
        pending = ""
        scan_tokens(tokens, where)
    check(not pending, f"{where}: unbalanced quotes in {pending!r}")

def scan_argv(argv, where):
    """An exec-form command, and any of its elements that is a shell script."""
    scan_tokens(argv, where)
    for script in (a for a in argv if "\n" in a or (" " in a and "tessera" in a)):
        scan_shell(script, where)

def as_argv(value):
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value or []]

def flag_value(argv, flag):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None

# ------------------------------------------------------------------ Kubernetes
def load_yaml(path):
    text = open(path).read()
    if "template" in os.path.basename(path):
        for placeholder, value in TEMPLATE.items():
            check(placeholder in text, f"{rel(path)}: template lacks placeholder {placeholder}")
            text = text.replace(placeholder, value)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        return check(False, f"{rel(path)}: YAML does not parse: {e}") or []
    ok = check(docs and all(isinstance(d, dict) for d in docs), f"{rel(path)}: not YAML mappings")
    return docs if ok else []

def pod_of(workload):
    return workload.get("spec", {}).get("template", {})

def containers_of(w):
    return [c for k in ("initContainers", "containers") for c in pod_of(w)["spec"].get(k, [])]

def ports_of(cs):
    return {p.get(k) for c in cs for p in c.get("ports", []) for k in ("name", "containerPort")}

def check_container(c, where, volumes):
    """Returns (argv, {mountPath: volume name}) after checking flags, mounts and probes."""
    check(c.get("name") and c.get("image"), f"{where}: name and image are required")
    argv = as_argv(c.get("command")) + as_argv(c.get("args"))
    scan_argv(argv, where)
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    check(set(mounts.values()) <= set(volumes), f"{where}: mounts undeclared volumes")
    for flag in PATH_FLAGS:
        path = (flag_value(argv, flag) or "").split(":")[-1]
        on_mount = any(path == m or path.startswith(m + "/") for m in mounts)
        check(not path.startswith("/") or on_mount, f"{where}: {flag} {path} is on no mount")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        port = c.get(probe, {}).get("httpGet", {}).get("port")
        check(port in ports_of([c]) | {None}, f"{where}: {probe} port {port} is not declared")
    return argv, mounts

def check_k8s(objects):
    kinds = {}
    for obj, where in objects:
        kinds.setdefault(obj.get("kind"), []).append(obj)
        md = obj.get("metadata") or {}
        check(obj.get("apiVersion") and obj.get("kind") and NAME_RE.fullmatch(str(md.get("name"))),
              f"{where}: apiVersion, kind and a valid metadata.name are required")
        check(obj.get("kind") == "Namespace" or md.get("namespace") == "tessera",
              f"{where}: metadata.namespace is not tessera")
    names = lambda kind: {o["metadata"]["name"] for o in kinds.get(kind, [])}  # noqa: E731
    check(len(kinds.get("StatefulSet", [])) == 1, "deploy/k8s: one StatefulSet (coordinator)")
    workloads = [(o, w) for o, w in objects if o.get("kind") in ("StatefulSet", "Deployment")]
    for obj, where in workloads:
        spec, labels = obj.get("spec", {}), pod_of(obj).get("metadata", {}).get("labels", {})
        match = spec.get("selector", {}).get("matchLabels", {})
        check(match and match.items() <= labels.items(), f"{where}: selector misses its pods")
        pod_volumes = pod_of(obj).get("spec", {}).get("volumes", [])
        volumes = {v["name"]: next(iter(set(v) - {"name"}), None) for v in pod_volumes}
        volumes.update((t["metadata"]["name"], "volumeClaimTemplate")
                       for t in spec.get("volumeClaimTemplates", []))
        for claim in (v["persistentVolumeClaim"]["claimName"] for v in pod_volumes
                      if "persistentVolumeClaim" in v):
            check(claim in names("PersistentVolumeClaim"), f"{where}: no PVC {claim}")
        check(containers_of(obj), f"{where}: no containers")
        for c in containers_of(obj):
            cw = f"{where} container {c.get('name')}"
            argv, mounts = check_container(c, cw, volumes)
            for flag in ("--cert", "--key"):
                path = flag_value(argv, flag) or ""
                check(volumes.get(mounts.get(os.path.dirname(path))) == "secret",
                      f"{cw}: {flag} {path} is not in a mounted Secret")
            if obj["kind"] == "StatefulSet":
                state = flag_value(argv, "--state-dir")
                check(volumes.get(mounts.get(state)) == "volumeClaimTemplate",
                      f"{cw}: --state-dir {state} is not on a volumeClaimTemplate")
                check("readinessProbe" in c and "livenessProbe" in c,
                      f"{cw}: readiness and liveness probes are required")
                check(spec.get("serviceName") in names("Service"), f"{where}: serviceName unknown")
            elif "tessera-client" in argv[:1]:
                data = (flag_value(argv, "--data") or "").split(":")[-1]
                check(volumes.get(mounts.get(data)) in ("persistentVolumeClaim", "hostPath"),
                      f"{cw}: --data {data} is not on a PVC or hostPath volume")
                check(spec.get("replicas") == 1, f"{where}: one client identity, one replica")
    for svc in kinds.get("Service", []):
        where, sel = f"Service {svc['metadata']['name']}", svc.get("spec", {}).get("selector", {})
        pods = [o for o, _ in workloads
                if sel and sel.items() <= pod_of(o).get("metadata", {}).get("labels", {}).items()]
        for p in svc["spec"].get("ports", []) if check(pods, f"{where}: selects no pods") else []:
            target = p.get("targetPort", p.get("port"))
            check(target in ports_of(containers_of(pods[0])), f"{where}: no port {target}")

def check_kustomization(path):
    folder = os.path.dirname(path)
    for r in yaml.safe_load(open(path)).get("resources", []):
        check(os.path.exists(os.path.join(folder, r)), f"{rel(path)}: no resource {r}")
    out = run(["kubectl", "kustomize", folder]) if shutil.which("kubectl") else None
    if out is None:
        return skip(f"kubectl kustomize {rel(folder)}: kubectl is not installed")
    check(out.returncode == 0, f"kubectl kustomize {rel(folder)}: {out.stderr.strip()}")

# ------------------------------------------------------------------ Dockerfiles
def dockerfile_stages(path):
    """[(base image, stage name, [(INSTRUCTION, argument)])], ARG defaults resolved in FROM."""
    args, stages = {}, []
    for line in re.sub(r"\\\n", " ", open(path).read()).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        ins, _, rest = line.strip().partition(" ")
        ins, rest = ins.upper(), rest.strip()
        if ins == "ARG" and not stages and "=" in rest:
            args.update([rest.split("=", 1)])
        elif ins == "FROM":
            words = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), rest).split()
            named = len(words) > 2 and words[1].upper() == "AS"
            stages.append((words[0], words[2] if named else None, []))
        elif stages:
            stages[-1][2].append((ins, rest))
    return stages

def apt_packages(instructions):
    found = (m.group(1) for ins, rest in instructions if ins == "RUN"
             for m in re.finditer(r"apt-get install((?:\s+[^\s&;|]+)+)", rest))
    return [p for group in found for p in group.split() if not p.startswith("-")]

def existing_packages(pkgs):
    """The names among pkgs that apt knows (one apt-cache call: it takes ~1 s each)."""
    return set(re.findall(r"^Package: (\S+)", run(["apt-cache", "show", *pkgs]).stdout, re.M))

def linked_packages(binary):
    """{library: Debian package} for the libraries `binary` links directly."""
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-d", binary]).stdout)
    found = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", binary]).stdout, re.M))
    real = {lib: os.path.realpath(found.get(lib, lib)) for lib in needed}
    paths = [f for r in real.values() for f in (r, r.removeprefix("/usr"))]  # merged /usr
    listing = run(["dpkg", "-S", *paths]).stdout
    owner = {f: p for p, f in re.findall(r"^(\S+?)(?::\S+)?: (\S+)$", listing, re.M)}
    # The dynamic loader (NEEDED by programs that use TLS from PIC archives) has no "=>" in
    # ldd's output; it is glibc's.
    return {lib: "libc6" if lib.startswith("ld-linux") else
            owner.get(r, owner.get(r.removeprefix("/usr"))) for lib, r in real.items()}

def check_dockerfile(path):
    where, text, stages = rel(path), open(path).read(), dockerfile_stages(path)
    if not check(len(stages) >= 2, f"{where}: not multi-stage"):
        return set()
    names = []
    for base, name, instructions in stages:
        check(base == "debian:12" or base in names, f"{where}: FROM {base}: not debian:12")
        for ins, rest in instructions:
            src = next(iter(re.findall(r"--from=(\S+)", rest)), None) if ins == "COPY" else None
            if src and check(src in names, f"{where}: COPY --from={src}: no such earlier stage"):
                built = " ".join(r for i, r in stages[names.index(src)][2] if i == "RUN")
                for binary in BINARY_RE.findall(rest):
                    check(re.search(rf"ninja .*\b{binary}(\s|$)", built),
                          f"{where}: copies {binary}, which stage {src} does not build")
            if ins in ("RUN", "CMD", "ENTRYPOINT") and rest.startswith("["):
                scan_argv(json.loads(rest), f"{where} {ins}")
            elif ins in ("RUN", "CMD", "ENTRYPOINT"):
                scan_shell(rest, f"{where} {ins}")
            if ins == "COPY" and re.match(r"\.\s", rest):
                ignore = path + ".dockerignore"
                check(os.path.exists(ignore) and re.search(r"^build\*", open(ignore).read(), re.M),
                      f"{where}: `COPY .` needs {rel(ignore)} leaving out build*")
        names.append(name)
    final = stages[-1][2]
    users = [r.split(":")[0] for i, r in final if i == "USER"]
    check(users and users[-1] not in ("root", "0"), f"{where}: final stage runs as root")
    apt = shutil.which("apt-cache") or skip(f"{where}: no apt-cache, packages not checked")
    named = sorted({p for _, _, ins in stages for p in apt_packages(ins)} if apt else [])
    known = existing_packages(named) if named else set()
    for pkg in named:
        if "non-free" in text and pkg not in known:
            skip(f"{where}: {pkg} is not in this machine's apt sources (non-free?)")
        else:
            check(pkg in known, f"{where}: no apt package {pkg} (apt-cache show)")
    runtime = set(apt_packages(final))
    if "TESSERA_CUDA=ON" in text:
        skip(f"{where}: runtime libraries (the binaries here are not the CUDA build)")
    elif not all(shutil.which(t) for t in ("readelf", "ldd", "dpkg")):
        skip(f"{where}: readelf, ldd or dpkg missing, runtime libraries not checked")
    else:
        for binary in (b for i, r in final if i == "COPY" for b in BINARY_RE.findall(r)):
            for lib, pkg in linked_packages(os.path.join(BIN, binary)).items():
                check(pkg in runtime | IN_BASE_IMAGE,
                      f"{where}: {binary} links {lib} ({pkg}), not installed at run time")
    return runtime

# ------------------------------------------------------------------ Compose
def check_compose(path, runtime_packages):
    where, doc = rel(path), yaml.safe_load(open(path))
    services, volumes = doc.get("services", {}), set(doc.get("volumes") or {})
    mounts = lambda svc: dict(str(v).split(":")[:2] for v in svc.get("volumes", []))  # noqa: E731
    def waits_for_pki(name, seen=()):
        deps = services[name].get("depends_on", {})
        return deps.get("pki", {}).get("condition") == "service_completed_successfully" or any(
            d not in seen and waits_for_pki(d, seen + (name,)) for d in deps)
    check({"pki", "coordinator"} <= set(services), f"{where}: needs services pki and coordinator")
    clients = []
    for name, svc in services.items():
        sw = f"{where} service {name}"
        argv = as_argv(svc.get("entrypoint")) + as_argv(svc.get("command"))
        check(not argv or re.fullmatch(r"(\S*/)?(sh|bash|tessera(-\w+)?)", argv[0]),
              f"{sw}: the command must name its program")
        scan_argv(argv, sw)
        for source in mounts(svc):
            check(source.startswith(".") or source in volumes, f"{sw}: undeclared volume {source}")
        build = svc.get("build")
        check(not build or os.path.isfile(os.path.join(os.path.dirname(path), build["context"],
              build["dockerfile"])), f"{sw}: build.dockerfile does not exist")
        if "pki" in mounts(svc) and name != "pki":
            check(waits_for_pki(name), f"{sw}: reads the PKI but does not wait for pki")
        if argv[:1] == ["tessera-client"]:
            clients.append((name, argv))
    coord = services.get("coordinator", {})
    argv, test = as_argv(coord.get("command")), as_argv(coord.get("healthcheck", {}).get("test"))
    if check(len(test) > 2, f"{where}: the coordinator needs a healthcheck"):
        dockerfile = os.path.basename(coord.get("build", {}).get("dockerfile", ""))
        check(test[1] in runtime_packages.get(dockerfile, ()),
              f"{where}: healthcheck tool {test[1]} is not installed by {dockerfile}")
        port = (flag_value(argv, "--metrics-address") or ":").rsplit(":", 1)[1]
        check(f":{port}/healthz" in " ".join(test), f"{where}: healthcheck misses :{port}/healthz")
    check(mounts(coord).get("state") == flag_value(argv, "--state-dir"),
          f"{where}: the state volume is not at --state-dir")
    script = " ".join(as_argv(services.get("pki", {}).get("command")))
    parts = sorted((flag_value(a, "--partition-index"), flag_value(a, "--num-partitions"))
                   for _, a in clients)
    check(len(clients) >= 3 and parts == [(str(i), str(len(clients))) for i in range(len(clients))],
          f"{where}: client (--partition-index, --num-partitions) are {parts}")
    for name, argv in clients:
        cn = flag_value(argv, "--name")
        check(cn and re.search(rf"\b{cn}\b", script) and cn in (flag_value(argv, "--cert") or ""),
              f"{where} {name}: no certificate for {cn} from pki")
    tool = next((t for t in (["docker", "compose"], ["docker-compose"])
                 if shutil.which(t[0]) and run(t + ["version"]).returncode == 0), None)
    if not tool:
        return skip(f"{where}: no `docker compose` or docker-compose, `config -q` not run")
    out = run(tool + ["-f", path, "config", "-q"])
    check(out.returncode == 0, f"{' '.join(tool)} config -q {where}: {out.stderr.strip()}")

def check_readme(documented):
    text = open(os.path.join(DEPLOY, "README.md")).read()
    for f in documented:
        check(os.path.relpath(f, DEPLOY) in text, f"deploy/README.md does not name {rel(f)}")
    for p in set(re.findall(r"\bdeploy/[\w./-]*\w", text)):
        check(os.path.exists(os.path.join(SRC, p)), f"deploy/README.md names missing {p}")
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        scan_shell(block, "deploy/README.md")

def main():
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(DEPLOY) for f in fs
                   if f.endswith((".yaml", ".yml")))
    docs = {p: load_yaml(p) for p in paths}
    k8s_files = [p for p in paths if "/k8s/" in p]
    compose = [p for p in paths if "compose" in os.path.basename(p)]
    k8s = [(d, f"{rel(p)}: {d.get('kind')} {d.get('metadata', {}).get('name')}")
           for p in k8s_files if not p.endswith("/kustomization.yaml") for d in docs[p]]
    for p in (p for p in k8s_files if p.endswith("/kustomization.yaml")):
        check_kustomization(p)
    dockerfiles = sorted(glob.glob(os.path.join(DEPLOY, "docker", "*Dockerfile")))
    check(len(dockerfiles) >= 2 and compose and k8s, "deploy/: Dockerfiles, Compose, k8s expected")
    runtime_packages = {os.path.basename(d): check_dockerfile(d) for d in dockerfiles}
    check_k8s(k8s)
    for path in compose:
        check_compose(path, runtime_packages)
    check_readme(dockerfiles + compose + k8s_files)
    print("deploy manifests: {ok} checks ok, {failed} failed, {skipped} skipped".format(**results))
    return 1 if results["failed"] else 0

if __name__ == "__main__":
    sys.exit(main())
