"""Connection: what TCP and UDP share (lNet's TLConnection): callbacks, the socket list,
the iterator, and where a handler's exception goes.

Callbacks are plain attributes set to a callable or None. `iterator` is the socket whose event
is being delivered (lNet's Iterator), the default for calls that take `sock=None`.
"""

from ulnet.eventer import report_exception


class Connection:
    def __init__(self, eventer):
        self.eventer = eventer
        # accepted and connected sockets (TCP) or the bound socket (UDP)
        self.sockets = []
        # listening sockets (TCP)
        self.listeners = []
        self.iterator = None
        self.on_connect = None
        self.on_accept = None
        self.on_receive = None
        self.on_can_send = None
        self.on_error = None
        self.on_disconnect = None
        self._buf = None

    def _handler_failed(self, exc):
        """A callback raised: hand it to on_error with the socket it concerned; never re-raise."""
        callback = self.on_error
        if callback is None:
            report_exception(exc)
            return
        try:
            callback(self.iterator, exc)
        except Exception as again:
            report_exception(again)

    def _scratch(self):
        """A buffer for reads nobody asked for, allocated once per connection."""
        if self._buf is None:
            self._buf = bytearray(min(self.eventer.port.RECV_SIZE, 4096))
        return self._buf

    def _forget(self, sock):
        for group in (self.sockets, self.listeners):
            if sock in group:
                group.remove(sock)
        if self.iterator is sock:
            self.iterator = None

    def _default(self, sock):
        if sock is not None:
            return sock
        it = self.iterator
        if it is not None:
            return it
        if self.sockets:
            return self.sockets[0]
        raise ValueError("no socket: connect, listen or accept first")

    def disconnect(self, sock=None):
        """Close one socket, or with no argument every socket and listener of this object."""
        if sock is not None:
            sock.disconnect()
            return
        for sock in self.sockets + self.listeners:
            sock.disconnect()
