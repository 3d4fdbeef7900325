"""CE fault sweep: FTP uploads and the upload job over the CE port under each Winsock fault,
with the probe on and off.

Not a speed benchmark: it shows that the core needs no watchdog where nothing is lost, what the
watchdog does where something is, and that the job recovers from what a session cannot. Each
run is on a fresh eventer (port "ce", one fault, one seed), against pyftpdlib on loopback, on
the buffer path a device runs, with protocol deadlines of --deadline-ms (a link gone silent ends
there); suspend sleeps --suspend-ms (2 s by default, a handheld put down for a moment). The
rates are the tests' (tests/test_ce_ftp.py). Two tables:
- upload: one session (login, a --size-kib upload, QUIT);
- job: the store-and-forward upload job over a spool of four scans (0, 300, 20000 bytes and
  --size-kib), retrying with 100 ms backoff until every scan is on the server once.
Printed per fault and probe setting:
- run, completed (the files byte-identical on the server), failed (an upload failed with an
  error, as the error-carrying faults reset, connect_error and suspend make it; for the job:
  scans left at its deadline, 20 s), hung (no end before the sweep's own limit) and corrupt (reported
  done, but a file differs): the last two are bugs, zero expected;
- rescues: probe hints that brought news the notifications had not (ports/ce.py), zero expected
  for every fault that loses nothing;
- longest: the longest time a completed run took, sleep and retries included.

    python benchmarks/ce_faults.py [--seeds 20] [--size-kib 200] [--suspend-ms 2000]
                                   [--deadline-ms 3000] [--api WSAAsyncSelect|WSAEventSelect]
                                   [--faults drop,suspend]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import ulnet  # noqa: E402
from servers.ftp import PyFTPD  # noqa: E402
from ulnet.ftp.session import FTPSession  # noqa: E402
from ulnet.ports.ce import Port  # noqa: E402
from ulnet.ports.ce_source import APIS, FAULTS  # noqa: E402
from ulnet.spool import Spool  # noqa: E402

RATES = {"drop": 0.2, "duplicate": 0.3, "spurious": 0.3, "stale": 0.3, "reset": 0.3, "connect_error": 0.3}
# the job's spool: an empty scan, small ones, and one of --size-kib
SCANS = (0, 300, 20000)
# the job gives up then (a job without its watchdog can stall at every lost notification)
JOB_DEADLINE_MS = 20000
TITLES = {"upload": "one session: login, upload, QUIT",
          "job": "the upload job, four scans, until every one is on the server once (or 20 s)"}


def eventer(fault, seed, probe_ms, args):
    faults = {fault: RATES.get(fault, True)} if fault else None
    ev = ulnet.Eventer(port="ce", faults=faults, seed=seed, probe_ms=probe_ms, api=args.api)
    ev.port.source.suspend_ms = args.suspend_ms
    return ev


def brief(session, args):
    session.connect_timeout_ms = session.reply_timeout_ms = session.data_idle_ms = args.deadline_ms


def same(path_a, path_b):
    with open(path_a, "rb") as a, open(path_b, "rb") as b:
        return a.read() == b.read()


def upload(ev, srv, tmp, name, args):
    """One session: login, put, QUIT. Returns completed, failed or corrupt."""
    s = FTPSession(ev)
    brief(s, args)
    local = os.path.join(tmp, "scan.bin")
    ops = [s.connect("127.0.0.1", srv.port, srv.user, srv.password), s.put(local, name), s.quit()]
    ev.run_until(lambda: all(op.done for op in ops), 4 * args.deadline_ms + args.suspend_ms + 10000)
    if any(op.error for op in ops):
        return "failed"
    return "completed" if same(local, os.path.join(srv.home, name)) else "corrupt"


def job(ev, srv, tmp, name, args):
    """The store-and-forward job over a spool of a few scans: completed once every scan is on
    the server exactly once (and gone from the spool), else failed or corrupt."""
    spool = os.path.join(tmp, name)
    os.mkdir(spool)
    os.mkdir(os.path.join(srv.home, name))
    sizes = SCANS + (args.size_kib * 1024,)
    for i, size in enumerate(sizes):
        with open(os.path.join(spool, "scan%d.csv" % i), "wb") as f:
            f.write(os.urandom(size))
    scans = {n: open(os.path.join(spool, n), "rb").read() for n in os.listdir(spool)}
    spooler = Spool(ev, srv.url + name, spool, "SCN", deadline_ms=JOB_DEADLINE_MS)
    spooler.backoff_ms = 100
    spooler.start()
    brief(spooler.client, args)
    ev.run_until(lambda: spooler.done, JOB_DEADLINE_MS + 10000)
    home = os.path.join(srv.home, name)
    if spooler.left or os.listdir(spool):
        return "failed"
    got = {n: open(os.path.join(home, n), "rb").read() for n in os.listdir(home)}
    return "completed" if got == {"SCN-" + n: data for n, data in scans.items()} else "corrupt"


def sweep(srv, tmp, kind, fault, probe_ms, args):
    counts = {"completed": 0, "failed": 0, "hung": 0, "corrupt": 0}
    rescues = longest = 0
    for seed in range(args.seeds):
        name = "%s-%s-%s-%d" % (kind.__name__, fault or "none", probe_ms, seed)
        with eventer(fault, seed, probe_ms, args) as ev:
            start = time.monotonic()
            try:
                outcome = kind(ev, srv, tmp, name, args)
            except ulnet.TimeoutError:
                outcome = "hung"
            took = time.monotonic() - start
            rescues += ev.port.rescues
        counts[outcome] += 1
        if outcome == "completed":
            longest = max(longest, took)
    return counts, rescues, longest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--size-kib", type=int, default=200)
    parser.add_argument("--suspend-ms", type=int, default=2000)
    parser.add_argument("--deadline-ms", type=int, default=3000)
    parser.add_argument("--api", choices=APIS, default=APIS[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated (default: all)")
    args = parser.parse_args()
    print("CE port, %s, %d seeds per row, %d KiB uploads to pyftpdlib, probe every %d ms"
          % (args.api, args.seeds, args.size_kib, Port.PROBE_MS))
    with tempfile.TemporaryDirectory() as tmp, PyFTPD() as srv:
        with open(os.path.join(tmp, "scan.bin"), "wb") as f:
            f.write(os.urandom(args.size_kib * 1024))
        for kind in (upload, job):
            print("\n%s: %s" % (kind.__name__, TITLES[kind.__name__]))
            print("%-20s %-5s %5s %9s %6s %4s %7s %8s %10s" % (
                "fault", "probe", "run", "completed", "failed", "hung", "corrupt", "rescues", "longest ms"))
            for fault in [None] + args.faults.split(","):
                for probe_ms in (None, Port.PROBE_MS):
                    counts, rescues, longest = sweep(srv, tmp, kind, fault, probe_ms, args)
                    print("%-20s %-5s %5d %9d %6d %4d %7d %8d %10.1f" % (
                        fault or "none", "on" if probe_ms else "off", args.seeds, counts["completed"],
                        counts["failed"], counts["hung"], counts["corrupt"], rescues, longest * 1000),
                        flush=True)


if __name__ == "__main__":
    main()
