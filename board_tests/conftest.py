"""Host side of the board tests: the pytest plugin, and the fixtures board tests ask for.

A board test names what it needs from the host as its parameters, e.g.
`def test_ping(tcp_echo_port):` on the board gets the port of the echo server that the
`tcp_echo_port` fixture below runs on 127.0.0.1. Fixture values must be literals (int, str,
bytes, tuples of them): they are sent to the board as code.
"""

import contextlib
import os
import socketserver
import sys
import threading

import pytest

from ulnet.tools.hil_pytest import *  # noqa: F401,F403  (hooks, fixtures, HostCheck)
from ulnet.tools.hil_pytest import HostCheck

# the host's real servers, as the host tests run them (tests/servers/)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from servers.ftp import PyFTPD, free_port  # noqa: E402
from servers.telnet import BusyboxTelnetd  # noqa: E402
from servers.tls import TLSServer  # noqa: E402

# a peer silent for this long is dropped, so a dead board never pins a server thread
PEER_TIMEOUT_S = 30


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(PEER_TIMEOUT_S)
        try:
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
        except OSError:
            return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UDPEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


@contextlib.contextmanager
def _serving(handler, server_class=_Server):
    """The port of a socketserver on 127.0.0.1 in a thread; stopped on the way out."""
    server = server_class(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(PEER_TIMEOUT_S)


@pytest.fixture
def tcp_echo_port():
    """Port of a TCP echo server on 127.0.0.1 (every connection gets its bytes back)."""
    with _serving(_Echo) as port:
        yield port


class _Sink(socketserver.BaseRequestHandler):
    """Reads a 10-digit length, then that many bytes; answers their sha256 as 64 hex digits."""

    def handle(self):
        import hashlib

        self.request.settimeout(PEER_TIMEOUT_S)
        try:
            head = b""
            while len(head) < 10:
                head += self.request.recv(10 - len(head))
            left = int(head)
            digest = hashlib.sha256()
            while left:
                chunk = self.request.recv(min(left, 65536))
                if not chunk:
                    return
                digest.update(chunk)
                left -= len(chunk)
            self.request.sendall(digest.hexdigest().encode())
        except (OSError, ValueError):
            return


class _Burst(socketserver.BaseRequestHandler):
    """Sends 20,000 bytes (i % 251 patterned) at once, then waits for the peer to close."""

    def handle(self):
        self.request.settimeout(PEER_TIMEOUT_S)
        try:
            self.request.sendall(bytes(i % 251 for i in range(20000)))
            self.request.recv(1)
        except OSError:
            return


@pytest.fixture
def tcp_sink_port():
    """Port of a server that hashes what a client sends (after a 10-digit length)."""
    with _serving(_Sink) as port:
        yield port


@pytest.fixture
def tcp_burst_port():
    """Port of a server that sends 20,000 bytes as soon as a client connects."""
    with _serving(_Burst) as port:
        yield port


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    return free_port()


@pytest.fixture
def udp_echo_port():
    """Port of a UDP echo server on 127.0.0.1 (empty datagrams are echoed too)."""
    with _serving(_UDPEcho, socketserver.ThreadingUDPServer) as port:
        yield port


@pytest.fixture
def telnetd_port():
    """Port of a busybox telnetd on 127.0.0.1 serving /bin/sh (no login)."""
    with BusyboxTelnetd() as server:
        yield server.port


@pytest.fixture
def pyftpd():
    """A pyftpdlib server for one test (not a literal: board tests take ftp_server instead)."""
    with PyFTPD() as server:
        yield server


@pytest.fixture
def ftp_server(pyftpd):
    """(host, port, user, password) of a pyftpdlib server on 127.0.0.1 with a writable home."""
    return ("127.0.0.1", pyftpd.port, pyftpd.user, pyftpd.password)


def upload_block(k):
    """Block k (1 KB) of the file a board writes and uploads: every block differs, so a lost,
    doubled or misplaced block shows. board_tests/test_ftp.py computes the same on the board."""
    return bytes((k * 131 + j * 7 + (j >> 8)) & 255 for j in range(1024))


@pytest.fixture
def ftp_upload(pyftpd):
    """(remote name, size) of a 1 MB upload to ftp_server; after the board test the host checks
    that the server holds exactly the bytes the board wrote."""
    return checked_upload(pyftpd)


def checked_upload(server):
    """The HostCheck of ftp_upload and ftps_upload: (remote name, size) for the board."""
    name, size = "board-upload.bin", 1 << 20

    def check():
        path = os.path.join(server.home, name)
        assert os.path.exists(path), "%s is not on the server" % name
        with open(path, "rb") as f:
            got = f.read()
        assert len(got) == size, "the server holds %d bytes, not %d" % (len(got), size)
        for k in range(size // 1024):
            block = got[k * 1024:(k + 1) * 1024]
            assert block == upload_block(k), "block %d (offset %d) differs" % (k, k * 1024)

    return HostCheck((name, size), check)


SPOOL_SCANS, SPOOL_BIG_KB, SPOOL_DEVICE = 200, 1024, "BOARD7"


def scan_lines(i):
    """The lines of scan i (a small CSV batch) the board writes into its spool; the host
    recomputes them. board_tests/test_spool.py writes the same."""
    return ["%013d,%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1) for j in range(5 + i % 20)]


@pytest.fixture
def spool_upload(pyftpd):
    """(url, device id, scans, big file KB) for the spool job on the board; after the board test
    the host checks that the server holds every scan exactly once, byte-identical, under its
    final name, and nothing else (no partial .part file, no duplicate)."""
    return checked_spool(pyftpd, SPOOL_SCANS, SPOOL_BIG_KB)


def checked_spool(server, scans, big_kb, *more):
    """The HostCheck of spool_upload and ftps_spool_upload: (url, device id, scans, big file
    KB) + more for the board."""
    url = server.url + "in"
    os.mkdir(os.path.join(server.home, "in"))

    def check():
        folder = os.path.join(server.home, "in")
        expected = {"%s-scan%04d.csv" % (SPOOL_DEVICE, i): "".join(scan_lines(i)).encode()
                    for i in range(scans)}
        expected["%s-big.bin" % SPOOL_DEVICE] = b"".join(upload_block(k) for k in range(big_kb))
        assert sorted(os.listdir(folder)) == sorted(expected)
        for name, data in expected.items():
            with open(os.path.join(folder, name), "rb") as f:
                assert f.read() == data, "%s differs on the server" % name

    return HostCheck((url, SPOOL_DEVICE, scans, big_kb) + more, check)


# -- FTPS: pyftpdlib's TLS handler, explicit (ftpes://), the tests' own CA ----------------------------

@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The test CA and server certificates (tests/servers/certs.py), made once per worker."""
    from servers.certs import Certs

    return Certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def ftps_pyftpd(certs):
    """An explicit FTPS pyftpdlib server for one test (board tests take ftps_server)."""
    with PyFTPD(tls="explicit", cert=certs["good"]) as server:
        yield server


def ca_der(certs):
    with open(certs.ca_der, "rb") as f:
        return f.read()


@pytest.fixture
def ftps_server(ftps_pyftpd, certs):
    """(host, port, user, password, the CA certificate in DER) of ftps_pyftpd: the board
    writes the certificate into its own folder and verifies the server against it."""
    return ("127.0.0.1", ftps_pyftpd.port, ftps_pyftpd.user, ftps_pyftpd.password, ca_der(certs))


@pytest.fixture
def ftps_upload(ftps_pyftpd):
    """As ftp_upload, for ftps_server."""
    return checked_upload(ftps_pyftpd)


FTPS_SPOOL_SCANS, FTPS_SPOOL_BIG_KB = 20, 256


@pytest.fixture
def ftps_spool_upload(ftps_pyftpd, certs):
    """As spool_upload (an ftpes:// URL) with fewer scans (a TLS handshake each) and the CA
    certificate in DER last."""
    return checked_spool(ftps_pyftpd, FTPS_SPOOL_SCANS, FTPS_SPOOL_BIG_KB, ca_der(certs))


@pytest.fixture
def tls_echo(tmp_path):
    """A TLS echo server on 127.0.0.1 (tests/servers/tls.py) presenting the test CA's
    certificate for 127.0.0.1: the board gets (port, the CA in DER, the certificate's SHA-256
    in hex); the host then checks that what came back through TLS is what went there."""
    import ssl

    from servers.certs import Certs

    certs = Certs(str(tmp_path / "certs"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["good"].cert, certs["good"].key)
    with open(certs.ca_der, "rb") as f:
        ca = f.read()
    with TLSServer(ctx, timeout_s=PEER_TIMEOUT_S) as server:

        def check():
            # MicroPython's tls module sends no close_notify: the server sees the TCP end
            # (an unexpected EOF to OpenSSL) and nothing else may have gone wrong
            failed = [e for e in server.failures if not isinstance(e, ssl.SSLEOFError)]
            assert server.handshakes >= 1 and failed == [], failed
            assert len(server.received) >= TLS_ECHO_BYTES

        yield HostCheck((server.port, ca, certs["good"].fingerprint), check)


TLS_ECHO_BYTES = 256 * 1024
