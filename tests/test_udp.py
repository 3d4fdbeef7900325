"""UDP over real loopback sockets."""

import socket

import pytest

import ulnet


def test_datagrams_including_an_empty_one(eventer):
    rx = ulnet.UDP(eventer)
    sock = rx.listen()
    got = []
    buf = bytearray(2048)

    def on_receive(s):
        n, addr = rx.recv_from_into(buf)
        if addr is not None:
            got.append((bytes(buf[:n]), addr))

    rx.on_receive = on_receive
    tx = ulnet.UDP(eventer)
    assert tx.send_to(b"", "127.0.0.1", sock.local_port) == 0
    assert tx.send_to(b"abc", "127.0.0.1", sock.local_port) == 3
    eventer.run_until(lambda: len(got) == 2, 2000)
    for _ in range(3):
        eventer.call_action(10)
    assert [g[0] for g in got] == [b"", b"abc"]
    assert tx.socket.local_port  # the first datagram bound it; the port tells where
    assert got[0][1] == got[1][1] == ("127.0.0.1", tx.socket.local_port)
    # the empty datagram was not a close: the socket still receives
    assert sock.state == "listening"
    tx.send_to(b"more", "127.0.0.1", sock.local_port)
    eventer.run_until(lambda: len(got) == 3, 2000)
    assert got[2][0] == b"more"


def test_reply_to_the_sender(ev):
    server = ulnet.UDP(ev)
    sock = server.listen()
    buf = bytearray(512)

    def echo(s):
        n, (host, port) = server.recv_from_into(buf)
        server.send_to(bytes(buf[:n]).upper(), host, port)

    server.on_receive = echo
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.settimeout(2)
    peer.sendto(b"hello", ("127.0.0.1", sock.local_port))
    ev.run_until(lambda: server.iterator is not None, 2000)
    assert peer.recvfrom(100)[0] == b"HELLO"
    peer.close()


def test_nothing_waiting_is_zero_and_none(ev):
    u = ulnet.UDP(ev)
    u.listen()
    assert u.recv_from_into(bytearray(10)) == (0, None)


def test_ipv6(ev):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    rx = ulnet.UDP(ev)
    sock = rx.listen(0, "::1")
    got = []
    rx.on_receive = lambda s: got.append(rx.recv_from_into(bytearray(100)))
    ulnet.UDP(ev).send_to(b"v6", "::1", sock.local_port)
    ev.run_until(lambda: got, 2000)
    assert got[0][0] == 2 and got[0][1][0] == "::1"


def test_a_port_out_of_range_is_a_value_error_naming_it(ev):
    # getaddrinfo wraps 65536 + p to p: the datagram would go to a port nobody named
    rx = ulnet.UDP(ev)
    sock = rx.listen()
    tx = ulnet.UDP(ev)
    for port in (sock.local_port + 65536, 0, -1, "53"):
        with pytest.raises(ValueError) as err:
            tx.send_to(b"x", "127.0.0.1", port)
        assert str(err.value) == "send to 127.0.0.1:%s: port out of range (1-65535)" % port
    for _ in range(3):
        ev.call_action(10)
    assert rx.recv_from_into(bytearray(10)) == (0, None)  # nothing arrived
