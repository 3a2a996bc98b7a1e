#!/usr/bin/python3
"""Tiny Hugging Face checkpoints with reference logits, written independently of Tessera.

Usage: hf_reference.py OUTDIR

Needs only torch (1.13 is enough) and the standard library: the safetensors files are
written with struct + json as the format's specification describes, and the forward pass
follows transformers' modeling_llama.py / modeling_mistral.py / modeling_qwen2.py (RMSNorm,
rotate-half RoPE with llama3 frequency scaling, grouped-query causal attention, SwiGLU),
computed in float64 and stored as float32.

OUTDIR/<variant>/ for each variant:
  config.json                       as transformers writes it
  model.safetensors                 or model-0000i-of-00003.safetensors + index (sharded)
  input_ids.json                    [[7 token ids], [7 token ids]]
  reference_logits.safetensors      F32 "logits" [2, 7, vocab]
Variants:
  llama            untied, GQA 4/2 heads, llama3 rope_scaling (rope_theta 100 and
                   original_max_position_embeddings 32, so head_dim 8's four frequencies hit
                   the high, medium and low branches), rms_norm_eps 1e-5
  llama_bias_tied  attention_bias (q, k, v and o), mlp_bias, tied embeddings, head_dim 16
                   (not hidden / heads), no rope_scaling
  mistral          sliding_window 4096 (wider than the sequences)
  qwen2            q/k/v biases, tied embeddings, GQA 4/1, rope_theta 1e6
  llama_bf16       llama stored as BF16 (reference from the rounded weights)
  llama_sharded    the llama weights in 3 shards + model.safetensors.index.json
  llama_lora       the llama checkpoint, a PEFT adapter in adapter/ (r 4, alpha 8, q_proj,
                   v_proj, gate_proj) and reference_logits_lora.safetensors for
                   W + (alpha / r) B A
"""

import json
import math
import os
import struct
import sys

import torch

VOCAB = 61
HIDDEN = 32
INTER = 48
LAYERS = 2
BATCH = 2
SEQ = 7

DTYPE_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


# ----------------------------------------------------------------------------- safetensors


def tensor_bytes(t):
    t = t.contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4").tobytes()
    raise ValueError(t.dtype)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch tensor), written in that order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, t in tensors:
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------- configs


def llama_config():
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "hidden_act": "silu", "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "rope_theta": 100.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "pretraining_tp": 1, "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, "use_cache": True,
        "transformers_version": "4.46.0",
    }


def llama_bias_tied_config():
    c = llama_config()
    c.update({"attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True,
              "head_dim": 16, "rope_scaling": None, "rope_theta": 10000.0,
              "eos_token_id": [2, 3]})
    return c


def mistral_config():
    return {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral",
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "hidden_act": "silu", "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "sliding_window": 4096,
        "attention_dropout": 0.0, "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, "use_cache": True,
        "transformers_version": "4.46.0",
    }


def qwen2_config():
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": 4, "num_key_value_heads": 1,
        "hidden_act": "silu", "max_position_embeddings": 128, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "rope_scaling": None, "use_sliding_window": False,
        "sliding_window": 4096, "max_window_layers": LAYERS, "attention_dropout": 0.0,
        "tie_word_embeddings": True, "torch_dtype": "float32", "bos_token_id": 0,
        "eos_token_id": 1, "initializer_range": 0.02, "use_cache": True,
        "transformers_version": "4.46.0",
    }


def dims(config):
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return heads, kv, head_dim


def biases(config):
    """(q/k/v bias, o_proj bias, mlp bias) as the modeling files build them."""
    if config["model_type"] == "qwen2":
        return True, False, False
    if config["model_type"] == "llama":
        return config["attention_bias"], config["attention_bias"], config["mlp_bias"]
    return False, False, False


# ----------------------------------------------------------------------------- weights


def random_weights(config, gen):
    """The state_dict of *ForCausalLM, in its order, as float32."""
    heads, kv, hd = dims(config)
    h, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    qkv_bias, o_bias, mlp_bias = biases(config)

    def randn(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul(std).float()

    w = []

    def linear(name, out_dim, in_dim, bias):
        w.append((name + ".weight", randn(out_dim, in_dim, std=0.15)))
        if bias:
            w.append((name + ".bias", randn(out_dim, std=0.1)))

    w.append(("model.embed_tokens.weight", randn(vocab, h, std=0.5)))
    for i in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % i
        linear(p + "self_attn.q_proj", heads * hd, h, qkv_bias)
        linear(p + "self_attn.k_proj", kv * hd, h, qkv_bias)
        linear(p + "self_attn.v_proj", kv * hd, h, qkv_bias)
        linear(p + "self_attn.o_proj", h, heads * hd, o_bias)
        linear(p + "mlp.gate_proj", inter, h, mlp_bias)
        linear(p + "mlp.up_proj", inter, h, mlp_bias)
        linear(p + "mlp.down_proj", h, inter, mlp_bias)
        w.append((p + "input_layernorm.weight", 1.0 + randn(h, std=0.1)))
        w.append((p + "post_attention_layernorm.weight", 1.0 + randn(h, std=0.1)))
    w.append(("model.norm.weight", 1.0 + randn(h, std=0.1)))
    if not config["tie_word_embeddings"]:
        w.append(("lm_head.weight", randn(vocab, h, std=0.2)))
    return w


# ----------------------------------------------------------------------------- forward


def inv_frequencies(config, head_dim):
    theta = config.get("rope_theta", 10000.0)
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    scaling = config.get("rope_scaling")
    if scaling is None:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    assert kind == "llama3", kind
    # transformers' _compute_llama3_parameters (Llama 3.1).
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_len / low
    high_freq_wavelen = old_len / high
    out = []
    for f in inv_freq.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < high_freq_wavelen:
            out.append(f)
        elif wavelen > low_freq_wavelen:
            out.append(f / factor)
        else:
            smooth = (old_len / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float64)


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(config, weights, input_ids, lora=None):
    """Logits [batch, seq, vocab] in float64. lora: name -> delta W (float64) to add."""
    w = {name: t.double() for name, t in weights}
    if lora:
        for name, delta in lora.items():
            w[name] = w[name] + delta
    heads, kv, hd = dims(config)
    eps = config["rms_norm_eps"]
    ids = torch.tensor(input_ids, dtype=torch.long)
    batch, seq = ids.shape

    def linear(x, name):
        y = x @ w[name + ".weight"].t()
        if name + ".bias" in w:
            y = y + w[name + ".bias"]
        return y

    positions = torch.arange(seq, dtype=torch.float64)
    freqs = torch.outer(positions, inv_frequencies(config, hd))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [seq, hd]
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    window = config.get("sliding_window")
    if config["model_type"] == "qwen2" and not config.get("use_sliding_window"):
        window = None
    if window is not None:
        i = torch.arange(seq)
        causal &= (i[:, None] - i[None, :]) < window

    h = w["model.embed_tokens.weight"][ids]
    for layer in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = linear(x, p + "self_attn.q_proj").view(batch, seq, heads, hd).transpose(1, 2)
        k = linear(x, p + "self_attn.k_proj").view(batch, seq, kv, hd).transpose(1, 2)
        v = linear(x, p + "self_attn.v_proj").view(batch, seq, kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: key/value head j serves query heads j * n_rep ... (j + 1) * n_rep - 1.
        k = k.repeat_interleave(heads // kv, dim=1)
        v = v.repeat_interleave(heads // kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores.masked_fill(~causal, float("-inf"))
        attn = torch.softmax(scores, dim=-1) @ v  # [batch, heads, seq, hd]
        attn = attn.transpose(1, 2).reshape(batch, seq, heads * hd)
        h = h + linear(attn, p + "self_attn.o_proj")
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        gate = linear(x, p + "mlp.gate_proj")
        h = h + linear(torch.nn.functional.silu(gate) * linear(x, p + "mlp.up_proj"),
                       p + "mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config["tie_word_embeddings"] \
        else w["lm_head.weight"]
    return h @ head.t()


# ----------------------------------------------------------------------------- variants


def write_variant(out_dir, name, config, weights, input_ids, shards=1, store_dtype=None):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), config)
    stored = [(n, t.to(store_dtype) if store_dtype else t) for n, t in weights]
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
    else:
        per = math.ceil(len(stored) / shards)
        weight_map = {}
        total = 0
        for s in range(shards):
            fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            part = stored[s * per:(s + 1) * per]
            write_safetensors(os.path.join(d, fname), part, {"format": "pt"})
            for n, t in part:
                weight_map[n] = fname
                total += t.numel() * t.element_size()
        write_json(os.path.join(d, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": weight_map})
    with open(os.path.join(d, "input_ids.json"), "w") as f:
        json.dump(input_ids, f)
        f.write("\n")
    # The reference uses the weights as stored (BF16-rounded for llama_bf16).
    logits = forward(config, [(n, t.float()) for n, t in stored], input_ids)
    write_safetensors(os.path.join(d, "reference_logits.safetensors"),
                      [("logits", logits.float())])
    return d


def write_lora(d, config, weights, input_ids, gen):
    r, alpha = 4, 8
    targets = ["q_proj", "v_proj", "gate_proj"]
    shapes = {n: t.shape for n, t in weights}
    adapter = []
    deltas = {}
    for layer in range(config["num_hidden_layers"]):
        for module in targets:
            parent = "mlp" if module in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            base = "model.layers.%d.%s.%s" % (layer, parent, module)
            out_dim, in_dim = shapes[base + ".weight"]
            a = torch.randn(r, in_dim, generator=gen, dtype=torch.float64).mul(0.2).float()
            b = torch.randn(out_dim, r, generator=gen, dtype=torch.float64).mul(0.2).float()
            adapter.append(("base_model.model." + base + ".lora_A.weight", a))
            adapter.append(("base_model.model." + base + ".lora_B.weight", b))
            deltas[base + ".weight"] = (alpha / r) * (b.double() @ a.double())
    ad = os.path.join(d, "adapter")
    os.makedirs(ad, exist_ok=True)
    write_safetensors(os.path.join(ad, "adapter_model.safetensors"), adapter, {"format": "pt"})
    write_json(os.path.join(ad, "adapter_config.json"), {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "tiny-llama",
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha,
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core",
        "modules_to_save": None, "peft_type": "LORA", "r": r, "rank_pattern": {},
        "revision": None, "target_modules": ["v_proj", "gate_proj", "q_proj"],
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False,
    })
    logits = forward(config, weights, input_ids, lora=deltas)
    write_safetensors(os.path.join(d, "reference_logits_lora.safetensors"),
                      [("logits", logits.float())])


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20240518)
    torch.manual_seed(20240518)

    def ids():
        return torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen).tolist()

    llama = llama_config()
    llama_w = random_weights(llama, gen)
    llama_ids = ids()
    write_variant(out, "llama", llama, llama_w, llama_ids)
    write_variant(out, "llama_sharded", llama, llama_w, llama_ids, shards=3)
    bf16 = dict(llama, torch_dtype="bfloat16")
    write_variant(out, "llama_bf16", bf16, llama_w, llama_ids, store_dtype=torch.bfloat16)
    d = write_variant(out, "llama_lora", llama, llama_w, llama_ids)
    write_lora(d, llama, llama_w, llama_ids, gen)

    for name, config in (("llama_bias_tied", llama_bias_tied_config()),
                         ("mistral", mistral_config()), ("qwen2", qwen2_config())):
        write_variant(out, name, config, random_weights(config, gen), ids())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
