#!/usr/bin/env python3
"""Converts fortune(6) collections (entries separated by lines holding only "%", as in
Debian's fortunes packages, /usr/share/games/fortunes) into JSONL with one {"text": ...}
record per entry, for the language-model demo (scripts/demo_llm.sh).

Usage: fortunes_to_jsonl.py OUT.jsonl COLLECTION [COLLECTION...]
A COLLECTION is a file path or a name under /usr/share/games/fortunes.
"""
import json
import os
import sys

FORTUNE_DIR = "/usr/share/games/fortunes"


def entries(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    current = []
    for line in text.splitlines():
        if line.strip() == "%":
            if current:
                yield "\n".join(current).strip("\n")
            current = []
        else:
            current.append(line.rstrip())
    if current:
        yield "\n".join(current).strip("\n")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, names = argv[1], argv[2:]
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for name in names:
            path = name if os.path.sep in name else os.path.join(FORTUNE_DIR, name)
            if not os.path.isfile(path):
                sys.exit(f"fortunes_to_jsonl: {path}: no such collection (install Debian's "
                         "fortunes package)")
            for e in entries(path):
                if e.strip():
                    f.write(json.dumps({"text": e}, ensure_ascii=False) + "\n")
                    n += 1
    print(f"fortunes_to_jsonl: {n} records from {', '.join(names)} -> {out}")


if __name__ == "__main__":
    main(sys.argv)
