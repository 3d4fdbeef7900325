"""TCP: lNet's TLTcp (outgoing connects, listeners and accepted sockets in one object), and
Connection, what TCP and UDP share (lNet's TLConnection).

Rules: callbacks are plain attributes set to a callable or None; `iterator` is the socket whose
event is being delivered (lNet's Iterator), the default for calls that take `sock=None`.
connect() never reports from inside itself (errors and on_connect come from the loop);
listen() fails at once with NetError (a local problem the caller must see now); connect() to a
port out of range is a ValueError at once (getaddrinfo would wrap 99999 to 34463, a port the
caller never named: listen() reports where it listens in local_port); a listener at
max_connections accepts and closes extra clients so the kernel backlog does not hold them and
memory does not grow. A callback that raises goes to on_error, or is printed; never re-raised.
"""

from ulnet.errors import endpoint, net_error
from ulnet.eventer import report_exception
from ulnet.socket import READ, Socket


class Connection:
    def __init__(self, eventer):
        self.eventer = eventer
        # accepted and connected sockets (TCP) or the bound socket (UDP); listening sockets
        self.sockets = []
        self.listeners = []
        self.iterator = self.on_connect = self.on_accept = self.on_receive = None
        self.on_can_send = self.on_error = self.on_disconnect = None
        self._buf = None

    def _fail(self, exc):
        """A callback raised: hand it to on_error with the socket it concerned."""
        if self.on_error is not None:
            try:
                self.on_error(self.iterator, exc)
                return
            except Exception as again:
                exc = again
        report_exception(exc)

    def _scratch(self):
        """A buffer for reads nobody asked for, allocated once per connection."""
        if self._buf is None:
            self._buf = bytearray(min(self.eventer.port.RECV_SIZE, 4096))
        return self._buf

    def _lost(self, sock):
        """A socket closed: it leaves the lists (Socket._close calls this)."""
        for group in (self.sockets, self.listeners):
            if sock in group:
                group.remove(sock)
        if self.iterator is sock:
            self.iterator = None

    def _default(self, sock):
        if sock is None:
            sock = self.iterator or (self.sockets[0] if self.sockets else None)
            if sock is None:
                raise ValueError("no socket: connect, listen or accept first")
        return sock

    def disconnect(self, sock=None):
        """Close one socket, or with no argument every socket and listener of this object."""
        for sock in [sock] if sock is not None else self.sockets + self.listeners:
            sock.disconnect()


class TCP(Connection):
    # policy knobs (override per object or in a subclass)
    max_connections = None  # None: no limit; else extra clients are accepted and closed
    backlog = 128  # listen() backlog: what Linux allowed by default for years; lwIP clamps it
    # a TLSSession (ulnet.TLSSession): every connect() then speaks TLS from its first byte
    session = None

    def connect(self, host, port, timeout_ms=None):
        """Start connecting; returns the Socket. Outcome: on_connect or on_error, once."""
        # inline, not a helper: each new name costs the upload path a qstr on a board
        if type(port) is not int or not 0 < port < 65536:
            raise ValueError("connect to %s: port out of range (1-65535)" % endpoint(host, port))
        eventer = self.eventer
        sock = Socket(self, None, "connecting")
        sock.peer_address = host  # the name until the connect completes, then the address
        sock.peer_port = port
        self.sockets.append(sock)
        try:
            sock._addrs = eventer.port.resolve(host, port, eventer.port.STREAM)
        except OSError as exc:
            sock._later(net_error(exc, "resolve", host, port))
            return sock
        if timeout_ms:
            sock._timer = eventer.call_later(timeout_ms, sock._deadline)
        sock._try_next(None)
        return sock

    def listen(self, port=0, host="127.0.0.1"):
        """Listen on host:port (0: any free port, reported in sock.local_port)."""
        p = self.eventer.port
        try:
            family, sockaddr = p.resolve(host, port, p.STREAM)[0]
        except OSError as exc:
            raise net_error(exc, "resolve", host, port)
        raw = p.open(family, p.STREAM)
        try:
            bound = p.listen(raw, sockaddr, self.backlog)
        except OSError as exc:
            p.close_socket(raw)
            raise net_error(exc, "listen on", host, port)
        sock = Socket(self, raw, "listening")
        sock.local_address, sock.local_port = bound
        p.register(raw, sock, READ)
        self.listeners.append(sock)
        return sock

    def start_tls(self, session, sock=None, timeout_ms=None):
        """Upgrade a connected socket to TLS in place (AUTH TLS, STARTTLS): nothing more goes
        out in clear; on_can_send fires once the handshake is done, on_error if it fails.
        timeout_ms: its deadline (default: session.timeout_ms)."""
        sock = self._default(sock)
        if sock.state != "connected" or sock._tls is not None:
            raise ValueError("start_tls: %r is not a connected plain socket" % (sock,))
        # the name verified: session.server_hostname, else the address (no name is kept)
        session._begin(sock, sock.peer_address, False, timeout_ms)

    def send(self, data, sock=None):
        return self._default(sock).send(data)

    def recv_into(self, buf, sock=None):
        return self._default(sock).recv_into(buf)

    def get(self, sock=None, n=0):
        return self._default(sock).get(n)

    def _ready(self, sock):
        """The listener sock is readable: accept what is waiting."""
        p = self.eventer.port
        # 16 accepts per hint at most: a burst is taken in one round, but one listener cannot
        # starve the rest of the round (a level-triggered port reports the rest again, Winsock
        # re-posts FD_ACCEPT)
        for _ in range(16):
            try:
                got = p.accept(sock._raw)
            except OSError as exc:
                self._fail(net_error(exc, "accept on", sock.local_address, sock.local_port))
                return
            if got is None:
                return
            raw, sockaddr = got
            limit = self.max_connections
            if limit is not None and len(self.sockets) >= limit:
                p.close_socket(raw)
                continue
            new = Socket(self, raw, "connected")
            new.peer_address, new.peer_port = p.address(sockaddr)
            local = p.local(raw)
            if local[0] is None:
                local = (sock.local_address, sock.local_port)
            new.local_address, new.local_port = local
            p.register(raw, new, READ)
            self.sockets.append(new)
            self.iterator = new
            if self.on_accept is not None:
                self.on_accept(new)
