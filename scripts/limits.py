#!/usr/bin/env python3
"""Limits probe: what the data directory's file system can do, so that
benchmark figures can be given as ratios to it. Medians over RUNS runs.

  fsync_per_sec            4 KiB overwrite + fdatasync: the cheapest durable
                           write (what a small commit costs at best)
  seq_burst_mib_per_sec    256 MiB of 1 MiB writes, one fdatasync: a burst
                           that the host's write cache absorbs
  seq_write_mib_per_sec    2 GiB the same way: sustained bandwidth, the
                           volume a 10 s upload benchmark writes
  durable_files_per_sec    8 writers, each: new file, 1 MiB, fdatasync,
                           rename (an upload's file I/O, nothing else)
  item_io_per_sec          one writer, each: new 64 KiB file, fdatasync,
                           rename, directory fsync, 16 KiB overwrite +
                           fdatasync (a processed item's I/O, 3 fsyncs)
Usage: scripts/limits.py [DIR]   (default: ./data)"""
import os, statistics, sys, tempfile, threading, time

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

def seq_mb_per_sec(d, total_mib):
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

def new_file(d, name, buf):
    tmp = os.path.join(d, ".tmp-" + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, buf); os.fdatasync(fd); os.close(fd)
    os.rename(tmp, os.path.join(d, name))

def durable_files_per_sec(d, writers=8, seconds=3.0):
    sub = tempfile.mkdtemp(dir=d)
    buf = os.urandom(1 << 20)
    counts = [0] * writers
    stop = time.perf_counter() + seconds
    def work(i):
        while time.perf_counter() < stop:
            new_file(sub, f"{i}-{counts[i]}", buf)
            counts[i] += 1
    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    [t.start() for t in ts]; [t.join() for t in ts]
    rate = sum(counts) / (time.perf_counter() - t0)
    for f in os.listdir(sub): os.unlink(os.path.join(sub, f))
    os.rmdir(sub)
    return rate

def item_io_per_sec(d, seconds=2.0):
    sub = tempfile.mkdtemp(dir=d)
    depth, page = os.urandom(64 << 10), os.urandom(16 << 10)
    db = os.open(os.path.join(sub, "db"), os.O_RDWR | os.O_CREAT, 0o644)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        new_file(sub, str(n), depth)
        dfd = os.open(sub, os.O_RDONLY); os.fsync(dfd); os.close(dfd)
        os.pwrite(db, page, (n % 64) * len(page)); os.fdatasync(db)
        n += 1
    rate = n / (time.perf_counter() - t0)
    os.close(db)
    for f in os.listdir(sub): os.unlink(os.path.join(sub, f))
    os.rmdir(sub)
    return rate

d = sys.argv[1] if len(sys.argv) > 1 else "./data"
os.makedirs(d, exist_ok=True)
runs = int(os.environ.get("RUNS", "3"))
med = lambda f: statistics.median(f() for _ in range(runs))
print(f"fsync_per_sec={med(lambda: fsyncs_per_sec(d)):.0f}")
print(f"seq_burst_mib_per_sec={med(lambda: seq_mb_per_sec(d, 256)):.0f}")
print(f"seq_write_mib_per_sec={med(lambda: seq_mb_per_sec(d, 2048)):.0f}")
print(f"durable_files_per_sec={med(lambda: durable_files_per_sec(d)):.0f}")
print(f"item_io_per_sec={med(lambda: item_io_per_sec(d)):.0f}")
