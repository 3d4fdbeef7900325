"""CE port: a WSAAsyncSelect-style message pump under the eventer.

Instead of readiness flags the eventer gets a queue of (socket, FD_* bits, error) records, as a
Windows CE program gets WM_SOCKET messages from WSAAsyncSelect (one FD_* event each), or every
event of a socket at once from WSAEnumNetworkEvents after WSAEventSelect (api="WSAEventSelect").
The port takes its sockets and messages from a source: on a device one built on Winsock
(docs/porting.md), here ports/ce_source.py, an emulator over real loopback sockets that
follows Winsock's one-shot rules and answers as Winsock does, with seeded faults. The port's
code is the same either way: it never tells the source what the sockets do (Winsock re-enables
its notifications inside recv, send and accept).

What this port adds to the desktop socket calls (CE Pythons use the same BSD socket API):
- a connect under way answers WSAEWOULDBLOCK, which it reads as "under way";
- it drops messages for sockets it no longer holds (a message can outlive closesocket); a
  message for a handle the OS reused reaches the new socket as a harmless spurious hint; a
  message's error code is a hint too: the socket's calls report the error itself;
- a device-side watchdog, the probe, for what the notifications lose (a driver bug, a resume
  from suspend): every probe_ms it asks the system which sockets are ready (select with a zero
  timeout), lets the source post what it owes, and hints what was ready at two probes in a row
  with nothing posted for it. A hint after which a call brought news (bytes, end of stream, an
  error, an accepted or decided connection) counts in `rescues`: zero unless notifications
  were lost. probe_ms=None runs without it, as strictly as a device without a watchdog.
No os.sendfile (a device has none): uploads take the buffer path. State always comes from
system calls, never from a message. Everything else (connect checks, drain on hint, end of
stream once) is the socket layer's, shared with every port. TLS: ports/ce_tls.py, through the
same sockets.
"""

import select

from ulnet.ports.ce_socket import WSAEWOULDBLOCK
from ulnet.ports.ce_source import FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, EmulatedSource
from ulnet.ports.ce_tls import CETLS
from ulnet.ports.desktop import ERROR, HANGUP, READ, WRITE, DesktopPort


def _readiness(bits):
    """How FD_* bits read as readiness: FD_CONNECT is the connect's "writable", FD_CLOSE a
    hang-up that may still carry data."""
    flags = READ if bits & (FD_READ | FD_ACCEPT | FD_CLOSE) else 0
    if bits & (FD_WRITE | FD_CONNECT):
        flags |= WRITE
    if bits & FD_CLOSE:
        flags |= HANGUP
    return flags


# indexed by a message's FD_* bit, or by all the bits WSAEnumNetworkEvents reports at once
_FLAGS = tuple(_readiness(bits) for bits in range(FD_CLOSE << 1))
# what each socket asks Winsock for, by its state when it is registered
_KINDS = {"connecting": "connecting", "listening": "listening", "connected": "accepted"}


class Port(DesktopPort):
    TLS = CETLS
    # a lost notification costs two probes at most (it must be seen twice); one select per
    # 50 ms costs nothing measurable
    PROBE_MS = 50

    def __init__(self, faults=None, seed=0, source=None, probe_ms=PROBE_MS, api="WSAAsyncSelect"):
        super().__init__()
        self.source = source if source is not None else EmulatedSource(faults, seed, api)
        self.probe_ms = probe_ms
        self._next_probe = self.ticks_ms() + (probe_ms or 0)
        self._ready = {}  # what the last probe saw: fd -> flags
        self.rescues = 0  # probe hints that brought news the notifications had not
        self._news = False  # a socket call brought news since this was cleared

    # -- registration: WSAAsyncSelect(s, hwnd, WM_SOCKET, all events) --------------------------

    def register(self, raw, handle, flags):
        self._map[raw.fileno()] = handle
        self.source.watch(raw, _KINDS[handle.state] if raw.type == self.STREAM else "datagram")

    def modify(self, raw, handle, flags):
        # one event mask per socket for its whole life; Winsock's re-enabling calls do the rest
        pass

    def unregister(self, raw):
        fd = raw.fileno()
        self._ssl.pop(fd, None)
        self._ready.pop(fd, None)  # a new socket on this handle is seen afresh
        if self._map.pop(fd, None) is not None:
            self.source.forget(raw)

    def close(self):
        self._map.clear()

    # -- the pump -------------------------------------------------------------------------------

    def dispatch(self, timeout_ms):
        probe_in = None
        if self.probe_ms:
            probe_in = max(0, self._next_probe - self.ticks_ms())
            if timeout_ms < 0 or probe_in < timeout_ms:
                timeout_ms = probe_in
        buffered = self._buffered()  # TLS bytes to read that no message will announce
        self._deliver(self.source.messages(0 if buffered else timeout_ms))
        self._hint_buffered(buffered)
        if probe_in is not None and self.ticks_ms() >= self._next_probe:
            self._next_probe = self.ticks_ms() + self.probe_ms
            self.probe()

    def _buffered(self):
        for tls in self._ssl.values():
            if tls.left:
                try:
                    tls.flush()  # what the socket did not take of a TLS record (ports/ce_tls.py)
                except OSError:
                    pass  # kept by the TLS socket, which now reads as ready: its call raises it
        return super()._buffered()

    def _deliver(self, batch):
        handles = self._map
        for fd, bits, error in batch:
            handle = handles.get(fd)
            if handle is not None:
                handle._hint(_FLAGS[bits] | (ERROR if error else 0))

    def probe(self):
        """Hint what the system says was ready at this probe and the last one, with nothing
        posted for it in between; count the hints that brought news."""
        fds = list(self._map)
        ready = {}
        if fds:
            readable, writable, failed = select.select(fds, fds, fds, 0)
            for group, flag in ((readable, READ), (writable, WRITE), (failed, ERROR)):
                for fd in group:
                    ready[fd] = ready.get(fd, 0) | flag
        # what the source owes is posted first: a late notification is not a lost one
        self._deliver(self.source.messages(0))
        last, self._ready = self._ready, ready
        for fd, flags in ready.items():
            flags &= last.get(fd, 0)
            handle = self._map.get(fd)
            if flags and handle is not None:
                self._news = False
                handle._hint(flags)
                if self._news:
                    self.rescues += 1

    # -- socket calls -----------------------------------------------------------------------------

    def open(self, family, kind):
        # the source makes the sockets: Winsock's own on a device, emulated ones here
        raw = self.source.socket(family, kind)
        raw.setblocking(False)
        return raw

    def connect(self, raw, sockaddr):
        code = raw.connect_ex(sockaddr)
        # Winsock says "under way" with WSAEWOULDBLOCK and nothing else (connect on Microsoft
        # Learn); on a device errno.EWOULDBLOCK is that number too
        return None if code == WSAEWOULDBLOCK else code

    # what counts as news for the probe: a call that did not answer "nothing now"

    def connect_result(self, raw):
        return self._noted(DesktopPort.connect_result, raw)

    def accept(self, raw):
        return self._noted(DesktopPort.accept, raw)

    def recv_into(self, raw, buf, n):
        return self._noted(DesktopPort.recv_into, raw, buf, n)

    def recv(self, raw, n):
        return self._noted(DesktopPort.recv, raw, n)

    def recvfrom_into(self, raw, buf):
        return self._noted(DesktopPort.recvfrom_into, raw, buf)

    def send(self, raw, data, off, n):
        return self._noted(DesktopPort.send, raw, data, off, n)

    def _noted(self, call, *args):
        try:
            got = call(self, *args)
        except OSError:
            self._news = True
            raise
        if got is not None:
            self._news = True
        return got
