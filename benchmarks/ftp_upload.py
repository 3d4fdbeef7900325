"""FTP upload benchmark: one 100 MiB file to pure-ftpd or vsftpd on loopback, connect to 226.

Clients, measured in the same run with interleaved rounds (medians reported, with ratios):
- ulnet: the blocking facade ulnet.FTP (the event-driven client inside), a plain put (one STOR,
  atomic=False, resume=False, as every peer here does); on this port the pump uses os.sendfile;
- ulnet-buffer: the same with use_sendfile=False, the portable read-into-one-buffer pump that a
  board runs (for information: no goal);
- curl -T (libcurl, C), timed by its own %{time_total}, so its process start-up is not counted;
- ftplib: storbinary with 8 KiB blocks;
- limit: the limit for a Python client, ftplib's control channel plus the data sent by
  socket.sendfile.
The server (--server) is pure-ftpd or vsftpd (both C), started as tests/servers/ftp.py does,
its home and the source file on /dev/shm so no disk is involved. The default is pure-ftpd when
its binary is found (on PATH or in /usr/sbin), as the issue's reference figures were measured
against it, else vsftpd (the Debian packages conflict, so a machine usually has one of them).
Each upload is checked for its size on the server and then removed. Besides the wall time, the
table shows the CPU time the client itself used.

Where the server runs matters (--cpus):
- same (default): server and client share one CPU, so the wall time is the total work, and as
  the server's part is the same for every client, the differences are the clients' costs;
- split: server and client on different CPUs. The server copying into its file is then the
  bottleneck for every client that copies (they all end near the same time), and data sent by
  sendfile is slower still for it to take in (it copies straight out of the sender's page-cache
  pages rather than out of freshly written socket buffers; a plain Python receiver writing to
  /dev/shm shows the same, about 1.5x), so the sendfile clients (ulnet, limit) lose wall time
  here while using the least CPU of all. Over a real network the NIC reads those pages, not a
  CPU.

    python benchmarks/ftp_upload.py [--size-mib 100] [--rounds 5] [--cpus same|split]
                                    [--server pure-ftpd|vsftpd]
"""

import argparse
import ftplib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import ulnet  # noqa: E402
from servers.ftp import VSFTPD, PureFTPD  # noqa: E402

SERVERS = {"pure-ftpd": PureFTPD, "vsftpd": VSFTPD}

# the goals for ulnet, as (peer, least ratio ulnet / peer)
GOALS = (("curl", 1.0), ("limit", 0.9), ("ftplib", 1.2))


def ftplib_session(srv):
    url = urllib.parse.urlsplit(srv.url)  # each server has its own login and upload folder
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", srv.port)
    ftp.login(url.username, url.password)
    ftp.cwd(url.path)
    return ftp


def run_ulnet(srv, path, name, use_sendfile=True):
    started = time.perf_counter()
    with ulnet.FTP(srv.url, timeout_s=30) as ftp:
        ftp.client.use_sendfile = use_sendfile
        ftp.put(path, name, atomic=False, resume=False)
        return time.perf_counter() - started  # at the 226; QUIT is not timed


def run_ulnet_buffer(srv, path, name):
    return run_ulnet(srv, path, name, use_sendfile=False)


def run_curl(srv, path, name):
    done = subprocess.run(
        ["curl", "-sS", "-T", path, "-w", "%{time_total}", srv.url + "/" + name],
        capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout)


def cpu_seconds():
    """CPU time used by this process and its finished children (curl)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_ftplib(srv, path, name):
    started = time.perf_counter()
    ftp = ftplib_session(srv)
    with open(path, "rb") as f:
        ftp.storbinary("STOR " + name, f, 8192)
    elapsed = time.perf_counter() - started
    ftp.quit()
    return elapsed


def run_limit(srv, path, name):
    started = time.perf_counter()
    ftp = ftplib_session(srv)
    ftp.voidcmd("TYPE I")
    with open(path, "rb") as f, ftp.transfercmd("STOR " + name) as conn:
        conn.sendfile(f)
    ftp.voidresp()
    elapsed = time.perf_counter() - started
    ftp.quit()
    return elapsed


CLIENTS = {"ulnet": run_ulnet, "ulnet-buffer": run_ulnet_buffer, "curl": run_curl,
           "ftplib": run_ftplib, "limit": run_limit}


def one_upload(srv, client, path, size):
    """(wall seconds from connect to 226, CPU seconds of the client)"""
    name = client + ".bin"
    cpu = cpu_seconds()
    elapsed = CLIENTS[client](srv, path, name)
    cpu = cpu_seconds() - cpu
    stored = os.path.join(srv.home, name)
    if os.path.getsize(stored) != size:
        raise RuntimeError("%s stored %d of %d bytes" % (client, os.path.getsize(stored), size))
    os.remove(stored)
    return elapsed, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpus", choices=("same", "split"), default="same")
    parser.add_argument("--server", choices=tuple(SERVERS), default="pure-ftpd" if PureFTPD.EXE else "vsftpd")
    args = parser.parse_args()
    server = SERVERS[args.server]
    if shutil.which("curl") is None or not (server.EXE and os.path.exists(server.EXE)):
        sys.exit("ftp_upload.py needs curl and %s" % args.server)
    cpus = sorted(os.sched_getaffinity(0))
    if os.path.isdir("/dev/shm"):
        tempfile.tempdir = "/dev/shm"
    size = args.size_mib << 20
    if args.cpus == "split" and len(cpus) < 2:
        sys.exit("--cpus split needs two CPUs")
    times = {name: [] for name in CLIENTS}
    used = {name: [] for name in CLIENTS}
    with server() as srv, tempfile.TemporaryDirectory() as tmp:
        # the server forks processes per session, which inherit the affinity; curl inherits ours
        os.sched_setaffinity(srv.proc.pid, {cpus[1] if args.cpus == "split" else cpus[0]})
        os.sched_setaffinity(0, {cpus[0]})
        path = os.path.join(tmp, "scan.bin")
        with open(path, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        order = list(CLIENTS)
        for client in order:  # warm-up: imports, page cache, the server's first fork
            one_upload(srv, client, path, size)
        for i in range(args.rounds):
            for client in order[i % len(order):] + order[:i % len(order)]:  # rotate who goes first
                elapsed, cpu = one_upload(srv, client, path, size)
                times[client].append(elapsed)
                used[client].append(cpu)
                time.sleep(0.2)
    median = {name: statistics.median(t) for name, t in times.items()}
    print("%d MiB upload to %s on loopback, connect to 226, median of %d interleaved rounds, "
          "server and client on %s CPU%s" % (args.size_mib, args.server, args.rounds, args.cpus,
                                             "" if args.cpus == "same" else "s"))
    print("%-13s %9s %8s %9s %9s %9s %13s" % (
        "client", "MB/s", "ms", "x curl", "x limit", "x ftplib", "client CPU ms"))
    for name in CLIENTS:
        t = median[name]
        print("%-13s %9.0f %8.1f %9.2f %9.2f %9.2f %13.0f" % (
            name, size / t / 1e6, t * 1000, median["curl"] / t, median["limit"] / t,
            median["ftplib"] / t, 1000 * statistics.median(used[name])))
    print("(curl's wall time is its own %{time_total}; its CPU time includes its start-up)")
    for peer, goal in GOALS:
        ratio = median[peer] / median["ulnet"]
        print("goal ulnet >= %.1fx %s: %.2fx %s" % (goal, peer, ratio, "met" if ratio >= goal else "NOT met"))


if __name__ == "__main__":
    main()
