"""Winsock notification emulator: WSAAsyncSelect semantics over real loopback sockets, with faults.

The one fake in ulnet, because a CE driver cannot run here. It follows the Winsock documentation,
not Linux: every notification is one-shot until its re-enabling call.
- FD_READ is posted once and re-enabled only by recv (MSG_PEEK counts); if data remains when
  recv re-enables it, it is posted again at once.
- FD_WRITE is posted once after connect or accept, and afterwards only after a send failed with
  WOULDBLOCK, when buffer space is available again.
- FD_CONNECT (with the error code) and FD_CLOSE are never posted again; FD_CLOSE comes after the
  peer's close once the data is read (or early, with unread data, under `early_close`).
- FD_ACCEPT is re-enabled by accept.
- Nothing orders FD_READ after FD_CONNECT; messages can arrive after closesocket.
Like the select() thread many CE images use instead of a native WSAAsyncSelect, it watches the
sockets with poll and posts a message when an armed condition holds.

Faults (`faults={name: probability or True}`), drawn from random.Random(seed) so the same seed
gives the same decisions: read_before_connect (hold FD_CONNECT until the socket is readable,
deliver FD_READ first), drop (a posted message is lost), duplicate, spurious (FD_READ/FD_WRITE
with nothing ready), early_close (FD_CLOSE while data is still unread), shuffle (reorder the
messages of one round), stale (messages for sockets already closed).
"""

import errno
import random
import select
import socket

from ulnet.ports.ce_socket import WinsockSocket

# Winsock's FD_* bits
FD_READ = 0x01
FD_WRITE = 0x02
FD_ACCEPT = 0x08
FD_CONNECT = 0x10
FD_CLOSE = 0x20

FAULTS = ("read_before_connect", "drop", "duplicate", "spurious", "early_close", "shuffle", "stale")

# what a socket of each kind asks for when it is registered (WSAAsyncSelect's lEvent)
_ARM = {
    "connecting": FD_CONNECT | FD_READ | FD_CLOSE,
    "accepted": FD_READ | FD_WRITE | FD_CLOSE,
    "listening": FD_ACCEPT,
    "datagram": FD_READ | FD_WRITE,
}
_RDHUP = getattr(select, "POLLRDHUP", 0x2000)
# how many closed handles the stale fault remembers
_STALE_MEMORY = 16


class _Watch:
    """What the emulator knows of one socket."""

    def __init__(self, raw, kind):
        self.raw = raw
        self.kind = kind
        self.armed = _ARM[kind] | (FD_WRITE if kind == "datagram" else 0)
        self.fin = False  # the peer's FIN was seen
        self.held = False  # read_before_connect: FD_CONNECT waits for readability
        self.connect_error = None  # the outcome the stack reported (SO_ERROR), once known
        self.polled = False  # registered with the emulator's poll object


class EmulatedSource:
    def __init__(self, faults=None, seed=0):
        faults = dict(faults or {})
        unknown = set(faults) - set(FAULTS)
        if unknown:
            known = ", ".join(FAULTS)
            raise ValueError("unknown CE faults: %s (known: %s)" % (", ".join(sorted(unknown)), known))
        # True means "always"
        self.faults = {name: (1.0 if p is True else float(p)) for name, p in faults.items() if p}
        self.rng = random.Random(seed)
        self._poll = select.poll()
        self._watches = {}
        self._queue = []
        self._closed = []
        # every fault decision, in order: the same seed and the same inputs give the same log
        self.log = []

    # -- socket, WSAAsyncSelect and closesocket ----------------------------------------------

    def socket(self, family, kind):
        return WinsockSocket(self, socket.socket(family, kind))

    def watch(self, raw, kind):
        fd = raw.fileno()
        self._watches[fd] = _Watch(raw, kind)
        self._update(fd)

    def forget(self, raw):
        fd = raw.fileno()
        w = self._watches.pop(fd, None)
        if w is not None:
            if w.polled:
                self._poll.unregister(fd)
            self._closed.append(fd)
            del self._closed[:-_STALE_MEMORY]

    def connect_error(self, raw):
        w = self._watches.get(raw.fileno())
        return None if w is None else w.connect_error

    # -- re-enabling calls ---------------------------------------------------------------------

    def recv_called(self, raw):
        w = self._watches.get(raw.fileno())
        if w is None:
            return
        w.armed |= FD_READ
        # Winsock: if the condition still holds when the re-enabling call is made, post now
        self._check(raw.fileno(), w, self._now(raw.fileno()))

    def send_blocked(self, raw):
        w = self._watches.get(raw.fileno())
        if w is not None:
            w.armed |= FD_WRITE
            self._update(raw.fileno())

    def accept_called(self, raw):
        w = self._watches.get(raw.fileno())
        if w is not None:
            w.armed |= FD_ACCEPT
            self._check(raw.fileno(), w, self._now(raw.fileno()))

    # -- the message queue ---------------------------------------------------------------------

    def messages(self, timeout_ms):
        """Wait up to timeout_ms for messages; returns this round's (fd, FD_*, error) list."""
        for fd, revents in self._poll.poll(0 if self._queue else timeout_ms):
            w = self._watches.get(fd)
            if w is not None:
                self._check(fd, w, revents)
        self._inject()
        batch, self._queue = self._queue, []
        if len(batch) > 1 and self._chance("shuffle"):
            self.rng.shuffle(batch)
        return batch

    def _now(self, fd):
        """The socket's current readiness, asked without waiting (a zero-timeout poll)."""
        probe = select.poll()
        probe.register(fd, select.POLLIN | select.POLLOUT | _RDHUP)
        ready = probe.poll(0)
        return ready[0][1] if ready else 0

    def _check(self, fd, w, revents):
        if w.armed & FD_CONNECT:
            self._connecting(fd, w, revents)
        elif w.kind == "listening":
            if revents & select.POLLIN and w.armed & FD_ACCEPT:
                self._post(fd, w, FD_ACCEPT, 0)
        else:
            self._connected(fd, w, revents)
        self._update(fd)

    def _connecting(self, fd, w, revents):
        if not w.held:
            if not revents & (select.POLLOUT | select.POLLERR | select.POLLHUP):
                return
            code = w.raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            w.connect_error = code
            if code == 0 and self._chance("read_before_connect"):
                w.held = True
        if w.held:
            if not revents & select.POLLIN:
                return
            # the fault's point: the data notification overtakes the connect notification
            self._post(fd, w, FD_READ, 0)
            w.held = False
        w.armed &= ~FD_CONNECT
        self._post(fd, w, FD_CONNECT, w.connect_error)
        if w.connect_error:
            # a failed connect posts nothing more
            w.armed = 0
        else:
            # FD_WRITE comes once right after a successful connect
            w.armed |= FD_WRITE | FD_CLOSE
            self._post(fd, w, FD_WRITE, 0)
            self._connected(fd, w, self._now(fd))

    def _connected(self, fd, w, revents):
        if w.kind == "datagram":
            if revents & select.POLLIN and w.armed & FD_READ:
                self._post(fd, w, FD_READ, 0)
        else:
            self._stream(fd, w, revents)
        if revents & select.POLLOUT and w.armed & FD_WRITE:
            self._post(fd, w, FD_WRITE, 0)

    def _stream(self, fd, w, revents):
        if revents & (_RDHUP | select.POLLHUP | select.POLLERR):
            w.fin = True
        unread, error = self._peek(w.raw) if revents & select.POLLIN or w.fin else (False, 0)
        if unread and w.armed & FD_READ:
            self._post(fd, w, FD_READ, 0)
        if w.fin and w.armed & FD_CLOSE and (error or not unread or self._chance("early_close")):
            self._post(fd, w, FD_CLOSE, error)

    def _peek(self, raw):
        """(data waiting, pending error) without consuming anything."""
        try:
            return bool(raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)), 0
        except BlockingIOError:
            return False, 0
        except OSError as exc:
            return False, exc.errno or errno.ECONNRESET

    def _post(self, fd, w, event, error):
        # posting a message disarms it until its re-enabling call
        w.armed &= ~event
        if self._chance("drop"):
            return
        self._queue.append((fd, event, error))
        if self._chance("duplicate"):
            self._queue.append((fd, event, error))

    def _inject(self):
        if self._watches and self._chance("spurious"):
            fd = self.rng.choice(sorted(self._watches))
            self._queue.append((fd, self.rng.choice((FD_READ, FD_WRITE)), 0))
        if self._closed and self._chance("stale"):
            fd = self.rng.choice(self._closed)
            self._queue.append((fd, self.rng.choice((FD_READ, FD_WRITE, FD_CLOSE, FD_CONNECT)), 0))

    def _chance(self, fault):
        p = self.faults.get(fault)
        if not p:
            return False
        hit = self.rng.random() < p
        self.log.append((fault, hit))
        return hit

    def _update(self, fd):
        """Poll only for armed conditions, so an unread socket does not wake the pump forever."""
        w = self._watches.get(fd)
        if w is None:
            return
        mask = 0
        if w.armed & (FD_READ | FD_ACCEPT) or w.held:
            mask |= select.POLLIN
        if w.armed & FD_CLOSE and not w.fin:
            mask |= _RDHUP
        if w.armed & (FD_WRITE | FD_CONNECT) and not w.held:
            mask |= select.POLLOUT
        if w.fin and not w.armed & FD_WRITE:
            # after the peer's close only the re-enabling calls can make news; a hung-up
            # socket polls as ready whatever the mask, so it leaves the poll set
            mask = 0
        if mask and w.polled:
            self._poll.modify(fd, mask)
        elif mask:
            self._poll.register(fd, mask)
            w.polled = True
        elif w.polled:
            self._poll.unregister(fd)
            w.polled = False
