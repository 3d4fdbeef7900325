"""Winsock notification emulator: WSAAsyncSelect/WSAEventSelect over real loopback sockets, with faults.

The one fake in ulnet, because a CE driver cannot run here. It follows the Winsock documentation
(docs/porting.md lists each rule and its page), not Linux: a notification is one-shot until its
re-enabling call (the emulated sockets of ports/ce_socket.py make those calls).
- FD_READ is posted once and re-enabled only by recv (MSG_PEEK counts); if data remains when
  recv re-enables it, it is posted again at once.
- FD_WRITE is posted once after connect or accept, and afterwards only after a send failed with
  WOULDBLOCK, when buffer space is available again.
- FD_CONNECT (with the error code) and FD_CLOSE (with 0, WSAECONNRESET or WSAECONNABORTED) are
  never posted again; FD_CLOSE comes after the peer's close once the data is read (or early,
  with unread data, under `early_close`), at once after a reset.
- FD_ACCEPT is re-enabled by accept, also by one that failed.
- Nothing orders FD_READ after FD_CONNECT; messages can arrive after closesocket.
Like the select() thread many CE images use instead of a native WSAAsyncSelect, it watches the
sockets with poll and posts a message when an armed condition holds. With api="WSAEventSelect"
each round reports one record per socket instead, all its events at once, as
WSAEnumNetworkEvents does.

Faults (`faults={name: probability or True}`), drawn from random.Random(seed) so the same seed
gives the same decisions. Not lossy (every notification a device owes comes, if late, twice,
early or out of order; the core must finish without the port's probe):
  read_before_connect  FD_CONNECT held until the socket is readable (FD_READ goes first), or
                       HOLD_MS at most: late, never lost
  duplicate, spurious  a message posted twice; FD_READ/FD_WRITE with nothing ready
  early_close          FD_CLOSE while data is still unread
  shuffle              the messages of one round in any order
  stale                messages for closed handles (a reused handle gets them), some carrying
                       error codes
  reset                a link (each with this chance) is reset during its first RESET_ROUNDS
                       rounds: FD_CLOSE carries WSAECONNRESET or WSAECONNABORTED
  connect_error        a connect (each with this chance) fails: FD_CONNECT carries
                       WSAETIMEDOUT, WSAENETUNREACH or WSAECONNREFUSED
Lossy (only the probe, a device-side watchdog, or a deadline recovers):
  drop                 a posted message is lost
  suspend              once (with this chance), within SUSPEND_ROUNDS rounds that hold a link,
                       the device sleeps suspend_ms (pump and probe frozen); then each link is dead
                       (FD_CLOSE with WSAECONNABORTED), reset (WSAECONNRESET) or silently gone
Errors carry the host's errno of the Winsock name (errno.ECONNRESET is WSAECONNRESET on Windows).
"""

import errno
import random
import select
import socket
import struct
import time

from ulnet.ports.ce_socket import FD_ACCEPT, FD_READ, FD_WRITE, WinsockSocket

# Winsock's other FD_* bits (ports/ce_socket.py has those a socket call re-enables)
FD_CONNECT = 0x10
FD_CLOSE = 0x20

FAULTS = ("read_before_connect", "duplicate", "spurious", "early_close", "shuffle", "stale",
          "reset", "connect_error", "drop", "suspend")
LOSSY = ("drop", "suspend")
# how the device's program learns of events: messages (WSAAsyncSelect), or an event object and
# WSAEnumNetworkEvents (WSAEventSelect: the only one Windows CE 6.0's documentation lists)
APIS = ("WSAAsyncSelect", "WSAEventSelect")

# what a socket of each kind asks for when it is registered (WSAAsyncSelect's lEvent)
_ARM = {
    "connecting": FD_CONNECT | FD_READ | FD_CLOSE,
    "accepted": FD_READ | FD_WRITE | FD_CLOSE,
    "listening": FD_ACCEPT,
    "datagram": FD_READ | FD_WRITE,
}
# the error codes each message can carry (WSAAsyncSelect on Microsoft Learn lists them)
_CLOSE_ERRORS = (errno.ECONNRESET, errno.ECONNABORTED)
_CONNECT_ERRORS = (errno.ETIMEDOUT, errno.ENETUNREACH, errno.ECONNREFUSED)
_STALE = ((FD_READ, (0,)), (FD_WRITE, (0,)), (FD_CLOSE, (0,) + _CLOSE_ERRORS),
          (FD_CONNECT, (0,) + _CONNECT_ERRORS))
_RDHUP = getattr(select, "POLLRDHUP", 0x2000)
# how many closed handles the stale fault remembers
_STALE_MEMORY = 16


class _Watch:
    """What the emulator knows of one socket."""

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.armed = _ARM[kind] | (FD_WRITE if kind == "datagram" else 0)
        self.fin = False  # the peer's FIN was seen
        self.held = 0  # read_before_connect: FD_CONNECT waits for readability until this time
        self.reset_in = -1  # the reset fault: rounds left before this link is reset
        self.polled = False  # registered with the emulator's poll object


class EmulatedSource:
    # a held FD_CONNECT comes this late at most: a device's messages are late by a few ms, and
    # this stays below the port's probe period, so the probe never counts a late one as lost
    HOLD_MS = 20
    RESET_ROUNDS = 8  # a reset link is reset within this many rounds of its life
    SUSPEND_ROUNDS = 16  # the suspend comes within this many rounds that hold a link
    suspend_ms = 2000  # how long the device sleeps

    def __init__(self, faults=None, seed=0, api="WSAAsyncSelect"):
        if api not in APIS:
            known = ", ".join(APIS)
            raise ValueError("unknown Winsock notification API %r (known: %s)" % (api, known))
        # WSAEventSelect: each round reports, per socket, every event recorded since the last
        # one at once, as WSAEnumNetworkEvents does (its bits ORed, the first error code)
        self.enumerate = api == "WSAEventSelect"
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
        self.suspended = 0  # how many times the device slept
        self._sleep_in = self.rng.randrange(self.SUSPEND_ROUNDS) if self._chance("suspend") else -1

    # -- socket, WSAAsyncSelect and closesocket -------------------------------------------

    def socket(self, family, kind):
        return WinsockSocket(self, socket.socket(family, kind))

    def watch(self, sock, kind):
        fd = sock.fileno()
        self._watches[fd] = _Watch(sock, kind)
        if kind == "accepted":
            self._linked(self._watches[fd])
        self._update(fd)

    def forget(self, sock):
        fd = sock.fileno()
        w = self._watches.pop(fd, None)
        if w is not None:
            if w.polled:
                self._poll.unregister(fd)
            self._closed.append(fd)
            del self._closed[:-_STALE_MEMORY]

    # -- re-enabling calls (made by the emulated sockets) ----------------------------------

    def enable(self, sock, event):
        """A re-enabling call was made (recv: FD_READ, a send that would block: FD_WRITE,
        accept: FD_ACCEPT); if the condition holds already, the message is posted now."""
        w = self._live(sock)
        if w is not None:
            w.armed |= event
            self._check(sock.fileno(), w, self._now(sock.fileno()))

    def _live(self, sock):
        w = self._watches.get(sock.fileno())
        return None if w is None or sock.error or sock.gone else w

    # -- the message queue -----------------------------------------------------------------

    def messages(self, timeout_ms):
        """Wait up to timeout_ms for messages; returns this round's (fd, FD_*, error) list."""
        held = [w for w in self._watches.values() if w.held]
        if self._queue:
            timeout_ms = 0
        elif held:
            due = max(0, int((min(w.held for w in held) - time.monotonic()) * 1000) + 1)
            timeout_ms = due if timeout_ms < 0 else min(timeout_ms, due)
        for fd, revents in self._poll.poll(timeout_ms):
            w = self._watches.get(fd)
            if w is not None:
                self._check(fd, w, revents)
        for w in held:
            if w.held and time.monotonic() >= w.held:
                self._check(w.sock.fileno(), w, self._now(w.sock.fileno()))
        self._round()
        batch, self._queue = self._queue, []
        if len(batch) > 1 and self._chance("shuffle"):
            self.rng.shuffle(batch)
        return self._enumerated(batch) if self.enumerate else batch

    def _enumerated(self, batch):
        """The round's messages as WSAEnumNetworkEvents reports them: one record per socket."""
        records = {}
        for fd, event, error in batch:
            bits, first = records.get(fd, (0, 0))
            records[fd] = (bits | event, first or error)
        return [(fd, bits, error) for fd, (bits, error) in records.items()]

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
        sock = w.sock
        if not w.held:
            if not revents & (select.POLLOUT | select.POLLERR | select.POLLHUP):
                return
            failed = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not failed and self._chance("connect_error"):
                # the stack gave up on it: the peer saw a connection open and reset
                sock.connect_error = self.rng.choice(_CONNECT_ERRORS)
                self._abort(sock)
            if not sock.connect_error and self._chance("read_before_connect"):
                w.held = time.monotonic() + self.HOLD_MS / 1000
        if w.held:
            if revents & select.POLLIN:
                # the fault's point: the data notification overtakes the connect notification
                self._post(fd, w, FD_READ, 0)
            elif time.monotonic() < w.held:
                return
            w.held = 0
        w.armed &= ~FD_CONNECT
        self._post(fd, w, FD_CONNECT, sock.connect_error or 0)
        if sock.connect_error:
            w.armed = 0  # a failed connect posts nothing more
        else:
            # FD_WRITE comes once right after a successful connect
            w.armed |= FD_WRITE | FD_CLOSE
            self._post(fd, w, FD_WRITE, 0)
            self._linked(w)
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
        unread, error = self._peek(w.sock) if revents & select.POLLIN or w.fin else (False, 0)
        if error:
            w.sock.error = error  # Winsock keeps it: every later recv and send fails with it
        if unread and w.armed & FD_READ:
            self._post(fd, w, FD_READ, 0)
        if w.fin and w.armed & FD_CLOSE and (error or not unread or self._chance("early_close")):
            self._post(fd, w, FD_CLOSE, error)

    def _peek(self, sock):
        """(data waiting, pending error) without consuming data (Linux hands the error out
        once, here; the emulated socket keeps it)."""
        try:
            return bool(sock._real.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)), 0
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

    # -- faults that are not about one message -----------------------------------------------

    def _linked(self, w):
        """A stream link is up: decide whether the reset fault will meet it."""
        if self._chance("reset"):
            w.reset_in = self.rng.randrange(self.RESET_ROUNDS)

    def _round(self):
        links = [w for w in self._watches.values() if w.kind in ("connecting", "accepted")]
        for w in links:
            if w.reset_in >= 0:
                w.reset_in -= 1
                if w.reset_in < 0 and not w.sock.error and not w.sock.gone:
                    self._fail(w, self.rng.choice(_CLOSE_ERRORS))
        if links and self._sleep_in >= 0:
            self._sleep_in -= 1
            if self._sleep_in < 0:
                self._suspend(links)
        if self._watches and self._chance("spurious"):
            fd = self.rng.choice(sorted(self._watches))
            self._queue.append((fd, self.rng.choice((FD_READ, FD_WRITE)), 0))
        if self._closed and self._chance("stale"):
            event, errors = self.rng.choice(_STALE)
            self._queue.append((self.rng.choice(self._closed), event, self.rng.choice(errors)))

    def _suspend(self, links):
        """The device sleeps with the pump (and so the probe) frozen; the links do not survive."""
        self.suspended += 1
        time.sleep(self.suspend_ms / 1000)
        for w in links:
            fate = self.rng.choice(("dead", "reset", "gone"))
            self.log.append(("wake", fate))
            if fate == "gone":
                w.sock.gone = True  # nothing is ever posted for it again; only deadlines help
                w.armed = 0
                self._abort(w.sock)
                self._update(w.sock.fileno())
            else:
                self._fail(w, errno.ECONNABORTED if fate == "dead" else errno.ECONNRESET)

    def _fail(self, w, error):
        """The stack lost the link: the peer sees a reset, the device's socket fails with error."""
        fd = w.sock.fileno()
        self._abort(w.sock)
        if w.armed & FD_CONNECT:
            w.sock.connect_error = errno.ETIMEDOUT
            self._post(fd, w, FD_CONNECT, errno.ETIMEDOUT)
        else:
            w.sock.error = error
            if w.armed & FD_CLOSE:
                self._post(fd, w, FD_CLOSE, error)
        w.armed = 0
        self._update(fd)

    def _abort(self, sock):
        """End the real link with a reset, as a stack that gave up on it does, so the peer
        sees it go; the handle stays open (the port still holds it). connect(AF_UNSPEC) is
        Linux's way to disconnect a TCP socket in place: ctypes, as the emulator is host-only."""
        import ctypes

        unspec = struct.pack("H", socket.AF_UNSPEC) + bytes(14)
        ctypes.CDLL(None).connect(sock.fileno(), unspec, len(unspec))

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
