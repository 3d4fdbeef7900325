"""Spool benchmark: the store-and-forward job on an emulated board, its heap and its time.

The board is the MicroPython unix port run by `ulnet board` (64-bit: 8-byte pointers, 32-byte GC
blocks; a 32-bit board needs roughly half), ulnet deployed into ROMFS, the job started from a
config file on flash as a device starts it (ulnet.spool.run_from_config). The spool holds SCANS
small CSV batches and one 1 MB file (issue 7's load); the server is pyftpdlib in its own process
(tests/servers/ftp.py). Printed:
- heap: after importing ulnet.spool; the peak live heap (gc.mem_alloc() after gc.collect(),
  sampled at every status line, i.e. at every scan); the garbage the job leaves per scan
  (gc.mem_alloc() before and after a run with the GC off, on a board with an 8 MB heap, the
  job's own gc.collect() calls made no-ops: what the GC has to collect; micropython.mem_total() would also count what the VM frees at once,
  such as large call frames); the smallest -X heapsize that completes the job (1 KB steps,
  bisection over fresh boards); the job's walks of its spool folder (each lists and stats
  every entry; the job holds as many names a walk as its free heap allows) on boards of
  WALK_HEAPS, counted in a run of their own;
- time: the job on the board against ftplib on the host's CPython uploading the same files
  (one login, one STOR each) in the same run, medians of ROUNDS; the job also writes a journal,
  uploads each scan atomically (STOR .part, RNFR/RNTO) and checks SIZE, so it does more per scan.
Every run is checked file by file on the server. Nothing here asserts a speed.

    python benchmarks/board_spool.py [--rounds 3]
"""

import argparse
import ftplib
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from board_heap import board_with_ulnet, code_for, output, smallest_heap  # noqa: E402
from servers.ftp import PyFTPD  # noqa: E402  (board_heap put tests/ on sys.path)

SCANS = 200
WALK_HEAPS = ("64K", "128K")  # the job's walks of its folder are counted on boards of these heaps
BIG = 1 << 20
DEVICE = "BENCH"

JOB = """
import gc, time
gc.collect()
import ulnet.spool
gc.collect()
imported = gc.mem_alloc()
peak = [imported]
def status(text):
    gc.collect()
    peak[0] = max(peak[0], gc.mem_alloc())
if GC_OFF:
    status = None
    gc.disable()
t, before = time.ticks_us(), gc.mem_alloc()
job = ulnet.spool.run_from_config("/ulnet.json", status)
t, after = time.ticks_diff(time.ticks_us(), t), gc.mem_alloc()
print("@", job.sent, job.left, imported, peak[0], after - before, t)
"""


WALKS = """
import ulnet.spool, ulnet.spooldir as sd
seen = [0, 0, 0]  # walks, entries listed (each stat'ed), the most names a walk held
oldest, entries = sd.oldest, sd.entries
def counted_oldest(folder, after, limit, skip):
    got = oldest(folder, after, limit, skip)
    seen[0] += 1
    seen[2] = max(seen[2], len(got[0]))
    return got
def counted_entries(folder):
    for entry in entries(folder):
        seen[1] += 1
        yield entry
sd.oldest, sd.entries = counted_oldest, counted_entries
job = ulnet.spool.run_from_config("/ulnet.json", None)
print("@", job.sent, job.left, *seen)
"""


# before JOB in the run with the GC off: the gc module JOB and the job import, whose collect()
# (a walk's) would hide the garbage; apart, so that JOB's own bytecode is the same in every run
UNCOLLECTED = """
import gc, sys
class Uncollected:
    def collect(self):
        pass
uncollected = sys.modules["gc"] = Uncollected()
uncollected.mem_free, uncollected.mem_alloc, uncollected.disable = gc.mem_free, gc.mem_alloc, gc.disable
"""


def spool_files():
    """{name: bytes} of the spool: small CSV batches and one 1 MB file."""
    files = {}
    for i in range(SCANS):
        files["scan%04d.csv" % i] = "".join("%013d,%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1)
                                            for j in range(5 + i % 20)).encode()
    files["big.bin"] = os.urandom(BIG)
    return files


def fill(board, server, files, sessions=None):
    """The board's spool and config (the job's default sessions unless given); an empty upload
    folder on the server."""
    spool = os.path.join(board.flash, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    os.mkdir(spool)
    for name, data in files.items():
        with open(os.path.join(spool, name), "wb") as f:
            f.write(data)
    url = "ftp://%s:%s@127.0.0.1:%d/in" % (server.user, server.password, server.port)
    with open(os.path.join(board.flash, "ulnet.json"), "w") as f:
        cfg = {"url": url, "device_id": DEVICE, "deadline_s": 120}
        if sessions:
            cfg["sessions"] = sessions
        json.dump(cfg, f)
    folder = os.path.join(server.home, "in")
    shutil.rmtree(folder, ignore_errors=True)
    os.mkdir(folder)


def check(server, files, prefix):
    folder = os.path.join(server.home, "in")
    got = sorted(os.listdir(folder))
    if got != sorted(prefix + name for name in files):
        raise RuntimeError("the server holds %d files, not the %d scans" % (len(got), len(files)))
    for name, data in files.items():
        with open(os.path.join(folder, prefix + name), "rb") as f:
            if f.read() != data:
                raise RuntimeError("%s differs on the server" % name)


def job(board, server, files, gc_off=False, sessions=None):
    """One run of the job on the board, checked on the server: (import, peak, allocated, s)."""
    fill(board, server, files, sessions)
    code = code_for((UNCOLLECTED if gc_off else "") + JOB, GC_OFF=gc_off)
    at = next(line.split()[1:] for line in output(board, code).splitlines() if line.startswith("@ "))
    if int(at[0]) != len(files) or int(at[1]):
        raise RuntimeError("the job sent %s and left %s scans" % (at[0], at[1]))
    check(server, files, DEVICE + "-")
    return int(at[2]), int(at[3]), int(at[4]), int(at[5]) / 1e6


def walks(heap, server, files):
    """The job's walks of its spool folder on a board of `heap`: (walks, entries listed and
    stat'ed, the most names a walk held)."""
    board = board_with_ulnet(heap, True, b"")
    try:
        fill(board, server, files)
        at = next(line.split()[1:] for line in output(board, WALKS).splitlines() if line.startswith("@ "))
    finally:
        board.stop()
    if int(at[0]) != len(files) or int(at[1]):
        raise RuntimeError("the job sent %s and left %s scans" % (at[0], at[1]))
    check(server, files, DEVICE + "-")
    return int(at[2]), int(at[3]), int(at[4])


def ftplib_run(server, files):
    folder = os.path.join(server.home, "in")
    shutil.rmtree(folder, ignore_errors=True)
    os.mkdir(folder)
    t = time.perf_counter()
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", server.port, timeout=30)
        ftp.login(server.user, server.password)
        ftp.cwd("in")
        for name in files:
            with open(os.path.join(server.home, "src", name), "rb") as f:
                ftp.storbinary("STOR " + DEVICE + "-" + name, f)
    t = time.perf_counter() - t
    check(server, files, DEVICE + "-")
    return t


def completes(heap, server, files):
    try:
        board = board_with_ulnet("%dK" % heap, True, b"")
    except Exception:  # too small to boot, or to take the deploy
        return False
    try:
        job(board, server, files)
        return True
    except Exception:  # MemoryError on the board, a scan left, a bad file on the server
        return False
    finally:
        board.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per client")
    args = parser.parse_args()
    files = spool_files()
    with PyFTPD() as server:
        src = os.path.join(server.home, "src")  # ftplib's copy of the spool, outside in/
        os.mkdir(src)
        for name, data in files.items():
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
        board = board_with_ulnet("64K", True, b"")
        try:
            runs, peers = [], []
            for _ in range(args.rounds):
                runs.append(job(board, server, files))
                peers.append(ftplib_run(server, files))
        finally:
            board.stop()
        board = board_with_ulnet("8M", True, b"")
        try:
            garbage = job(board, server, files, gc_off=True)[2]
        finally:
            board.stop()
        walked = [(heap, walks(heap, server, files)) for heap in WALK_HEAPS]
        smallest = smallest_heap(lambda kb: completes(kb, server, files), 32, 64)
    imported, peak = runs[-1][:2]
    board_s, host_s = statistics.median(r[3] for r in runs), statistics.median(peers)
    total = sum(len(d) for d in files.values())
    rows = [
        ("spool: %d scans + a 1 MB file, %.1f KB in all" % (SCANS, total / 1024), "64 KB heap, ROMFS"),
        ("heap after import ulnet.spool", "%.1f KB" % (imported / 1024)),
        ("peak live heap during the job", "%.1f KB" % (peak / 1024)),
        ("garbage per scan (GC off, 8 MB heap)", "%.1f KB" % (garbage / len(files) / 1024)),
        ("smallest heap that completes the job", "%sK" % smallest),
        ("job on the board, median of %d" % args.rounds, "%.2f s" % board_s),
        ("ftplib on the host, plain STOR each, median of %d" % args.rounds, "%.2f s" % host_s),
        ("ftplib time / job time", "%.2fx" % (host_s / board_s)),
    ]
    for heap, (n, listed, most) in walked:
        rows.append(("walks of the spool folder, %s heap" % heap,
                     "%d walks, %d entries stat'ed, at most %d names a walk" % (n, listed, most)))
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print("%-*s  %s" % (width, label, value))


if __name__ == "__main__":
    main()
