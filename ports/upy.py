"""MicroPython port: `select.poll` with `ipoll`, stream I/O that signals would-block by None.

Same contract as ports/desktop.py (see its docstring). MicroPython facts it is built on
(measured on the 1.29 unix port):
- ipoll yields the registered socket object and reuses its result tuple: no allocation per
  event, so the handle map is keyed by the socket object itself;
- sockets have readinto(buf, n) and write(buf, off, n), both answering None on would-block,
  and no recv_into, getsockopt, getpeername, getsockname or shutdown;
- a refused non-blocking connect polls as WRITE|ERROR|HANGUP and the next send raises
  ECONNREFUSED, so the connect outcome comes from a zero-byte send (the probe): 0 = connected,
  EAGAIN = still connecting, any other errno = failed;
- getaddrinfo()[0][-1] is a raw sockaddr bytearray on the unix port (socket.sockaddr decodes
  it) and a (host, port) tuple on lwIP boards;
- errno numbers differ between ports, so they are compared by name (errno.EAGAIN).

TLS: ports/upy_tls.py, loaded at the first TLS use.
"""

import errno
import select
import socket
import time


class Port:
    STREAM = socket.SOCK_STREAM
    DGRAM = socket.SOCK_DGRAM
    # get() size: MicroPython's recv(n) allocates n bytes up front, and heaps are 32-64 KB
    RECV_SIZE = 1024

    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)
    # the socket's own methods, called with the socket first: readinto(buf, n) and
    # write(buf, off, n) answer None for would-block, as the contract wants; no Python frame
    # between a chunk and the OS (the hot path), and no function to load
    recv_into = staticmethod(socket.socket.readinto)
    send = staticmethod(socket.socket.write)
    close_socket = staticmethod(socket.socket.close)

    def __init__(self):
        self._poll = select.poll()
        self._map = {}
        # get() reads into this, then copies out only what arrived; control replies are short,
        # and a longer read just takes more rounds of on_receive
        self._scratch = memoryview(bytearray(256))
        self._tls = None  # the TLS part, once TLS is used

    # -- readiness --------------------------------------------------------------------------

    def register(self, raw, handle, flags):
        self._map[raw] = handle
        try:
            self._poll.register(raw, flags)
        except BaseException:
            del self._map[raw]
            raise

    def modify(self, raw, handle, flags):
        self._poll.modify(raw, flags)

    def unregister(self, raw):
        if self._map.pop(raw, None) is not None:
            self._poll.unregister(raw)

    def handles(self):
        return list(self._map.values())

    def dispatch(self, timeout_ms):
        handles = self._map
        # no allocation here: ipoll reuses its tuple, dict.get hashes the object by identity
        for raw, flags in self._poll.ipoll(timeout_ms):
            handle = handles.get(raw)
            if handle is not None:
                handle._hint(flags)

    def close(self):
        self._map.clear()

    # -- socket I/O ---------------------------------------------------------------------------

    def resolve(self, host, port, kind):
        found = []
        for info in socket.getaddrinfo(host, port, 0, kind):
            if (info[0], info[-1]) not in found:
                found.append((info[0], info[-1]))
        return found

    def open(self, family, kind):
        raw = socket.socket(family, kind)
        raw.setblocking(False)
        return raw

    def connect(self, raw, sockaddr):
        try:
            raw.connect(sockaddr)
        except OSError as exc:
            code = exc.errno
            # under way: EINPROGRESS (unix port), EAGAIN (lwIP boards)
            return None if code == errno.EINPROGRESS or code == errno.EAGAIN else code
        return 0

    def connect_result(self, raw):
        try:
            raw.send(b"")
        except OSError as exc:
            if exc.errno == errno.EAGAIN or exc.errno == errno.EINPROGRESS:
                return None
            return exc.errno
        return 0

    def listen(self, raw, sockaddr, backlog):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound = self.bind(raw, sockaddr)
        raw.listen(backlog)
        return bound

    def bind(self, raw, sockaddr):
        """Bind; port 0 picks a free port itself, as there is no getsockname to ask the OS."""
        host, port = self.address(sockaddr)
        tries = 0 if port else 32
        while tries:
            port = 49152 + int.from_bytes(__import__("os").urandom(2), "little") % 16384
            try:
                raw.bind(socket.getaddrinfo(host, port)[0][-1])
                return host, port
            except OSError as exc:
                tries -= 1
                if exc.errno != errno.EADDRINUSE or not tries:
                    raise
        raw.bind(sockaddr)
        return host, port

    def accept(self, raw):
        try:
            conn, sockaddr = raw.accept()
        except OSError as exc:
            if exc.errno == errno.EAGAIN or exc.errno == errno.ECONNABORTED:
                return None
            raise
        conn.setblocking(False)
        return conn, sockaddr

    def address(self, sockaddr):
        if isinstance(sockaddr, tuple):
            return sockaddr[0], sockaddr[1]
        family, packed, port = socket.sockaddr(sockaddr)[:3]
        return socket.inet_ntop(family, packed), port

    def local(self, raw):
        # unknown without getsockname; the TCP layer falls back to the listener's address
        return None, None

    def recv(self, raw, n):
        scratch = self._scratch
        got = raw.readinto(scratch, min(n, len(scratch)))
        return None if got is None else bytes(scratch[:got])

    def recvfrom_into(self, raw, buf):
        try:
            data, sockaddr = raw.recvfrom(len(buf))
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise
        buf[:len(data)] = data
        return len(data), sockaddr

    def sendto(self, raw, data, sockaddr):
        try:
            return raw.sendto(data, sockaddr)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise

    # -- TLS -----------------------------------------------------------------------------------

    def tls(self):
        """The port's TLS part (ports/upy_tls.py), loaded at the first TLS use: a board that
        never speaks TLS never holds its code."""
        if self._tls is None:
            from ulnet.ports.upy_tls import TLS

            self._tls = TLS(self)
        return self._tls
