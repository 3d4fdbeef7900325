"""TCP over real loopback sockets, on every desktop backend: connect outcomes, the ping-pong
send, level-triggered receive, end of stream, listeners, limits and addresses."""

import hashlib
import os
import socket
import threading
import tracemalloc

import pytest

import ulnet
from upy import open_fds


class Recorder:
    """Attach to a TCP object: records every event as (name, sock, extra)."""

    def __init__(self, tcp, receive=None):
        self.events = []
        tcp.on_connect = lambda s: self.events.append(("connect", s))
        tcp.on_accept = lambda s: self.events.append(("accept", s))
        tcp.on_error = lambda s, e: self.events.append(("error", s, e))
        tcp.on_disconnect = lambda s: self.events.append(("disconnect", s))
        tcp.on_can_send = lambda s: self.events.append(("can_send", s))
        if receive is not None:
            tcp.on_receive = receive

    def names(self, sock=None):
        return [e[0] for e in self.events if sock is None or e[1] is sock]

    def errors(self):
        return [e[2] for e in self.events if e[0] == "error"]


def echo_server(ev, port=0, host="127.0.0.1"):
    srv = ulnet.TCP(ev)

    def on_receive(sock):
        data = sock.get()
        if data:
            assert sock.send(data) == len(data)

    srv.on_receive = on_receive
    listener = srv.listen(port, host)
    return srv, listener


def test_connect_to_closed_port_reports_error_once_and_never_connects(eventer):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    tcp = ulnet.TCP(eventer)
    rec = Recorder(tcp)
    sock = tcp.connect("127.0.0.1", port)
    eventer.run_until(lambda: rec.events, 2000)
    for _ in range(5):
        eventer.call_action(20)
    assert rec.names() == ["error"]
    err = rec.errors()[0]
    assert isinstance(err, ulnet.NetError)
    assert err.errno == __import__("errno").ECONNREFUSED
    assert str(err) == "connect to 127.0.0.1:%d: connection refused" % port
    assert sock.state == "closed"
    assert tcp.sockets == []


def test_unresolvable_name_reports_error_once_from_the_loop(ev):
    tcp = ulnet.TCP(ev)
    rec = Recorder(tcp)
    sock = tcp.connect("no-such-host.invalid", 21)
    assert rec.events == []  # never reported from inside connect()
    ev.run_until(lambda: rec.events, 5000)
    for _ in range(3):
        ev.call_action(10)
    assert rec.names() == ["error"]
    err = rec.errors()[0]
    assert isinstance(err, ulnet.NetError)
    assert "no-such-host.invalid:21" in str(err)
    assert sock.state == "closed"


def test_a_port_out_of_range_is_a_value_error_naming_it(ev):
    # getaddrinfo wraps p + 65536 to p: the connect (and a login's password) would go to a port
    # nobody named
    srv, listener = echo_server(ev)
    tcp = ulnet.TCP(ev)
    rec = Recorder(tcp)
    accepted = Recorder(srv)
    for port in (listener.local_port + 65536, 99999, 0, -1, "21", None):
        with pytest.raises(ValueError) as err:
            tcp.connect("127.0.0.1", port)
        assert str(err.value) == "connect to 127.0.0.1:%s: port out of range (1-65535)" % port
    for _ in range(5):
        ev.call_action(20)
    assert rec.events == [] and accepted.events == [] and tcp.sockets == tcp.listeners == []


def test_connect_timeout_when_the_server_never_answers(ev):
    # a listener whose accept queue is full drops new SYNs, so the connect hangs for real
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    try:
        tcp = ulnet.TCP(ev)
        rec = Recorder(tcp)
        # the first fillers may complete; keep connecting until one hangs past the deadline
        sock = tcp.connect("127.0.0.1", port, timeout_ms=300)
        ev.run_until(lambda: rec.events, 3000)
        for _ in range(3):
            ev.call_action(20)
        assert rec.names() == ["error"]
        err = rec.errors()[0]
        assert isinstance(err, ulnet.TimeoutError)
        assert str(err) == "connect to 127.0.0.1:%d: timed out" % port
        assert sock.state == "closed"
    finally:
        for f in fillers:
            f.close()
        full.close()


def test_echo_listener_and_client_in_one_eventer(eventer):
    srv, listener = echo_server(eventer)
    assert listener.local_port > 0 and listener.state == "listening"
    cli = ulnet.TCP(eventer)
    got = bytearray()
    cli.on_receive = lambda s: got.extend(s.get())
    rec = Recorder(cli, cli.on_receive)
    cli.on_can_send = lambda s: rec.events.append(("can_send", s, s.send(b"ping" * 100)))
    sock = cli.connect("127.0.0.1", listener.local_port)
    eventer.run_until(lambda: len(got) == 400, 2000)
    assert bytes(got) == b"ping" * 100
    assert rec.names() == ["connect", "can_send"]
    assert rec.events[1][2] == 400
    # addresses: both ends agree
    accepted = srv.sockets[0]
    assert (sock.peer_address, sock.peer_port) == ("127.0.0.1", listener.local_port)
    assert (accepted.local_address, accepted.local_port) == ("127.0.0.1", listener.local_port)
    assert (accepted.peer_address, accepted.peer_port) == (sock.local_address, sock.local_port)


def test_send_before_connect_returns_zero_and_can_send_follows_connect(ev):
    srv, listener = echo_server(ev)
    cli = ulnet.TCP(ev)
    rec = Recorder(cli)
    sock = cli.connect("127.0.0.1", listener.local_port)
    assert sock.state == "connecting"
    assert cli.send(b"early", sock) == 0
    ev.run_until(lambda: "can_send" in rec.names(), 2000)
    for _ in range(5):
        ev.call_action(10)
    assert rec.names() == ["connect", "can_send"]


def test_ipv6_loopback(eventer):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    srv, listener = echo_server(eventer, host="::1")
    cli = ulnet.TCP(eventer)
    got = bytearray()
    cli.on_receive = lambda s: got.extend(s.get())
    cli.on_can_send = lambda s: s.send(b"six")
    sock = cli.connect("::1", listener.local_port)
    eventer.run_until(lambda: got == b"six", 2000)
    assert sock.peer_address == "::1" and srv.sockets[0].local_address == "::1"
    assert "[::1]:%d" % listener.local_port in repr(sock)


def _slow_reader(port, total, out):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    h = hashlib.sha256()
    n = 0
    while n < total:
        chunk = s.recv(16384)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    out["n"] = n
    out["sha"] = h.hexdigest()
    s.close()


def test_ping_pong_send_50mb_to_a_slow_reader(eventer):
    total = 50 * 1024 * 1024
    block = os.urandom(1 << 20)
    expected = hashlib.sha256(block * 50).hexdigest()
    srv = ulnet.TCP(eventer)
    listener = srv.listen()
    state = {"off": 0, "zeros": 0, "can_send": 0}

    def on_can_send(sock):
        state["can_send"] += 1
        pump(sock)

    def pump(sock):
        while state["off"] < total:
            off = state["off"] % len(block)
            sent = sock.send(block, off, len(block) - off)
            if sent == 0:
                state["zeros"] += 1
                return
            state["off"] += sent

    srv.on_accept = pump
    srv.on_can_send = on_can_send
    out = {}
    reader = threading.Thread(target=_slow_reader, args=(listener.local_port, total, out))
    reader.start()
    try:
        eventer.run_until(lambda: state["off"] >= total, 60000)
    finally:
        reader.join(60)
    assert out["n"] == total
    assert out["sha"] == expected
    assert state["zeros"] >= 1
    # every zero send was followed by exactly one on_can_send
    assert state["can_send"] == state["zeros"]


def test_receiver_reading_10_bytes_per_event_gets_everything(eventer):
    srv = ulnet.TCP(eventer)
    listener = srv.listen()
    got = bytearray()
    buf = bytearray(10)
    calls = [0]

    def on_receive(sock):
        calls[0] += 1
        n = sock.recv_into(buf)
        got.extend(buf[:n])

    srv.on_receive = on_receive
    payload = os.urandom(100000)
    peer = socket.create_connection(("127.0.0.1", listener.local_port))
    peer.sendall(payload)
    try:
        # everything was sent before the first round: no new data arrives to wake us up
        eventer.run_until(lambda: len(got) == len(payload), 20000)
        assert bytes(got) == payload
        assert calls[0] >= 10000
    finally:
        peer.close()


def test_end_of_stream_once_after_all_data(eventer):
    srv = ulnet.TCP(eventer)
    listener = srv.listen()
    order = []

    def on_receive(sock):
        data = sock.get(7)
        if data:
            order.append(data)

    srv.on_receive = on_receive
    srv.on_disconnect = lambda s: order.append("EOF")
    peer = socket.create_connection(("127.0.0.1", listener.local_port))
    peer.sendall(b"x" * 1000)
    peer.close()
    eventer.run_until(lambda: "EOF" in order, 2000)
    for _ in range(5):
        eventer.call_action(10)
    assert order[-1] == "EOF" and order.count("EOF") == 1
    assert b"".join(order[:-1]) == b"x" * 1000
    assert srv.sockets == []


def test_peer_reset_is_an_error_not_a_disconnect(eventer):
    """On the CE port too: Winsock posts FD_CLOSE carrying WSAECONNRESET and recv fails with it
    (Linux hands the error out once, and the emulator's peek took it: a clean close was seen)."""
    ev = eventer
    srv = ulnet.TCP(ev)
    listener = srv.listen()
    rec = Recorder(srv, lambda s: s.get())
    peer = socket.create_connection(("127.0.0.1", listener.local_port))
    ev.run_until(lambda: "accept" in rec.names(), 2000)
    # unread data at close makes the kernel send RST
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()
    ev.run_until(lambda: len(rec.events) >= 2, 2000)
    for _ in range(3):
        ev.call_action(10)
    assert rec.names() == ["accept", "error"]
    assert rec.errors()[0].errno == __import__("errno").ECONNRESET


def test_call_action_timeout_is_in_milliseconds(ev):
    import time

    t0 = time.monotonic()
    ev.call_action(100)
    took = time.monotonic() - t0
    assert 0.08 <= took < 2.0


def test_10000_connect_disconnect_cycles_leak_no_descriptors(ev):
    srv = ulnet.TCP(ev)
    listener = srv.listen()
    srv.on_accept = lambda s: s.disconnect()
    cli = ulnet.TCP(ev)
    done = [0]

    def on_connect(sock):
        sock.disconnect()
        done[0] += 1

    cli.on_connect = on_connect
    ev.call_action(0)
    before = open_fds()
    for i in range(10000):
        cli.connect("127.0.0.1", listener.local_port)
        ev.run_until(lambda: done[0] > i, 2000)
    for _ in range(20):
        ev.call_action(5)
    assert done[0] == 10000
    assert open_fds() == before
    assert cli.sockets == [] and srv.sockets == []


def test_handler_closing_sockets_mid_round_defers_the_close(ev):
    srv = ulnet.TCP(ev)
    listener = srv.listen()
    seen = []
    fds = {}

    def on_receive(sock):
        seen.append(sock)
        for other in list(srv.sockets):
            fds[other] = other._raw.fileno()
            other.disconnect()
            # closing is deferred: the handle stays open until the round ends
            assert other.state == "closing"
        fresh = ulnet.TCP(ev).connect("127.0.0.1", listener.local_port)
        fds["fresh"] = fresh._raw.fileno()

    srv.on_receive = on_receive
    peers = [socket.create_connection(("127.0.0.1", listener.local_port)) for _ in range(3)]
    ev.run_until(lambda: len(srv.sockets) == 3, 2000)
    for p in peers:
        p.sendall(b"go")
    ev.run_until(lambda: seen, 2000)
    for _ in range(5):
        ev.call_action(10)
    # only one of the three ready sockets was delivered: the others were closed by it
    assert len(seen) == 1
    assert fds["fresh"] not in [fds[s] for s in fds if s != "fresh"]
    assert all(s.state == "closed" for s in fds if s != "fresh")
    for p in peers:
        p.close()


def test_a_raising_handler_goes_to_on_error_and_the_loop_survives(ev):
    srv, listener = echo_server(ev)
    cli = ulnet.TCP(ev)
    calls = []

    def on_receive(sock):
        calls.append(sock.get())
        raise ValueError("handler bug")

    cli.on_receive = on_receive
    cli.on_can_send = lambda s: s.send(b"a")
    errors = []
    cli.on_error = lambda s, e: errors.append((s, e))
    sock = cli.connect("127.0.0.1", listener.local_port)
    ev.run_until(lambda: errors, 2000)
    assert isinstance(errors[0][1], ValueError) and errors[0][0] is sock
    # still connected and still served
    cli.send(b"b", sock)
    ev.run_until(lambda: len(errors) == 2, 2000)
    assert calls == [b"a", b"b"] and sock.state == "connected"


def test_max_connections_refuses_extra_clients_without_growing(ev):
    srv = ulnet.TCP(ev)
    srv.max_connections = 2
    listener = srv.listen()
    keep = [socket.create_connection(("127.0.0.1", listener.local_port)) for _ in range(2)]
    ev.run_until(lambda: len(srv.sockets) == 2, 2000)
    tracemalloc.start()
    fds = open_fds()
    try:
        for _ in range(50):
            extra = socket.create_connection(("127.0.0.1", listener.local_port))
            extra.settimeout(2)
            ev.run_until(lambda: False if ev.call_action(5) else True, 2000)
            # the server closed it: the client reads end of stream (or a reset)
            try:
                assert extra.recv(1) == b""
            except ConnectionResetError:
                pass
            extra.close()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(srv.sockets) == 2
    assert open_fds() == fds
    assert grown < 64 * 1024
    for k in keep:
        k.close()


def test_disconnecting_the_listener_stops_listening(ev):
    srv = ulnet.TCP(ev)
    listener = srv.listen()
    port = listener.local_port
    srv.disconnect(listener)
    assert listener.state == "closed" and srv.listeners == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_one_tcp_object_holds_listeners_accepted_and_outgoing_sockets(ev):
    far, far_listener = echo_server(ev)
    tcp = ulnet.TCP(ev)
    got = {}
    tcp.on_receive = lambda s: got.setdefault(s.user_data, bytearray()).extend(s.get())
    l1 = tcp.listen()
    l2 = tcp.listen()
    out = tcp.connect("127.0.0.1", far_listener.local_port)
    out.user_data = "out"
    tcp.on_accept = lambda s: setattr(s, "user_data", "in%d" % s.local_port)
    peers = [socket.create_connection(("127.0.0.1", lst.local_port)) for lst in (l1, l2)]
    ev.run_until(lambda: len(tcp.sockets) == 3 and out.state == "connected", 2000)
    assert tcp.listeners == [l1, l2]
    # the sock argument picks the socket
    tcp.send(b"to-far", out)
    for p in peers:
        p.sendall(b"hello")
    ev.run_until(lambda: len(got) == 3, 2000)
    assert got["out"] == b"to-far"
    assert got["in%d" % l1.local_port] == b"hello"
    assert got["in%d" % l2.local_port] == b"hello"
    # the default socket is the iterator: the one whose event was delivered last
    assert tcp.iterator in tcp.sockets
    tcp.disconnect()
    assert tcp.sockets == [] and tcp.listeners == []
    for p in peers:
        p.close()


def test_listen_on_a_busy_port_raises_net_error(ev):
    srv = ulnet.TCP(ev)
    listener = srv.listen()
    with pytest.raises(ulnet.NetError) as info:
        ulnet.TCP(ev).listen(listener.local_port)
    assert "listen on 127.0.0.1:%d" % listener.local_port in str(info.value)


def test_spurious_hints_change_nothing(ev):
    srv, listener = echo_server(ev)
    cli = ulnet.TCP(ev)
    got = []
    cli.on_receive = lambda s: got.append(s.get())
    rec = Recorder(cli, cli.on_receive)
    sock = cli.connect("127.0.0.1", listener.local_port)
    ev.run_until(lambda: sock.state == "connected", 2000)
    # a read hint with nothing to read: on_receive sees "nothing now", state unchanged
    sock._hint(1 | 4)
    assert got == [b""] and sock.state == "connected"
    assert rec.names().count("connect") == 1
