"""The CE port: the Winsock emulator follows the documented one-shot rules, and the core stays
correct under every injected fault (the desktop port is the control)."""

import errno
import hashlib
import os
import socket

import pytest

import ulnet
from ulnet.ports.ce_source import FAULTS, FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, EmulatedSource
from ulnet.errors import errno_text, net_error
from ulnet.socket import Socket

SEEDS = int(os.environ.get("ULNET_CE_SEEDS", "100"))


# -- the emulator alone, on raw loopback sockets ----------------------------------------------

@pytest.fixture
def pair():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(listener.getsockname())
    server, _ = listener.accept()
    yield listener, client, server
    for s in (listener, client, server):
        s.close()


def drain(source, timeout_ms=50):
    got = []
    for _ in range(5):
        got += source.messages(timeout_ms if not got else 0)
    return [(event, error) for _, event, error in got]


def test_connect_posts_connect_then_write_once(pair):
    _, client, _ = pair
    src = EmulatedSource()
    src.watch(client, "connecting")
    assert drain(src) == [(FD_CONNECT, 0), (FD_WRITE, 0)]
    # nothing is posted again while nothing is re-enabled, although the socket stays writable
    assert drain(src) == []


def test_refused_connect_posts_its_error_once():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    raw = socket.socket()
    raw.setblocking(False)
    raw.connect_ex(("127.0.0.1", port))
    src = EmulatedSource()
    src.watch(raw, "connecting")
    assert drain(src) == [(FD_CONNECT, errno.ECONNREFUSED)]
    assert drain(src) == []
    raw.close()


def test_read_is_one_shot_until_recv_and_reposted_when_data_remains(pair):
    _, client, server = pair
    src = EmulatedSource()
    src.watch(server, "accepted")
    assert drain(src) == [(FD_WRITE, 0)]
    client.send(b"abcdef")
    assert drain(src) == [(FD_READ, 0)]
    client.send(b"more")
    # more data arrived, but FD_READ is not re-enabled: silence
    assert drain(src) == []
    server.recv(2)
    src.recv_called(server)
    # re-enabled while data remains: posted at once
    assert drain(src) == [(FD_READ, 0)]
    server.recv(100)
    src.recv_called(server)
    assert drain(src) == []


def test_write_only_after_a_send_would_block(pair):
    _, client, server = pair
    src = EmulatedSource()
    src.watch(server, "accepted")
    assert drain(src) == [(FD_WRITE, 0)]
    server.setblocking(False)
    blob = b"x" * 65536
    while True:
        try:
            server.send(blob)
        except BlockingIOError:
            break
    src.send_blocked(server)
    assert drain(src) == []  # still full
    client.setblocking(False)
    while True:
        try:
            if not client.recv(1 << 20):
                break
        except BlockingIOError:
            break
    assert (FD_WRITE, 0) in drain(src, 200)


def test_close_comes_after_the_data_is_read(pair):
    _, client, server = pair
    src = EmulatedSource()
    src.watch(server, "accepted")
    drain(src)
    client.send(b"last words")
    client.close()
    assert drain(src) == [(FD_READ, 0)]
    assert server.recv(100) == b"last words"
    src.recv_called(server)
    assert drain(src) == [(FD_CLOSE, 0)]
    assert drain(src) == []


def test_early_close_comes_with_data_unread(pair):
    _, client, server = pair
    src = EmulatedSource(faults={"early_close": True})
    src.watch(server, "accepted")
    drain(src)
    client.send(b"unread")
    client.close()
    assert sorted(drain(src)) == [(FD_READ, 0), (FD_CLOSE, 0)]


def test_accept_is_re_enabled_by_accept(pair):
    listener, _, _ = pair
    src = EmulatedSource()
    src.watch(listener, "listening")
    extra = [socket.create_connection(listener.getsockname()) for _ in range(2)]
    assert drain(src) == [(FD_ACCEPT, 0)]
    assert drain(src) == []
    listener.accept()[0].close()
    src.accept_called(listener)
    assert drain(src) == [(FD_ACCEPT, 0)]
    for s in extra:
        s.close()


def test_read_before_connect_delivers_read_first(pair):
    listener, _, _ = pair
    raw = socket.socket()
    raw.setblocking(False)
    raw.connect_ex(listener.getsockname())
    src = EmulatedSource(faults={"read_before_connect": True})
    src.watch(raw, "connecting")
    peer, _ = listener.accept()
    assert drain(src) == []  # connected, but FD_CONNECT is held until data arrives
    peer.send(b"220 hi\r\n")
    assert drain(src) == [(FD_READ, 0), (FD_CONNECT, 0), (FD_WRITE, 0)]
    peer.close()
    raw.close()


def test_unknown_fault_is_refused():
    with pytest.raises(ValueError):
        EmulatedSource(faults={"gremlins": 1})


# -- the core under every fault ----------------------------------------------------------------

PAYLOAD = os.urandom(200 * 1024)
CASES = [{name: 0.3 if name in ("drop", "duplicate", "spurious", "stale") else True} for name in FAULTS]
CASES.append({name: 0.2 if name in ("drop", "duplicate", "spurious", "stale") else True for name in FAULTS})


def greeting_session(ev, deadline_ms=10000):
    """FTP-like: the server speaks first, the client answers, the server streams and closes.

    Returns what the client saw; asserts the event contract on the way."""
    server = ulnet.TCP(ev)

    def on_server_receive(sock):
        if sock.get().endswith(b"\r\n") and sock.user_data is None:
            sock.user_data = 0
            pump(sock)

    def pump(sock):
        while sock.user_data < len(PAYLOAD):
            sent = sock.send(PAYLOAD, sock.user_data)
            if not sent:
                return
            sock.user_data += sent
        sock.disconnect()

    server.on_accept = lambda s: s.send(b"220 ready\r\n")
    server.on_receive = on_server_receive
    server.on_can_send = lambda s: s.user_data is not None and pump(s)
    listener = server.listen()
    client = ulnet.TCP(ev)
    seen = {"connect": 0, "disconnect": 0, "errors": [], "after_close": 0, "data": bytearray()}

    def on_receive(sock):
        if sock.state != "connected":
            seen["after_close"] += 1
        data = sock.get()
        if data.startswith(b"220 ") and not seen["data"]:
            sock.send(b"USER scanner\r\n")
            data = data[11:]
        seen["data"].extend(data)

    def on_connect(sock):
        seen["connect"] += 1

    def on_disconnect(sock):
        seen["disconnect"] += 1

    client.on_connect = on_connect
    client.on_receive = on_receive
    client.on_disconnect = on_disconnect
    client.on_error = lambda s, e: seen["errors"].append(e)
    sock = client.connect("127.0.0.1", listener.local_port, timeout_ms=5000)
    ev.run_until(lambda: seen["disconnect"] or seen["errors"], deadline_ms)
    for _ in range(3):
        ev.call_action(5)
    assert seen["errors"] == []
    assert seen["connect"] == 1 and seen["disconnect"] == 1
    assert seen["after_close"] == 0
    assert sock.state == "closed"
    return bytes(seen["data"])


@pytest.mark.parametrize("faults", CASES, ids=["+".join(sorted(c)) if len(c) < 3 else "all" for c in CASES])
def test_stream_survives_faults(faults):
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    for seed in range(SEEDS // 5):
        with ulnet.Eventer(port="ce", faults=faults, seed=seed) as ev:
            assert hashlib.sha256(greeting_session(ev)).hexdigest() == expected, "seed %d" % seed


def test_control_on_the_desktop_port():
    with ulnet.Eventer() as ev:
        assert greeting_session(ev) == PAYLOAD


def test_same_seed_same_decisions(pair):
    logs = []
    for _ in range(2):
        src = EmulatedSource(faults={"drop": 0.5, "duplicate": 0.5, "spurious": 0.5}, seed=7)
        _, client, server = pair
        src.watch(server, "accepted")
        for _ in range(20):
            src.messages(0)
        src.forget(server)
        logs.append(src.log)
    assert logs[0] == logs[1] and len(logs[0]) >= 20


def test_without_drain_on_hint_read_before_connect_hangs(monkeypatch):
    """The rule is what saves the session: lNet's way (drop a read hint that arrives while
    connecting) never reads the greeting, and with no probe nothing ever asks again."""
    monkeypatch.setattr(Socket, "drain_on_hint", False)
    with ulnet.Eventer(port="ce", faults={"read_before_connect": True}, probe_ms=None) as ev:
        with pytest.raises(AssertionError):
            greeting_session_with_deadline(ev)
    monkeypatch.setattr(Socket, "drain_on_hint", True)
    with ulnet.Eventer(port="ce", faults={"read_before_connect": True}, probe_ms=None) as ev:
        assert greeting_session(ev) == PAYLOAD


def greeting_session_with_deadline(ev):
    try:
        greeting_session(ev, deadline_ms=1500)
    except ulnet.TimeoutError as exc:
        raise AssertionError("hung: %s" % exc)


# -- Winsock's answers ---------------------------------------------------------------------

def test_connect_under_way_answers_wsaewouldblock_and_the_port_connects(pair):
    """A non-blocking connect on Winsock answers WSAEWOULDBLOCK (10035), never EINPROGRESS; the
    emulated socket does too, and a connect over the CE port completes on it (the core took
    10035 for a failure: every connect failed on Windows)."""
    listener, _, _ = pair
    src = EmulatedSource()
    raw = src.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setblocking(False)
    assert raw.connect_ex(listener.getsockname()) == 10035
    raw.close()
    with ulnet.Eventer(port="ce", probe_ms=None) as ev:
        tcp = ulnet.TCP(ev)
        events = []
        tcp.on_connect = lambda s: events.append("connect")
        tcp.on_error = lambda s, e: events.append(e)
        sock = tcp.connect("127.0.0.1", listener.getsockname()[1], timeout_ms=2000)
        ev.run_until(lambda: events, 3000)
        assert events == ["connect"] and sock.state == "connected"


def test_winsock_error_names_read_as_their_posix_names(monkeypatch):
    """CPython on Windows adds the WSA names last, so errno.errorcode[10054] is "WSAECONNRESET";
    the error texts, keyed by the POSIX name, must find it all the same."""
    monkeypatch.setitem(errno.errorcode, 10054, "WSAECONNRESET")
    monkeypatch.setitem(errno.errorcode, 10061, "WSAECONNREFUSED")
    assert errno_text(10054) == "connection reset by peer"
    assert str(net_error(10061, "connect to", "10.0.0.5", 21)) == "connect to 10.0.0.5:21: connection refused"
