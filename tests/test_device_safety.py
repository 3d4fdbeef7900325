"""A user's device is theirs: `ulnet hil` and `ulnet demo --board` on a board prepared like a
scanner in service (its own /ulnet.json, a /spool with pending scans, user files, its own /lib
with ulnet, a boot.py importing it) leave every file on it byte-identical, after passing and
failing tests, after a Ctrl-C and after a run killed outright, and never send its scans anywhere.
An emulated board's / is a host folder: the listing is taken there, with every file's sha256."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from servers.ftp import PyFTPD
from test_hil import make_tests_folder
from ulnet.tools import device as dev
from ulnet.tools.board import Board

ULNET = [sys.executable, "-m", "ulnet.tools"]
BOARD_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "board_tests")

pytestmark = pytest.mark.timeout(400)

TESTS = '''
DEADLINE_S = 30


def test_writes_files_and_runs_the_job_from_its_own_config(ftp_url):
    import json
    import os
    import ulnet.spool

    with open("upload.bin", "wb") as f:
        f.write(bytes(4096))
    os.mkdir("spool")
    with open("spool/scan0001.csv", "w") as f:  # the user's spool holds a scan of this name
        f.write("test scan\\n")
    with open("ulnet.json", "w") as f:
        f.write(json.dumps({"url": ftp_url, "device_id": "HILTEST", "spool": os.getcwd() + "/spool"}))
    job = ulnet.spool.run_from_config("ulnet.json", lambda text: None)
    assert (job.sent, job.left) == (1, 0), job.summary()


def test_fails_after_writing():
    with open("half.bin", "wb") as f:
        f.write(b"x" * 100)
    assert False, "fails on purpose"
'''

HANGS = '''
DEADLINE_S = 120


def test_passes_first():
    pass


def test_hangs_until_interrupted():
    with open("hang.bin", "wb") as f:
        f.write(b"written before the hang")
    while True:
        pass
'''

CONFTEST = '''
import os
import sys

import pytest

from ulnet.tools.hil_pytest import *  # noqa

sys.path.insert(0, %r)
from servers.ftp import PyFTPD  # noqa: E402


@pytest.fixture
def ftp_url():
    with PyFTPD() as server:
        os.mkdir(os.path.join(server.home, "in"))
        yield server.url + "in"
''' % os.path.dirname(os.path.abspath(__file__))


def listing(flash):
    """{path: sha256 or 'dir'} of everything on the board."""
    found = {}
    for folder, dirs, files in os.walk(flash):
        for name in dirs:
            found["/" + os.path.relpath(os.path.join(folder, name), flash)] = "dir"
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                found["/" + os.path.relpath(os.path.join(folder, name), flash)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture
def scanner(tmp_path):
    """An emulated board in service: (board, flash, the user's own FTP server)."""
    flash = tmp_path / "flash"
    with PyFTPD() as users_server, Board(heap="128K", flash=str(flash)) as board:
        os.mkdir(os.path.join(users_server.home, "in"))
        done = subprocess.run(ULNET + ["deploy", board.url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        (flash / "ulnet.json").write_text(json.dumps(
            {"url": users_server.url + "in", "device_id": "SCANNER7", "spool": "/spool", "keep": True}))
        (flash / "spool" / "sent").mkdir(parents=True)
        (flash / "spool" / "scan0001.csv").write_text("4006381333931,1\n")
        (flash / "spool" / "scan0002.csv").write_text("4006381333948,3\n")
        (flash / "spool" / "sent" / "scan0000.csv").write_text("4006381333900,2\n")
        (flash / "spool" / ".journal").write_text("16 scan0001.csv")
        (flash / "boot.py").write_text("import ulnet  # the scanner's own copy, from /lib\n")
        (flash / "main.py").write_text("import ulnet.spool\nulnet.spool.run_from_config()\n")
        (flash / "lib" / "vendor.py").write_text("VENDOR = 1\n")
        (flash / "data").mkdir()
        (flash / "data" / "notes.txt").write_text("the user's own file\n")
        yield board, flash, users_server


def hil(device, folder, **kwargs):
    return subprocess.Popen(ULNET + ["hil", device, "--tests", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=str(folder), **kwargs)


def interrupt_while_hanging(device, folder, sig):
    """Start `ulnet hil`, send sig once the hanging test runs on the board; returns its output."""
    proc = hil(device, folder)
    out = ""
    try:
        for line in proc.stdout:
            out += line
            if "test_passes_first pass" in line:
                break
        time.sleep(2)  # the hanging test is running on the board now
        proc.send_signal(sig)
        out += proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
        proc.wait(10)
    assert "test_passes_first pass" in out, out
    return out


def test_hil_and_demo_leave_a_scanner_in_service_byte_identical(scanner, tmp_path):
    board, flash, users_server = scanner
    before = listing(flash)
    assert before["/lib/ulnet/__init__.mpy"] != "dir" and "/spool/scan0001.csv" in before
    tests = make_tests_folder(tmp_path / "tests", {"test_writes.py": TESTS, "conftest.py": CONFTEST})
    hangs = make_tests_folder(tmp_path / "hangs", {"test_hangs.py": HANGS, "conftest.py": CONFTEST})

    done = hil(board.url, tests)
    out = done.communicate(timeout=200)[0]
    assert "test_writes_files_and_runs_the_job_from_its_own_config pass" in out, out
    assert "test_fails_after_writing fail" in out and "fails on purpose" in out
    assert out.splitlines()[-1].startswith("1 passed, 1 failed"), out
    assert listing(flash) == before

    interrupt_while_hanging(board.url, hangs, signal.SIGINT)
    assert listing(flash) == before  # Ctrl-C: the run cleans up on its way out

    interrupt_while_hanging(board.url, hangs, signal.SIGKILL)
    left = set(listing(flash)) - set(before)
    assert left and all(p.startswith(dev.WORK_DIR) for p in left), left  # only its work folder
    done = hil(board.url, tests)
    out = done.communicate(timeout=200)[0]
    assert out.splitlines()[-1].startswith("1 passed, 1 failed"), out
    assert listing(flash) == before  # the next run removed what the killed one left

    with PyFTPD() as demo_server:
        os.mkdir(os.path.join(demo_server.home, "scans"))
        demo = subprocess.run(ULNET + ["demo", "--board", board.url, "--server", demo_server.url + "scans"],
                              capture_output=True, text=True, timeout=200)
        assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr
        uploaded = os.listdir(os.path.join(demo_server.home, "scans"))
    assert len(uploaded) == 41 and all(name.startswith("DEMO01-") for name in uploaded), uploaded
    assert not any("scan0001" in name and "SCANNER7" in name for name in uploaded)
    assert listing(flash) == before
    # nothing ran the scanner's own job: its server got nothing
    assert os.listdir(os.path.join(users_server.home, "in")) == []


def test_a_board_with_its_own_spool_folder_runs_the_board_tests(tmp_path):
    """Issue 12 item 2: `ulnet hil` failed with EEXIST on a board that already had /spool."""
    flash = tmp_path / "flash"
    (flash / "spool").mkdir(parents=True)
    (flash / "spool" / "scan0001.csv").write_text("4006381333931,1\n")
    with Board(heap="256K", flash=str(flash)) as board:  # ulnet from files: more heap than ROMFS
        before = listing(flash)
        done = subprocess.run([sys.executable, "-m", "pytest", os.path.join(BOARD_TESTS, "test_spool.py"),
                               "--board", board.url, "-p", "no:cacheprovider", "-q"],
                              capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
        assert listing(flash) == before
    assert "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr
