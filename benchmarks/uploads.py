"""What the upload benchmarks share (ftp_upload.py, ftps_upload.py): one file to a C server on
loopback (pure-ftpd or vsftpd, started as tests/servers/ftp.py does), clients run in
interleaved rounds, medians, ratios, and the CPU time each client used.

Rules: every upload is checked for its size on the server, then removed; the server's home
and the source file are on /dev/shm when there is one, so no disk is involved; a warm-up round
goes first (imports, page cache, the server's first fork) and is not counted; the order of the
clients rotates each round; `--cpus same` puts server and client on one CPU (the wall time is
then the total work, and since the server's part is the same for every client, the differences
are the clients' own costs), `split` on two.
"""

import os
import resource
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from servers.ftp import VSFTPD, PureFTPD  # noqa: E402

SERVERS = {"pure-ftpd": PureFTPD, "vsftpd": VSFTPD}


def add_arguments(parser):
    """The options every upload benchmark takes."""
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpus", choices=("same", "split"), default="same")
    parser.add_argument("--server", choices=tuple(SERVERS), default="pure-ftpd" if PureFTPD.EXE else "vsftpd")


def cpu_seconds():
    """CPU time used by this process and its finished children (curl, lftp)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_upload(srv, clients, client, path, size):
    """(wall seconds from connect to 226, CPU seconds of the client)"""
    name = client + ".bin"
    cpu = cpu_seconds()
    elapsed = clients[client](srv, path, name)
    cpu = cpu_seconds() - cpu
    stored = os.path.join(srv.home, name)
    if os.path.getsize(stored) != size:
        raise RuntimeError("%s stored %d of %d bytes" % (client, os.path.getsize(stored), size))
    os.remove(stored)
    return elapsed, cpu


def measure(args, make_server, clients):
    """Run every client args.rounds times against the server make_server() starts; returns
    ({client: [wall seconds]}, {client: [CPU seconds]})."""
    cpus = sorted(os.sched_getaffinity(0))
    if args.cpus == "split" and len(cpus) < 2:
        sys.exit("--cpus split needs two CPUs")
    if os.path.isdir("/dev/shm"):
        tempfile.tempdir = "/dev/shm"
    size = args.size_mib << 20
    times = {name: [] for name in clients}
    used = {name: [] for name in clients}
    with make_server() as srv, tempfile.TemporaryDirectory() as tmp:
        # the server forks processes per session, which inherit the affinity; curl inherits ours
        os.sched_setaffinity(srv.proc.pid, {cpus[1] if args.cpus == "split" else cpus[0]})
        os.sched_setaffinity(0, {cpus[0]})
        path = os.path.join(tmp, "scan.bin")
        with open(path, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        order = list(clients)
        for client in order:  # warm-up
            one_upload(srv, clients, client, path, size)
        for i in range(args.rounds):
            for client in order[i % len(order):] + order[:i % len(order)]:  # rotate who goes first
                elapsed, cpu = one_upload(srv, clients, client, path, size)
                times[client].append(elapsed)
                used[client].append(cpu)
                time.sleep(0.2)
    return times, used


def report(args, what, times, used, peers, goals, cpu_unit="ms"):
    """Print the table (MB/s, ms, a ratio column per peer, client CPU) and the goals, each
    (peer, least ratio ulnet / peer). cpu_unit: "ms" per upload, or "ms/MB"."""
    size = args.size_mib << 20
    median = {name: statistics.median(t) for name, t in times.items()}
    print("%d MiB %s to %s on loopback, connect to 226, median of %d interleaved rounds, "
          "server and client on %s CPU%s" % (args.size_mib, what, args.server, args.rounds, args.cpus,
                                             "" if args.cpus == "same" else "s"))
    per_mb = cpu_unit == "ms/MB"
    print(("%-16s %9s %8s" + " %9s" * len(peers) + " %14s") % (
        ("client", "MB/s", "ms") + tuple("x " + p for p in peers) + ("client CPU " + cpu_unit,)))
    for name in times:
        t = median[name]
        cpu = 1000 * statistics.median(used[name]) / (size / 1e6 if per_mb else 1)
        print(("%-16s %9.0f %8.1f" + " %9.2f" * len(peers) + (" %14.2f" if per_mb else " %14.0f")) % (
            (name, size / t / 1e6, t * 1000) + tuple(median[p] / t for p in peers) + (cpu,)))
    print("(curl's wall time is its own %{time_total}; its CPU time includes its start-up)")
    for peer, goal in goals:
        ratio = median[peer] / median["ulnet"]
        print("goal ulnet >= %.1fx %s: %.2fx %s" % (goal, peer, ratio, "met" if ratio >= goal else "NOT met"))


def check_tools(args, *tools):
    """Exit with a clear line when a peer client or the server is missing."""
    import shutil

    server = SERVERS[args.server]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing or not (server.EXE and os.path.exists(server.EXE)):
        sys.exit("this benchmark needs %s" % ", ".join(missing + [args.server]))
