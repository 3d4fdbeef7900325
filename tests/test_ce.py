"""The CE port (ports/ce.py) under every Winsock fault: as strict as a device (no probe) where the
fault loses nothing, the probe as a device-side watchdog where it does, and the defects a review
against Winsock found (issue 16). The desktop port is the control."""

import errno
import os
import resource
import socket

import pytest

import ulnet
from ulnet.errors import errno_text, net_error
from ulnet.ports.ce import Port
from ulnet.ports.ce_source import APIS, FAULTS, LOSSY
from ulnet.socket import Socket

SEEDS = int(os.environ.get("ULNET_CE_SEEDS", "8"))
PAYLOAD = os.urandom(128 * 1024)
STRICT = [name for name in FAULTS if name not in LOSSY]
# a chance per message (or per link, per connect); True for the others
RATES = {"drop": 0.3, "duplicate": 0.3, "spurious": 0.3, "stale": 0.3, "reset": 0.3, "connect_error": 0.3}
# how a session may end under a fault besides completing: the errors it carries ("idle": the
# link vanished and only the client's deadline ended it)
ENDINGS = {
    "reset": (errno.ECONNRESET, errno.ECONNABORTED),
    "connect_error": (errno.ETIMEDOUT, errno.ENETUNREACH, errno.ECONNREFUSED),
    "suspend": (errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, "idle"),
}
SUSPEND_MS = 300  # tests sleep briefly; benchmarks/ce_faults.py sleeps for seconds


def ce(fault, seed, probe_ms=None, api="WSAAsyncSelect"):
    ev = ulnet.Eventer(port="ce", faults={fault: RATES.get(fault, True)} if fault else None,
                       seed=seed, probe_ms=probe_ms, api=api)
    ev.port.source.suspend_ms = SUSPEND_MS
    return ev


def session(ev, server_first=True, idle_ms=2000, deadline_ms=10000):
    """A server streams PAYLOAD to a client and closes. server_first: the server greets and the
    client answers (an FTP control connection); else it waits for the client's request (a
    passive data connection). Returns how the client's side ended: "complete", an errno, or
    "idle" (its deadline); asserts the event contract on the way."""
    server = ulnet.TCP(ev)

    def pump(sock):
        while sock.user_data < len(PAYLOAD):
            sent = sock.send(PAYLOAD, sock.user_data)
            if not sent:
                return
            sock.user_data += sent
        sock.disconnect()

    def on_server_receive(sock):
        if sock.get().endswith(b"\r\n") and sock.user_data is None:
            sock.user_data = 0
            pump(sock)

    server.on_accept = lambda s: server_first and s.send(b"220 ready\r\n")
    server.on_receive = on_server_receive
    server.on_can_send = lambda s: s.user_data is not None and pump(s)
    listener = server.listen()
    client = ulnet.TCP(ev)
    seen = {"connect": 0, "endings": [], "after_close": 0, "data": bytearray()}
    idle = ev.call_later(idle_ms, lambda: (seen["endings"].append("idle"), client.disconnect()))

    def on_receive(sock):
        if sock.state != "connected":
            seen["after_close"] += 1
        data = sock.get()
        if data:  # bytes, not hints, keep a link alive: the probe hints a dead one forever
            idle.restart(idle_ms)
        if server_first and data.startswith(b"220 ") and not seen["data"]:
            sock.send(b"USER scanner\r\n")
            data = data[11:]
        seen["data"].extend(data)

    def on_connect(sock):
        seen["connect"] += 1
        if not server_first:
            sock.send(b"RETR scan\r\n")

    def on_error(sock, exc):
        seen["endings"].append(exc.errno)
        assert str(exc).endswith(errno_text(exc.errno)) and "127.0.0.1:" in str(exc)

    client.on_connect = on_connect
    client.on_receive = on_receive
    client.on_disconnect = lambda s: seen["endings"].append("complete")
    client.on_error = on_error
    sock = client.connect("127.0.0.1", listener.local_port, timeout_ms=5000)
    ev.run_until(lambda: seen["endings"], deadline_ms)
    idle.cancel()
    for _ in range(3):
        ev.call_action(5)
    assert len(seen["endings"]) == 1, seen["endings"]
    assert seen["connect"] <= 1 and seen["after_close"] == 0
    assert sock.state == "closed"
    ending = seen["endings"][0]
    if ending == "complete":
        assert seen["data"] == PAYLOAD
    return ending


def run_sessions(fault, seeds, probe_ms, api="WSAAsyncSelect"):
    """Sessions under one fault, both ways round; returns their endings and the probe's
    rescues. Each ending is one the fault can cause."""
    endings, rescues = [], 0
    for seed in range(seeds):
        with ce(fault, seed, probe_ms, api) as ev:
            ending = session(ev, server_first=seed % 2 == 0)
            assert ending == "complete" or ending in ENDINGS.get(fault, ()), "%s seed %d: %s" % (fault, seed, ending)
            endings.append(ending)
            rescues += ev.port.rescues
    return endings, rescues


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fault", STRICT)
def test_strict_as_a_device_without_the_probe(fault, api):
    """Nothing is lost, so nothing may need the watchdog: every session ends by itself, and the
    error-carrying faults both fail some sessions (with their own errors) and spare others.
    Both ways a program learns of events: messages, and WSAEnumNetworkEvents' records."""
    endings, _ = run_sessions(fault, SEEDS, None, api)
    if fault in ENDINGS:
        assert "complete" in endings and set(endings) - {"complete"}, endings
    else:
        assert endings == ["complete"] * SEEDS


@pytest.mark.parametrize("fault", [None] + STRICT)
def test_the_probe_rescues_nothing_that_was_not_lost(fault):
    """With the watchdog on, a fault that loses nothing gives it nothing to do: a core regression
    that left a notification unanswered would show here as a rescue."""
    _, rescues = run_sessions(fault, 2, Port.PROBE_MS)
    assert rescues == 0


def test_the_probe_rescues_lost_notifications():
    endings, rescues = run_sessions("drop", SEEDS, Port.PROBE_MS)
    assert endings == ["complete"] * SEEDS
    assert rescues > 0


def test_a_suspended_device_ends_each_session_and_connects_again_on_waking():
    """The device sleeps once, in the first sessions; each ends (its links dead, reset or gone:
    an error, or the client's deadline), and once awake a new session completes."""
    fates = set()
    for seed in range(6):
        with ce("suspend", seed, Port.PROBE_MS) as ev:
            source = ev.port.source
            while not source.suspended:
                ending = session(ev, server_first=seed % 2 == 0, idle_ms=1000)
                assert ending == "complete" or ending in ENDINGS["suspend"]
            fates.update(fate for name, fate in source.log if name == "wake")
            assert session(ev) == "complete"
    assert fates == {"dead", "reset", "gone"}


def test_control_on_the_desktop_port():
    with ulnet.Eventer() as ev:
        assert session(ev) == session(ev, server_first=False) == "complete"


# -- the defects of issue 16, each shown on the strict port ---------------------------------

def test_connect_under_way_answers_wsaewouldblock_and_the_port_connects():
    """1. A non-blocking connect on Winsock answers WSAEWOULDBLOCK (10035), never EINPROGRESS:
    the core took 10035 for a failure, so every connect failed on Windows."""
    with ulnet.Eventer(port="ce", probe_ms=None) as ev:
        raw = ev.port.open(socket.AF_INET, socket.SOCK_STREAM)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert raw.connect_ex(listener.getsockname()) == 10035
        raw.close()
        assert session(ev) == "complete"
        listener.close()


def test_read_before_connect_without_the_probe_when_the_client_speaks_first():
    """3. The fault held FD_CONNECT until data came, which on a passive data connection (the
    client speaks first) is never: only the probe finished those uploads. It is late now."""
    for seed in range(4):
        with ce("read_before_connect", seed) as ev:
            assert session(ev, server_first=False) == "complete"


def test_without_drain_on_hint_read_before_connect_hangs(monkeypatch):
    """The rule is what saves the session: lNet's way (drop a read hint that arrives while
    connecting) never reads the greeting, and with no probe nothing ever asks again."""
    monkeypatch.setattr(Socket, "drain_on_hint", False)
    with ce("read_before_connect", 0) as ev:
        assert session(ev, idle_ms=1000) == "idle"
    monkeypatch.setattr(Socket, "drain_on_hint", True)
    with ce("read_before_connect", 0) as ev:
        assert session(ev) == "complete"


def lowest_free_fd():
    fd = os.dup(0)
    os.close(fd)
    return fd


def test_a_failed_listen_leaves_nothing_behind_for_its_handle():
    """4. A socket closed unregistered (a listen on a busy port) left its kind noted; the next
    socket on that handle, accepted, was watched as a listener and never got FD_READ."""
    with ulnet.Eventer(port="ce", probe_ms=None) as ev:
        srv = ulnet.TCP(ev)
        listener = srv.listen()
        got = []
        srv.on_receive = lambda s: got.append(s.get())
        peer = socket.create_connection(("127.0.0.1", listener.local_port))
        handle = lowest_free_fd()
        with pytest.raises(ulnet.NetError, match="listen on"):
            ulnet.TCP(ev).listen(listener.local_port)
        ev.run_until(lambda: srv.sockets, 2000)
        assert srv.sockets[0]._raw.fileno() == handle  # the accept took the freed handle
        for line in (b"USER scanner\r\n", b"PASS secret\r\n"):  # FD_ACCEPT came once for the first
            peer.sendall(line)
            ev.run_until(lambda: b"".join(got).endswith(line), 2000)
        peer.close()


def test_a_failed_accept_re_enables_accept():
    """5. Winsock re-enables FD_ACCEPT on every accept, also a failed one: after EMFILE the
    connections still waiting were never accepted without the probe."""
    with ulnet.Eventer(port="ce", probe_ms=None) as ev:
        srv = ulnet.TCP(ev)
        listener = srv.listen()
        errors = []
        srv.on_error = lambda s, e: errors.append(e)
        peers = [socket.create_connection(("127.0.0.1", listener.local_port)) for _ in range(3)]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd(), hard))
        try:
            ev.run_until(lambda: errors, 2000)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert errors[0].errno == errno.EMFILE and "accept on 127.0.0.1:" in str(errors[0])
        ev.run_until(lambda: len(srv.sockets) == 3, 2000)
        for p in peers:
            p.close()


def test_winsock_error_names_read_as_their_posix_names(monkeypatch):
    """CPython on Windows adds the WSA names last, so errno.errorcode[10054] is "WSAECONNRESET";
    the error texts, keyed by the POSIX name, must find it all the same."""
    monkeypatch.setitem(errno.errorcode, 10054, "WSAECONNRESET")
    monkeypatch.setitem(errno.errorcode, 10061, "WSAECONNREFUSED")
    assert errno_text(10054) == "connection reset by peer"
    assert str(net_error(10061, "connect to", "10.0.0.5", 21)) == "connect to 10.0.0.5:21: connection refused"
