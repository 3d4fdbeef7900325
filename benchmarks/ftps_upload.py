"""FTPS upload benchmark: one 100 MiB file by explicit FTPS (AUTH TLS, PROT P: the data is
encrypted too) to pure-ftpd (or vsftpd) on loopback, connect to 226, every client verifying the
server's certificate against the test CA (tests/servers/certs.py).

Clients, measured in the same run with interleaved rounds (medians reported, with ratios):
- ulnet: the blocking facade, ulnet.FTP("ftpes://...", cafile=CA), a plain put (one STOR,
  atomic=False, resume=False, as every peer here does); TLS data goes through the buffer pump
  (no sendfile: the bytes must pass through the TLS library);
- curl --ssl-reqd -T (libcurl with OpenSSL, C), timed by its own %{time_total}, so its process
  start-up is not counted;
- lftp with ftp:ssl-force and ftp:ssl-protect-data (GnuTLS, C++), timed from its start: its
  start-up (printed, measured with an lftp that only exits) is counted;
- ftplib: FTP_TLS with prot_p(), storbinary with 8 KiB blocks; its data connections resume the
  control connection's TLS session (ftplib's own do not, which vsftpd refuses), otherwise as
  ftplib ships.
Beside the wall time, the client CPU per MB: this process's own time for ulnet and ftplib,
the child's for curl and lftp (resource.getrusage). The rounds, checks and table are
benchmarks/uploads.py's, shared with ftp_upload.py (see its docstring for --cpus).

    python benchmarks/ftps_upload.py [--size-mib 100] [--rounds 5] [--cpus same|split]
                                     [--server pure-ftpd|vsftpd]
"""

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import uploads  # noqa: E402  (benchmarks/uploads.py)
from ftp_upload import run_curl, run_ftplib, run_ulnet  # noqa: E402
from servers.certs import Certs  # noqa: E402
from servers.ftp import ReusingFTP_TLS  # noqa: E402

# the goals for ulnet, as (peer, least ratio ulnet / peer)
GOALS = (("curl", 1.0), ("ftplib", 1.2))


def clients(ca):
    def ulnet(srv, path, name):
        return run_ulnet(srv, path, name, cafile=ca)

    def curl(srv, path, name):
        # curl's explicit FTPS is ftp:// with --ssl-reqd (its ftps:// is implicit)
        return run_curl(srv, path, name, "--ssl-reqd", "--cacert", ca, url=srv.url.replace("ftpes://", "ftp://"))

    def lftp(srv, path, name):
        url = urllib.parse.urlsplit(srv.url)
        script = ("set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file %s; "
                  "open -u %s,%s -p %d 127.0.0.1; cd %s; put %s -o %s"
                  % (ca, url.username, url.password, srv.port, url.path or "/", path, name))
        started = time.perf_counter()
        subprocess.run(["lftp", "-c", script], check=True, timeout=120, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    def ftplib_tls(srv, path, name):
        return run_ftplib(srv, path, name, ReusingFTP_TLS(context=ssl.create_default_context(cafile=ca)))

    return {"ulnet": ulnet, "curl": curl, "lftp": lftp, "ftplib": ftplib_tls}


def lftp_startup():
    """Seconds an lftp that only exits takes (median of 5): what its timing includes."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(["lftp", "-c", "exit"], check=True, timeout=30)
        times.append(time.perf_counter() - started)
    return sorted(times)[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    uploads.add_arguments(parser)
    args = parser.parse_args()
    uploads.check_tools(args, "curl", "lftp")
    with tempfile.TemporaryDirectory(prefix="ulnet-certs-") as folder:
        certs = Certs(folder)
        server = uploads.SERVERS[args.server]
        times, used = uploads.measure(args, lambda: server(tls="explicit", cert=certs["good"]), clients(certs.ca))
    uploads.report(args, "explicit FTPS upload (PROT P)", times, used, ("curl", "ftplib"), GOALS, "ms/MB")
    print("(lftp is timed from its start; an lftp that only exits takes %.0f ms here)" % (1000 * lftp_startup()))


if __name__ == "__main__":
    main()
