"""UDP: lNet's TLUdp. One socket per object: bound by listen(), or opened by the first send_to.

Rules: a zero-length datagram is an ordinary datagram (on_receive fires, recv_from_into
returns 0 with the sender's address); "nothing now" is (0, None). send_to raises NetError at
once (a datagram either left or did not); a port out of range is a ValueError.
"""

from ulnet.errors import endpoint, net_error
from ulnet.socket import READ, Socket
from ulnet.tcp import Connection


class UDP(Connection):
    def __init__(self, eventer):
        super().__init__(eventer)
        # (host, port) -> (family, sockaddr) of the last destination, so a stream of datagrams
        # to one peer resolves once
        self._dest = None
        self._dest_key = None

    @property
    def socket(self):
        return self.sockets[0] if self.sockets else None

    def listen(self, port=0, host="127.0.0.1"):
        """Bind to host:port (0: any free port, in sock.local_port) and receive datagrams."""
        if self.sockets:
            raise ValueError("this UDP object already has its socket")
        family, sockaddr = self._resolve(host, port)
        return self._open(family, sockaddr, host, port)

    def send_to(self, data, host, port):
        """Send one datagram; returns the bytes sent (0: the OS buffer is full)."""
        p = self.eventer.port
        if type(port) is not int or not 0 < port < 65536:  # getaddrinfo would wrap 99999 to 34463
            raise ValueError("send to %s: port out of range (1-65535)" % endpoint(host, port))
        family, sockaddr = self._resolve(host, port)
        sock = self.socket or self._open(family, None, host, port)
        try:
            sent = p.sendto(sock._raw, data, sockaddr)
        except OSError as exc:
            raise net_error(exc, "send to", host, port)
        if sock.local_port is None:  # the first datagram bound the socket: where, if the port can tell
            sock.local_address, sock.local_port = p.local(sock._raw)
        return 0 if sent is None else sent

    def recv_from_into(self, buf):
        """Read one datagram into buf: (n, (host, port)), or (0, None) when nothing is waiting."""
        sock = self.socket
        if sock is None:
            return 0, None
        p = self.eventer.port
        try:
            got = p.recvfrom_into(sock._raw, buf)
        except OSError as exc:
            raise net_error(exc, "receive on", sock.local_address or "?", sock.local_port or 0)
        if got is None:
            return 0, None
        return got[0], p.address(got[1])

    def _resolve(self, host, port):
        key = (host, port)
        if key != self._dest_key:
            p = self.eventer.port
            try:
                self._dest = p.resolve(host, port, p.DGRAM)[0]
            except OSError as exc:
                raise net_error(exc, "resolve", host, port)
            self._dest_key = key
        return self._dest

    def _open(self, family, sockaddr, host, port):
        p = self.eventer.port
        raw = p.open(family, p.DGRAM)
        sock = Socket(self, raw, "listening")
        try:
            if sockaddr is not None:
                sock.local_address, sock.local_port = p.bind(raw, sockaddr)
            p.register(raw, sock, READ)
        except OSError as exc:
            p.close_socket(raw)
            raise net_error(exc, "bind", host, port)
        self.sockets.append(sock)
        return sock

    def _ready(self, sock):
        callback = self.on_receive
        self.iterator = sock
        if callback is not None:
            callback(sock)
            return
        buf = self._scratch()
        while self.recv_from_into(buf)[1] is not None:
            pass
