"""Fuzz: the upload job's journal (core/spool.py), against a real server (pyftpdlib).

Property: whatever bytes the journal holds (torn, garbage, a name outside the spool, a NUL, a
wrong size, a number int() takes in another script), the job delivers every scan exactly once,
byte-identical, ends by itself, and touches nothing outside the spool. The journal is only ever
a hint: the job's rules say every outcome without it is right, only slower.
"""

import os

import pytest
from fuzzing import fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from servers.ftp import PyFTPD
from test_spool import DEVICE, assert_delivered, make_scans, run_job

SIZES = [1500, 20]
NAMES = st.one_of(st.sampled_from(["scan000.csv", "scan001.csv", "../outside.txt", "scan000.csv\x00",
                                   "/etc/passwd", "sent", "bad", ".journal", "", "a/b", "scan000.csv\n",
                                   "../spool/scan000.csv", "..", "."]),
                  st.text(max_size=12))
NUMBERS = st.one_of(st.sampled_from(["1500", "20", "0", "-1", "\u0661\u0665\u0660\u0660", "1e3", " 20",
                                     "99999999999999999999", "", "20 "]), st.integers(-5, 10 ** 6).map(str))
HOSTILE = st.tuples(st.sampled_from(["1500", "20"]), st.sampled_from(
    ["../outside.txt", "scan000.csv\x00", "scan001.csv\x00x", "../spool/scan001.csv", "sent", "/etc/passwd"]))
JOURNALS = st.one_of(HOSTILE, st.tuples(NUMBERS, NAMES)).map(
    lambda t: ("%s %s" % t).encode("utf-8", "surrogatepass")) | st.binary(max_size=40)


@pytest.fixture(scope="module")
def server():
    with PyFTPD() as srv:
        yield srv


@fuzz(8, shrink=False)  # each example is a job against the server: the failing case is named
@given(journal=JOURNALS)
@example(journal=b"1500 scan000.csv\x00")  # os.stat raised ValueError: the job never started
@example(journal=b"20 ../outside.txt")  # the job uploaded, then deleted a file outside the spool
def test_any_journal_leaves_every_scan_delivered_once_and_nothing_else_touched(server, tmp_path_factory, journal):
    base = str(tmp_path_factory.mktemp("job"))
    spool = os.path.join(base, "spool")
    scans = make_scans(spool, SIZES)
    with open(os.path.join(base, "outside.txt"), "wb") as f:
        f.write(b"x" * 20)  # the size of a scan: a journal naming it must not matter
    with open(os.path.join(spool, ".journal"), "wb") as f:
        f.write(journal)
    home = os.path.join(server.home, os.path.basename(base))
    os.mkdir(home)
    os.mkdir(os.path.join(home, DEVICE + "-.."))  # where "../outside.txt" could go
    job = run_job(server.url + os.path.basename(base), spool, deadline_ms=10000)
    assert job.status.startswith("done: 2 sent"), (journal, job.lines)
    os.rmdir(os.path.join(home, DEVICE + "-.."))  # still empty
    assert_delivered(home, scans)
    assert sorted(os.listdir(base)) == ["outside.txt", "spool"] and os.listdir(spool) == []
    with open(os.path.join(base, "outside.txt"), "rb") as f:
        assert f.read() == b"x" * 20
