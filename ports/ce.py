"""CE port: a WSAAsyncSelect-style message pump under the eventer.

Instead of readiness flags the eventer gets a queue of (socket, FD_* event, error) messages, as a
Windows CE program gets WM_SOCKET messages from WSAAsyncSelect (or WSAEnumNetworkEvents after
WSAEventSelect). Here the source is ports/ce_source.py, an emulator over real loopback sockets
that follows Winsock's one-shot rules, with seeded faults; on a CE device with a Python, a source
built on WSAEventSelect provides the same `watch/forget/messages` calls (docs/porting.md).

What this port adds to the desktop socket calls (CE Pythons use the same BSD socket API):
- it tells the source about every re-enabling call (recv re-enables FD_READ, a send that would
  block re-enables FD_WRITE, accept re-enables FD_ACCEPT);
- it drops messages for sockets it no longer holds (a message can outlive closesocket); a
  message for a handle the OS reused reaches the new socket as a harmless spurious hint;
- a low-rate probe: notifications are one-shot and can be lost (a driver bug, a resume from
  suspend), so every PROBE_MS it asks the system which sockets are ready (select with a zero
  timeout) and hints those. State always comes from system calls, never from the message.
Everything else (connect checks, drain on hint, end of stream once) is the socket layer's,
shared with every port.
"""

import select

from ulnet.ports.ce_socket import WSAEWOULDBLOCK
from ulnet.ports.ce_source import FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, EmulatedSource
from ulnet.ports.desktop import ERROR, HANGUP, READ, WRITE, DesktopPort

# how a message reads as readiness: FD_CONNECT is the connect's "writable", FD_CLOSE a hang-up
# that may still carry data
_FLAGS = {
    FD_READ: READ,
    FD_WRITE: WRITE,
    FD_ACCEPT: READ,
    FD_CONNECT: WRITE,
    FD_CLOSE: READ | HANGUP,
}


class Port(DesktopPort):
    # a lost notification costs at most this much latency; low enough for interactive protocols,
    # rare enough to cost nothing measurable (one select per 100 ms)
    PROBE_MS = 100

    def __init__(self, faults=None, seed=0, source=None, probe_ms=PROBE_MS):
        super().__init__()
        self.source = source if source is not None else EmulatedSource(faults, seed)
        self.probe_ms = probe_ms
        self._next_probe = self.ticks_ms() + (probe_ms or 0)
        # kind of each socket being set up, noted by connect/listen/accept/open
        self._kinds = {}

    # -- registration: WSAAsyncSelect(s, hwnd, WM_SOCKET, all events) --------------------------

    def register(self, raw, handle, flags):
        fd = raw.fileno()
        self._map[fd] = handle
        self.source.watch(raw, self._kinds.pop(fd, "accepted"))

    def modify(self, raw, handle, flags):
        # one event mask per socket for its whole life; the re-enabling calls do the rest
        pass

    def unregister(self, raw):
        if self._map.pop(raw.fileno(), None) is not None:
            self.source.forget(raw)

    def close(self):
        self._map.clear()

    # -- the pump -------------------------------------------------------------------------------

    def dispatch(self, timeout_ms):
        handles = self._map
        probe_in = None
        if self.probe_ms:
            probe_in = max(0, self._next_probe - self.ticks_ms())
            if timeout_ms < 0 or probe_in < timeout_ms:
                timeout_ms = probe_in
        for fd, event, error in self.source.messages(timeout_ms):
            handle = handles.get(fd)
            if handle is not None:
                handle._hint(_FLAGS[event] | (ERROR if error else 0))
        if probe_in is not None and self.ticks_ms() >= self._next_probe:
            self._next_probe = self.ticks_ms() + self.probe_ms
            self.probe()

    def probe(self):
        """Hint every socket the system says is ready, whatever the notifications said."""
        fds = list(self._map)
        if not fds:
            return
        readable, writable, failed = select.select(fds, fds, fds, 0)
        flags = {}
        for group, flag in ((readable, READ), (writable, WRITE), (failed, ERROR)):
            for fd in group:
                flags[fd] = flags.get(fd, 0) | flag
        for fd, flag in flags.items():
            handle = self._map.get(fd)
            if handle is not None:
                handle._hint(flag)

    # -- socket calls, with their re-enabling side ------------------------------------------------

    def open(self, family, kind):
        # the source makes the sockets: Winsock's own on a device, emulated ones here
        raw = self.source.socket(family, kind)
        raw.setblocking(False)
        if kind == self.DGRAM:
            self._kinds[raw.fileno()] = "datagram"
        return raw

    def connect(self, raw, sockaddr):
        self._kinds[raw.fileno()] = "connecting"
        code = raw.connect_ex(sockaddr)
        # Winsock says "under way" with WSAEWOULDBLOCK and nothing else (connect on Microsoft
        # Learn); on a device errno.EWOULDBLOCK is that number too
        return None if code == WSAEWOULDBLOCK else code

    def connect_result(self, raw):
        code = super().connect_result(raw)
        if code is None:
            # the emulated stack already collected SO_ERROR for its FD_CONNECT message
            known = self.source.connect_error(raw)
            if known:
                return known
        return code

    def listen(self, raw, sockaddr, backlog):
        self._kinds[raw.fileno()] = "listening"
        return super().listen(raw, sockaddr, backlog)

    def accept(self, raw):
        got = super().accept(raw)
        self.source.accept_called(raw)
        return got

    def recv_into(self, raw, buf, n):
        try:
            return super().recv_into(raw, buf, n)
        finally:
            self.source.recv_called(raw)

    def recv(self, raw, n):
        try:
            return super().recv(raw, n)
        finally:
            self.source.recv_called(raw)

    def recvfrom_into(self, raw, buf):
        try:
            return super().recvfrom_into(raw, buf)
        finally:
            self.source.recv_called(raw)

    def send(self, raw, data, off, n):
        sent = super().send(raw, data, off, n)
        if sent is None:
            self.source.send_blocked(raw)
        return sent

    if hasattr(DesktopPort, "sendfile"):  # a real CE device has no os.sendfile

        def sendfile(self, raw, f, offset, count):
            sent = super().sendfile(raw, f, offset, count)
            if sent is None:
                self.source.send_blocked(raw)
            return sent

    def sendto(self, raw, data, sockaddr):
        sent = super().sendto(raw, data, sockaddr)
        if sent is None:
            self.source.send_blocked(raw)
        return sent
