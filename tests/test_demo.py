"""`ulnet demo`, the user's first experience, end to end: real pyftpdlib, a real emulated board."""

import os
import re
import subprocess
import sys

import pytest

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


def expected_scans():
    """The 41 files the demo has the board write (tools/demo.py WRITE_SCANS), recomputed here,
    so the server's bytes are checked against what they must be, not against the demo's word."""
    scans = {}
    for i in range(40):
        rows = ["%013d,%d,DOCK-%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1, i % 4) for j in range(20 + i % 30)]
        scans["scan%04d.csv" % i] = ("barcode,count,station\n" + "".join(rows)).encode()
    scans["photo0001.jpg"] = b"".join(bytes((i * 31 + k * 7) & 255 for i in range(1024)) for k in range(96))
    return scans


def test_demo_against_a_given_server():
    with PyFTPD() as srv:
        os.mkdir(os.path.join(srv.home, "in"))
        done = run_demo("--server", srv.url + "in")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert re.search(r"checked on the server\s+41 of 41 identical", done.stdout)
        folder = os.path.join(srv.home, "in")
        on_server = {}
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                on_server[name] = f.read()
        assert on_server == {"DEMO01-" + name: data for name, data in expected_scans().items()}
        assert srv.password not in done.stdout + done.stderr


def test_demo_with_a_server_that_refuses_the_login_fails_clearly():
    with PyFTPD() as srv:
        url = "ftp://scanner:wrong-one@127.0.0.1:%d/" % srv.port
        done = subprocess.run(ULNET + ["demo", "--server", url], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1
        last = done.stdout.splitlines()[-1]
        assert last.startswith("demo FAILED: 41 scans left on the board; login refused: 530"), done.stdout
        assert "0 of 0 identical" not in done.stdout  # issue 12 item 16: the reason is the last line
        assert "wrong-one" not in done.stdout + done.stderr


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_demo_on_a_32_bit_board_with_ulnet_frozen_in(firmware32):
    done = run_demo("--firmware", firmware32.path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "deploy  nothing: ulnet is frozen into the board's firmware\n" in done.stdout
    assert re.search(r"checked on the server\s+41 of 41 identical", done.stdout)


def test_demo_on_a_board_too_small_says_so_in_one_line():
    """Issue 12 item 16: at --heap 40K the demo ended in a bare MemoryError."""
    done = run_demo("--heap", "40K")
    assert done.returncode == 1
    assert done.stderr.startswith("ulnet demo: the board ran out of heap (MemoryError: ") and \
        done.stderr.endswith("): the demo needs a board with 52K of heap or more; try --heap 64K\n"), done.stderr
    assert done.stderr.count("\n") == 1
