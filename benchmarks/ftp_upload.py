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
its binary is found (on PATH, in /usr/sbin or /opt/pure-ftpd), as the issue's reference
figures were measured against it, else vsftpd (the Debian packages conflict, so a machine
usually has one of them). Each upload is checked for its size on the server and then removed.
Besides the wall time, the table shows the CPU time the client itself used. The rounds, the
checks and the table are benchmarks/uploads.py's, shared with ftps_upload.py.

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
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import uploads  # noqa: E402  (benchmarks/uploads.py: rounds, checks, the table)

import ulnet  # noqa: E402

# the goals for ulnet, as (peer, least ratio ulnet / peer)
GOALS = (("curl", 1.0), ("limit", 0.9), ("ftplib", 1.2))


def ftplib_session(srv, ftp=None):
    """ftp (default a new ftplib.FTP) logged in to srv and in its upload folder."""
    url = urllib.parse.urlsplit(srv.url)  # each server has its own login and upload folder
    ftp = ftp or ftplib.FTP()
    ftp.connect("127.0.0.1", srv.port)
    ftp.login(url.username, url.password)
    ftp.cwd(url.path)
    return ftp


def run_ulnet(srv, path, name, use_sendfile=True, **tls):
    started = time.perf_counter()
    with ulnet.FTP(srv.url, timeout_s=30, **tls) as ftp:
        ftp.client.use_sendfile = use_sendfile
        ftp.put(path, name, atomic=False, resume=False)
        return time.perf_counter() - started  # at the 226; QUIT is not timed


def run_ulnet_buffer(srv, path, name):
    return run_ulnet(srv, path, name, use_sendfile=False)


def run_curl(srv, path, name, *options, url=None):
    done = subprocess.run(
        ["curl", "-sS"] + list(options) + ["-T", path, "-w", "%{time_total}", (url or srv.url) + "/" + name],
        capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout)


def run_ftplib(srv, path, name, ftp=None):
    started = time.perf_counter()
    ftp = ftplib_session(srv, ftp)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    uploads.add_arguments(parser)
    args = parser.parse_args()
    uploads.check_tools(args, "curl")
    times, used = uploads.measure(args, uploads.SERVERS[args.server], CLIENTS)
    uploads.report(args, "upload", times, used, ("curl", "limit", "ftplib"), GOALS)


if __name__ == "__main__":
    main()
