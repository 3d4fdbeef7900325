"""CE fault sweep: FTP uploads over the CE port under each Winsock fault, with the probe on and off.

Not a speed benchmark: it shows that the core needs no watchdog where nothing is lost, and what
the watchdog does where something is. Each session runs on a fresh eventer (port "ce", one
fault, one seed): login to pyftpdlib on loopback, one upload (--size-kib, default 200) on the
buffer path a device runs, QUIT, with protocol deadlines of --deadline-ms (a link gone silent
ends there). Printed per fault and probe setting:
- run, completed (the file byte-identical on the server), failed (an operation failed with an
  error: the error-carrying faults reset, connect_error and suspend), hung (no end before the
  sweep's own limit) and corrupt (reported done, but the file differs): bugs, zero expected;
- rescues: probe hints that brought news the notifications had not (ports/ce.py), zero expected
  for every fault that loses nothing;
- longest: the longest time a completed session took, from connect to QUIT's reply.
The same rates as the tests (tests/test_ce_ftp.py); suspend sleeps --suspend-ms (2 s by
default, as a handheld put down for a moment).

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

RATES = {"drop": 0.2, "duplicate": 0.3, "spurious": 0.3, "stale": 0.3, "reset": 0.3, "connect_error": 0.3}


def upload(srv, local, remote, fault, seed, probe_ms, args):
    """One session; returns (outcome, seconds, rescues), outcome one of completed, failed, hung."""
    faults = {fault: RATES.get(fault, True)} if fault else None
    with ulnet.Eventer(port="ce", faults=faults, seed=seed, probe_ms=probe_ms, api=args.api) as ev:
        ev.port.source.suspend_ms = args.suspend_ms
        s = FTPSession(ev)
        s.connect_timeout_ms = s.reply_timeout_ms = s.data_idle_ms = args.deadline_ms
        start = time.monotonic()
        ops = [s.connect("127.0.0.1", srv.port, srv.user, srv.password), s.put(local, remote), s.quit()]
        try:
            ev.run_until(lambda: all(op.done for op in ops), 4 * args.deadline_ms + args.suspend_ms + 10000)
        except ulnet.TimeoutError:
            return "hung", 0, ev.port.rescues
        took = time.monotonic() - start
        if any(op.error for op in ops):
            return "failed", took, ev.port.rescues
        with open(local, "rb") as a, open(os.path.join(srv.home, remote), "rb") as b:
            return ("completed" if a.read() == b.read() else "corrupt"), took, ev.port.rescues


def sweep(srv, local, fault, probe_ms, args):
    counts = {"completed": 0, "failed": 0, "hung": 0, "corrupt": 0}
    rescues = longest = 0
    for seed in range(args.seeds):
        remote = "sweep-%s-%s-%d.bin" % (fault or "none", probe_ms, seed)
        outcome, took, saved = upload(srv, local, remote, fault, seed, probe_ms, args)
        counts[outcome] += 1
        rescues += saved
        if outcome == "completed":
            longest = max(longest, took)
        if os.path.exists(os.path.join(srv.home, remote)):
            os.remove(os.path.join(srv.home, remote))
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
    print("%-20s %-5s %5s %9s %6s %4s %7s %8s %10s" % ("fault", "probe", "run", "completed", "failed", "hung",
                                                      "corrupt", "rescues", "longest s"))
    with tempfile.TemporaryDirectory() as tmp, PyFTPD() as srv:
        local = os.path.join(tmp, "scan.bin")
        with open(local, "wb") as f:
            f.write(os.urandom(args.size_kib * 1024))
        for fault in [None] + args.faults.split(","):
            for probe_ms in (None, Port.PROBE_MS):
                counts, rescues, longest = sweep(srv, local, fault, probe_ms, args)
                print("%-20s %-5s %5d %9d %6d %4d %7d %8d %10.2f" % (
                    fault or "none", "on" if probe_ms else "off", args.seeds, counts["completed"],
                    counts["failed"], counts["hung"], counts["corrupt"], rescues, longest), flush=True)


if __name__ == "__main__":
    main()
