"""Host side of the board tests: the pytest plugin, and the fixtures board tests ask for.

A board test names what it needs from the host as its parameters, e.g.
`def test_ping(tcp_echo_port):` on the board gets the port of the echo server that the
`tcp_echo_port` fixture below runs on 127.0.0.1. Fixture values must be literals (int, str,
bytes, tuples of them): they are sent to the board as code.
"""

import socketserver
import threading

import pytest

from ulnet.tools.hil_pytest import *  # noqa: F401,F403  (hooks and the hil_session fixture)

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


@pytest.fixture
def tcp_echo_port():
    """Port of a TCP echo server on 127.0.0.1 (every connection gets its bytes back)."""
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(PEER_TIMEOUT_S)
