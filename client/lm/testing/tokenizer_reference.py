#!/usr/bin/python3
"""Independent reference for the client/lm/tokenizer tests.

Written without looking at the C++ code: byte-level BPE follows GPT-2's published encoder.py
(bytes_to_unicode, get_pairs, the min-rank merge loop) with Hugging Face tokenizers' pipeline
around it (added tokens split first, normalizer, pre-tokenizers, TemplateProcessing), and the
`regex` module runs the pre-tokenizer patterns as written (lookahead included). SentencePiece
ids come from the sentencepiece Python module. Needs Debian's /usr/bin/python3 (regex and
sentencepiece installed).

Usage:
  tokenizer_reference.py fixtures OUT_DIR
      Writes OUT_DIR/text.txt (the multilingual test text) and, per layout (gpt2, llama3,
      qwen2, sp), OUT_DIR/<layout>/ with the tokenizer files and expected ids:
      expected.txt (plain) and expected_special.txt (add_special_tokens), one line of ids.
  tokenizer_reference.py encode DIR TEXT_FILE [--add-special-tokens]
      Prints the ids of TEXT_FILE's text under DIR/tokenizer.json.
  tokenizer_reference.py split PATTERN_FILE TEXTS_FILE
      Prints, as JSON, the Split(Isolated) pieces of each text of the JSON list in TEXTS_FILE
      under the regex in PATTERN_FILE.
"""
import collections
import json
import os
import sys
import unicodedata

import regex

GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|"""
                r"""\s+""")
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
                  r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                 r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

TEST_TEXT = (
    "Hello world! Don't stop: we'll see, they've gone & it's 12345 apples (DON'T).\n"
    "Grüße aus München – Äpfel, Öl und Übermaß kosten 3,50 €.\n"
    "你好世界，这是一个测试。北京欢迎你！\n"
    "Привет, мир! Как дела? Всё хорошо.\n"
    "مرحبا بالعالم، كيف حالك؟\n"
    "Emoji: 😀🚀👍🏽 done. Tessera Tessera\n"
    "Tabs\there\tand   multiple    spaces   \n"
    "<|begin_of_text|>special<|eot_id|> inside <|endoftext|>text<|im_end|>\n"
    "  leading and trailing  \n\n\n   ")

CORPUS_LINES = [
    "Hello world, hello there. The quick brown fox jumps over the lazy dog.",
    "Don't worry, we'll be fine; they've said it's going to work and I'm sure.",
    "Numbers like 12345, 2024 and 3.14159 appear in text; 100 apples cost 42 euros.",
    "Grüße aus München! Äpfel und Öl, Übermaß und Straße, schön und müde.",
    "Die Größe der Bäume überrascht die Gäste in Köln und Düsseldorf.",
    "你好世界，这是一个测试。我们在北京学习中文，世界很大。",
    "机器学习和联邦学习是人工智能的一部分，测试测试。",
    "Привет, мир! Как дела? Всё хорошо, спасибо. Мир большой.",
    "Москва и Санкт-Петербург — большие города России.",
    "مرحبا بالعالم، كيف حالك؟ العالم كبير والحياة جميلة.",
    "Emoji time 😀 🚀 👍 with friends; tabs\tand  double  spaces.",
    "    indented code: if x == 1:\n        return y\n",
]


def bytes_to_unicode():
    """GPT-2's encoder.py mapping of the 256 bytes to printable unicode characters."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()


def to_byte_chars(text):
    return "".join(BYTE_ENCODER[b] for b in text.encode("utf-8"))


def get_pairs(word):
    pairs = set()
    prev = word[0]
    for ch in word[1:]:
        pairs.add((prev, ch))
        prev = ch
    return pairs


def bpe(token, ranks):
    """encoder.py's Encoder.bpe: merge the lowest-ranked pair everywhere until none is left."""
    word = tuple(token)
    if len(word) < 2:
        return list(word)
    pairs = get_pairs(word)
    while True:
        bigram = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word = []
        i = 0
        while i < len(word):
            try:
                j = word.index(first, i)
                new_word.extend(word[i:j])
                i = j
            except ValueError:
                new_word.extend(word[i:])
                break
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
        if len(word) == 1:
            break
        pairs = get_pairs(word)
    return list(word)


def split_isolated(pattern, text):
    """Hugging Face Split(behavior Isolated): every match and every gap between matches."""
    out = []
    pos = 0
    for m in regex.finditer(pattern, text):
        if m.start() == m.end():
            continue
        if m.start() > pos:
            out.append(text[pos:m.start()])
        out.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def pre_tokenize(spec, text):
    """The pieces (byte-level mapped) of `text` under a pre_tokenizer spec."""
    steps = spec["pretokenizers"] if spec["type"] == "Sequence" else [spec]
    pieces = [text]
    for step in steps:
        if step["type"] == "Split":
            assert step["behavior"] == "Isolated" and not step.get("invert", False)
            pattern = step["pattern"]["Regex"]
            pieces = [p for piece in pieces for p in split_isolated(pattern, piece)]
        elif step["type"] == "ByteLevel":
            if step.get("add_prefix_space", False):
                pieces = [p if p.startswith(" ") else " " + p for p in pieces]
            if step.get("use_regex", True):
                pieces = [p for piece in pieces for p in split_isolated(GPT2_PATTERN, piece)]
            pieces = [to_byte_chars(p) for p in pieces]
        else:
            raise ValueError("unsupported pre-tokenizer " + step["type"])
    return pieces


def encode(tok, text, add_special_tokens):
    model = tok["model"]
    vocab = model["vocab"]
    ranks = {}
    for i, m in enumerate(model["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        ranks[(a, b)] = i
    added = sorted(tok["added_tokens"], key=lambda t: -len(t["content"]))
    # Added tokens are found first (leftmost, longest), the text between them is encoded.
    segments = []
    start = 0
    i = 0
    while i < len(text):
        hit = next((t for t in added if text.startswith(t["content"], i)), None)
        if hit is None:
            i += 1
            continue
        if i > start:
            segments.append(text[start:i])
        segments.append(hit["id"])
        i += len(hit["content"])
        start = i
    if start < len(text):
        segments.append(text[start:])
    ids = []
    for seg in segments:
        if isinstance(seg, int):
            ids.append(seg)
            continue
        normalizer = tok.get("normalizer")
        if normalizer is not None:
            assert normalizer["type"] == "NFC"
            seg = unicodedata.normalize("NFC", seg)
        for piece in pre_tokenize(tok["pre_tokenizer"], seg):
            if model.get("ignore_merges", False) and piece in vocab:
                ids.append(vocab[piece])
            else:
                ids.extend(vocab[t] for t in bpe(piece, ranks))
    post = tok.get("post_processor")
    if add_special_tokens and post is not None:
        procs = post["processors"] if post["type"] == "Sequence" else [post]
        for proc in procs:
            if proc["type"] != "TemplateProcessing":
                continue
            out = []
            for item in proc["single"]:
                if "SpecialToken" in item:
                    out.extend(proc["special_tokens"][item["SpecialToken"]["id"]]["ids"])
                else:
                    out.extend(ids)
            ids = out
    return ids


def train_merges(texts, pattern, num_merges):
    """Plain BPE over byte-level pre-tokens: the most frequent pair, ties to the smaller pair."""
    words = collections.Counter()
    for text in texts:
        for piece in split_isolated(pattern, text):
            words[tuple(to_byte_chars(piece))] += 1
    words = dict(words)
    merges = []
    for _ in range(num_merges):
        counts = collections.Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += freq
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < 2:
            break
        merges.append(best)
        merged = {}
        for word, freq in words.items():
            out = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + freq
        words = merged
    return merges


def base_vocab(merges, extra_tokens=()):
    vocab = {}
    for ch in sorted(BYTE_ENCODER.values()):
        vocab[ch] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    for t in extra_tokens:
        if t not in vocab:
            vocab[t] = len(vocab)
    return vocab


def added_token(content, id_, special=True):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": not special, "special": special}


def write(path, data):
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)


def write_json(path, obj):
    write(path, json.dumps(obj, ensure_ascii=False, indent=1))


def ids_line(ids):
    return " ".join(str(i) for i in ids) + "\n"


def make_gpt2(out, corpus):
    merges = train_merges(corpus, GPT2_PATTERN, 300)
    vocab = base_vocab(merges, ["<|endoftext|>"])
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added_token("<|endoftext|>", vocab["<|endoftext|>"])],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                          "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        # GPT-2 ships merges as "a b" strings.
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    return tok


def make_split_layout(out, corpus, pattern, num_merges, extra, specials, bos, normalizer):
    merges = train_merges(corpus, pattern, num_merges)
    vocab = base_vocab(merges, extra)
    first_added = len(vocab) + 5  # a gap, as checkpoints with reserved ids have
    added = [added_token(s, first_added + i) for i, s in enumerate(specials)]
    processors = [{"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                   "use_regex": True}]
    if bos is not None:
        bos_id = first_added + specials.index(bos)
        processors.append({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}})
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": (processors[0] if len(processors) == 1 else
                           {"type": "Sequence", "processors": processors}),
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        # Llama 3 ships merges as [a, b] pairs (tokenizers >= 0.20) and ignore_merges true.
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    return tok


def make_sp(out_dir, corpus):
    import sentencepiece as spm
    corpus_path = os.path.join(out_dir, "corpus.txt")
    write(corpus_path, "\n".join(corpus) + "\n")
    # Llama 2's settings: BPE, byte fallback, identity normalization, unk/bos/eos = 0/1/2.
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=os.path.join(out_dir, "tokenizer"), vocab_size=420,
        model_type="bpe", character_coverage=1.0, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, minloglevel=2)
    os.remove(os.path.join(out_dir, "tokenizer.vocab"))
    return spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))


def fixtures(out):
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "text.txt"), TEST_TEXT)
    corpus = CORPUS_LINES * 3 + [TEST_TEXT.replace("<|", "").replace("|>", "")]

    layouts = {
        "gpt2": (make_gpt2(out, corpus), None),
        "llama3": (make_split_layout(
            out, corpus, LLAMA3_PATTERN, 400,
            # Whole pre-tokens without merges: reached only through ignore_merges.
            [to_byte_chars(" 你好世界"), to_byte_chars(" Tessera")],
            ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], "<|begin_of_text|>",
            None), {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                    "clean_up_tokenization_spaces": True,
                    "tokenizer_class": "PreTrainedTokenizerFast"}),
        "qwen2": (make_split_layout(
            out, corpus, QWEN2_PATTERN, 350, [],
            ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, {"type": "NFC"}),
            {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
             "add_prefix_space": False}),
    }
    for name, (tok, config) in layouts.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        write_json(os.path.join(d, "tokenizer.json"), tok)
        if config is not None:
            write_json(os.path.join(d, "tokenizer_config.json"), config)
        text = TEST_TEXT
        if name == "qwen2":
            # Decomposed é and Å: the NFC normalizer composes them.
            text = TEST_TEXT + " cafe\u0301 A\u030angstro\u0308m"
            write(os.path.join(d, "text.txt"), text)
        write(os.path.join(d, "expected.txt"), ids_line(encode(tok, text, False)))
        write(os.path.join(d, "expected_special.txt"), ids_line(encode(tok, text, True)))

    d = os.path.join(out, "sp")
    os.makedirs(d, exist_ok=True)
    sp = make_sp(d, corpus)
    sp_text = TEST_TEXT.replace("<|", "<").replace("|>", ">")
    write(os.path.join(d, "text.txt"), sp_text)
    write(os.path.join(d, "expected.txt"), ids_line(sp.encode(sp_text)))
    write(os.path.join(d, "expected_special.txt"), ids_line([sp.bos_id()] + sp.encode(sp_text)))
    # "</s>" inside the text is EOS; the text on either side is encoded on its own.
    write(os.path.join(d, "expected_eos_inside.txt"),
          ids_line(sp.encode("Hello") + [sp.eos_id()] + sp.encode(" world")))


def main(argv):
    if len(argv) == 3 and argv[1] == "fixtures":
        fixtures(argv[2])
        return 0
    if len(argv) in (4, 5) and argv[1] == "encode":
        with open(os.path.join(argv[2], "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
        with open(argv[3], encoding="utf-8", newline="") as f:
            text = f.read()
        sys.stdout.write(ids_line(encode(tok, text, argv[4:] == ["--add-special-tokens"])))
        return 0
    if len(argv) == 4 and argv[1] == "split":
        with open(argv[2], encoding="utf-8", newline="") as f:
            pattern = f.read()
        with open(argv[3], encoding="utf-8") as f:
            texts = json.load(f)
        sys.stdout.write(json.dumps([split_isolated(pattern, t) for t in texts]) + "\n")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
