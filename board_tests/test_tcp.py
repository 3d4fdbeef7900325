"""The Foundation behaviours on the board: connect outcomes, the ping-pong send, level-triggered
receive, end of stream. Runs under MicroPython with ulnet deployed as .mpy."""
import errno
import hashlib

DEADLINE_S = 60
FREE_HEAP = "42K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "13K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def _events(tcp):
    got = []
    tcp.on_connect = lambda s: got.append("connect")
    tcp.on_error = lambda s, e: got.append(e)
    tcp.on_disconnect = lambda s: got.append("disconnect")
    return got


def test_refused_connect_is_one_error_and_no_connect(closed_port):
    from ulnet.eventer import Eventer
    from ulnet.errors import NetError
    from ulnet.tcp import TCP

    ev = Eventer()
    tcp = TCP(ev)
    got = _events(tcp)
    sock = tcp.connect("127.0.0.1", closed_port)
    ev.run_until(lambda: got, 5000)
    for _ in range(5):
        ev.call_action(10)
    assert len(got) == 1 and isinstance(got[0], NetError), got
    assert got[0].errno == errno.ECONNREFUSED
    assert str(got[0]) == "connect to 127.0.0.1:%d: connection refused" % closed_port
    assert sock.state == "closed"


def test_unresolvable_name_is_one_error():
    from ulnet.eventer import Eventer
    from ulnet.errors import NetError
    from ulnet.tcp import TCP

    ev = Eventer()
    tcp = TCP(ev)
    got = _events(tcp)
    tcp.connect("no-such-host.invalid", 80)
    ev.run_until(lambda: got, 10000)
    ev.call_action(10)
    assert len(got) == 1 and isinstance(got[0], NetError), got
    assert "no-such-host.invalid:80" in str(got[0])


def test_ping_pong_send_of_1mb_to_the_host(tcp_sink_port):
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP

    total = 1024 * 1024
    block = bytearray(1024)
    for i in range(1024):
        block[i] = (i * 7) % 256
    expected = hashlib.sha256()
    for _ in range(total // 1024):
        expected.update(block)
    expected = "".join("%02x" % b for b in expected.digest())
    state = {"sent": 0, "zeros": 0, "cansend": 0, "head": False}
    reply = bytearray()
    ev = Eventer()
    tcp = TCP(ev)

    def pump(sock):
        state["cansend"] += 1
        if not state["head"]:
            state["head"] = sock.send(b"%010d" % total) == 10
        while state["sent"] < total:
            n = sock.send(block, state["sent"] % 1024, 1024 - state["sent"] % 1024)
            if not n:
                state["zeros"] += 1
                return
            state["sent"] += n

    tcp.on_can_send = pump
    tcp.on_receive = lambda s: reply.extend(s.get())
    tcp.connect("127.0.0.1", tcp_sink_port)
    ev.run_until(lambda: len(reply) >= 64, 60000)
    assert reply.decode() == expected
    assert state["sent"] == total
    # every refusal was answered by exactly one on_can_send (the first came after connect)
    assert state["cansend"] == state["zeros"] + 1, state


def test_level_triggered_receive_10_bytes_at_a_time(tcp_burst_port):
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP

    ev = Eventer()
    tcp = TCP(ev)
    buf = bytearray(10)
    state = {"got": 0, "calls": 0, "wrong": 0}

    def on_receive(sock):
        state["calls"] += 1
        n = sock.recv_into(buf)
        for i in range(n):
            if buf[i] != (state["got"] + i) % 251:
                state["wrong"] += 1
        state["got"] += n

    tcp.on_receive = on_receive
    tcp.connect("127.0.0.1", tcp_burst_port)
    # the server sent everything at once: no new data wakes the loop for the rest
    ev.run_until(lambda: state["got"] == 20000, 30000)
    assert state["wrong"] == 0 and state["calls"] >= 2000, state
    tcp.disconnect()


def test_echo_and_end_of_stream_once(tcp_echo_port):
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP

    ev = Eventer()
    tcp = TCP(ev)
    got = _events(tcp)
    data = bytearray()
    tcp.on_can_send = lambda s: s.send(b"hello board")
    tcp.on_receive = lambda s: data.extend(s.get())
    sock = tcp.connect("127.0.0.1", tcp_echo_port)
    ev.run_until(lambda: data == b"hello board", 10000)
    assert got == ["connect"]
    assert sock.peer_port == tcp_echo_port
    tcp.disconnect(sock)
    ev.call_action(10)
    assert sock.state == "closed" and got == ["connect"]


def test_listener_and_client_on_the_board():
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP

    ev = Eventer()
    server = TCP(ev)
    server.on_receive = lambda s: s.send(s.get())
    listener = server.listen(0)
    assert listener.local_port > 0
    client = TCP(ev)
    data = bytearray()
    client.on_can_send = lambda s: s.send(b"local")
    client.on_receive = lambda s: data.extend(s.get())
    client.connect("127.0.0.1", listener.local_port)
    ev.run_until(lambda: data == b"local", 10000)
    accepted = server.sockets[0]
    assert accepted.local_port == listener.local_port
    client.disconnect()
    server.disconnect()
