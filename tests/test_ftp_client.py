"""The event-driven FTP client against real servers (pyftpdlib and vsftpd) on loopback."""

import hashlib
import os

import pytest

import ulnet
from servers.ftp import PyFTPD, VSFTPD
from ulnet.ftp.client import FTPClient
from ulnet.ftp.ops import temp_name
from ulnet.ftp.url import parse_url

SERVERS = {"pyftpdlib": PyFTPD, "vsftpd": VSFTPD}


@pytest.fixture(params=sorted(SERVERS))
def server(request):
    with SERVERS[request.param]() as srv:
        yield srv


class Session:
    """A client on a fresh eventer, logged in to `server`, recording every report."""

    def __init__(self, server, **knobs):
        self.ev = ulnet.Eventer()
        self.client = FTPClient(self.ev)
        for name, value in knobs.items():
            setattr(self.client, name, value)
        self.reports = []
        self.progress = []
        self.client.on_success = lambda op: self.reports.append((op, "ok", None, None))
        self.client.on_failure = lambda op, code, text: self.reports.append((op, "fail", code, text))
        self.client.on_progress = lambda op, done, total: self.progress.append((op, done, total))
        self.server = server
        host, port, user, password, path, _ = parse_url(server.url)
        self.login = self.client.connect(host, port, user, password)
        if path:
            self.client.cwd(path)

    def wait(self, *ops, timeout_ms=30000):
        self.ev.run_until(lambda: all(op.done for op in ops), timeout_ms)
        # a report comes exactly once per operation
        for op in ops:
            assert [r[0] for r in self.reports].count(op) == 1, op
        return ops

    def close(self):
        self.ev.close()


@pytest.fixture
def session(server):
    s = Session(server)
    yield s
    s.close()


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def on_server(server, name):
    with open(os.path.join(server.home, name), "rb") as f:
        return f.read()


def test_40_files_queued_before_the_loop_all_arrive(session, tmp_path):
    files = {"scan%02d.csv" % i: os.urandom(1000 + 97 * i) for i in range(40)}
    ops = [session.client.put(write(tmp_path, name, data), name) for name, data in files.items()]
    session.wait(*ops)
    assert all(op.error is None for op in ops)
    for name, data in files.items():
        assert on_server(session.server, name) == data
    # atomic uploads leave no temporary file behind
    assert sorted(os.listdir(session.server.home)) == sorted(files)


def test_12_queued_mkdirs_all_happen_in_order(session):
    ops = [session.client.mkdir("dir%02d" % i) for i in range(12)]
    session.wait(*ops)
    assert [op.error for op in ops] == [None] * 12
    assert sorted(d for d in os.listdir(session.server.home)) == ["dir%02d" % i for i in range(12)]
    assert [r[0] for r in session.reports if r[0] in ops] == ops


def test_upload_20mb_and_download_it_back(session, tmp_path):
    data = os.urandom(20 * 1024 * 1024)
    up = session.client.put(write(tmp_path, "big.bin", data), "big.bin")
    size = session.client.size("big.bin")
    down = session.client.get("big.bin", str(tmp_path / "back.bin"))
    session.wait(up, size, down, timeout_ms=120000)
    assert up.error is None and down.error is None
    assert size.result == len(data)
    assert hashlib.sha256(on_server(session.server, "big.bin")).digest() == hashlib.sha256(data).digest()
    assert (tmp_path / "back.bin").read_bytes() == data
    assert not (tmp_path / "back.bin.part").exists()
    done = [p[1] for p in session.progress if p[0] is up]
    assert done == sorted(done) and done[-1] == len(data)
    assert all(p[2] == len(data) for p in session.progress if p[0] is up)


def test_listings(session, tmp_path):
    names = ["a.txt", "b.txt", "c d.txt"]
    ops = [session.client.put(write(tmp_path, n, b"x" * i), n) for i, n in enumerate(names)]
    nlst = session.client.nlst()
    lst = session.client.list()
    pwd = session.client.pwd()
    feat = session.client.features()
    session.wait(*ops, nlst, lst, pwd, feat)
    assert sorted(nlst.result) == names
    assert len(lst.result) == 3 and all(any(n in line for n in names) for line in lst.result)
    assert pwd.result.startswith("/")
    assert "SIZE" in feat.result and "EPSV" in feat.result


def test_mlsd_on_pyftpdlib(tmp_path):
    with PyFTPD() as srv:
        s = Session(srv)
        try:
            op = s.client.put(write(tmp_path, "f.bin", b"12345"), "f.bin")
            m = s.client.mlsd()
            s.wait(op, m)
            facts = {name: f for f, name in m.result}
            assert facts["f.bin"]["size"] == "5" and facts["f.bin"]["type"] == "file"
        finally:
            s.close()


def test_rename_delete_rmdir_cwd(session, tmp_path):
    c = session.client
    ops = [c.mkdir("sub"), c.cwd("sub"), c.put(write(tmp_path, "x", b"data"), "x"),
           c.rename("x", "y"), c.nlst(), c.delete("y"), c.cwd(".."), c.rmdir("sub")]
    session.wait(*ops)
    assert [op.error for op in ops] == [None] * len(ops)
    assert ops[4].result == ["y"]
    assert not os.path.exists(os.path.join(session.server.home, "sub"))


def test_missing_local_file_fails_at_once_and_sends_nothing(session, tmp_path):
    c = session.client
    first = c.pwd()
    missing = c.put(str(tmp_path / "nope.csv"), "nope.csv")
    after = c.pwd()
    session.wait(first, missing, after)
    assert missing.error is not None and missing.error.code is None
    assert "nope.csv" in missing.error.text and "no such file" in missing.error.text
    assert after.error is None
    assert os.listdir(session.server.home) == []


def test_missing_remote_file_and_directory_are_clear_errors(session, tmp_path):
    c = session.client
    get = c.get("absent.bin", str(tmp_path / "absent.bin"))
    cwd = c.cwd("no/such/dir")
    put = c.put(write(tmp_path, "f", b"1"), "no/such/dir/f")
    session.wait(get, cwd, put)
    assert get.error.code == 550 and cwd.error.code == 550 and put.error.code in (550, 553)
    assert not (tmp_path / "absent.bin").exists() and not (tmp_path / "absent.bin.part").exists()
    # the session goes on: replies stay matched to their own commands
    ok = c.mkdir("still-fine")
    session.wait(ok)
    assert ok.error is None and ok.result.endswith("still-fine")


def test_wrong_password_fails_the_login_and_what_is_queued(tmp_path):
    with PyFTPD() as srv:
        ev = ulnet.Eventer()
        try:
            c = FTPClient(ev)
            reports = []
            c.on_failure = lambda op, code, text: reports.append((op.name, code, text))
            login = c.connect("127.0.0.1", srv.port, "scanner", "WRONG-pw-123")
            put = c.put(write(tmp_path, "f", b"1"), "f")
            ev.run_until(lambda: login.done and put.done, 10000)
            assert login.error.code == 530
            assert put.error is not None and put.error.text == "not connected"
            for _, code, text in reports:
                assert "WRONG-pw-123" not in text
            assert "WRONG-pw-123" not in repr(login) and "WRONG-pw-123" not in str(login.error)
            assert os.listdir(srv.home) == []
        finally:
            ev.close()


def test_server_closing_the_control_connection_fails_everything_once(tmp_path):
    with PyFTPD() as srv:
        s = Session(srv)
        try:
            s.wait(s.login)
            srv.stop()
            ops = [s.client.put(write(tmp_path, "f%d" % i, b"1"), "f%d" % i) for i in range(3)]
            s.wait(*ops)
            assert all(op.error is not None and op.error.code is None for op in ops)
            assert "closed" in ops[0].error.text
        finally:
            s.close()


def test_connect_refused_is_one_failure(tmp_path):
    ev = ulnet.Eventer()
    c = FTPClient(ev)
    from servers.ftp import free_port

    port = free_port()
    login = c.connect("127.0.0.1", port)
    ev.run_until(lambda: login.done, 5000)
    assert login.error.code is None and "connection refused" in login.error.text
    ev.close()


def test_atomic_upload_never_shows_the_final_name_early(server, tmp_path):
    s = Session(server)
    seen = []

    def watch(op, done, total):
        seen.append(os.path.exists(os.path.join(server.home, "final.bin")))

    s.client.on_progress = watch
    try:
        # more than loopback's socket buffers take before the server's 150: progress counts
        # from the 150 on (the data sent before it is reported with it)
        op = s.client.put(write(tmp_path, "final.bin", os.urandom(24 << 20)), "final.bin")
        s.wait(op)
        assert op.error is None and len(seen) > 3
        assert not any(seen)
        assert os.path.exists(os.path.join(server.home, "final.bin"))
        assert not os.path.exists(os.path.join(server.home, temp_name("final.bin")))
    finally:
        s.close()


def count_sendfile_calls(ev):
    """Count the port's sendfile calls (the real call still runs) to tell which pump ran."""
    calls = []
    real = ev.port.sendfile

    def counting(*args):
        calls.append(1)
        return real(*args)

    ev.port.sendfile = counting
    return calls


@pytest.mark.parametrize("use_sendfile", [True, False])
def test_resume_after_the_server_drops_the_data_connection(tmp_path, use_sendfile):
    """Both upload pumps: os.sendfile (the desktop default) and the portable buffer loop."""
    data = os.urandom(8 << 20)
    with PyFTPD(drop_after=3 << 20) as srv:
        s = Session(srv, use_sendfile=use_sendfile)
        calls = count_sendfile_calls(s.ev)
        try:
            local = write(tmp_path, "scan.bin", data)
            first = s.client.put(local, "scan.bin")
            s.wait(first)
            assert first.error is not None
            assert not os.path.exists(os.path.join(srv.home, "scan.bin"))
            partial = os.path.getsize(os.path.join(srv.home, temp_name("scan.bin")))
            assert 0 < partial < len(data)
            second = s.client.put(local, "scan.bin")
            s.wait(second)
            assert second.error is None
            assert second.result == len(data) - partial
            assert on_server(srv, "scan.bin") == data
            assert (len(calls) > 0) == use_sendfile
        finally:
            s.close()


def test_upload_over_the_ce_port_without_probe(tmp_path):
    """A device has no os.sendfile: the upload takes the buffer path, and the CE message pump
    gets FD_WRITE only because a send that would block re-enables it (inside Winsock's send);
    without the probe anything else would hang."""
    data = os.urandom(6 << 20)
    with PyFTPD() as srv:
        ev = ulnet.Eventer("ce", probe_ms=None)
        try:
            c = FTPClient(ev)
            assert not hasattr(ev.port, "sendfile")
            login = c.connect("127.0.0.1", srv.port, srv.user, srv.password)
            put = c.put(write(tmp_path, "ce.bin", data), "ce.bin")
            ev.run_until(lambda: put.done, 30000)
            assert login.error is None and put.error is None
            assert on_server(srv, "ce.bin") == data
        finally:
            ev.close()


def test_disk_full_on_the_server_is_a_clear_error(tmp_path):
    with PyFTPD(quota=100000) as srv:
        s = Session(srv)
        try:
            op = s.client.put(write(tmp_path, "big", os.urandom(500000)), "big")
            s.wait(op)
            # pyftpdlib answers 426 with the errno's text (RFC 959 would say 452 or 552)
            assert (op.error.code, op.error.text) == (426, "No space left on device; transfer aborted.")
            assert not os.path.exists(os.path.join(srv.home, "big"))
        finally:
            s.close()


def test_names_with_line_breaks_are_refused_without_sending(session):
    bad = session.client.delete("x\r\nDELE important")
    ok = session.client.pwd()
    session.wait(bad, ok)
    assert bad.error.text == "CR, LF or NUL in an argument" and ok.error is None


def test_a_bad_argument_fails_that_call_only_and_the_session_goes_on(session, tmp_path):
    # refused before the server sees it: that operation fails with code None, and what is
    # queued behind it runs at once (not after a keep-alive or a deadline)
    c = session.client
    with open(os.path.join(session.server.home, "a.csv"), "wb") as f:
        f.write(b"a")  # RNFR would succeed: the empty new name must fail before it is sent
    bad = {c.mkdir(""): "an empty argument", c.size(5): "bad argument for SIZE",
           c.rename("a.csv", ""): "an empty argument", c.cwd(None): "CWD needs an argument",
           c.list(5): "bad argument for LIST", c.get("", str(tmp_path / "x")): "an empty argument"}
    pwd = c.pwd()
    session.wait(*bad, pwd, timeout_ms=5000)
    assert [(op.error.code, op.error.text) for op in bad] == [(None, text) for text in bad.values()]
    assert pwd.error is None and pwd.result.startswith("/")
    assert c.connected and os.listdir(tmp_path) == []
    assert os.listdir(session.server.home) == ["a.csv"]
    again = c.mkdir("made")
    session.wait(again, timeout_ms=5000)
    assert again.error is None and os.path.isdir(os.path.join(session.server.home, "made"))


@pytest.mark.parametrize("port, user", [(99999, "scanner"), (0, "scanner"), (21, "")])
def test_connect_with_a_bad_port_or_no_user_fails_that_login_naming_it(port, user):
    with PyFTPD() as srv:
        ev = ulnet.Eventer()
        try:
            c = FTPClient(ev)
            login = c.connect("127.0.0.1", port if user else srv.port, user, srv.password)
            after = c.pwd()
            ev.run_until(lambda: after.done, 5000)
            text = "an empty argument" if not user else \
                "connect to 127.0.0.1:%d: port out of range (1-65535)" % port
            assert (login.error.code, login.error.text) == (None, text)
            assert not c.connected and after.error.text == "not connected"
            retry = c.connect("127.0.0.1", srv.port, srv.user, srv.password)  # usable again
            ev.run_until(lambda: retry.done, 5000)
            assert retry.error is None and c.connected
        finally:
            ev.close()


def test_active_mode(tmp_path):
    with PyFTPD() as srv:
        s = Session(srv, passive=False)
        try:
            op = s.client.put(write(tmp_path, "act.bin", b"active" * 1000), "act.bin")
            n = s.client.nlst()
            s.wait(op, n)
            assert op.error is None and n.result == ["act.bin"]
            assert on_server(srv, "act.bin") == b"active" * 1000
        finally:
            s.close()


def test_quit_then_operations_fail_as_not_connected(session):
    q = session.client.quit()
    after = session.client.pwd()
    session.wait(q, after)
    assert q.error is None and after.error.text == "not connected"
