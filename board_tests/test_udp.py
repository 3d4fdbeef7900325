"""UDP on the board, against a host echo server."""

DEADLINE_S = 30
FREE_HEAP = "36K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "11K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def test_datagrams_and_an_empty_one(udp_echo_port):
    from ulnet.eventer import Eventer
    from ulnet.udp import UDP

    ev = Eventer()
    udp = UDP(ev)
    buf = bytearray(256)
    got = []

    def on_receive(sock):
        n, addr = udp.recv_from_into(buf)
        if addr is not None:
            got.append((bytes(buf[:n]), addr))

    udp.on_receive = on_receive
    udp.send_to(b"", "127.0.0.1", udp_echo_port)
    udp.send_to(b"datagram", "127.0.0.1", udp_echo_port)
    ev.run_until(lambda: len(got) == 2, 5000)
    assert sorted(g[0] for g in got) == [b"", b"datagram"]
    assert got[0][1] == ("127.0.0.1", udp_echo_port)
    assert udp.sockets[0].state == "listening"
