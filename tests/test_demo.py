"""`ulnet demo`, the user's first experience, end to end: real pyftpdlib, a real emulated board."""

import os
import re
import subprocess
import sys

from servers.ftp import PyFTPD

ULNET = [sys.executable, "-m", "ulnet.tools"]


def run_demo(*args):
    return subprocess.run(ULNET + ["demo", *args], capture_output=True, text=True, timeout=300)


def test_demo_uploads_every_scan_and_says_so():
    done = run_demo()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "demo OK" in out
    assert re.search(r"files uploaded\s+41\n", out)
    assert re.search(r"checked on the server\s+41 of 41 identical", out)
    peak = int(re.search(r"peak live heap on the board\s+(\d+) B of 64K", out).group(1))
    assert 0 < peak < 64 * 1024
    # the random password of the demo's server never shows
    assert re.search(r"ftp://scanner:\*\*\*@127\.0\.0\.1:\d+/scans", out)


def test_demo_against_a_given_server():
    with PyFTPD() as srv:
        os.mkdir(os.path.join(srv.home, "in"))
        done = run_demo("--server", srv.url + "in")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        names = sorted(os.listdir(os.path.join(srv.home, "in")))
        assert len(names) == 41 and all(n.startswith("DEMO01-") for n in names)
        assert srv.password not in done.stdout + done.stderr


def test_demo_with_a_server_that_refuses_the_login_fails_clearly():
    with PyFTPD() as srv:
        url = "ftp://scanner:wrong-one@127.0.0.1:%d/" % srv.port
        done = subprocess.run(ULNET + ["demo", "--server", url], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1
        assert "demo FAILED" in done.stdout and "login refused: 530" in done.stdout
        assert "wrong-one" not in done.stdout + done.stderr
