"""Upload job benchmark at link latency: 200 scans and a 1 MB file over a link whose round trip
is D ms, the job against plain FTP clients, one run.

The server is pyftpdlib in its own process (tests/servers/ftp.py) holding every reply D ms
(--delay-ms: replies travel D, in order, as over a link; data connections are not delayed), so
each command a client waits for costs D. The spool: SCANS files of 0.5-2 KB (random bytes,
seeded) and one 1 MB file. Clients, each into an empty folder of its own on the server, each
upload checked file by file there:
- ulnet upload: `ulnet upload SPOOL URL` with its defaults (a process, as a user runs it): atomic
  (.part, then renamed), verified (SIZE), journaled, oldest scans first;
- ftplib: one session, TYPE I once, then PASV + STOR per file (no guarantee);
- lftp: Debian's lftp, `mput` (one session) and `mput -P 4` (four at once), its defaults
  otherwise (no guarantee; it also sets each file's time with MFMT).
With --board, the job also runs on an emulated board (64 KB heap, ulnet in ROMFS, as
benchmarks/board_spool.py runs it, from a config file on flash) with 1 and 2 sessions at D = 20.
Times are wall clock, from start to exit (ulnet and lftp include their process start-up: about
0.2 s for `ulnet upload`, measured at D = 0). Nothing here asserts a speed.

    python benchmarks/spool_latency.py [--delays 0,20,100] [--scans 200] [--board]
"""

import argparse
import ftplib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from servers.ftp import PyFTPD  # noqa: E402

BIG = 1 << 20
DEVICE = "BENCH"
RUN_DEADLINE_S = 900


def spool_files(scans):
    """{name: bytes}: scans of 0.5-2 KB and one 1 MB file; names sort oldest first."""
    rng = random.Random(14)
    files = {"scan%04d.csv" % i: rng.randbytes(rng.randrange(512, 2049)) for i in range(scans)}
    files["photo.jpg"] = rng.randbytes(BIG)
    return files


def write_spool(folder, files):
    os.makedirs(folder)
    at = time.time() - len(files)
    for i, (name, data) in enumerate(files.items()):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (at + i, at + i))  # written one after another, a second apart


def fresh(server, name):
    """An empty folder on the server; returns its path."""
    folder = os.path.join(server.home, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.mkdir(folder)
    return folder


def check(folder, files, prefix=""):
    got = sorted(os.listdir(folder))
    want = sorted(prefix + name for name in files)
    if got != want:
        raise RuntimeError("%s holds %d files, not the %d scans" % (folder, len(got), len(want)))
    for name, data in files.items():
        with open(os.path.join(folder, prefix + name), "rb") as f:
            if f.read() != data:
                raise RuntimeError("%s differs on the server" % name)


def run_ulnet(server, src, files, tmp, options=()):
    spool = os.path.join(tmp, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    shutil.copytree(src, spool)  # the job empties its spool
    folder = fresh(server, "ulnet")
    url = "ftp://%s:%s@127.0.0.1:%d/ulnet" % (server.user, server.password, server.port)
    cmd = [sys.executable, "-m", "ulnet.tools", "upload", spool, url, "--device-id", DEVICE] + list(options)
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_DEADLINE_S)
    t = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError("ulnet upload exited %d: %s" % (done.returncode, done.stdout[-500:]))
    check(folder, files, DEVICE + "-")
    return t


def run_ftplib(server, src, files, tmp):
    fresh(server, "ftplib")
    t = time.perf_counter()
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", server.port, timeout=60)
        ftp.login(server.user, server.password)
        ftp.cwd("ftplib")
        ftp.voidcmd("TYPE I")
        for name in files:
            with open(os.path.join(src, name), "rb") as f, ftp.transfercmd("STOR " + name) as conn:
                conn.sendfile(f)
            ftp.voidresp()
    t = time.perf_counter() - t
    check(os.path.join(server.home, "ftplib"), files)
    return t


def run_lftp(server, src, files, tmp, parallel=1):
    folder = fresh(server, "lftp")
    script = "open -u %s,%s ftp://127.0.0.1:%d; cd lftp; mput %s%s/*" % (
        server.user, server.password, server.port, "-P %d " % parallel if parallel > 1 else "", src)
    t = time.perf_counter()
    done = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=RUN_DEADLINE_S)
    t = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError("lftp exited %d: %s" % (done.returncode, done.stderr[-500:]))
    check(folder, files)
    return t


CLIENTS = (
    ("ulnet upload (defaults)", run_ulnet),
    ("ftplib, 1 session", run_ftplib),
    ("lftp mput", run_lftp),
    ("lftp mput -P 4", lambda *a: run_lftp(*a, parallel=4)),
)


def table(delays, times):
    """Times and each client's time / ulnet's, one column per delay."""
    first = CLIENTS[0][0]
    head = "%-26s" % "client" + "".join("  %16s" % ("D = %d ms" % d) for d in delays)
    lines = [head]
    for name, _ in CLIENTS:
        cells = []
        for d in delays:
            t, base = times[d][name], times[d][first]
            cells.append("  %16s" % ("%.2f s" % t if name == first else "%.2f s %5.2fx" % (t, t / base)))
        lines.append("%-26s" % name + "".join(cells))
    lines.append("(ratio: the client's time / ulnet upload's; above 1.00x ulnet is faster)")
    return "\n".join(lines)


def board_rows(files, delay):
    """The job on an emulated board with 1 and 2 sessions, at `delay`."""
    from board_heap import board_with_ulnet, code_for, output  # noqa: E402 (starts no board)
    import board_spool

    job = """
import time, ulnet.spool
t = time.ticks_ms()
job = ulnet.spool.run_from_config("/ulnet.json", None)
print("@", job.sent, job.left, time.ticks_diff(time.ticks_ms(), t))
"""
    rows = []
    with PyFTPD(delay_ms=delay) as server:
        board = board_with_ulnet("64K", True, b"")
        try:
            for sessions in (1, 2):
                board_spool.fill(board, server, files, sessions=sessions)
                at = next(line.split()[1:] for line in output(board, code_for(job)).splitlines()
                          if line.startswith("@ "))
                if int(at[0]) != len(files) or int(at[1]):
                    raise RuntimeError("the board job sent %s and left %s scans" % (at[0], at[1]))
                board_spool.check(server, files, DEVICE + "-")
                rows.append((sessions, int(at[2]) / 1000))
        finally:
            board.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", default="0,20,100", help="reply delays in ms, comma-separated")
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--board", action="store_true", help="also the job on an emulated board at D = 20")
    parser.add_argument("--ulnet-option", action="append", default=[], help="an extra option for ulnet upload")
    args = parser.parse_args()
    delays = [int(d) for d in args.delays.split(",") if d]
    files = spool_files(args.scans)
    tmp = tempfile.mkdtemp(prefix="ulnet-latency-")
    try:
        src = os.path.join(tmp, "src")
        write_spool(src, files)
        times = {}
        for d in delays:
            times[d] = {}
            with PyFTPD(delay_ms=d) as server:
                for name, run in CLIENTS:
                    extra = (args.ulnet_option,) if run is run_ulnet else ()
                    times[d][name] = run(server, src, files, tmp, *extra)
                    print("D = %d ms, %s: %.2f s" % (d, name, times[d][name]), file=sys.stderr, flush=True)
        print("%d scans of 0.5-2 KB and a 1 MB file, pyftpdlib holding each reply D ms" % args.scans)
        if delays:
            print(table(delays, times))
        if args.board:
            rows = board_rows(files, 20)
            print("\nthe job on an emulated board (64-bit unix port, 64 KB heap, ROMFS), D = 20 ms")
            for sessions, t in rows:
                print("  %d session%s  %.2f s  %.2fx" % (sessions, "s" if sessions > 1 else " ", t, t / rows[0][1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
