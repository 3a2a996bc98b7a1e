#!/usr/bin/python3
"""Federated LoRA fine-tuning benchmarks (issue 18): Tessera next to plain PyTorch eager.

Usage: scripts/bench_lm.py [--bin build/bin] [--presets tiny,100m] [--threads 2|1,2]
                           [--steps N] [--reps 3] [--seq-len 128] [--batch-size 8]
                           [--rank 8] [--targets q_proj,v_proj] [--no-memory]

Run with Debian's /usr/bin/python3: its torch 1.13 uses the same libtorch_cpu.so.1.13 as the
C++ build, so both sides run the same kernels with the same thread count. Both sides inherit
this script's environment: on a machine shared with other work, run it with
OMP_WAIT_POLICY=passive, or OpenMP's spinning workers (plus OpenBLAS's own pthreads) make
--threads 2 up to 10x slower on both sides and the numbers mostly measure the scheduler.

1. Throughput: LoRA training tokens/s of `tessera-model bench-lm` and of the same model
   written here in PyTorch eager (below: a Llama decoder as transformers' modeling_llama.py
   writes it, RMSNorm, rotary, grouped-query attention with an additive causal mask built
   once per forward, SwiGLU, tied head; LoRA on the target projections as PEFT does it:
   frozen base Linear, lora_A/lora_B Linear, update scaled by alpha / r). Both sides: the
   same shapes, random init N(0, 0.02) with ones for the norms, uniformly random tokens, the
   token-mean cross-entropy over every next-token position, torch AdamW (lr 1e-4, betas
   0.9/0.999, eps 1e-8, no weight decay, single-tensor), no dropout, float32, the same
   number of warm-up and timed steps. Each measurement is its own process. The two sides are
   measured in pairs, back to back (A B, then B A, A B, ...), so that both runs of a pair see
   about the same machine load; reported: the medians, every pair's ratio, the smallest pair
   ratio, CPU milliseconds per token of each side (user + system time of the whole process
   during the timed steps; less sensitive to the load than wall time) and their ratio, and
   the load average (1/5/15 minutes) before and after each configuration. --threads takes a
   list (1,2): one table per thread count.
2. Bytes per round: float32 bytes of the trainable adapter tensors (A and B) against every
   base weight (a tied head once), for the presets and for the published SmolLM2-135M and
   Llama-3.2-1B configurations (computed by `bench-lm --sizes-only` from the tensor lists
   the loader checks, and cross-checked here with a closed formula).
3. Memory: peak resident memory (VmHWM) of LoRA training against full fine-tuning of the
   same model, each in its own process. "train peak" is VmHWM with the peak reset
   (/proc/self/clear_refs) after the model is built, "process peak" without the reset.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

DEFAULT_STEPS = {"tiny": 20, "100m": 3}
PUBLISHED = ["smollm2-135m", "llama-3.2-1b"]

# ---------------------------------------------------------------------------------------
# The PyTorch eager side (run in a subprocess: --worker).


def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def pytorch_worker(a):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    # The same thread settings as Tessera's SetTorchThreads: LibTorch's matrix products run
    # in OpenBLAS, whose own pool torch.set_num_threads does not size.
    blas_threads = 0
    try:
        import ctypes
        blas = ctypes.CDLL("libblas.so.3")
        blas.openblas_set_num_threads(a.threads)
        blas_threads = blas.openblas_get_num_threads()
    except (OSError, AttributeError):
        pass
    torch.manual_seed(a.seed)
    head_dim = a.hidden // a.heads

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps=1e-5):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            h = x.to(torch.float32)
            variance = h.pow(2).mean(-1, keepdim=True)
            h = h * torch.rsqrt(variance + self.eps)
            return self.weight * h.to(x.dtype)

    class Linear(nn.Module):
        """nn.Linear without bias, optionally with a PEFT-style LoRA adapter."""

        def __init__(self, name, fan_in, fan_out):
            super().__init__()
            self.base_layer = nn.Linear(fan_in, fan_out, bias=False)
            self.adapted = (not a.full_finetune) and name in a.targets
            if self.adapted:
                self.lora_dropout = nn.Identity()  # lora_dropout = 0
                self.lora_A = nn.Linear(fan_in, a.rank, bias=False)
                self.lora_B = nn.Linear(a.rank, fan_out, bias=False)
                nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
                nn.init.zeros_(self.lora_B.weight)
                self.scaling = a.alpha / a.rank

        def forward(self, x):
            result = self.base_layer(x)
            if self.adapted:
                x = x.to(self.lora_A.weight.dtype)
                result = result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
            return result

    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = Linear("q_proj", a.hidden, a.heads * head_dim)
            self.k_proj = Linear("k_proj", a.hidden, a.kv_heads * head_dim)
            self.v_proj = Linear("v_proj", a.hidden, a.kv_heads * head_dim)
            self.o_proj = Linear("o_proj", a.heads * head_dim, a.hidden)

        def forward(self, x, cos, sin, mask):
            b, s, _ = x.shape
            q = self.q_proj(x).view(b, s, a.heads, head_dim).transpose(1, 2)
            k = self.k_proj(x).view(b, s, a.kv_heads, head_dim).transpose(1, 2)
            v = self.v_proj(x).view(b, s, a.kv_heads, head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            groups = a.heads // a.kv_heads
            if groups > 1:  # transformers' repeat_kv
                k = k[:, :, None].expand(b, a.kv_heads, groups, s, head_dim).reshape(
                    b, a.heads, s, head_dim)
                v = v[:, :, None].expand(b, a.kv_heads, groups, s, head_dim).reshape(
                    b, a.heads, s, head_dim)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(head_dim)
            scores = scores + mask
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, a.heads * head_dim)
            return self.o_proj(out)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = Linear("gate_proj", a.hidden, a.intermediate)
            self.up_proj = Linear("up_proj", a.hidden, a.intermediate)
            self.down_proj = Linear("down_proj", a.intermediate, a.hidden)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.mlp = Mlp()
            self.input_layernorm = RMSNorm(a.hidden)
            self.post_attention_layernorm = RMSNorm(a.hidden)

        def forward(self, x, cos, sin, mask):
            h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
            return h + self.mlp(self.post_attention_layernorm(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
            self.layers = nn.ModuleList([Layer() for _ in range(a.layers)])
            self.norm = RMSNorm(a.hidden)
            inv = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.int64)
                                     .float() / head_dim))
            self.register_buffer("inv_freq", inv, persistent=False)

        def forward(self, ids):
            s = ids.shape[1]
            h = self.embed_tokens(ids)
            # Rotary tables and the causal mask, once per forward (transformers).
            pos = torch.arange(s, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            mask = torch.full((s, s), float("-inf")).triu(1)
            for layer in self.layers:
                h = layer(h, cos, sin, mask)
            return self.norm(h)

    model = Llama()
    with torch.no_grad():  # transformers' _init_weights
        for name, p in model.named_parameters():
            if "lora_" in name:
                continue
            if "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
        for p in model.parameters():
            p.requires_grad_(a.full_finetune)
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
    lm_head = model.embed_tokens.weight  # tied
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    parameters = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                            foreach=False)

    gen = torch.Generator().manual_seed(a.seed + 1)
    data = torch.randint(0, a.vocab, (4 * a.batch_size, a.seq_len), generator=gen)
    rss_after_load = status_mib("VmRSS")
    load_peak = status_mib("VmHWM")
    reset_ok = reset_peak_rss()
    order = torch.randperm(data.shape[0], generator=gen)
    cursor = 0

    def step():
        nonlocal cursor, order
        if cursor + a.batch_size > data.shape[0]:
            order = torch.randperm(data.shape[0], generator=gen)
            cursor = 0
        ids = data[order[cursor:cursor + a.batch_size]]
        cursor += a.batch_size
        opt.zero_grad()
        hidden = model(ids)
        # Token-mean cross-entropy of logits[:, i] against ids[:, i + 1].
        logits = F.linear(hidden[:, :-1].reshape(-1, a.hidden), lm_head).float()
        loss = F.cross_entropy(logits, ids[:, 1:].reshape(-1))
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    for _ in range(a.warmup_steps):
        step()
    start = time.perf_counter()
    cpu_start = time.process_time()
    loss = 0.0
    for _ in range(a.steps):
        loss += step()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    train_peak = status_mib("VmHWM")
    tokens = a.batch_size * a.seq_len * a.steps
    print(json.dumps({
        "implementation": "pytorch", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "blas_threads": blas_threads,
        "full_finetune": a.full_finetune,
        "steps": a.steps, "tokens": tokens, "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens_per_second": tokens / seconds, "final_loss": loss / a.steps,
        "parameters": parameters, "trainable_parameters": trainable,
        "rss_after_load_mib": rss_after_load,
        "peak_rss_mib": max(load_peak, train_peak) if reset_ok else train_peak,
        "train_peak_rss_mib": train_peak, "train_peak_reset": reset_ok}))


# ---------------------------------------------------------------------------------------
# The driver.


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def tessera_cmd(a, preset, steps, full=False, sizes_only=False):
    cmd = [os.path.join(a.bin, "tessera-model"), "bench-lm", "--json", "--preset", preset,
           "--seq-len", str(a.seq_len), "--batch-size", str(a.batch_size),
           "--warmup-steps", str(a.warmup_steps), "--steps", str(steps),
           "--threads", str(a.threads), "--device", "cpu", "--rank", str(a.rank),
           "--alpha", str(a.alpha), "--targets", a.targets]
    if full:
        cmd.append("--full-finetune")
    if sizes_only:
        cmd.append("--sizes-only")
    return cmd


def pytorch_cmd(a, sizes, steps, full=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker",
           "--hidden", str(sizes["hidden_size"]),
           "--intermediate", str(sizes["intermediate_size"]),
           "--layers", str(sizes["num_layers"]), "--heads", str(sizes["num_heads"]),
           "--kv-heads", str(sizes["num_kv_heads"]), "--vocab", str(sizes["vocab_size"]),
           "--seq-len", str(a.seq_len), "--batch-size", str(a.batch_size),
           "--warmup-steps", str(a.warmup_steps), "--steps", str(steps),
           "--threads", str(a.threads), "--rank", str(a.rank), "--alpha", str(a.alpha),
           "--targets", a.targets]
    if full:
        cmd.append("--full-finetune")
    return cmd


def formula_sizes(s, rank, targets):
    """Parameters of a tied Llama and of its LoRA adapters, from the shapes alone."""
    h, i, n = s["hidden_size"], s["intermediate_size"], s["num_layers"]
    d = h // s["num_heads"]
    q, kv = s["num_heads"] * d, s["num_kv_heads"] * d
    shapes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
              "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    layer = sum(fi * fo for fi, fo in shapes.values()) + 2 * h
    base = s["vocab_size"] * h + n * layer + h
    adapter = n * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)
    return base, adapter


def cpu_ms(r):
    """CPU milliseconds (user + system, the whole process) per trained token."""
    return 1000.0 * r["cpu_seconds"] / r["tokens"]


def mib(x):
    return f"{x:,.0f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default="build/bin")
    p.add_argument("--presets", default="tiny,100m")
    p.add_argument("--threads", default="2", help="a thread count or a list: 1,2")
    p.add_argument("--steps", type=int, default=0,
                   help="timed steps (default: tiny %d, 100m %d)" % (DEFAULT_STEPS["tiny"],
                                                                   DEFAULT_STEPS["100m"]))
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--targets", default="q_proj,v_proj")
    p.add_argument("--no-memory", action="store_true", help="skip the full fine-tuning runs")
    # Worker mode (one PyTorch measurement in this process).
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--full-finetune", action="store_true", help=argparse.SUPPRESS)
    for name in ["hidden", "intermediate", "layers", "heads", "kv-heads", "vocab"]:
        p.add_argument("--" + name, type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    a.targets_list = a.targets.split(",")
    if a.worker:
        a.threads = int(a.threads)
        a.targets = a.targets_list
        pytorch_worker(a)
        return

    import torch  # only for the version line
    print(f"# bench_lm.py: torch {torch.__version__} ({torch.__file__}), "
          f"{a.threads} threads, {os.cpu_count()} CPUs, load "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    print(f"# seq {a.seq_len}, batch {a.batch_size}, {a.warmup_steps} warm-up steps, "
          f"LoRA r={a.rank} alpha={a.alpha:g} on {a.targets}, {a.reps} repetitions\n")

    thread_counts = [int(x) for x in str(a.threads).split(",") if x]
    a.threads = thread_counts[0]
    presets = [x for x in a.presets.split(",") if x]
    rows, mem_rows, size_rows = [], [], []
    for preset in presets + PUBLISHED:
        s = run_json(tessera_cmd(a, preset, 1, sizes_only=True))
        base, adapter = formula_sizes(s, a.rank, a.targets_list)
        if base * 4 != s["full_bytes"] or adapter * 4 != s["adapter_bytes"]:
            sys.exit(f"{preset}: tensor lists and formula disagree: {s} vs {base}, {adapter}")
        size_rows.append((preset, s))

    for threads in thread_counts:
        a.threads = threads
        for preset in presets:
            sizes = dict(size_rows)[preset]
            steps = a.steps or DEFAULT_STEPS.get(preset, 10)
            load_before = os.getloadavg()
            tessera, pytorch = [], []
            for rep in range(a.reps):
                sides = [("tessera", tessera), ("pytorch", pytorch)]
                if rep % 2:
                    sides.reverse()
                for side, results in sides:
                    cmd = (tessera_cmd(a, preset, steps) if side == "tessera"
                           else pytorch_cmd(a, sizes, steps))
                    load = os.getloadavg()[0]
                    r = run_json(cmd)
                    results.append(r)
                    print(f"# {preset} {threads} thr pair {rep + 1} {side}: "
                          f"{r['tokens_per_second']:.1f} tok/s ({r['seconds']:.2f} s, "
                          f"{r['cpu_seconds']:.2f} CPU s, {cpu_ms(r):.3f} CPU ms/token, "
                          f"loss {r['final_loss']:.3f}, train peak "
                          f"{r['train_peak_rss_mib']:.0f} MiB, load {load:.1f})", flush=True)
            load_after = os.getloadavg()
            for t, q in zip(tessera, pytorch):
                if t["trainable_parameters"] != q["trainable_parameters"] or \
                   t["parameters"] != q["parameters"]:
                    sys.exit(f"{preset}: parameter counts differ: {t} vs {q}")
            rows.append((threads, preset, sizes, steps, tessera, pytorch, load_before,
                         load_after))
            if not a.no_memory:
                full_steps = max(1, min(steps, 2))
                tf = run_json(tessera_cmd(a, preset, full_steps, full=True))
                pf = run_json(pytorch_cmd(a, sizes, full_steps, full=True))
                print(f"# {preset} full fine-tuning: tessera {tf['tokens_per_second']:.1f} "
                      f"tok/s, pytorch {pf['tokens_per_second']:.1f} tok/s", flush=True)
                mem_rows.append((preset, tessera, pytorch, tf, pf))

    for threads in thread_counts:
        print(f"\n## LoRA training throughput (CPU, float32, {threads} thread"
              f"{'s' if threads > 1 else ''}, {a.reps} pairs, medians)\n")
        print("| config | load before -> after | Tessera tok/s | PyTorch eager tok/s | ratio "
              "| pair ratios | min pair | Tessera CPU ms/token | PyTorch CPU ms/token "
              "| CPU ratio (pairs) |")
        print("|---|---|---:|---:|---:|---|---:|---:|---:|---|")
        for th, preset, s, steps, tessera, pytorch, lb, la in rows:
            if th != threads:
                continue
            tt = statistics.median(r["tokens_per_second"] for r in tessera)
            pt = statistics.median(r["tokens_per_second"] for r in pytorch)
            ratios = [x["tokens_per_second"] / y["tokens_per_second"]
                      for x, y in zip(tessera, pytorch)]
            tc = statistics.median(cpu_ms(r) for r in tessera)
            pc = statistics.median(cpu_ms(r) for r in pytorch)
            cpu_ratios = [cpu_ms(y) / cpu_ms(x) for x, y in zip(tessera, pytorch)]
            print(f"| {preset} (h{s['hidden_size']} L{s['num_layers']} "
                  f"{s['num_heads']}/{s['num_kv_heads']} heads i{s['intermediate_size']} "
                  f"V{s['vocab_size']}; {s['parameters']:,} parameters, "
                  f"{s['trainable_parameters']:,} trainable; {steps} steps) "
                  f"| {'/'.join(f'{x:.1f}' for x in lb)} -> {'/'.join(f'{x:.1f}' for x in la)} "
                  f"| {tt:,.1f} | {pt:,.1f} | {tt / pt:.2f}x | "
                  + ", ".join(f"{x:.2f}" for x in ratios) + f" | {min(ratios):.2f}x "
                  f"| {tc:.3f} | {pc:.3f} | {pc / tc:.2f}x ("
                  + ", ".join(f"{x:.2f}" for x in cpu_ratios) + ") |")

    print("\n## Bytes per round (float32)\n")
    print("| model | parameters | adapter bytes (A+B) | full model bytes | adapters / full |")
    print("|---|---:|---:|---:|---:|")
    for preset, s in size_rows:
        print(f"| {preset} | {s['base_parameters']:,} | {s['adapter_bytes']:,} "
              f"| {s['full_bytes']:,} | {100 * s['adapter_fraction']:.3f}% |")

    if mem_rows:
        print("\n## Peak resident memory (VmHWM, MiB), LoRA vs full fine-tuning\n")
        print("| config | implementation | after load | LoRA train peak | full FT train peak "
              "| LoRA / full | LoRA process peak | full FT process peak | full FT tok/s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for preset, tessera, pytorch, tf, pf in mem_rows:
            for name, lora_runs, full in (("Tessera", tessera, tf), ("PyTorch", pytorch, pf)):
                lp = statistics.median(r["train_peak_rss_mib"] for r in lora_runs)
                lpp = statistics.median(r["peak_rss_mib"] for r in lora_runs)
                la = statistics.median(r["rss_after_load_mib"] for r in lora_runs)
                print(f"| {preset} | {name} | {mib(la)} | {mib(lp)} "
                      f"| {mib(full['train_peak_rss_mib'])} "
                      f"| {lp / full['train_peak_rss_mib']:.2f} | {mib(lpp)} "
                      f"| {mib(full['peak_rss_mib'])} | {full['tokens_per_second']:,.1f} |")


if __name__ == "__main__":
    main()
