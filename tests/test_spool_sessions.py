"""The upload job over several FTP sessions (4, the CPython default) when the server refuses
something mid-batch: one session's login, one scan's STOR, RNFR or RNTO, a short file behind a
226, a session cut mid-transfer. The others go on; every scan ends on the server exactly once,
byte-identical, and nothing else is left there."""

import os

import pytest

import upy

from servers.ftp import PyFTPD
from ulnet.ftp.session import FTPSession
from test_spool import DEVICE, assert_delivered, make_scans, run_job, small_sizes


def in_order(folder, scans):
    """Give the scans modification times in name order (the job goes oldest first)."""
    for at, name in enumerate(sorted(scans)):
        os.utime(os.path.join(folder, name), (1700000000 + at, 1700000000 + at))


def sent_order(job):
    return [line[5:] for line in job.lines if line.startswith("sent ")]


def test_each_scan_goes_once_oldest_first_over_four_sessions(tmp_path):
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, [1000] * 40)
    for at, name in enumerate(reversed(sorted(scans))):  # the last name is the oldest
        os.utime(os.path.join(spool, name), (1700000000 + at, 1700000000 + at))
    with PyFTPD() as srv:
        job = run_job(srv.url, spool)
        assert_delivered(srv.home, scans)
    uploading = [line.split()[1] for line in job.lines if line.startswith("uploading ")]
    assert sorted(uploading) == sorted(scans)  # one put per scan: never two sessions on one
    assert uploading == sorted(scans, reverse=True)  # handed out oldest first
    assert (job.sent, job.failures, job.used, job.sessions) == (40, 0, 4, 4)


def test_a_login_beyond_the_servers_limit_leaves_the_job_with_the_sessions_it_has(tmp_path):
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, small_sizes(40))
    with PyFTPD(faults=["--max-cons-per-ip", "3"]) as srv:
        job = run_job(srv.url, spool)
        assert_delivered(srv.home, scans)
    assert (job.sent, job.left, job.used, job.sessions, job.failures) == (40, 0, 3, 3, 1)
    assert "3 sessions: cannot log in: 421 Too many connections from the same IP address." in job.lines
    assert not any(line.startswith("retry in") for line in job.lines)  # nothing waited for it


def test_a_552_on_one_scan_and_the_other_sessions_go_on(tmp_path):
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, small_sizes(30))
    in_order(spool, scans)
    with PyFTPD(faults=["--refuse", "STOR:scan005:552 Quota exceeded."]) as srv:
        job = run_job(srv.url, spool)
        assert_delivered(srv.home, scans)
    assert (job.sent, job.left, job.failures) == (30, 0, 1)
    assert job.reason == "server disk full: put scan005.csv failed: 552 Quota exceeded."
    order = sent_order(job)
    assert order.index("scan029.csv") < order.index("scan005.csv")  # the others went first
    assert any(line.startswith("retry in") for line in job.lines)


def test_a_session_cut_mid_transfer_and_the_others_go_on(tmp_path):
    # the server closes the control and data connections of the one upload that reaches
    # 200 KB: that session fails, the others deliver the small scans, and the big one is resumed
    # from its .part (its own bytes: the server took its STOR) on a new session
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, [2000] * 3 + [2 << 20] + [2000] * 16)
    in_order(spool, scans)
    progress = []
    with PyFTPD(faults=["--cut-after", "200000"]) as srv:
        job = run_job(srv.url, spool, on_progress=lambda op, done, total: progress.append((op, done)))
        assert_delivered(srv.home, scans)
    assert (job.sent, job.left, job.failures) == (20, 0, 1)
    assert job.reason.startswith("put scan003.csv failed: ")
    order = sent_order(job)
    assert order.index("scan019.csv") < order.index("scan003.csv")
    puts = [op for op, done in progress if op.args[0].endswith("scan003.csv")]
    last = puts[-1]
    assert puts[0] is not last and last.args[3]  # a second put, resuming
    assert next(done for op, done in progress if op is last) >= 200000


@pytest.mark.parametrize("fault, why", [
    (["--refuse", "RNFR:scan003:550 Not allowed."], "550 Not allowed. (remote path %s-scan003.csv)" % DEVICE),
    (["--refuse", "RNTO:scan003:553 Not allowed."], "553 Not allowed. (remote path %s-scan003.csv)" % DEVICE),
    (["--short-once", "scan003"], "%s-scan003.csv: the server has 4999 bytes, not 5000" % DEVICE),
], ids=["RNFR-refused", "RNTO-refused", "226-then-a-short-file"])
def test_a_refusal_in_the_last_command_group_keeps_the_scan_until_it_is_there(tmp_path, fault, why):
    # RNFR, RNTO and SIZE go in one write: whichever the server refuses (or a SIZE short of the
    # scan), the scan stays in the spool, is sent again and ends on the server once, whole
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, [5000] * 12)
    in_order(spool, scans)
    with PyFTPD(faults=fault) as srv:
        job = run_job(srv.url, spool)
        assert_delivered(srv.home, scans)
    assert (job.sent, job.left, job.failures) == (12, 0, 1)
    assert job.reason == "put scan003.csv failed: " + why
    assert sent_order(job).count("scan003.csv") == 1


def test_a_server_that_drops_commands_sent_together_costs_one_deadline(tmp_path, monkeypatch):
    # the last command group of each put goes in one write: this server takes only its RNFR and
    # never answers the rest. The sessions that sent one fail at the reply deadline and every
    # session sends groups one command at a time from then on; nothing is lost or doubled
    monkeypatch.setattr(FTPSession, "reply_timeout_ms", 1000)
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, small_sizes(12))
    lanes = []
    with PyFTPD(faults=["--one-per-read"]) as srv:
        job = run_job(srv.url, spool, hook=lambda job: lanes.append(job._lanes))
        assert_delivered(srv.home, scans)
    assert (job.sent, job.left) == (12, 0) and 1 <= job.failures <= 4
    assert job.reason.endswith("no reply from the server within 1000 ms")
    assert [lane.session.pipeline for lane in lanes[0]] == [False] * 4


def test_type_goes_once_per_session_and_a_refused_type_keeps_its_scan(tmp_path):
    # TYPE I is sent once per session, not per scan (the machine remembers it). A refused TYPE
    # fails that put (the scan stays and goes again, whole) and is asked again: were it taken
    # as set, the server would store the next scans in ASCII mode (line ends changed)
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, small_sizes(20))
    in_order(spool, scans)
    with PyFTPD(faults=["--refuse", "TYPE:I:504 Not now."]) as srv:
        job = run_job(srv.url, spool)
        assert_delivered(srv.home, scans)
        verbs = srv.verbs()
    assert (job.sent, job.left, job.failures) == (20, 0, 1)
    assert job.reason.endswith("failed: 504 Not now."), job.reason
    assert verbs.count("TYPE") == verbs.count("USER") + 1  # the refused one asked again
    assert verbs.count("STOR") == 20  # the refused put sent none


NO_HEAP_AT_THE_FIRST_LOGIN = """
import micropython
from ulnet.eventer import Eventer
from ulnet.spool import Spool
job = Spool(Eventer(), %r, %r, %r, deadline_ms=30000, sessions=2)
job.on_status = print
job.start()
first = job.clients[0]
login = first.connect

def full(*args, **kw):  # the heap is full as the first session logs in (once)
    first.connect = login
    micropython.heap_lock()
    try:
        return login(*args, **kw)
    finally:
        micropython.heap_unlock()

first.connect = full
job.eventer.run_until(lambda: job.done, 40000)
print(job.sessions, job.used, job.sent, job.left, job.failures)
"""


def test_no_heap_at_the_first_login_drops_the_other_session_and_goes_on_with_one(tmp_path):
    """On a board (the MicroPython unix port), the first login of a 2-session job runs out of
    heap (a real MemoryError, the heap locked for that call): the job drops its other session at
    once, giving its buffers back, says so, and logs in again with one; every scan arrives once.
    (Before, it kept both, waited the backoff and tried the same again.)"""
    spool = str(tmp_path / "spool")
    scans = make_scans(spool, small_sizes(12))
    with PyFTPD() as srv:
        done = upy.run(NO_HEAP_AT_THE_FIRST_LOGIN % (srv.url, spool, DEVICE), heap="512K", timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_delivered(srv.home, scans), done.stdout
    lines = done.stdout.splitlines()
    assert "1 session: no heap for more (cannot log in: out of memory)" in lines, lines
    assert not any(line.startswith("retry in") for line in lines), lines  # no backoff for it
    assert lines[-1] == "1 1 12 0 1", lines  # sessions, used, sent, left, failures
