"""FTP over the CE port under every Winsock fault, against pyftpdlib, on the buffer path a device
runs (no os.sendfile): one upload session per seed, and the store-and-forward upload job.

Faults that lose nothing run without the probe (as strict as a device without a watchdog);
drop and suspend run with it. Checked: the file arrives byte-identical, or the operation fails
with a clear error (the error-carrying faults: a reset link, a failed connect, a device that
slept); the control connection's on_connect fires once and its end of stream at most once; no
callback reaches a closed socket; every session ends before its deadline; and the job delivers
every scan exactly once, whatever the fault. ULNET_CE_SEEDS raises the seed count;
benchmarks/ce_faults.py runs the big sweep.
"""

import os

import pytest

import ulnet
from servers.ftp import PyFTPD
from test_spool import DEVICE, assert_delivered, make_scans
from ulnet.ftp.session import FTPSession
from ulnet.ports.ce import Port
from ulnet.ports.ce_source import FAULTS, LOSSY
from ulnet.spool import Spool

SEEDS = int(os.environ.get("ULNET_CE_SEEDS", "6"))
PAYLOAD = os.urandom(48 * 1024)
RATES = {"drop": 0.2, "duplicate": 0.3, "spurious": 0.3, "stale": 0.3, "reset": 0.3, "connect_error": 0.3}
# faults after which an operation may fail (each with a clear error), not only succeed
FAILING = ("reset", "connect_error", "suspend")
# deadlines of the session under test: silence turns into an error well before the test gives up
SESSION_DEADLINE_MS = 20000


def ce(fault, seed):
    ev = ulnet.Eventer(port="ce", faults={fault: RATES.get(fault, True)}, seed=seed,
                       probe_ms=Port.PROBE_MS if fault in LOSSY else None)
    ev.port.source.suspend_ms = 300
    return ev


def brief(session):
    """Deadlines short enough that a link gone silent ends a test session in seconds."""
    session.connect_timeout_ms = session.reply_timeout_ms = session.data_idle_ms = 2000


@pytest.fixture(scope="module")
def server():
    with PyFTPD() as srv:
        yield srv


@pytest.fixture(scope="module")
def local_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ce") / "scan.bin"
    path.write_bytes(PAYLOAD)
    return str(path)


class Watch:
    """Counts the control connection's events and catches callbacks on closed sockets."""

    def __init__(self, session):
        self.session = session
        self.connects = self.ends = self.after_close = 0
        tcp = session._conn  # one TCP object holds the control and the data connections
        for name in ("on_receive", "on_can_send", "on_disconnect", "on_error", "on_connect"):
            setattr(tcp, name, self._wrap(name, getattr(tcp, name)))

    def _wrap(self, name, inner):
        def event(sock, *args):
            if sock.state == "closed":
                self.after_close += 1
            if sock is self.session._ctl and name == "on_connect":
                self.connects += 1
            if sock is self.session._ctl and name == "on_disconnect":
                self.ends += 1
            if inner is not None:
                return inner(sock, *args)

        return event


def session(ev, server, local_file, remote):
    s = FTPSession(ev)
    brief(s)
    watch = Watch(s)
    ops = [s.connect("127.0.0.1", server.port, server.user, server.password),
           s.put(local_file, remote), s.quit()]
    ev.run_until(lambda: all(op.done for op in ops), SESSION_DEADLINE_MS)
    for _ in range(3):
        ev.call_action(5)
    return ops, watch


@pytest.mark.parametrize("fault", FAULTS)
def test_upload_survives(fault, server, local_file):
    completed = 0
    for seed in range(SEEDS):
        remote = "ce-%s-%d.bin" % (fault, seed)
        with ce(fault, seed) as ev:
            assert not hasattr(ev.port, "sendfile")  # a device's buffer path
            ops, watch = session(ev, server, local_file, remote)
        what = "%s seed %d: %s" % (fault, seed, [str(op.error) for op in ops])
        final = os.path.join(server.home, remote)
        if ops[1].error is None:
            completed += 1
            with open(final, "rb") as f:
                assert f.read() == PAYLOAD, what
        else:
            assert fault in FAILING, what
            # a clear reason, and never a partial file under the final name
            assert str(ops[1].error), what
            assert not os.path.exists(final) or open(final, "rb").read() == PAYLOAD, what
        assert watch.connects <= 1 and watch.ends <= 1 and watch.after_close == 0, what
    assert completed == SEEDS or fault in FAILING and completed


@pytest.mark.parametrize("fault", FAULTS)
def test_upload_job_delivers_every_scan_once(fault, server, tmp_path):
    for seed in range(2):
        spool = str(tmp_path / ("spool%d" % seed))
        scans = make_scans(spool, [0, 300, 20000, 70000], seed=seed)
        folder = "job-%s-%d" % (fault, seed)
        os.mkdir(os.path.join(server.home, folder))
        with ce(fault, seed) as ev:
            job = Spool(ev, server.url + folder, spool, DEVICE, deadline_ms=30000)
            job.backoff_ms = 100
            job.start()
            for client in job.clients:
                brief(client)
            ev.run_until(lambda: job.done, 40000)
            source = ev.port.source
        assert job.status.startswith("done: 4 sent"), (fault, seed, job.status)
        assert_delivered(os.path.join(server.home, folder), scans)
        assert os.listdir(spool) == []
        if fault == "suspend":
            assert source.suspended == 1  # the device slept during the job, and it recovered


def test_control_on_the_desktop_port(server, local_file):
    for seed in range(SEEDS):
        remote = "desktop-%d.bin" % seed
        with ulnet.Eventer() as ev:
            ops, watch = session(ev, server, local_file, remote)
        assert [op.error for op in ops] == [None, None, None]
        with open(os.path.join(server.home, remote), "rb") as f:
            assert f.read() == PAYLOAD
        assert watch.connects == 1 and watch.ends <= 1 and watch.after_close == 0


@pytest.mark.parametrize("fault", [None] + [f for f in FAULTS if f not in LOSSY and f not in FAILING])
def test_ftps_uploads_in_a_row_arrive_whole(fault, certs, tmp_path):
    """Explicit FTPS over the CE port (its TLS works on memory and moves every byte through the
    emulated Winsock sockets): each upload's data connection says close_notify and ends its
    TCP stream before it is closed (see test_ftps.py), under every fault that loses nothing."""
    big, small = os.urandom(256 * 1024), b"scan;1\n" * 40
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "small").write_bytes(small)
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv, \
            (ce(fault, 1) if fault else ulnet.Eventer(port="ce")) as ev:
        s = FTPSession(ev)
        brief(s)
        login = s.connect("127.0.0.1", srv.port, srv.user, srv.password, "explicit", certs.ca)
        ops = [s.put(str(tmp_path / ("big" if i % 4 == 0 else "small")), "f%d" % i) for i in range(12)]
        ev.run_until(lambda: all(op.done for op in ops), 60000)
        assert login.error is None and "tls verified" in repr(s), (login.error, repr(s))
        for i, op in enumerate(ops):
            assert op.error is None, (fault, i, op.error)
            with open(os.path.join(srv.home, "f%d" % i), "rb") as f:
                assert f.read() == (big if i % 4 == 0 else small), (fault, i)
