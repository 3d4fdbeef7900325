"""Issue 6's acceptance: FTP uploads to pyftpdlib over the CE port under every injected fault,
100 seeds each (and all faults combined), with the desktop port as the control.

Each session: login (the greeting must be read), one upload, QUIT. Checked: the file arrives
byte-identical, the control connection's on_connect fires exactly once and its end of stream
at most once (only after QUIT), no callback ever reaches a closed socket, and every session ends
before its deadline.
"""

import os

import pytest

import ulnet
from servers.ftp import PyFTPD
from ulnet.ftp.session import FTPSession
from ulnet.ports.ce_source import FAULTS

SEEDS = int(os.environ.get("ULNET_CE_SEEDS", "100"))
PAYLOAD = os.urandom(48 * 1024)
RATES = {"drop": 0.2, "duplicate": 0.3, "spurious": 0.3, "stale": 0.3}
CASES = [{name: RATES.get(name, True)} for name in FAULTS]
CASES.append({name: RATES.get(name, True) for name in FAULTS})
# deadlines of the session under test: silence turns into an error well before the test gives up
SESSION_DEADLINE_MS = 20000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
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
    s.reply_timeout_ms = s.data_idle_ms = 5000
    watch = Watch(s)
    ops = [s.connect("127.0.0.1", server.port, server.user, server.password),
           s.put(local_file, remote), s.quit()]
    ev.run_until(lambda: all(op.done for op in ops), SESSION_DEADLINE_MS)
    for _ in range(3):
        ev.call_action(5)
    return ops, watch


def check(ops, watch, server, remote, what):
    assert [op.error for op in ops] == [None, None, None], what
    with open(os.path.join(server.home, remote), "rb") as f:
        assert f.read() == PAYLOAD, what
    assert watch.connects == 1, what
    assert watch.ends <= 1, what
    assert watch.after_close == 0, what


@pytest.mark.parametrize("faults", CASES, ids=["+".join(c) if len(c) == 1 else "all" for c in CASES])
def test_upload_survives(faults, server, local_file):
    for seed in range(SEEDS):
        remote = "ce-%s-%d.bin" % ("-".join(sorted(faults)) if len(faults) == 1 else "all", seed)
        with ulnet.Eventer(port="ce", faults=faults, seed=seed) as ev:
            ops, watch = session(ev, server, local_file, remote)
        check(ops, watch, server, remote, "faults %s seed %d" % (faults, seed))


def test_control_on_the_desktop_port(server, local_file):
    for seed in range(SEEDS):
        remote = "desktop-%d.bin" % seed
        with ulnet.Eventer() as ev:
            ops, watch = session(ev, server, local_file, remote)
        check(ops, watch, server, remote, "desktop run %d" % seed)
