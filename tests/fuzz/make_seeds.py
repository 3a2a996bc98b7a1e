#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/ (docs/fuzzing.md).

Run with Debian's /usr/bin/python3 (torch, regex, sentencepiece) from the repository root:
  tests/fuzz/make_seeds.py [PKI_DIR]
PKI_DIR holds ca.pem, leaf.pem, leaf.csr, empty.crl and revoked.crl made with the openssl
command line as docs/fuzzing.md shows (their CA is tests/fuzz/fuzz_pki.h); without it the
certificate and CRL seeds are left as they are. Seeds are small valid inputs and a few
near-valid ones; the output is deterministic except for the PKI files.
"""
import glob
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n=====tessera-fuzz-file=====\n"  # fuzz_util.h kFileSeparator


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


# --- safetensors, written from the format's specification ------------------------------
DTYPES = {"F32": ("<f", 4), "F16": ("<e", 2), "I64": ("<q", 8), "I32": ("<i", 4),
          "U8": ("<B", 1), "I8": ("<b", 1), "BOOL": ("<?", 1), "F64": ("<d", 8),
          "BF16": (None, 2), "I16": ("<h", 2)}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes or None for zeros)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * DTYPES[dtype][1]
        raw = raw if raw is not None else bytes(size)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        blobs.append(raw)
        offset += size
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def floats(values):
    return struct.pack("<%df" % len(values), *values)


def safetensors_seeds():
    t = "safetensors"
    reset(t)
    write(t, "f32_2x2_metadata", safetensors([("w", "F32", [2, 2], floats([1, -2, 0.5, 3]))],
                                              {"format": "pt"}))
    write(t, "dtypes", safetensors([
        ("a", "F16", [3], None), ("b", "BF16", [2, 1], None), ("c", "I64", [2], None),
        ("d", "U8", [4], bytes([0, 1, 254, 255])), ("e", "BOOL", [2], bytes([0, 1])),
        ("f", "F64", [1], None), ("g", "I32", [], None), ("h", "I8", [0], None)]))
    write(t, "empty_record", safetensors([]))
    good = safetensors([("x", "F32", [2], floats([1, 2])), ("y", "I32", [1], None)])
    write(t, "truncated", good[:-3])
    bad = json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    write(t, "overlapping_offsets", struct.pack("<Q", len(bad)) + bad + bytes(8))
    write(t, "huge_header_length", struct.pack("<Q", 1 << 62) + b"{}")


# --- tensor stream: wire::v1::TensorChunk messages, encoded by hand ----------------------
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


WIRE_DTYPE = {"F32": 1, "F64": 2, "F16": 3, "BF16": 4, "I64": 5, "I32": 6, "I16": 7, "I8": 8,
              "U8": 9, "BOOL": 10}


def stream(tensors, corrupt_digest=False, chunk=5):
    """The chunks TensorStreamWriter sends for `tensors` (name, dtype, shape, raw)."""
    h = hashlib.sha256(b"tessera.tensors.v1" + struct.pack("<I", len(tensors)))
    total = sum(len(raw) for _, _, _, raw in tensors)
    msgs = [field(1, 2, field(1, 0, len(tensors)) + field(2, 0, total))]
    for name, dtype, shape, raw in tensors:
        header = field(1, 2, name.encode()) + field(2, 0, WIRE_DTYPE[dtype])
        for d in shape:
            header += field(3, 0, d & 0xFFFFFFFFFFFFFFFF)
        msgs.append(field(2, 2, header))
        h.update(struct.pack("<I", len(name)) + name.encode() + struct.pack("<I", WIRE_DTYPE[dtype]))
        h.update(struct.pack("<I", len(shape)) + b"".join(struct.pack("<q", d) for d in shape))
        h.update(struct.pack("<Q", len(raw)) + raw)
        for i in range(0, len(raw), chunk):
            msgs.append(field(3, 2, raw[i:i + chunk]))
    digest = h.digest()
    if corrupt_digest:
        digest = bytes([digest[0] ^ 1]) + digest[1:]
    msgs.append(field(4, 2, field(1, 2, digest)))
    return msgs


def framed(flags, msgs):
    return bytes([flags]) + b"".join(struct.pack("<H", len(m)) + m for m in msgs)


def tensor_stream_seeds():
    t = "tensor_stream"
    reset(t)
    layout = [("w", "F32", [2, 3], floats([1, 2, 3, 4, 5, 6])),
              ("b", "I64", [4], struct.pack("<4q", 1, -1, 2, -2))]
    write(t, "model_default_limits", framed(4, stream(layout)))
    write(t, "update_expected_layout_finite", framed(3, stream(layout)))
    write(t, "update_staged_sink", framed(10, stream(layout)))
    write(t, "update_staged_sink_bad_digest", framed(10, stream(layout, corrupt_digest=True)))
    write(t, "small_limits", framed(0, stream([("a", "U8", [3], b"abc"), ("e", "F16", [0], b"")])))
    write(t, "bad_digest", framed(4, stream(layout, corrupt_digest=True)))
    write(t, "nan_required_finite", framed(1, stream([("n", "F32", [1], floats([float("nan")]))])))
    write(t, "truncated", framed(4, stream(layout)[:-2]))
    write(t, "empty_record", framed(4, stream([])))


# --- IDX and CSV --------------------------------------------------------------------------
def idx_seeds():
    t = "idx"
    reset(t)
    images = struct.pack(">I3I", 0x803, 2, 3, 3) + bytes(range(0, 18 * 14, 14))
    labels = struct.pack(">II", 0x801, 2) + bytes([3, 9])
    write(t, "two_3x3", images + SEP + labels)
    write(t, "two_3x3_gzip", gzip.compress(images, mtime=0) + SEP + gzip.compress(labels, mtime=0))
    write(t, "label_12", images + SEP + struct.pack(">II", 0x801, 2) + bytes([12, 0]))
    write(t, "count_mismatch", images + SEP + struct.pack(">II", 0x801, 3) + bytes([1, 2, 3]))
    write(t, "truncated_pixels", images[:-4] + SEP + labels)
    write(t, "huge_dims", struct.pack(">I3I", 0x803, 0xFFFFFFFF, 0xFFFF, 0xFFFF) + SEP + labels)
    write(t, "zero_images", struct.pack(">I3I", 0x803, 0, 28, 28) + SEP + struct.pack(">II", 0x801, 0))


def csv_seeds():
    t = "csv"
    reset(t)
    # Options byte: bit 0 header, bit 1 label_column "label", bits 2-3 delimiter, bits 4-5
    # label_index (-1, 0, 1, -2), bit 6 example_shape {2, 2}, bit 7 num_classes 3.
    write(t, "header_label_last", b"\x01f1,f2,label\n0.5,1,0\n-2,3e2,1\n\n 4 , 5 ,2\n")
    write(t, "label_column_semicolon", b"\x07label;a;b\n1;0.1;0.2\n0;1;2\n")
    write(t, "no_header_label_first", b"\x10" + b"2,1,2,3,4\n0,5,6,7,8\n")
    write(t, "shape_2x2_classes_3", b"\xc1a,b,c,d,y\n1,2,3,4,2\n5,6,7,8,0\n")
    write(t, "bad_number", b"\x01a,label\nx,1\n")
    write(t, "ragged", b"\x01a,b,label\n1,2\n1,2,3,4\n")
    write(t, "negative_label", b"\x01a,label\n1,-1\n")
    write(t, "tab_delimited", b"\x09a\tlabel\n1.5\t1\n")


# --- configuration text --------------------------------------------------------------------
def config_seeds():
    t = "run_config"
    reset(t)
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "config", "*.toml")) +
                       glob.glob(os.path.join(ROOT, "deploy", "sim", "*.toml"))):
        with open(path, "rb") as f:
            write(t, os.path.basename(path), f.read())
    write(t, "syntax_error.toml", b"name = \"x\nrounds = 3\n")
    write(t, "unknown_key.toml", b"name = \"x\"\nrounds = 3\n[train]\nlocal_epochz = 1\n")
    write(t, "wrong_type.toml", b"name = 7\nrounds = \"3\"\n[model]\nseed = -1\n")

    t = "data_card_toml"
    reset(t)
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "config", "data_cards", "*.toml"))):
        with open(path, "rb") as f:
            write(t, os.path.basename(path), f.read())
    write(t, "duplicate_key.toml", b'name = "a"\nname = "b"\n')
    write(t, "bad_budget.toml", b'name = "a"\nprivacy_budget = "epsilon=-1"\n')

    t = "data_card_yaml"
    reset(t)
    with open(os.path.join(ROOT, "docs", "data_cards.md")) as f:
        doc = f.read()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    write(t, "docs_example.yaml", block)
    write(t, "budget.yaml", "name: n\nprivacy_budget: \"epsilon=8,delta=1e-5\"\n"
                            "allow_class_histogram: true\n")
    write(t, "number_as_name.yaml", "name: 2023\n")
    write(t, "duplicate_key.yaml", "name: a\nname: b\n")
    write(t, "anchors_and_sequence.yaml", "name: &n x\nlicense: *n\ncontact: [a, b]\n")
    write(t, "not_a_mapping.yaml", "- a\n- b\n")


# --- language-model checkpoints and tokenizers -----------------------------------------------
def tiny_llama_config(model_type="llama", tie=False, bias=False):
    config = {"architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                                 "mistral": "MistralForCausalLM"}[model_type]],
              "model_type": model_type, "vocab_size": 8, "hidden_size": 8,
              "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 1, "max_position_embeddings": 16, "rms_norm_eps": 1e-05,
              "rope_theta": 10000.0, "tie_word_embeddings": tie, "hidden_act": "silu",
              "torch_dtype": "float32"}
    if model_type == "llama":
        config["attention_bias"] = bias
        config["mlp_bias"] = False
    return config


def tiny_weights(config, dtype="F32"):
    v, h, i = config["vocab_size"], config["hidden_size"], config["intermediate_size"]
    nh, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // nh
    bias = config.get("attention_bias", False) or config["model_type"] == "qwen2"
    t = [("model.embed_tokens.weight", [v, h])]
    for layer in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        t += [(p + "self_attn.q_proj.weight", [nh * hd, h])]
        if bias:
            t += [(p + "self_attn.q_proj.bias", [nh * hd])]
        t += [(p + "self_attn.k_proj.weight", [kv * hd, h])]
        if bias:
            t += [(p + "self_attn.k_proj.bias", [kv * hd])]
        t += [(p + "self_attn.v_proj.weight", [kv * hd, h])]
        if bias:
            t += [(p + "self_attn.v_proj.bias", [kv * hd])]
        t += [(p + "self_attn.o_proj.weight", [h, nh * hd])]
        t += [(p + "mlp.gate_proj.weight", [i, h]), (p + "mlp.up_proj.weight", [i, h]),
              (p + "mlp.down_proj.weight", [h, i]), (p + "input_layernorm.weight", [h]),
              (p + "post_attention_layernorm.weight", [h])]
    t += [("model.norm.weight", [h])]
    if not config["tie_word_embeddings"]:
        t += [("lm_head.weight", [v, h])]
    return [(name, dtype, shape, None) for name, shape in t]


def lm_seeds(hf_dir):
    t = "lm_checkpoint"
    reset(t)
    for name, config in [("llama", tiny_llama_config()),
                         ("qwen2_tied", tiny_llama_config("qwen2", tie=True)),
                         ("mistral", tiny_llama_config("mistral"))]:
        text = json.dumps(config, indent=2).encode()
        write(t, name, text + SEP + safetensors(tiny_weights(config), {"format": "pt"}))
    config = tiny_llama_config()
    weights = tiny_weights(config, "BF16")
    write(t, "llama_bf16", json.dumps(config).encode() + SEP + safetensors(weights))
    shards = [weights[:5], weights[5:]]
    names = ["model-%05d-of-%05d.safetensors" % (k + 1, len(shards)) for k in range(len(shards))]
    index = {"metadata": {"total_size": 0},
             "weight_map": {w[0]: names[k] for k, s in enumerate(shards) for w in s}}
    write(t, "llama_sharded", json.dumps(config).encode() + SEP + json.dumps(index).encode() +
          SEP + SEP.join(safetensors(s) for s in shards))
    write(t, "missing_tensor", json.dumps(config).encode() + SEP + safetensors(weights[1:]))
    write(t, "index_escapes_dir", json.dumps(config).encode() + SEP +
          json.dumps({"weight_map": {"model.embed_tokens.weight": "../x.safetensors"}}).encode())

    t = "lm_config"
    reset(t)
    for path in sorted(glob.glob(os.path.join(hf_dir, "*", "config.json"))):
        variant = os.path.basename(os.path.dirname(path))
        if variant in ("llama", "llama_bias_tied", "mistral", "qwen2"):
            with open(path, "rb") as f:
                write(t, variant + ".json", f.read())
    write(t, "heads_do_not_divide.json", json.dumps(dict(tiny_llama_config(),
                                                         num_attention_heads=3)))
    write(t, "unknown_model_type.json", json.dumps(dict(tiny_llama_config(), model_type="gpt2")))
    write(t, "negative_vocab.json", json.dumps(dict(tiny_llama_config(), vocab_size=-1)))

    t = "peft_adapter"
    reset(t)
    adapter = os.path.join(hf_dir, "llama_lora", "adapter")
    with open(os.path.join(adapter, "adapter_config.json"), "rb") as f:
        config = f.read()
    with open(os.path.join(adapter, "adapter_model.safetensors"), "rb") as f:
        model = f.read()
    write(t, "hf_reference_llama_lora", config + SEP + model)
    c = json.loads(config)
    write(t, "use_dora", json.dumps(dict(c, use_dora=True)).encode() + SEP + model)
    write(t, "rank_0", json.dumps(dict(c, r=0)).encode() + SEP + model)
    write(t, "no_tensors", config + SEP + safetensors([], {"format": "pt"}))


def tokenizer_seeds(tok_dir):
    t = "tokenizer"
    reset(t)
    with open(os.path.join(tok_dir, "text.txt"), "rb") as f:
        text = f.read()[:200]
    for layout in ("gpt2", "llama3", "qwen2"):
        d = os.path.join(tok_dir, layout)
        with open(os.path.join(d, "tokenizer.json"), "rb") as f:
            tokenizer = f.read()
        config = b""
        if os.path.exists(os.path.join(d, "tokenizer_config.json")):
            with open(os.path.join(d, "tokenizer_config.json"), "rb") as f:
                config = f.read()
        write(t, layout, tokenizer + SEP + config + SEP + text)
    write(t, "wordpiece", json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}}))
    write(t, "bpe_without_merges", json.dumps(
        {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False}}).encode() +
          SEP + b'{"bos_token": "a", "chat_template": [{"name": "default", "template": "x"}]}' +
          SEP + b"ab")


# --- certificates, CRLs, audit log ---------------------------------------------------------
def pki_seeds(pki):
    t = "certificate"
    reset(t)
    for name in ("ca.pem", "leaf.pem", "leaf.csr"):
        with open(os.path.join(pki, name), "rb") as f:
            write(t, name, f.read())
    with open(os.path.join(pki, "leaf.pem"), "rb") as f:
        leaf = f.read()
    write(t, "truncated.pem", leaf[: len(leaf) // 2])
    write(t, "two_blocks.pem", leaf + leaf)
    t = "crl"
    reset(t)
    for name in ("empty.crl", "revoked.crl"):
        with open(os.path.join(pki, name), "rb") as f:
            write(t, name, f.read())
    with open(os.path.join(pki, "revoked.crl"), "rb") as f:
        crl = f.read()
    write(t, "truncated.crl", crl[:-40])


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def audit_seeds():
    t = "audit_log"
    reset(t)
    prev, lines = "0" * 64, []
    events = [("operator:alice", "run.created", "r1", 0, {"config_sha256": "ab" * 32}),
              ("client:hospital-a", "client.registered", "", 0, {"org": "Hospital A"}),
              ("coordinator", "round.committed", "r1", 1, {"clients": "3", "model_sha256": "cd" * 32})]
    for seq, (actor, action, run_id, rnd, details) in enumerate(events, start=1):
        e = {"action": action, "actor": actor, "details": details, "prev_hash": prev,
             "round": rnd, "run_id": run_id, "seq": seq, "unix_ms": 1765000000000 + seq}
        e["hash"] = hashlib.sha256(canonical(e).encode()).hexdigest()
        prev = e["hash"]
        lines.append(canonical(e))
    head = {"head": {"hash": prev, "seq": 3, "unix_ms": 1765000000100,
                     "signature": "AAAA", "signer": "-----BEGIN PUBLIC KEY-----\n"}}
    write(t, "three_entries", "\n".join(lines) + "\n")
    write(t, "three_entries_and_head", "\n".join(lines + [canonical(head)]) + "\n")
    write(t, "reordered", "\n".join([lines[1], lines[0], lines[2]]) + "\n")
    write(t, "bad_types", '{"seq": -1, "unix_ms": "x", "details": []}\n{"head": 5}\n')


# --- secure aggregation messages -------------------------------------------------------------
def protoc_encode(message, text):
    proto_dir = os.path.join(ROOT, "proto")
    return subprocess.run(
        ["protoc", "-I", proto_dir, "--encode=tessera.secagg.v1." + message,
         os.path.join(proto_dir, "tessera", "secagg", "v1", "secagg.proto")],
        input=text.encode(), check=True, capture_output=True).stdout


def write_secagg(target, message, edits):
    """Honest rounds (an empty merge in each phase), then each (phase, mode/client, text)."""
    reset(target)
    for phase in range(5):
        write(target, "honest_phase%d" % (phase + 1), bytes([phase, 0]))
    for k, (p, b, text) in enumerate(edits):
        write(target, "edit%02d_phase%d" % (k, p + 1), bytes([p, b]) + protoc_encode(message, text))


def secagg_seeds():
    # secagg_round.h: byte 0 phase (1 + b % 5), byte 1 bit 0 replace, bits 1-7 the client.
    hdr = 'header { session_id: "session-7" round: 2 phase: %s }'
    key = "\\" + "\\".join("%03o" % b for b in range(32))
    t = "secagg_server"
    merges = [
        (0, 2, "advertise_keys { c_pk: \"short\" }"),
        (1, 0, "share_keys { shares { sender: 0 receiver: 9 ciphertext: \"x\" } }"),
        (1, 4, "share_keys { client_index: 3 }"),
        (2, 0, "masked_input { tensors { name: \"a\" values: 1 } }"),
        (2, 2, "masked_input { %s }" % (hdr % "CONSISTENCY_CHECK")),
        (3, 6, "consistency_signature { signature: \"bad\" }"),
        (4, 0, "unmask_response { shares { owner: 7 b_share: \"zz\" } }"),
        (4, 2, "unmask_response { shares { owner: 1 s_sk_share: \"\\001\\002\" } }"),
    ]
    replaces = [
        (0, 1, "advertise_keys { %s client_index: 0 c_pk: \"%s\" s_pk: \"%s\" signature: \"s\" "
               "identity { ed25519_public_key: \"%s\" } }" % (hdr % "ADVERTISE_KEYS", key, key, key)),
        (2, 1, "masked_input { %s client_index: 0 tensors { name: \"a\" values: [1, 2, 3, 4] } "
               "tensors { name: \"b\" values: [5, 6, 7] } masked_weight: 3 }"
               % (hdr % "MASKED_INPUT_COLLECTION")),
        (2, 1, "masked_input { %s client_index: 0 tensors { name: \"a\" values: [1] } }"
               % (hdr % "MASKED_INPUT_COLLECTION")),
        (4, 1, "unmask_response { %s client_index: 0 shares { owner: 1 b_share: \"\" } }"
               % (hdr % "UNMASKING")),
    ]
    write_secagg(t, "ClientToServer", merges + replaces)

    t = "secagg_client"
    edits = [
        (0, 0, "roster { degree_k: 1 }"),
        (0, 2, "roster { threshold_t: 100 }"),
        (0, 0, "roster { entries { client_index: 9 c_pk: \"x\" s_pk: \"y\" } }"),
        (0, 1, "roster { %s degree_k: 4 threshold_t: 3 graph_seed: \"%s\" }"
               % (hdr % "ADVERTISE_KEYS", key)),
        (1, 0, "relayed_shares { shares { sender: 3 receiver: 0 ciphertext: \"junk\" } }"),
        (1, 1, "relayed_shares { %s recipient: 0 }" % (hdr % "SHARE_KEYS")),
        (2, 0, "consistency_request { survivors: 7 }"),
        (2, 1, "consistency_request { %s survivors: [0, 1] dropped: [2, 3, 4] }"
               % (hdr % "MASKED_INPUT_COLLECTION")),
        (3, 0, "unmask_request { survivors: 0 dropped: 0 }"),
        (3, 0, "unmask_request { signatures { client_index: 1 signature: \"x\" } }"),
        (4, 1, "aborted { %s reason: \"test\" }" % (hdr % "UNMASKING")),
    ]
    write_secagg(t, "ServerToClient", edits)


def main(argv):
    safetensors_seeds()
    tensor_stream_seeds()
    idx_seeds()
    csv_seeds()
    config_seeds()
    audit_seeds()
    secagg_seeds()
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "hf")
        subprocess.run([sys.executable, os.path.join(ROOT, "client/lm/testing/hf_reference.py"), hf],
                       check=True, capture_output=True)
        lm_seeds(hf)
        tok = os.path.join(tmp, "tok")
        subprocess.run([sys.executable, os.path.join(ROOT, "client/lm/testing/tokenizer_reference.py"),
                        "fixtures", tok], check=True, capture_output=True)
        tokenizer_seeds(tok)
    if len(argv) > 1:
        pki_seeds(argv[1])
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%-16s %3d seeds %7d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main(sys.argv)
