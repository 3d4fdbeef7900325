"""TLS sessions on TCP connections (core/tls.py) against a real TLS server on loopback (Python's
ssl in a thread, tests/servers/tls.py): implicit and start_tls echo byte-identical on every
desktop backend, one on_connect, clean closes, every refusal one on_error with its reason and no
application byte sent, deadlines, session resumption, bytes OpenSSL holds, the CE port."""

import gc
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import warnings

import pytest

import upy
import ulnet
from servers.tls import RecordRelay, TLSServer
from ulnet.ports.ce_source import APIS, FAULTS, LOSSY

PAYLOAD = os.urandom(300 * 1024)


def context(certs, kind="good"):
    """A server-side ssl.SSLContext presenting the test certificate of that kind."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs[kind].cert, certs[kind].key)
    return ctx


def pin(certs, kind):
    """A certificate's SHA-256 as openssl prints it (upper case, colons)."""
    hexa = certs[kind].fingerprint.upper()
    return ":".join(hexa[i:i + 2] for i in range(0, len(hexa), 2))


class Client:
    """A TCP client that records every event and sends `payload` through on_can_send."""

    def __init__(self, ev, session=None, payload=PAYLOAD, read_size=0):
        self.ev = ev
        self.tcp = tcp = ulnet.TCP(ev)
        tcp.session = session
        self.events = []
        self.data = bytearray()
        self.payload = payload
        self.sent = 0
        self.read_size = read_size
        self.sending = session is not None  # start_tls clients send once upgraded
        tcp.on_connect = lambda s: self.events.append("connect")
        tcp.on_can_send = self._can_send
        tcp.on_receive = self._receive
        tcp.on_error = lambda s, e: self.events.append(e)
        tcp.on_disconnect = lambda s: self.events.append("disconnect")

    def _can_send(self, sock):
        self.events.append("can_send")
        while self.sending and self.sent < len(self.payload):
            n = sock.send(self.payload, self.sent)
            if not n:
                return
            self.sent += n

    def _receive(self, sock):
        if self.read_size:
            buf = bytearray(self.read_size)
            n = sock.recv_into(buf)
            self.data.extend(buf[:n])
        else:
            self.data.extend(sock.get())

    def errors(self):
        return [e for e in self.events if isinstance(e, Exception)]

    def names(self):
        return [e if isinstance(e, str) else "error" for e in self.events]

    def run(self, until, timeout_ms=10000):
        self.ev.run_until(lambda: until() or self.errors(), timeout_ms)
        for _ in range(3):
            self.ev.call_action(5)


def settled_names(client):
    """Events with repeated can_send folded: the contract is about their order, not count."""
    out = []
    for name in client.names():
        if not (out and out[-1] == name == "can_send"):
            out.append(name)
    return out


# -- implicit TLS ----------------------------------------------------------------------------

def test_implicit_echo_is_byte_identical_and_connects_once(eventer, certs):
    with TLSServer(context(certs)) as srv:
        client = Client(eventer, ulnet.TLSSession(cafile=certs.ca))
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        assert client.events == []  # never from inside connect()
        client.run(lambda: len(client.data) == len(PAYLOAD))
        assert bytes(client.data) == PAYLOAD
        assert client.errors() == []
        assert client.names()[:2] == ["connect", "can_send"]
        assert client.names().count("connect") == 1
        assert repr(sock) == "<Socket connected 127.0.0.1:%d tls verified>" % srv.port
        sock.disconnect()
    assert bytes(srv.received) == PAYLOAD
    assert srv.handshakes == 1


def test_implicit_with_a_der_cafile_and_a_system_like_bundle(ev, certs, tmp_path):
    bundle = tmp_path / "bundle.pem"  # several PEM certificates, the trusted one last
    bundle.write_bytes(open(certs["other"].cert, "rb").read() + open(certs.ca, "rb").read())
    for cafile in (certs.ca_der, str(bundle)):
        with TLSServer(context(certs)) as srv:
            client = Client(ev, ulnet.TLSSession(cafile=cafile), payload=b"ping")
            client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
            client.run(lambda: client.data == b"ping")
            assert client.errors() == [] and client.data == b"ping", cafile


def test_server_close_notify_is_a_disconnect_not_an_error(ev, certs):
    with TLSServer(context(certs), mode="greet") as srv:
        client = Client(ev, ulnet.TLSSession(cafile=certs.ca), payload=b"")
        client.tcp.connect("localhost", srv.port, timeout_ms=5000)
        client.run(lambda: client.data == b"hello\r\n")
        srv.stop()  # the server says close_notify and closes
        client.run(lambda: "disconnect" in client.events)
    assert client.errors() == []
    assert settled_names(client) == ["connect", "can_send", "disconnect"]


def test_client_close_sends_close_notify(ev, certs):
    with TLSServer(context(certs)) as srv:
        client = Client(ev, ulnet.TLSSession(cafile=certs.ca), payload=b"bye")
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: client.data == b"bye")
        sock.disconnect()
        srv.stop()
    # the server's read ended cleanly (close_notify), not with an unexpected-EOF error
    assert srv.failures == [] and bytes(srv.received) == b"bye"


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_end_never_reads_in_clear(ev, certs, version):
    """TLSSession.end (an FTPS upload ends so) when the server's close_notify is already in:
    unwrap finished TLS on the socket, and CPython's SSLSocket then reads in clear, so bytes a
    man in the middle put behind the close_notify came up as data. Ending a socket that is
    closed already raised AttributeError."""
    ctx = context(certs)
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        conn = ctx.wrap_socket(listener.accept()[0], server_side=True)
        conn.setblocking(False)
        try:
            conn.unwrap()  # its close_notify goes; the client's is not in yet
        except ssl.SSLWantReadError:
            pass
        os.write(conn.fileno(), b"230 injected in clear\r\n")
        time.sleep(1)
        conn.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    session = ulnet.TLSSession(cafile=certs.ca)
    client = Client(ev, session, payload=b"")

    def connected(sock):
        client.events.append("connect")
        time.sleep(0.3)  # both arrive, unread
        session.end(sock)

    client.tcp.on_connect = connected
    sock = client.tcp.connect("127.0.0.1", listener.getsockname()[1], timeout_ms=5000)
    for _ in range(60):
        ev.call_action(10)
    server.join(5)
    listener.close()
    assert client.data == b"" and client.errors() == [] and sock.state == "closed"
    assert client.names() == ["connect"]
    session.end(sock)  # closed already: nothing happens


def test_server_hostname_names_what_is_verified_and_sent_as_sni(ev, certs):
    ctx = context(certs, "other")
    names = []
    ctx.sni_callback = lambda sslobj, name, c: names.append(name)
    with TLSServer(ctx) as srv:
        session = ulnet.TLSSession(cafile=certs.ca, server_hostname="other.example")
        client = Client(ev, session, payload=b"sni")
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: client.data == b"sni")
    assert client.errors() == [] and names == ["other.example"]


# -- refusals: one on_error with the reason, nothing sent ---------------------------------------

REFUSALS = [
    ("other", {}, "certificate verify failed: hostname mismatch, certificate is not valid for"
     " 127.0.0.1 (it is for other.example)"),
    ("localhost", {}, "certificate verify failed: hostname mismatch, certificate is not valid for"
     " 127.0.0.1 (it is for localhost)"),
    ("good", {"server_hostname": "127.0.0.2"}, "certificate verify failed: hostname mismatch,"
     " certificate is not valid for 127.0.0.2 (it is for 127.0.0.1, localhost)"),
    ("expired", {}, "certificate verify failed: certificate has expired"),
    ("unknown", {}, "certificate verify failed: unknown CA"),
]


@pytest.mark.parametrize("name,extra,reason", REFUSALS,
                         ids=["other", "dns-only", "other-address", "expired", "unknown"])
def test_verification_failure_is_one_error_and_nothing_is_sent(eventer, certs, name, extra,
                                                               reason):
    with TLSServer(context(certs, name)) as srv:
        client = Client(eventer, ulnet.TLSSession(cafile=certs.ca, **extra))
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert client.names() == ["error"]
    err = client.errors()[0]
    assert isinstance(err, ulnet.NetError)
    assert str(err).startswith("TLS handshake with 127.0.0.1:%d: %s" % (srv.port, reason))
    assert sock.state == "closed" and client.tcp.sockets == []
    assert srv.received == b"" and srv.handshakes == 0
    assert len(srv.failures) == 1  # the server heard our alert


def test_fingerprint_pins_the_certificate(ev, certs):
    with TLSServer(context(certs, "other")) as srv:  # wrong name, unknown to any store
        pinned = certs["other"].fingerprint  # lower case, no colons: the other spelling
        client = Client(ev, ulnet.TLSSession(fingerprint=pinned), payload=b"pinned")
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: client.data == b"pinned")
        assert client.errors() == [] and repr(sock).endswith(" tls pinned>")


def test_fingerprint_mismatch_is_one_error_and_nothing_is_sent(ev, certs):
    with TLSServer(context(certs)) as srv:
        session = ulnet.TLSSession(fingerprint=pin(certs, "other"))
        client = Client(ev, session)
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert client.names() == ["error"]
    assert str(client.errors()[0]) == (
        "TLS handshake with 127.0.0.1:%d: fingerprint mismatch: server certificate sha256 is %s"
        % (srv.port, pin(certs, "good")))
    assert srv.received == b""


def test_unverified_works_only_by_name_and_says_so(ev, certs):
    session = ulnet.TLSSession(verify=False)
    assert repr(session) == "<TLSSession unverified>" and session.status == "unverified"
    with TLSServer(context(certs, "unknown")) as srv:
        client = Client(ev, session, payload=b"anyone")
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: client.data == b"anyone")
        assert client.errors() == []
        assert repr(sock) == "<Socket connected 127.0.0.1:%d tls unverified>" % srv.port
    with pytest.raises(ValueError):
        ulnet.TLSSession(cafile=certs.ca, verify=False)
    with pytest.raises(ValueError):
        ulnet.TLSSession(fingerprint="AB:CD")


def test_default_verifies_against_the_system_store(ev, certs):
    """Our test CA is in no system store: the default session refuses the server."""
    assert repr(ulnet.TLSSession()) == "<TLSSession verified against the system CA store>"
    with TLSServer(context(certs)) as srv:
        client = Client(ev, ulnet.TLSSession())
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert "certificate verify failed: unknown CA" in str(client.errors()[0])
    assert srv.received == b""


def test_peer_closing_during_the_handshake_is_a_clear_error(ev, certs):
    with TLSServer(context(certs), mode="close_mid") as srv:
        client = Client(ev, ulnet.TLSSession(cafile=certs.ca))
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert client.names() == ["error"]
    assert str(client.errors()[0]) == ("TLS handshake with 127.0.0.1:%d: the server closed the"
                                       " connection" % srv.port)


def test_handshake_that_never_completes_fails_at_the_connect_deadline(ev, certs):
    with TLSServer(context(certs), mode="silent", timeout_s=3) as srv:
        client = Client(ev, ulnet.TLSSession(cafile=certs.ca))
        start = ev.port.ticks_ms()
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=400)
        client.run(lambda: bool(client.errors()), 5000)
        took = ev.port.ticks_diff(ev.port.ticks_ms(), start)
    assert client.names() == ["error"]
    err = client.errors()[0]
    assert isinstance(err, ulnet.TimeoutError)
    assert str(err) == "TLS handshake with 127.0.0.1:%d: timed out" % srv.port
    assert 400 <= took < 3000


def test_forged_record_after_the_handshake_is_one_error_with_the_reason(eventer, certs):
    with TLSServer(context(certs), mode="garbage") as srv:
        client = Client(eventer, ulnet.TLSSession(cafile=certs.ca), payload=b"")
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert settled_names(client) == ["connect", "can_send", "error"] and client.data == b""
    assert str(client.errors()[0]) == ("receive from 127.0.0.1:%d: TLS: decryption failed or"
                                       " bad record mac" % srv.port)


@pytest.mark.parametrize("content", [b"-----BEGIN CERTIFICATE-----\n", b"", b"not a certificate"],
                         ids=["pem-without-end", "empty", "text"])
def test_a_bad_cafile_is_one_error_never_the_system_store(ev, certs, tmp_path, content):
    """An empty CA file (a copy that failed) made CPython verify against the system's store."""
    bad = tmp_path / "ca.pem"
    bad.write_bytes(content)
    with TLSServer(context(certs)) as srv:
        client = Client(ev, ulnet.TLSSession(cafile=str(bad)))
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert client.names() == ["error"]
    assert str(client.errors()[0]) == ("TLS handshake with 127.0.0.1:%d: cafile %s: no certificate"
                                       " in it" % (srv.port, bad))
    assert srv.connections == 1 and srv.handshakes == 0


def test_verification_is_off_only_by_verify_false(ev, certs):
    """verify=None (a setting passed through unset) turned verification off; so did setting
    .verify after the session was made, while its status still said "verified"."""
    for value in (None, 0, "", "no"):
        with pytest.raises(ValueError):
            ulnet.TLSSession(verify=value)
    for settings in ({"cafile": ""}, {"fingerprint": ""}, {"cafile": b"ca.pem"},
                     {"fingerprint": b"\xab" * 32}, {"verify": False, "cafile": ""},
                     {"verify": False, "fingerprint": ""}):
        with pytest.raises(ValueError):  # given empty is not "not given"
            ulnet.TLSSession(**settings)
    session = ulnet.TLSSession(cafile=certs.ca)
    session.verify = False  # too late: the session is what its status says
    with TLSServer(context(certs, "unknown")) as srv:
        client = Client(ev, session)
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()) or "connect" in client.events)
    assert client.names() == ["error"] and session.status == "verified"
    assert "certificate verify failed: unknown CA" in str(client.errors()[0])
    assert srv.received == b""


@pytest.mark.parametrize("name", ["a..b", "a." * 130])
def test_a_server_hostname_the_runtime_refuses_is_one_error_and_leaves_nothing(ev, certs, name):
    """CPython's wrap_socket takes the descriptor over before it checks the name: the port's
    map kept the socket, and a name IDNA refuses left the descriptor to the garbage collector."""
    gc.collect()
    before = upy.open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TLSServer(context(certs), timeout_s=3) as srv:
            client = Client(ev, ulnet.TLSSession(cafile=certs.ca, server_hostname=name))
            client.tcp.connect("127.0.0.1", srv.port, timeout_ms=300)
            client.run(lambda: bool(client.errors()))
            client.run(lambda: False, 500)  # past the deadline: nothing more comes
        gc.collect()
    assert client.names() == ["error"] and isinstance(client.errors()[0], ulnet.NetError)
    assert str(client.errors()[0]).startswith("TLS handshake with 127.0.0.1:%d: " % srv.port)
    assert client.tcp.sockets == [] and ev.port.handles() == []
    assert upy.open_fds() == before
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_server_hostname_must_be_a_name():
    """A NUL raised TypeError inside the handshake (CPython: reported raw, then the deadline
    reported a second error); mbedtls would check the name only up to it."""
    for name in ("good.example\x00.evil.example", b"localhost"):
        with pytest.raises(ValueError):
            ulnet.TLSSession(server_hostname=name)


# -- upgrade in place (start_tls) --------------------------------------------------------------

def starttls_client(ev, session, payload=PAYLOAD, timeout_ms=None):
    """Reads "220 ready", sends STARTTLS, upgrades on "220 go", then sends payload."""
    client = Client(ev, None, payload)
    steps = []

    def on_receive(sock):
        if sock.state == "connected" and sock._tls is None:
            line = sock.get()
            steps.append(line)
            if line == b"220 ready\r\n":
                sock.send(b"STARTTLS\r\n")
            elif line == b"220 go\r\n":
                client.tcp.start_tls(session, sock, timeout_ms)
                steps.append(sock.send(b"in clear?"))  # nothing goes out now
                client.sending = True
        else:
            client._receive(sock)

    client.tcp.on_receive = on_receive
    return client, steps


def test_start_tls_echo_is_byte_identical_and_nothing_leaks_in_clear(eventer, certs):
    with TLSServer(context(certs), upgrade=True) as srv:
        client, steps = starttls_client(eventer, ulnet.TLSSession(cafile=certs.ca))
        sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: len(client.data) == len(PAYLOAD))
        assert bytes(client.data) == PAYLOAD and client.errors() == []
        assert steps == [b"220 ready\r\n", b"220 go\r\n", 0]
        # on_can_send after connect, then once more when the handshake was done
        assert client.names()[:3] == ["connect", "can_send", "can_send"]
        assert client.names().count("connect") == 1
        assert repr(sock).endswith(" tls verified>")
        sock.disconnect()
    assert bytes(srv.clear) == b"STARTTLS\r\n"
    assert bytes(srv.received) == PAYLOAD


def test_start_tls_refused_certificate_is_one_error(ev, certs):
    with TLSServer(context(certs, "expired"), upgrade=True) as srv:
        client, steps = starttls_client(ev, ulnet.TLSSession(cafile=certs.ca))
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert settled_names(client) == ["connect", "can_send", "error"]
    assert str(client.errors()[0]).endswith("certificate verify failed: certificate has expired")
    assert srv.received == b"" and bytes(srv.clear) == b"STARTTLS\r\n"


def test_start_tls_takes_clear_text_behind_the_go_ahead_for_no_tls(eventer, certs):
    """Bytes a man in the middle puts behind "220 go", in clear, reach the TLS library, which
    refuses them: the handshake fails, nothing of them is data (what a protocol had read
    before start_tls is its own to refuse: FTPS checks that nothing followed the 234)."""
    with TLSServer(context(certs), upgrade=True, inject=b"230 logged in\r\n") as srv:
        client, steps = starttls_client(eventer, ulnet.TLSSession(cafile=certs.ca))
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert settled_names(client) == ["connect", "can_send", "error"]
    assert str(client.errors()[0]) == ("TLS handshake with 127.0.0.1:%d: TLS: wrong version number"
                                       % srv.port)
    assert steps == [b"220 ready\r\n", b"220 go\r\n", 0] and client.data == b""
    assert srv.received == b""


def test_start_tls_deadline(ev, certs):
    with TLSServer(context(certs), mode="silent", upgrade=True, timeout_s=3) as srv:
        client, steps = starttls_client(ev, ulnet.TLSSession(cafile=certs.ca), timeout_ms=300)
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: bool(client.errors()))
    assert settled_names(client) == ["connect", "can_send", "error"]
    assert isinstance(client.errors()[0], ulnet.TimeoutError)


def test_start_tls_on_a_socket_that_is_not_connected_raises(ev, certs):
    tcp = ulnet.TCP(ev)
    listener = tcp.listen()
    with pytest.raises(ValueError):
        tcp.start_tls(ulnet.TLSSession(), listener)


# -- resumption, buffered bytes ------------------------------------------------------------------

@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_second_connection_resumes_the_first_ones_session(ev, certs, version):
    ctx = context(certs)
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    session = ulnet.TLSSession(cafile=certs.ca)
    with TLSServer(ctx) as srv:
        control = Client(ev, session, payload=b"control")
        control.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        control.run(lambda: control.data == b"control")  # a TLS 1.3 ticket came meanwhile
        for n in range(2):
            data = Client(ev, session, payload=b"data %d" % n)
            sock = data.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
            data.run(lambda: data.data == b"data %d" % n)
            assert data.errors() == []
            sock.disconnect()
    assert srv.reused == [False, True, True]


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_session_is_resumed_only_for_the_name_it_was_verified_for(ev, certs, version):
    """A certificate for localhost only: a connection to 127.0.0.1 resumed the TLS session of
    one to localhost, and its name was never checked (a resumption shows no certificate)."""
    ctx = context(certs, "localhost")
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    session = ulnet.TLSSession(cafile=certs.ca)
    with TLSServer(ctx) as srv:
        first = Client(ev, session, payload=b"by name")
        first.tcp.connect("localhost", srv.port, timeout_ms=5000)
        first.run(lambda: first.data == b"by name")
        again = Client(ev, session, payload=b"by name again")
        again.tcp.connect("localhost", srv.port, timeout_ms=5000)
        again.run(lambda: again.data == b"by name again")
        other = Client(ev, session, payload=b"by address")
        other.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        other.run(lambda: bool(other.errors()) or other.data == b"by address")
    assert first.errors() == [] and again.errors() == []
    assert other.names() == ["error"]
    assert "certificate verify failed: hostname mismatch" in str(other.errors()[0])
    assert srv.reused == [False, True] and bytes(srv.received) == b"by nameby name again"


class SlowReader:
    """A TLS server that reads nothing until go() (the client's socket fills), then reads all;
    `received` is every application byte."""

    def __init__(self, certs):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills sooner
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.received = bytearray()
        self._go = threading.Event()
        self._ctx = context(certs)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def go(self):
        self._go.set()

    def close(self):
        self._go.set()
        self._thread.join(15)
        self.listener.close()

    def _serve(self):
        conn = self._ctx.wrap_socket(self.listener.accept()[0], server_side=True)
        self._go.wait(30)
        conn.settimeout(1)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                self.received.extend(data)
        except OSError:
            pass
        conn.close()


# the client fills its socket with numbered 1000-byte messages, then offers what was not taken
# plus 50 bytes more, as a queue that grew does (the Telnet client's): every byte must arrive once
FILL = """
state = {"n": 0, "rest": None, "took": 0}
def fill(sock):
    while state["rest"] is None:
        message = b"%06d" % state["n"] + b"." * 994
        if not sock.send(message):
            if state["n"]:  # else the handshake's end is not in yet (MicroPython)
                state["rest"] = message + b"X" * 50
            return
        state["n"] += 1
    while state["took"] < len(state["rest"]):
        took = sock.send(state["rest"], state["took"])
        if not took:
            return
        state["took"] += took
"""


def sent_by_fill(n):
    return b"".join(b"%06d" % i + b"." * 994 for i in range(n + 1)) + b"X" * 50


def test_a_send_after_a_short_one_may_offer_more(eventer, certs):
    """TLS libraries hold a record of what a send could not write; the next send that offers
    those bytes and more must get them all out once."""
    server = SlowReader(certs)
    try:
        tcp = ulnet.TCP(eventer)
        tcp.session = ulnet.TLSSession(cafile=certs.ca)
        scope = {}
        exec(FILL, scope)
        state = scope["state"]
        tcp.on_can_send = scope["fill"]
        errors = []
        tcp.on_error = lambda s, e: errors.append(e)
        sock = tcp.connect("127.0.0.1", server.port, timeout_ms=5000)
        eventer.run_until(lambda: state["rest"] is not None or errors, 20000)
        server.go()
        eventer.run_until(lambda: state["took"] == 1050 or errors, 20000)
        sock.disconnect()
    finally:
        server.close()
    assert errors == [] and bytes(server.received) == sent_by_fill(state["n"])


def test_upy_port_a_send_after_a_short_one_may_offer_more(certs, tmp_path):
    """mbedtls answers a retried write with the length it is given, not the record it held:
    offered 1050 bytes after a short write of 1000, it said 1050 and sent 1000."""
    server = SlowReader(certs)
    code = "import ulnet\nev = ulnet.Eventer()\ntcp = ulnet.TCP(ev)\n" + FILL + """
tcp.session = ulnet.TLSSession(cafile=%r)
tcp.on_can_send = fill
errors = []
tcp.on_error = lambda s, e: errors.append(str(e))
sock = tcp.connect("127.0.0.1", %d, 5000)
ev.run_until(lambda: state["rest"] is not None or errors, 20000)
print(state["n"], errors)
ev.run_until(lambda: state["took"] == 1050 or errors, 20000)
sock.disconnect()
print(state["took"], errors)
""" % (certs.ca_der, server.port)
    script = tmp_path / "fill.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\n" % upy.make_lib(str(tmp_path)) + code)
    board = subprocess.Popen([upy.micropython_exe(), str(script)], stdout=subprocess.PIPE,
                             text=True)
    try:
        filled = board.stdout.readline().split()  # its socket is full: the server reads now
        server.go()
        done = board.stdout.readline().split()
        board.wait(30)
    finally:
        if board.poll() is None:
            board.kill()
        board.stdout.close()
        server.close()
    assert filled[1:] == ["[]"] and done == ["1050", "[]"]
    assert bytes(server.received) == sent_by_fill(int(filled[0]))


def test_bytes_openssl_holds_are_delivered(eventer, certs):
    """Reads of 100 bytes take 64 calls per hint at most (drain on hint), far less than a 16 KB
    record: the rest waits decrypted inside OpenSSL, where no poll sees it."""
    with TLSServer(context(certs)) as srv:
        client = Client(eventer, ulnet.TLSSession(cafile=certs.ca), read_size=100)
        client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
        client.run(lambda: len(client.data) == len(PAYLOAD), 20000)
    assert bytes(client.data) == PAYLOAD


def test_import_ulnet_loads_no_tls():
    code = ("import sys, ulnet; ev = ulnet.Eventer(); ulnet.TCP(ev);"
            " print('ssl' in sys.modules, 'ulnet.tls' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["False", "False"], out.stderr


# -- the CE port -------------------------------------------------------------------------------

# the faults a device's notifications may have without losing one (reset and connect_error end
# links on purpose; drop and suspend are lossy): TLS must finish under each without the probe
CE_FAULTS = [f for f in FAULTS if f not in LOSSY and f not in ("reset", "connect_error")]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fault", CE_FAULTS)
def test_ce_port_carries_tls_under_each_fault(certs, fault, api):
    faults = {fault: 0.3 if fault in ("duplicate", "spurious", "stale") else True}
    for seed in range(2):
        with ulnet.Eventer(port="ce", faults=faults, seed=seed, probe_ms=None, api=api) as ev:
            with TLSServer(context(certs), mode="greet") as srv:
                client = Client(ev, ulnet.TLSSession(cafile=certs.ca))
                sock = client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
                want = b"hello\r\n" + PAYLOAD
                client.run(lambda: len(client.data) == len(want), 20000)
                assert bytes(client.data) == want, "seed %d" % seed
                assert client.errors() == [] and client.names().count("connect") == 1
                sock.disconnect()
            assert bytes(srv.received) == PAYLOAD and srv.failures == []  # close_notify came


def test_ce_port_refusal_is_one_error(certs):
    with ulnet.Eventer(port="ce", faults={"duplicate": 0.3, "spurious": 0.3}, seed=1) as ev:
        with TLSServer(context(certs, "other")) as srv:
            client = Client(ev, ulnet.TLSSession(cafile=certs.ca))
            client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
            client.run(lambda: bool(client.errors()))
    assert client.names() == ["error"]
    assert str(client.errors()[0]).endswith("certificate verify failed: hostname mismatch,"
                                            " certificate is not valid for 127.0.0.1 (it is for"
                                            " other.example)")
    assert srv.received == b""


def test_ce_port_reset_during_tls_is_one_error(certs):
    """Links the stack resets (FD_CLOSE with WSAECONNRESET or WSAECONNABORTED), some during the
    handshake: each connection either completes or ends in one error, never hangs."""
    ended = 0
    for seed in range(6):
        with ulnet.Eventer(port="ce", faults={"reset": True}, seed=seed) as ev:
            with TLSServer(context(certs), mode="greet") as srv:
                client = Client(ev, ulnet.TLSSession(cafile=certs.ca))
                client.tcp.connect("127.0.0.1", srv.port, timeout_ms=5000)
                client.run(lambda: len(client.data) == len(PAYLOAD) + 7, 20000)
        if client.errors():
            ended += 1
            assert len(client.errors()) == 1 and client.names()[-1] == "error", client.names()
            assert isinstance(client.errors()[0], ulnet.NetError)
        else:
            assert bytes(client.data) == b"hello\r\n" + PAYLOAD
    assert ended  # the fault did meet some


def test_ce_port_reset_while_records_wait_is_one_error(certs):
    """The port sends what the socket did not take of a TLS record at each dispatch; a reset
    met there (it came while a callback ran) escaped the eventer, out of run_until, and the
    socket stayed "connected"."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        conn = context(certs).wrap_socket(listener.accept()[0], server_side=True)
        conn.recv(16)  # the client is sending; its socket buffers fill, records wait
        time.sleep(0.5)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # a reset

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    with ulnet.Eventer(port="ce", probe_ms=None) as ev:
        client = Client(ev, ulnet.TLSSession(cafile=certs.ca), payload=os.urandom(16 << 20))
        client.tcp.connect("127.0.0.1", listener.getsockname()[1], timeout_ms=5000)
        ev.call_later(200, lambda: time.sleep(1))  # the reset comes meanwhile, unseen
        client.run(lambda: False, 3000)
    server.join(10)
    listener.close()
    assert settled_names(client) == ["connect", "can_send", "error"]
    assert "connection reset" in str(client.errors()[0]) and client.tcp.sockets == []


# -- MicroPython (the upy port under the real unix port) -----------------------------------------

UPY_CLIENT = """
import ulnet
ev = ulnet.Eventer()
tcp = ulnet.TCP(ev)
tcp.session = ulnet.TLSSession(%s)
names, errors, got = [], [], bytearray()
payload = bytes(range(256)) * 40
sent = [0]
def can_send(sock):
    names.append("can_send")
    while sent[0] < len(payload):
        n = sock.send(payload, sent[0])
        if not n:
            return
        sent[0] += n
def receive(sock):
    buf = bytearray(512)
    n = sock.recv_into(buf)
    got.extend(buf[:n])
tcp.on_connect = lambda s: names.append("connect")
tcp.on_can_send = can_send
tcp.on_receive = receive
tcp.on_error = lambda s, e: errors.append(str(e))
tcp.on_disconnect = lambda s: names.append("disconnect")
sock = tcp.connect("127.0.0.1", %d, 5000)
ev.run_until(lambda: len(got) == len(payload) or errors, 10000)
print(repr(sock))
print(names.count("connect"), got == payload, errors)
"""


@pytest.mark.parametrize("how", ["cafile_der", "cafile_pem", "fingerprint"])
def test_upy_port_echo_verified(micropython, certs, how):
    args = {"cafile_der": "cafile=%r" % certs.ca_der, "cafile_pem": "cafile=%r" % certs.ca,
            "fingerprint": "fingerprint=%r" % pin(certs, "good")}[how]
    with TLSServer(context(certs), mode="greet", greeting=b"") as srv:
        out = micropython(UPY_CLIENT % (args, srv.port)).splitlines()
    status = "pinned" if how == "fingerprint" else "verified"
    assert out == ["<Socket connected 127.0.0.1:%d tls %s>" % (srv.port, status),
                   "1 True []"]
    assert bytes(srv.received) == bytes(range(256)) * 40


@pytest.mark.parametrize("name,args,reason", [
    ("other", "cafile=%r", "certificate verify failed: hostname mismatch, certificate is not"
     " valid for 127.0.0.1 (it is for other.example)"),
    ("localhost", "cafile=%r", "certificate verify failed: hostname mismatch, certificate is not"
     " valid for 127.0.0.1 (it is for localhost)"),
    ("good", "cafile=%r, server_hostname='127.0.0.2'", "certificate verify failed: hostname"
     " mismatch, certificate is not valid for 127.0.0.2 (it is for 127.0.0.1, localhost)"),
    ("expired", "cafile=%r", "certificate verify failed: certificate has expired"),
    ("unknown", "cafile=%r", "certificate verify failed: unknown CA"),
    ("good", "fingerprint=%r", "fingerprint mismatch: server certificate sha256 is "),
], ids=["wrong-name", "dns-only", "other-address", "expired", "unknown-ca", "fingerprint"])
def test_upy_port_refusal_is_one_error(micropython, certs, name, args, reason):
    value = pin(certs, "other") if "fingerprint" in args else certs.ca_der
    with TLSServer(context(certs, name)) as srv:
        out = micropython(UPY_CLIENT % (args % value, srv.port)).splitlines()
    assert out[0] == "<Socket closed 127.0.0.1:%d tls %s>" % (
        srv.port, "pinned" if "fingerprint" in args else "verified")
    assert out[1].startswith("0 False ['TLS handshake with 127.0.0.1:%d: %s" % (srv.port, reason))
    assert srv.received == b""


def test_upy_port_sends_nothing_before_the_servers_finished(micropython, certs):
    """On MicroPython the handshake counts as done once the certificate is verified, a round
    trip before the server's Finished (docs/tls.md): what the client sends meanwhile must stay
    with mbedtls. A relay holds back the server's ChangeCipherSpec and Finished for a second:
    no application record leaves before them, the secret goes after."""
    code = """
import ulnet
ev = ulnet.Eventer()
tcp = ulnet.TCP(ev)
tcp.session = ulnet.TLSSession(cafile=%r)
log = []
def can_send(sock):
    if "sent" not in log and sock.send(b"PASS secret\\r\\n"):
        log.append("sent")
tcp.on_can_send = can_send
tcp.on_connect = lambda s: log.append("connect")
tcp.on_error = lambda s, e: log.append(str(e))
tcp.connect("127.0.0.1", %d, 5000)
ev.run_until(lambda: "sent" in log or len(log) > 1, 20000)
print(log)
"""
    out = []
    with TLSServer(context(certs)) as srv, RecordRelay(srv.port) as relay:
        board = threading.Thread(target=lambda: out.append(micropython(code % (certs.ca_der,
                                                                                relay.port))))
        board.start()
        assert relay.holding.wait(15)
        time.sleep(1)  # the client's can_send has run, maybe more than once: it waits
        before = list(relay.from_client)
        relay.release()
        board.join(30)
        for _ in range(100):
            if srv.received:
                break
            time.sleep(0.05)
    assert RecordRelay.CHANGE_CIPHER_SPEC in before  # its own Finished went: it waits for ours
    assert RecordRelay.APPLICATION_DATA not in before
    assert out == ["['connect', 'sent']\n"] and bytes(srv.received) == b"PASS secret\r\n"


def test_upy_port_no_room_to_wrap_is_one_error_and_keeps_nothing(micropython, certs):
    """A board out of heap while the TLS socket takes the plain one's place (MemoryError from
    the poller's registration, injected once): the port's table kept the TLS socket, and with
    it mbedtls' state (on a bare-metal board 20 KB of heap), for good."""
    code = """
import ulnet
ev = ulnet.Eventer()
port = ev.port
register = port.register
def no_room_once(raw, handle, flags):
    if type(raw).__name__ == "SSLSocket" and not log:
        raise MemoryError
    return register(raw, handle, flags)
port.register = no_room_once
tcp = ulnet.TCP(ev)
tcp.session = ulnet.TLSSession(cafile=%r)
log = []
tcp.on_connect = lambda s: log.append("connect")
tcp.on_error = lambda s, e: log.append(str(e))
for _ in range(2):
    tcp.connect("127.0.0.1", %d, 5000)
    ev.run_until(lambda: len(log) == _ + 1, 10000)
    for s in tcp.sockets:
        s.disconnect()
    ev.call_action(0)
tls = port.tls()
print(log, len(tls.plain), len(tls.owed), len(tls.certs), len(port.handles()))
"""
    with TLSServer(context(certs)) as srv:
        out = micropython(code % (certs.ca_der, srv.port)).strip()
    assert out == ("['TLS handshake with 127.0.0.1:%d: out of memory', 'connect'] 0 0 0 0"
                   % srv.port)


def test_upy_port_server_close_is_a_disconnect(micropython, certs):
    """close_notify, then the TCP end: MicroPython's readinto may swallow the close_notify that
    follows data (it reads on), so the end is seen at the TCP end (docs/tls.md)."""
    with TLSServer(context(certs), mode="bye", greeting=b"bye\r\n") as srv:
        # the client sends nothing: bytes the server never reads would turn its close into a reset
        code = UPY_CLIENT.replace("len(got) == len(payload)", '"disconnect" in names').replace(
            "payload = bytes(range(256)) * 40", "payload = b''")
        code += "print(names[0], names[-1], bytes(got))\n"
        out = micropython(code % ("cafile=%r" % certs.ca_der, srv.port)).splitlines()
    assert out[0] == "<Socket closed 127.0.0.1:%d tls verified>" % srv.port
    assert out[1] == "1 False []"  # connected once, no error (no echo: the server left)
    assert out[2] == "connect disconnect b'bye\\r\\n'"


def test_upy_port_start_tls_and_deadline(micropython, certs):
    code = """
import ulnet
ev = ulnet.Eventer()
tcp = ulnet.TCP(ev)
log, got = [], bytearray()
def receive(sock):
    if sock._tls is None:
        line = sock.get()
        log.append(line)
        if line == b"220 ready\\r\\n":
            sock.send(b"STARTTLS\\r\\n")
        elif line == b"220 go\\r\\n":
            tcp.start_tls(ulnet.TLSSession(cafile=%r), sock, %d)
            log.append(sock.send(b"in clear?"))
    else:
        got.extend(sock.get())
def can_send(sock):
    log.append("can_send")
    if sock._tls is not None:
        sock.send(b"secret")
tcp.on_receive = receive
tcp.on_can_send = can_send
tcp.on_error = lambda s, e: log.append(str(e))
tcp.connect("127.0.0.1", %d, 5000)
ev.run_until(lambda: got == b"secret" or len(log) > 4 and log[-1] != "can_send", 10000)
print(log[:4], bytes(got), log[4:])
"""
    with TLSServer(context(certs), upgrade=True) as srv:
        out = micropython(code % (certs.ca_der, 5000, srv.port)).strip()
    assert out == ("['can_send', b'220 ready\\r\\n', b'220 go\\r\\n', 0] b'secret' %s"
                   % (["can_send"] * (out.count("can_send") - 1),))
    assert bytes(srv.clear) == b"STARTTLS\r\n" and bytes(srv.received) == b"secret"
    with TLSServer(context(certs), mode="silent", upgrade=True, timeout_s=3) as srv:
        out = micropython(code % (certs.ca_der, 300, srv.port)).strip()
    assert out.endswith("['TLS handshake with 127.0.0.1:%d: timed out']" % srv.port)
    # clear text behind the go-ahead is refused by mbedtls, never data
    with TLSServer(context(certs), upgrade=True, inject=b"230 logged in\r\n") as srv:
        out = micropython(code % (certs.ca_der, 5000, srv.port)).strip()
    assert out == ("['can_send', b'220 ready\\r\\n', b'220 go\\r\\n', 0] b'' ['TLS handshake with"
                   " 127.0.0.1:%d: TLS: ssl invalid record']" % srv.port)
