#!/usr/bin/env python3
"""Sorts sanitizer log files (scripts/sanitize.sh) into known third-party reports and the rest.

Usage: known_reports.py FILE...   prints each file's verdict; exits 1 when any file holds a
                                  report that is not known (those fail CI).
       known_reports.py --self-test DIR   checks the classifier on the reports in DIR:
                                  known-*.txt must be known, other-*.txt must not.

The one known report (docs/testing.md, "Sanitizers"): a LeakSanitizer report, at the exit of a
process that talks TLS (seen once, tessera-client stopped by SIGTERM at the end of
CrashTorture.Short), whose every leak is OpenSSL's per-thread error queue: N objects of
exactly 904 bytes each, sizeof(ERR_STATE) of OpenSSL 3.0 on x86_64 (<openssl/err.h>, struct
err_state_st: 4 arrays of 16 ints = 256 bytes, 5 arrays of 16 8-byte longs, pointers and sizes
= 640 bytes, top and bottom = 8 bytes), allocated by
CRYPTO_zalloc with nothing else on the stack (libcrypto keeps no frame pointers, so ASan's
fast unwinder stops there). OpenSSL allocates one per thread that touches it and frees it when
the thread exits; Tessera never allocates or holds one. A lost reference to any other OpenSSL
object (a context, a key, a certificate) has another size and still fails.
"""
import re
import sys
from pathlib import Path

ERR_STATE_BYTES = 904
LEAK = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:")
FRAME = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ in (\S+)")


def known(text):
    """The reason a report is a known third-party one, or None."""
    if "ERROR: LeakSanitizer: detected memory leaks" not in text:
        return None
    if re.search(r"ERROR: AddressSanitizer|runtime error:|ThreadSanitizer", text):
        return None
    lines = text.splitlines()
    leaks = 0
    i = 0
    while i < len(lines):
        m = LEAK.match(lines[i])
        i += 1
        if not m:
            continue
        leaks += 1
        size, count = int(m.group(2)), int(m.group(3))
        frames = []
        while i < len(lines) and (frame := FRAME.match(lines[i])):
            frames.append(frame.group(1))
            i += 1
        if size != ERR_STATE_BYTES * count:
            return None
        if len(frames) != 2 or "malloc" not in frames[0] or frames[1] != "CRYPTO_zalloc":
            return None
    if leaks == 0:
        return None
    return "OpenSSL's per-thread error queues (ERR_STATE, 904 bytes each) at process exit"


def self_test(directory):
    failures = []
    paths = sorted(Path(directory).glob("*.txt"))
    for path in paths:
        want = path.name.startswith("known-")
        if bool(known(path.read_text())) != want:
            failures.append(f"{path.name}: expected {'known' if want else 'not known'}")
    if not failures:
        print(f"known_reports: {len(paths)} reports classified as expected")
        return 0
    print("\n".join(failures))
    return 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    unknown = 0
    for name in argv[1:]:
        reason = known(Path(name).read_text(errors="replace"))
        if reason:
            print(f"known third-party report, not counted: {name}: {reason}")
        else:
            print(f"REPORT: {name}")
            unknown += 1
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
