"""The board reaches servers that host fixtures start on 127.0.0.1 (plain sockets, no ulnet)."""
import socket


def test_board_reaches_the_host_echo_server(tcp_echo_port):
    addr = socket.getaddrinfo("127.0.0.1", tcp_echo_port)[0][-1]
    s = socket.socket()
    try:
        s.settimeout(5)
        s.connect(addr)
        s.write(b"ping from the board")
        got = b""
        while len(got) < 19:
            got += s.read(19 - len(got))
    finally:
        s.close()
    assert got == b"ping from the board"
