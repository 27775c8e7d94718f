#!/usr/bin/env python3
"""Limits probe: what the data directory's file system can do, so that
benchmark figures can be given as ratios to it.

Prints fsync'd small writes per second (4 KiB write + fdatasync, the cost
of one durable commit) and sequential write bandwidth (1 MiB writes,
fdatasync at the end), as medians over several runs.
Usage: scripts/limits.py [DIR]   (default: ./data)"""
import os, statistics, sys, tempfile, time

def fsyncs_per_sec(d, seconds=2.0):
    fd, p = tempfile.mkstemp(dir=d)
    try:
        buf = os.urandom(4096)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            os.pwrite(fd, buf, (n % 256) * 4096)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - t0)
    finally:
        os.close(fd); os.unlink(p)

def seq_mb_per_sec(d, total_mib=256):
    fd, p = tempfile.mkstemp(dir=d)
    try:
        buf = os.urandom(1 << 20)
        t0 = time.perf_counter()
        for _ in range(total_mib):
            os.write(fd, buf)
        os.fdatasync(fd)
        return total_mib / (time.perf_counter() - t0)
    finally:
        os.close(fd); os.unlink(p)

d = sys.argv[1] if len(sys.argv) > 1 else "./data"
os.makedirs(d, exist_ok=True)
runs = int(os.environ.get("RUNS", "5"))
f = statistics.median(fsyncs_per_sec(d) for _ in range(runs))
s = statistics.median(seq_mb_per_sec(d) for _ in range(runs))
print(f"fsync_per_sec={f:.0f}")
print(f"seq_write_mib_per_sec={s:.0f}")
