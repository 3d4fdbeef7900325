"""The test certificates (tests/servers/certs.py) and the FTPS test servers (tests/servers/ftp.py)
are what the FTPS tests take them for: checked with CPython's ssl and ftplib, so that a refusal
in a ulnet test is refused for the reason the test names, and a success is real TLS."""

import ftplib
import hashlib
import io
import os
import socket
import ssl

import pytest

from servers.ftp import VSFTPD, PureFTPD, PyFTPD, ReusingFTP_TLS


def handshake(certs, kind, cafile=None, name="127.0.0.1"):
    """A TLS handshake in memory between CPython's client (verifying against cafile, default the
    test CA) and a server presenting certificate `kind`; returns the client's SSLObject."""
    client_ctx = ssl.create_default_context(cafile=cafile or certs.ca)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs[kind].cert, certs[kind].key)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side, out, peer_in in ((client, c_out, s_in), (server, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                if side is client:
                    raise
            peer_in.write(out.read())
        if client.version() and server.version():
            return client
    raise AssertionError("no handshake")


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_good_is_trusted_for_loopback(certs, name):
    client = handshake(certs, "good", name=name)
    der = client.getpeercert(True)
    assert hashlib.sha256(der).hexdigest() == certs["good"].fingerprint
    assert open(certs.ca_der, "rb").read() == ssl.PEM_cert_to_DER_cert(open(certs.ca).read())


@pytest.mark.parametrize("kind, why", [
    ("other", "mismatch"),
    ("expired", "certificate has expired"),
    ("unknown", "unable to get local issuer certificate"),
])
def test_each_bad_kind_fails_for_its_own_reason(certs, kind, why):
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        handshake(certs, kind)
    assert why in str(err.value)
    handshake(certs, "other", name="other.example")  # the name it is for is fine


def servers(certs):
    yield PyFTPD(tls="explicit", cert=certs["good"]), "scanner", "s3cret", ""
    yield VSFTPD(tls="explicit", cert=certs["good"]), "anonymous", "x", "upload"
    if PureFTPD.EXE and os.geteuid() == 0:  # pure-ftpd switches to the upload user: root only
        yield PureFTPD(tls="explicit", cert=certs["good"]), "scanner", "s3cret", "upload"


def test_explicit_servers_take_an_upload_over_tls_only(certs):
    """AUTH TLS, PBSZ, PROT P: the upload arrives; a login in clear is refused by every one."""
    for srv, user, password, folder in servers(certs):
        with srv:
            assert srv.url.startswith("ftpes://")
            ftp = ReusingFTP_TLS(context=ssl.create_default_context(cafile=certs.ca))
            ftp.connect("127.0.0.1", srv.port, timeout=10)
            ftp.login(user, password)  # AUTH TLS, then PBSZ and PROT P
            if folder:
                ftp.cwd(folder)
            ftp.storbinary("STOR scan.bin", io.BytesIO(b"\x00scan" * 20000))
            ftp.quit()
            with open(os.path.join(srv.home, "scan.bin"), "rb") as f:
                assert f.read() == b"\x00scan" * 20000, srv.name
            plain = ftplib.FTP()
            try:  # pure-ftpd refuses at the greeting (421), the others USER (530, 550)
                plain.connect("127.0.0.1", srv.port, timeout=10)
                plain.login(user, password)
                raise AssertionError("%s took a login in clear" % srv.name)
            except (ftplib.error_perm, ftplib.error_temp):
                pass
            plain.close()


def test_vsftpd_refuses_a_data_connection_that_does_not_resume_the_session(certs):
    with VSFTPD(tls="explicit", cert=certs["good"]) as srv:
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=certs.ca))
        ftp.connect("127.0.0.1", srv.port, timeout=10)
        ftp.auth()
        ftp.login("anonymous", "x")
        ftp.prot_p()
        with pytest.raises(ftplib.error_perm, match="522 SSL connection failed: session reuse required"):
            ftp.storbinary("STOR upload/scan.bin", io.BytesIO(b"scan"))
        ftp.close()


@pytest.mark.parametrize("make", [
    lambda certs: PyFTPD(tls="implicit", cert=certs["good"]),
    lambda certs: VSFTPD(tls="implicit", cert=certs["good"]),
])
def test_implicit_servers_greet_inside_tls(certs, make):
    with make(certs) as srv:
        assert srv.url.startswith("ftps://")
        ctx = ssl.create_default_context(cafile=certs.ca)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=10),
                             server_hostname="127.0.0.1") as tls:
            assert tls.recv(100).startswith(b"220 ")


def test_pyftpdlib_records_the_commands_it_saw(certs):
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", srv.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required"):
            ftp.login("scanner", "s3cret")
        ftp.close()
        assert srv.verbs() == ["USER"]  # refused, so PASS never followed
