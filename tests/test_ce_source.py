"""The Winsock emulator alone (ports/ce_source.py and ports/ce_socket.py), on real loopback
sockets: each documented rule (docs/porting.md names its page) and each fault, message by
message."""

import errno
import socket
import time

import pytest

from servers.ftp import free_port
from ulnet.ports.ce_socket import WSAEWOULDBLOCK, WinsockSocket
from ulnet.ports.ce_source import FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, EmulatedSource


@pytest.fixture
def pair():
    """A listener and a connected pair of real sockets; `emulated(src, real)` wraps one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(listener.getsockname())
    server, _ = listener.accept()
    server.setblocking(False)
    yield listener, client, server
    for s in (listener, client, server):
        s.close()


def emulated(src, real, kind):
    sock = WinsockSocket(src, real)
    src.watch(sock, kind)
    return sock


def connecting(src, address):
    """A non-blocking connect from an emulated socket, watched as WSAAsyncSelect would."""
    sock = src.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    assert sock.connect_ex(address) == WSAEWOULDBLOCK
    src.watch(sock, "connecting")
    return sock


def accepted(server, faults=None):
    """The accepted side of the pair under a new source, its first FD_WRITE taken."""
    src = EmulatedSource(faults)
    sock = emulated(src, server, "accepted")
    assert drain(src) == [(FD_WRITE, 0)]
    return src, sock


def drain(source, timeout_ms=50):
    got = []
    for _ in range(5):
        got += source.messages(timeout_ms if not got else 0)
    return [(event, error) for _, event, error in got]


# -- the documented rules ------------------------------------------------------------------

def test_connect_answers_wouldblock_then_posts_connect_and_write_once(pair):
    listener, _, _ = pair
    src = EmulatedSource()
    sock = connecting(src, listener.getsockname())
    assert drain(src) == [(FD_CONNECT, 0), (FD_WRITE, 0)]
    # nothing is posted again while nothing is re-enabled, although the socket stays writable
    assert drain(src) == []
    sock.close()


def test_refused_connect_posts_its_error_once_and_so_error_keeps_it():
    src = EmulatedSource()
    sock = connecting(src, ("127.0.0.1", free_port()))
    assert drain(src) == [(FD_CONNECT, errno.ECONNREFUSED)]
    assert drain(src) == []
    # Linux hands SO_ERROR out once (the emulator read it); Winsock's stays with the socket
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    sock.close()


def test_read_is_one_shot_until_recv_and_reposted_when_data_remains(pair):
    _, client, server = pair
    src, sock = accepted(server)
    client.send(b"abcdef")
    assert drain(src) == [(FD_READ, 0)]
    client.send(b"more")
    # more data arrived, but FD_READ is not re-enabled: silence
    assert drain(src) == []
    assert sock.recv(2) == b"ab"
    # re-enabled by recv while data remains: posted at once
    assert drain(src) == [(FD_READ, 0)]
    assert sock.recv(100) == b"cdefmore"
    assert drain(src) == []


def test_a_recv_that_would_block_re_enables_too(pair):
    _, client, server = pair
    src, sock = accepted(server)
    client.send(b"x")
    assert drain(src) == [(FD_READ, 0)]
    assert sock.recv(1) == b"x"
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    client.send(b"y")
    assert drain(src) == [(FD_READ, 0)]


def test_write_only_after_a_send_would_block(pair):
    _, client, server = pair
    src, sock = accepted(server)
    blob = b"x" * 65536
    with pytest.raises(BlockingIOError):
        while True:
            sock.send(blob)
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
    src, sock = accepted(server)
    client.send(b"last words")
    client.close()
    assert drain(src) == [(FD_READ, 0)]
    assert sock.recv(100) == b"last words"
    assert drain(src) == [(FD_CLOSE, 0)]
    assert drain(src) == []


def test_a_peer_reset_posts_close_with_the_error_and_every_recv_fails_with_it(pair):
    """Linux hands the reset out once, to the emulator's peek; Winsock's recv keeps failing."""
    _, client, server = pair
    src, sock = accepted(server)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()
    assert drain(src) == [(FD_CLOSE, errno.ECONNRESET)]
    for _ in range(2):
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
    with pytest.raises(ConnectionResetError):
        sock.send(b"x")


def test_early_close_comes_with_data_unread(pair):
    _, client, server = pair
    src, sock = accepted(server, {"early_close": True})
    client.send(b"unread")
    client.close()
    assert sorted(drain(src)) == [(FD_READ, 0), (FD_CLOSE, 0)]


def test_accept_is_re_enabled_by_accept(pair):
    listener, _, _ = pair
    src = EmulatedSource()
    sock = emulated(src, listener, "listening")
    extra = [socket.create_connection(listener.getsockname()) for _ in range(2)]
    assert drain(src) == [(FD_ACCEPT, 0)]
    assert drain(src) == []
    sock.accept()[0].close()
    assert drain(src) == [(FD_ACCEPT, 0)]
    for s in extra:
        s.close()


def test_unknown_fault_or_api_is_refused():
    with pytest.raises(ValueError, match="gremlins"):
        EmulatedSource(faults={"gremlins": 1})
    with pytest.raises(ValueError, match="WSASelect"):
        EmulatedSource(api="WSASelect")


def test_wsaeventselect_reports_every_event_of_a_socket_at_once(pair):
    """WSAEnumNetworkEvents: one record per socket, all its recorded bits, an error code."""
    listener, _, _ = pair
    src = EmulatedSource(faults={"read_before_connect": True}, api="WSAEventSelect")
    sock = connecting(src, listener.getsockname())
    peer, _ = listener.accept()
    peer.send(b"220 hi\r\n")
    assert drain(src) == [(FD_READ | FD_CONNECT | FD_WRITE, 0)]
    peer.close()
    sock.close()


def test_same_seed_same_decisions(pair):
    logs = []
    _, _, server = pair
    for _ in range(2):
        src = EmulatedSource(faults={"drop": 0.5, "duplicate": 0.5, "spurious": 0.5, "stale": 0.5}, seed=7)
        sock = emulated(src, server, "accepted")
        for _ in range(20):
            src.messages(0)
        src.forget(sock)
        logs.append(src.log)
    assert logs[0] == logs[1] and len(logs[0]) >= 20


# -- faults --------------------------------------------------------------------------------

def test_read_before_connect_delivers_read_first(pair):
    listener, _, _ = pair
    src = EmulatedSource(faults={"read_before_connect": True})
    sock = connecting(src, listener.getsockname())
    peer, _ = listener.accept()
    assert src.messages(0) == []  # connected, but FD_CONNECT is held for data
    peer.send(b"220 hi\r\n")
    assert drain(src) == [(FD_READ, 0), (FD_CONNECT, 0), (FD_WRITE, 0)]
    peer.close()
    sock.close()


def test_read_before_connect_is_late_not_lost_when_the_client_speaks_first(pair):
    """Every passive FTP data connection: the peer waits for the client, so no data comes; the
    held FD_CONNECT still arrives, HOLD_MS late (it used to wait for data forever)."""
    listener, _, _ = pair
    src = EmulatedSource(faults={"read_before_connect": True})
    sock = connecting(src, listener.getsockname())
    peer, _ = listener.accept()
    start = time.monotonic()
    assert drain(src, 200) == [(FD_CONNECT, 0), (FD_WRITE, 0)]
    assert time.monotonic() - start >= src.HOLD_MS / 1000 * 0.9
    peer.close()
    sock.close()


def test_connect_error_fault_posts_each_error_a_device_reports(pair):
    listener, _, _ = pair
    seen = set()
    for seed in range(12):
        src = EmulatedSource(faults={"connect_error": True}, seed=seed)
        sock = connecting(src, listener.getsockname())
        listener.accept()[0].close()
        (event, error), = drain(src)
        assert event == FD_CONNECT
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == error
        seen.add(error)
        sock.close()
    assert seen == {errno.ETIMEDOUT, errno.ENETUNREACH, errno.ECONNREFUSED}


def test_reset_fault_posts_close_with_its_error_and_the_peer_sees_a_reset(pair):
    _, client, server = pair
    src = EmulatedSource(faults={"reset": True}, seed=3)
    sock = emulated(src, server, "accepted")
    got = []
    for _ in range(src.RESET_ROUNDS + 1):
        got += [(event, error) for _, event, error in src.messages(0)]
    (close, error), = [m for m in got if m[0] == FD_CLOSE]
    assert error in (errno.ECONNRESET, errno.ECONNABORTED)
    with pytest.raises(OSError) as info:
        sock.recv(10)
    assert info.value.errno == error
    time.sleep(0.05)
    with pytest.raises(ConnectionResetError):
        client.recv(10)


def test_stale_messages_carry_error_codes(pair):
    _, _, server = pair
    src = EmulatedSource(faults={"stale": True}, seed=1)
    src.forget(emulated(src, server, "accepted"))
    got = set()
    for _ in range(200):
        got.update((event, error) for _, event, error in src.messages(0))
    assert (FD_CLOSE, errno.ECONNRESET) in got and (FD_CONNECT, errno.ETIMEDOUT) in got


def test_suspend_freezes_the_pump_then_the_links_are_dead_reset_or_gone(pair):
    listener, _, _ = pair
    fates = set()
    for seed in range(8):
        src = EmulatedSource(faults={"suspend": True}, seed=seed)
        src.suspend_ms = 100
        peer = socket.create_connection(listener.getsockname())
        sock = emulated(src, listener.accept()[0], "accepted")
        start = time.monotonic()
        got = []
        while not src.suspended:
            got += [(event, error) for _, event, error in src.messages(0)]
        assert time.monotonic() - start >= 0.1
        got += drain(src, 0)
        fate = [fate for name, fate in src.log if name == "wake"]
        fates.update(fate)
        if fate == ["gone"]:
            assert (FD_CLOSE, 0) not in got
            with pytest.raises(BlockingIOError):
                sock.recv(10)
            assert sock.send(b"lost") == 4  # swallowed
        else:
            code = errno.ECONNABORTED if fate == ["dead"] else errno.ECONNRESET
            assert (FD_CLOSE, code) in got
            with pytest.raises(OSError) as info:
                sock.recv(10)
            assert info.value.errno == code
        sock.close()
        peer.close()
    assert fates == {"dead", "reset", "gone"}
