#!/usr/bin/env python3
"""Where the CPU of a coordinator and its clients went, from a `perf record` of both.

Usage: perf_breakdown.py PERF_DATA COORDINATOR_PID

Groups samples by process (the coordinator's pid, every other pid a client) and by kind:
the fold, SHA-256, AES-GCM, memcpy, the kernel, gRPC, ... Debian's libcrypto has no symbols,
so its samples are classified by the instructions near the sampled address: sha256rnds2 or
sha256msg is SHA-256, (v)aesenc/aesdec or (v)pclmul is AES-GCM. Prints percentages of all
samples; scripts/profile_round_overhead.sh runs it.
"""
import collections
import re
import subprocess
import sys

LIBCRYPTO = '/lib/x86_64-linux-gnu/libcrypto.so.3'


def crypto_kind(offset, cache={}):
    if offset not in cache:
        asm = subprocess.run(['objdump', '-d', LIBCRYPTO, '--start-address=%#x' % (offset - 0x60),
                              '--stop-address=%#x' % (offset + 0x60)],
                             capture_output=True, text=True).stdout
        if 'sha256rnds2' in asm or 'sha256msg' in asm:
            cache[offset] = 'SHA-256'
        elif 'aesenc' in asm or 'aesdec' in asm or 'pclmul' in asm:
            cache[offset] = 'AES-GCM (TLS)'
        else:
            cache[offset] = 'libcrypto, other'
    return cache[offset]


def kind(dso, sym, offset):
    if dso == 'libcrypto.so.3':
        return crypto_kind(offset) if offset is not None else 'libcrypto, other'
    if dso.startswith('[kernel'):
        return 'kernel (loopback TCP, page faults, wake-ups)'
    if 'memmove' in sym or 'memcpy' in sym:
        return 'memcpy'
    if 'memset' in sym:
        return 'memset'
    if any(x in sym for x in ('malloc', 'free', '_int_', 'unlink_chunk', 'realloc')):
        return 'malloc/free'
    if 'aggregation' in sym:
        return 'fold (aggregation)'
    if 'AllFinite' in sym or 'CheckFinite' in sym:
        return 'finiteness check'
    prefixes = [('libgrpc', 'gRPC (HTTP/2, polling)'), ('libgpr', 'gRPC (HTTP/2, polling)'),
                ('libssl', 'libssl'), ('libprotobuf', 'protobuf'), ('librocksdb', 'RocksDB'),
                ('libabsl', 'absl (mutex, condvar)')]
    for prefix, name in prefixes:
        if dso.startswith(prefix):
            return name
    return 'other'


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, coordinator = sys.argv[1], int(sys.argv[2])
    out = subprocess.run(['perf', 'script', '-i', data, '--show-mmap-events', '-F',
                          'pid,tid,ip,sym,dso', '-G'], capture_output=True, text=True).stdout
    base = {}  # pid -> (start, file offset) of libcrypto's executable mapping
    mmap = re.compile(r'PERF_RECORD_MMAP2 (\d+)/\d+: \[0x([0-9a-f]+)\(0x[0-9a-f]+\) @ '
                      r'0x([0-9a-f]+) .*r-xp .*libcrypto\.so\.3')
    sample = re.compile(r'\s*(\d+)/(\d+)\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$')
    counts = collections.Counter()
    sides = collections.Counter()
    for line in out.splitlines():
        m = mmap.search(line)
        if m:
            base[int(m.group(1))] = (int(m.group(2), 16), int(m.group(3), 16))
            continue
        m = sample.match(line)
        if not m:
            continue
        pid, ip, sym = int(m.group(1)), int(m.group(3), 16), m.group(4)
        dso = m.group(5).split('/')[-1]
        offset = None
        if dso == 'libcrypto.so.3' and pid in base and sym in ('[unknown]', ''):
            offset = ip - base[pid][0] + base[pid][1]
        side = 'coordinator' if pid == coordinator else 'clients'
        counts[(side, kind(dso, sym, offset))] += 1
        sides[side] += 1
    total = sum(sides.values()) or 1
    for side in ('coordinator', 'clients'):
        print(f'== {side}: {100 * sides[side] / total:.1f}% of {total} samples')
        for (s, k), n in counts.most_common():
            if s == side and 100 * n / total >= 0.3:
                print(f'  {k:46s} {100 * n / total:5.1f}%')


if __name__ == '__main__':
    main()
