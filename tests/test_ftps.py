"""FTPS (RFC 4217) against real servers on loopback: pyftpdlib's TLS handler, vsftpd (which
demands that data connections resume the control connection's TLS session) and pure-ftpd, with
the certificates of tests/servers/certs.py; and the refusals, each a clear error with nothing
sent in clear (the servers record what they saw: never USER, never PASS)."""

import os

import pytest

import ulnet
from servers.ftp import VSFTPD, PureFTPD, PyFTPD
from servers.scripted_ftp import ScriptedFTP
from upy import run as upy_run

pure_ftpd = pytest.mark.skipif(not (PureFTPD.EXE and os.geteuid() == 0),
                               reason="pure-ftpd (unpacked into /opt/pure-ftpd by ./ulnet test) runs as root only")


def servers(certs, mode):
    """The FTPS servers for mode ("explicit", "implicit"): pure-ftpd as Debian builds it has no
    implicit TLS."""
    found = [PyFTPD(tls=mode, cert=certs["good"]), VSFTPD(tls=mode, cert=certs["good"])]
    if mode == "explicit" and PureFTPD.EXE and os.geteuid() == 0:
        found.append(PureFTPD(tls=mode, cert=certs["good"]))
    return found


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_upload_download_and_listing_over_tls_are_byte_identical(certs, tmp_path, mode):
    data = os.urandom(1 << 20) + b"\r\n\x00tail"
    local = tmp_path / "scan.bin"
    local.write_bytes(data)
    for srv in servers(certs, mode):
        with srv, ulnet.FTP(srv.url, timeout_s=10, cafile=certs.ca) as ftp:
            assert repr(ftp).endswith(" connected tls verified>"), repr(ftp)
            assert ftp.put(str(local), "scan.bin") == len(data)
            with open(os.path.join(srv.home, "scan.bin"), "rb") as f:
                assert f.read() == data, srv.name
            assert "scan.bin" in ftp.nlst(), srv.name  # a listing's data connection is TLS too
            assert any(line.endswith("scan.bin") for line in ftp.list()), srv.name
            assert ftp.get("scan.bin", str(tmp_path / "back.bin")) == len(data)
            assert (tmp_path / "back.bin").read_bytes() == data, srv.name
            assert ftp.size("scan.bin") == len(data)


@pytest.mark.parametrize("make", [lambda certs: PyFTPD(tls="explicit", cert=certs["good"]),
                                  lambda certs: VSFTPD(tls="explicit", cert=certs["good"])])
def test_uploads_in_a_row_all_arrive_whole(certs, tmp_path, make):
    """Each upload's data connection ends with close_notify and its TCP end, and is closed only
    after the final reply: closed at once, the TLS 1.3 session tickets the server writes late
    met a reset, which cost the server the data it had not read yet (pyftpdlib stored 112 KB
    of 1 MB and said 226, vsftpd said 426, in about 1 upload of 5). Small uploads wait for the
    150 before their data: pyftpdlib's TLS handler took data and close_notify that came before
    the STOR for the end of a connection nobody wanted, and the STOR then waited for ever."""
    big, small = os.urandom(1 << 20), b"scan;1\n" * 40
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "small").write_bytes(small)
    with make(certs) as srv, ulnet.FTP(srv.url, timeout_s=10, cafile=certs.ca) as ftp:
        for i in range(40):
            name, data = ("big", big) if i % 8 == 0 else ("small", small)
            assert ftp.put(str(tmp_path / name), "%s%d" % (name, i)) == len(data)
            with open(os.path.join(srv.home, "%s%d" % (name, i)), "rb") as f:
                assert f.read() == data, (srv.name, i)


def test_explicit_order_on_the_wire_and_active_mode(certs, tmp_path):
    """AUTH before USER, PBSZ and PROT after the login; active mode's data connection (the
    server connects to us) is TLS too, the client its TLS client (RFC 4217 section 9)."""
    (tmp_path / "a.csv").write_bytes(b"a;1\n" * 5000)
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        with ulnet.FTP(srv.url, timeout_s=10, cafile=certs.ca) as ftp:
            ftp.client.passive = False
            assert ftp.put(str(tmp_path / "a.csv")) == 20000
            assert ftp.nlst() == ["a.csv"]
        assert srv.verbs()[:5] == ["AUTH", "USER", "PASS", "PBSZ", "PROT"]
        assert "EPRT" in srv.verbs() and "EPSV" not in srv.verbs()
        assert (tmp_path / "a.csv").read_bytes() == open(os.path.join(srv.home, "a.csv"), "rb").read()


@pytest.mark.parametrize("how", ["fingerprint", "unverified"])
def test_pinned_or_unverified_without_a_ca(certs, tmp_path, how):
    (tmp_path / "s").write_bytes(b"scan")
    tls = {"fingerprint": certs["good"].fingerprint} if how == "fingerprint" else {"verify": False}
    with PyFTPD(tls="explicit", cert=certs["unknown"] if how == "unverified" else certs["good"]) as srv:
        with ulnet.FTP(srv.url, timeout_s=10, **tls) as ftp:
            assert ftp.put(str(tmp_path / "s")) == 4
            assert repr(ftp).endswith("tls %s>" % ("pinned" if how == "fingerprint" else "unverified"))
            assert "tls %s" % ("pinned" if how == "fingerprint" else "unverified") in repr(ftp.client)
            assert "s3cret" not in repr(ftp) + repr(ftp.client)


# -- refusals: a clear error, and nothing sent in clear -------------------------------------------

@pytest.mark.parametrize("mode", ["explicit", "implicit"])
@pytest.mark.parametrize("kind, tls, why", [
    ("other", {}, "hostname mismatch, certificate is not valid for 127.0.0.1"),
    ("expired", {}, "certificate has expired"),
    ("unknown", {}, "certificate verify failed"),
    ("good", {"fingerprint": "ab" * 32}, "fingerprint mismatch"),
])
def test_bad_certificates_fail_the_login_before_user(certs, mode, kind, tls, why):
    with PyFTPD(tls=mode, cert=certs[kind]) as srv:
        tls = tls or {"cafile": certs.ca}
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url, timeout_s=10, **tls):
                pass
        text = str(err.value)
        assert why in text and "TLS handshake with 127.0.0.1:%d" % srv.port in text, text
        assert err.value.code is None and "s3cret" not in text
        assert srv.verbs() == (["AUTH"] if mode == "explicit" else []), srv.verbs()


def test_a_server_without_auth_tls_never_sees_the_login():
    with PyFTPD() as srv:  # plain pyftpdlib: AUTH is an unknown command there
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url.replace("ftp://", "ftpes://"), timeout_s=10):
                pass
        assert err.value.code == 500 and "the server refused AUTH TLS" in str(err.value)
        assert "no login without TLS" in str(err.value)
        assert srv.verbs() == ["AUTH"]


def scripted_auth(then):
    """A server that greets, answers AUTH TLS with 234, then does `then(control)`."""

    def script(c):
        c.reply("220 scripted")
        c.expect("AUTH", "234 go ahead")
        then(c)

    return script


@pytest.mark.parametrize("then, why", [
    (lambda c: c.sock.close(), "TLS handshake with 127.0.0.1:"),  # closes during the handshake
    (lambda c: c.wait_closed(), "TLS handshake with 127.0.0.1:"),  # never completes it
])
def test_a_handshake_that_fails_or_never_ends_fails_the_login(then, why):
    with ScriptedFTP(scripted_auth(then), deadline_s=10) as srv:
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url.replace("ftp://", "ftpes://"), timeout_s=1):
                pass
        assert why in str(err.value) and err.value.code is None
    assert srv.verbs() == ["AUTH"]


def test_the_handshake_deadline_names_the_timeout():
    with ScriptedFTP(scripted_auth(lambda c: c.wait_closed())) as srv:
        with pytest.raises(ulnet.FTPError, match=r"TLS handshake with 127\.0\.0\.1:\d+: timed out"):
            with ulnet.FTP(srv.url.replace("ftp://", "ftpes://"), timeout_s=0.5):
                pass


def test_bytes_in_clear_after_234_are_refused():
    """A reply injected in clear behind the 234 would otherwise be read as if it came over TLS."""

    def script(c):
        c.reply("220 scripted")
        c.expect("AUTH")
        c.send(b"234 go ahead\r\n230 logged in, trust me\r\n")
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        with pytest.raises(ulnet.FTPError, match="sent bytes in clear after its 234 reply"):
            with ulnet.FTP(srv.url.replace("ftp://", "ftpes://"), timeout_s=5):
                pass
    assert srv.verbs() == ["AUTH"]


@pytest.mark.parametrize("refused", ["PBSZ", "PROT"])
def test_data_protection_refused_fails_the_login(certs, refused):
    def script(c):
        c.reply("220 scripted")
        c.expect("AUTH", "234 go ahead")
        c.start_tls(certs["good"])
        c.expect("USER", "331 password please")
        c.expect("PASS", "230 logged in")
        c.expect("PBSZ", "504 no" if refused == "PBSZ" else "200 PBSZ=0")
        if refused == "PROT":
            c.expect("PROT", "536 not here")
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url.replace("ftp://", "ftpes://"), timeout_s=5, cafile=certs.ca):
                pass
    assert "the server refused %s" % refused in str(err.value) and "data would go in clear" in str(err.value)
    assert err.value.code == (504 if refused == "PBSZ" else 536)


def test_tls_settings_without_tls_are_refused_not_ignored(certs, ev):
    with pytest.raises(ValueError, match="TLS settings, not for plain FTP"):
        with ulnet.FTP("ftp://scanner:s3cret@127.0.0.1:9/", cafile=certs.ca):
            pass
    client = ulnet.FTPClient(ev)
    with pytest.raises(ValueError, match="tls must be None, 'explicit' or 'implicit'"):
        client.connect("127.0.0.1", 21, "u", "p", tls="yes")
    with pytest.raises(ValueError):
        client.connect("127.0.0.1", 21, "u", "p", tls="explicit", verify=False, cafile=certs.ca)
    assert client.idle  # nothing was queued
    assert client.connect("127.0.0.1", None, "u", "p", tls="implicit").args == ("127.0.0.1", 990, "u")


# -- MicroPython: the same client on the unix port (mbedtls) --------------------------------------

UPLOAD = """
from ulnet.eventer import Eventer
from ulnet.ftp.session import FTPSession
ev = Eventer()
ftp = FTPSession(ev)
ftp.connect("127.0.0.1", %d, %r, %r, %r, %r)
op = ftp.put(%r, %r)
ev.run_until(lambda: op.done, 30000)
print(op.result, op.error)
print(repr(ftp))
"""


def upy_upload(srv, user, password, cafile, local, remote):
    done = upy_run(UPLOAD % (srv.port, user, password, srv.tls, cafile, local, remote), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_micropython_uploads_with_a_verified_certificate(certs, tmp_path, mode):
    data = os.urandom(300000)
    (tmp_path / "scan.bin").write_bytes(data)
    with PyFTPD(tls=mode, cert=certs["good"]) as srv:
        result, shown = upy_upload(srv, "scanner", "s3cret", certs.ca_der, str(tmp_path / "scan.bin"), "scan.bin")
        assert result == "%d None" % len(data) and "tls verified" in shown
        assert open(os.path.join(srv.home, "scan.bin"), "rb").read() == data


@pure_ftpd
def test_micropython_uploads_to_pure_ftpd(certs, tmp_path):
    data = os.urandom(300000)
    (tmp_path / "scan.bin").write_bytes(data)
    with PureFTPD(tls="explicit", cert=certs["good"]) as srv:
        result, _ = upy_upload(srv, "scanner", "s3cret", certs.ca, str(tmp_path / "scan.bin"), "upload/scan.bin")
        assert result == "%d None" % len(data)
        assert open(os.path.join(srv.home, "scan.bin"), "rb").read() == data


def test_micropython_names_why_vsftpd_refuses_its_data_connection(certs, tmp_path):
    """vsftpd demands that data connections resume the control connection's TLS session, which
    MicroPython's tls cannot do: a clear error naming that, not a hang or a bare reset."""
    (tmp_path / "scan.bin").write_bytes(b"scan")
    with VSFTPD(tls="explicit", cert=certs["good"]) as srv:
        result, _ = upy_upload(srv, "anonymous", "x", certs.ca, str(tmp_path / "scan.bin"), "upload/scan.bin")
    assert result.startswith("None put: 522 SSL connection failed: session reuse required"), result
    assert "MicroPython cannot resume TLS sessions" in result and "require_ssl_reuse=NO" in result



NO_HEAP_FOR_DATA = """
import micropython
from ulnet.eventer import Eventer
from ulnet.ftp.session import FTPSession
ev = Eventer()
ftp = FTPSession(ev)
ftp.reply_timeout_ms = 60000  # a put that waits for a reply runs into run_until's deadline
login = ftp.connect("127.0.0.1", %d, %r, %r, "explicit", %r)
ev.run_until(lambda: login.done, 20000)
print(login.error, ftp.connected)
tls = ev.port.tls()
wrap = tls.wrap_tls

def full(*args):  # the heap is full as the data connection's TLS begins (once)
    tls.wrap_tls = wrap
    micropython.heap_lock()
    try:
        return wrap(*args)
    finally:
        micropython.heap_unlock()

tls.wrap_tls = full
op = ftp.put(%r, "scan.csv")
ev.run_until(lambda: op.done, 20000)
print(op.error, ftp.connected)
login = ftp.connect("127.0.0.1", %d, %r, %r, "explicit", %r)
op = ftp.put(%r, "scan.csv")
ev.run_until(lambda: op.done, 20000)
print(login.error, op.error, op.result)
"""


def test_micropython_out_of_heap_for_a_data_handshake_fails_the_put_at_once(certs, tmp_path):
    """A board whose heap is full as a data connection's TLS begins (a real MemoryError of the
    unix port's tls module: the heap locked for that call): the put fails at once, saying so,
    and the session closes. pyftpdlib never answers a STOR whose data connection went before
    its handshake: waiting for that reply stalled the upload job until its deadline. Logged in
    again, the put goes through and the file is there once."""
    data = b"4006381333931,1\n" * 20
    (tmp_path / "scan.csv").write_bytes(data)
    local = str(tmp_path / "scan.csv")
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        args = (srv.port, srv.user, srv.password, certs.ca_der)
        done = upy_run(NO_HEAP_FOR_DATA % (args + (local,) + args + (local,)), timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        logged, failed, again = done.stdout.splitlines()
        assert logged == "None True"
        assert failed.startswith("put: TLS handshake with 127.0.0.1:") and failed.endswith(": out of memory False"), failed
        assert again == "None None %d" % len(data)
        assert sorted(os.listdir(srv.home)) == ["scan.csv"]
        assert open(os.path.join(srv.home, "scan.csv"), "rb").read() == data
