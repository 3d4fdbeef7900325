"""Socket: one non-blocking endpoint, its state, and the rules that make every port safe.

Rules (shared by every port, never special-cased per port):
- A readiness flag is only a hint; state comes from system calls. A hint on a connecting
  socket means "check the connect": the port's connect_result decides, and the connect is
  completed (or failed) exactly once. A spurious hint changes nothing.
- A read hint is never thrown away, and it is drained (drain on hint): the hint that completed a
  connect is still delivered to on_receive afterwards, and on_receive is called again while the
  handler keeps reading and the reads have not come up short (would-block, end of stream, fewer
  bytes than asked). Winsock posts FD_READ once and FD_CLOSE once, so a hint left undrained
  there is a hung session; on level-triggered ports draining just saves rounds.
- send() sends first and waits for a write hint only after the OS refused more (would-block);
  on_can_send then fires once. The FTP upload pump (ftp/ops.py) writes chunks the OS takes
  whole through the port's send on `_raw` itself, and hands every other write to send().
- End of stream is seen by a read returning 0 bytes, so every earlier byte was offered first;
  it is reported once, through on_disconnect, after the current dispatch. Transport errors are
  reported once through on_error and close the socket. Nothing is reported after a close.
- Hot paths (_hint, send, recv_into) allocate nothing on MicroPython. Few methods and few
  attribute names: on a board each costs heap (about 100 and 30 bytes).

States (`state`, a str): "connecting" (connect() issued, outcome not known yet; or a TLS
handshake under way, core/tls.py), "connected" (data may flow), "listening" (a TCP listener or a
bound UDP socket), "closing" (closed during a round; the OS handle goes at the end of the round),
"closed" (gone; calls return 0).

TLS: a TLS socket's `_raw` is the runtime's TLS socket and `_port` the object its I/O goes
through (the port itself, or the port's TLS I/O); everything above reads and writes as before.
"""

from ulnet.errors import TimeoutError, endpoint, net_error

try:
    from micropython import const
except ImportError:  # CPython; int, not a function: on a board each function costs heap
    const = int

# readiness flags: the poll(2)/epoll bit values, which MicroPython's select uses too
READ = const(1)
WRITE = const(4)
# READ | ERROR (8) | HANGUP (16): an error or hang-up reads as "readable", the read surfaces it
_READABLE = const(25)
# on_receive calls per read hint at most, so one busy socket cannot starve a round
_DRAIN_MAX = const(64)
# what the last read saw (_read): nothing yet, data (a full read), short (nothing more now)
_NONE = const(0)
_GOT = const(1)
_SHORT = const(2)


class Socket:
    """One endpoint owned by a connection object (TCP or UDP) whose callbacks it fires."""

    # policy knob: False restores lNet's behaviour (one on_receive per hint, and a hint that
    # arrives while connecting only completes the connect); tests use it to show the hang
    drain_on_hint = True

    # Defaults as class attributes: an instance holds only what differs from them. Each
    # instance attribute costs heap on a board, and its dict grows in steps, each an allocation
    # (a class attribute is paid once, so this pays off for a class with several instances).
    # The ones set on the way to "connected" are in the instance by then; what an error path
    # sets is set in __init__, so a failure never needs a bigger dict.
    # _read: what the last read saw; _addrs (connect only): resolved (family, sockaddr) pairs,
    # the first is the one being tried; _timer: the connect (and TLS handshake) deadline; _tls:
    # the socket's TLS (core/tls.py), whose handshake runs while the state is "connecting".
    user_data = local_address = local_port = peer_address = peer_port = None
    _want_write = False
    _read = _NONE
    _timer = _addrs = _tls = None

    def __init__(self, conn, raw, state):
        self._conn = conn
        self._port = conn.eventer.port
        self._raw = raw
        self.state = state
        # the queued report: a transport failure, True for end of stream, None for none
        self._error = None

    def __repr__(self):
        if self.peer_address:
            where = endpoint(self.peer_address, self.peer_port)
        else:
            where = endpoint(self.local_address, self.local_port)
        tls = "" if self._tls is None else " tls " + self._tls.status
        return "<Socket %s %s%s>" % (self.state, where, tls)

    # -- data ----------------------------------------------------------------------------

    def send(self, data, off=0, n=-1):
        """Send data[off:off+n]; returns the bytes the OS took (less: wait for on_can_send)."""
        if self.state != "connected":
            # before the connect completes: on_can_send follows on_connect, nothing is lost
            return 0
        if n < 0:
            n = len(data) - off
        port = self._port
        total = 0
        try:
            while n > 0:
                sent = port.send(self._raw, data, off, n)
                if sent is None:
                    # the OS is full: ask for a write hint; on_can_send fires once when it comes
                    if not self._want_write:
                        self._want_write = True
                        port.modify(self._raw, self, READ | WRITE)
                    break
                total += sent
                off += sent
                n -= sent
        except OSError as exc:
            self._later(net_error(exc, "send to", self.peer_address, self.peer_port))
        return total

    def sendfile(self, f, off, count):
        """Send count bytes of file f from offset off through the port's sendfile (only ports
        that have one: the desktop port). Returns the bytes sent, 0 at end of file, or None when
        nothing can go now: full (on_can_send follows) or failed (on_error follows)."""
        if self.state != "connected":
            return None
        try:
            sent = self._port.sendfile(self._raw, f, off, count)
        except OSError as exc:
            self._later(net_error(exc, "send to", self.peer_address, self.peer_port))
            return None
        if sent is None and not self._want_write:  # full: as in send
            self._want_write = True
            self._port.modify(self._raw, self, READ | WRITE)
        return sent

    def recv_into(self, buf, n=0):
        """Read up to n (default len(buf)) bytes into buf; 0 means nothing now."""
        if self.state != "connected":
            return 0
        if n <= 0:
            n = len(buf)
        try:
            got = self._port.recv_into(self._raw, buf, n) if n else None
        except OSError as exc:
            self._later(net_error(exc, "receive from", self.peer_address, self.peer_port))
            return 0
        if not got:
            self._read = _SHORT
            if got == 0:
                self._later(None)
            return 0
        self._read = _SHORT if got < n else _GOT
        return got

    def get(self, n=0):
        """Read up to n bytes (default: the port's RECV_SIZE); b"" means nothing now."""
        if self.state != "connected":
            return b""
        n = n or self._port.RECV_SIZE
        try:
            data = self._port.recv(self._raw, n)
        except OSError as exc:
            self._later(net_error(exc, "receive from", self.peer_address, self.peer_port))
            return b""
        if not data:
            self._read = _SHORT
            if data is None:
                return b""
            self._later(None)
            return data
        self._read = _SHORT if len(data) < n else _GOT
        return data

    def disconnect(self):
        """Close by the user's wish: no further callback of any kind for this socket."""
        self._error = None  # a queued report is dropped
        self._close()

    # -- dispatch (called by the port with the poll flags) ----------------------------------

    def _hint(self, flags):
        conn = self._conn
        try:
            state = self.state
            if state == "connecting":
                self._check()
                if not self.drain_on_hint:
                    return
                state = self.state
            if state == "listening":
                conn._ready(self)
                return
            if state != "connected":
                return
            if flags & WRITE and self._want_write:
                self._want_write = False
                self._port.modify(self._raw, self, READ)
                if conn.on_can_send is not None:
                    conn.iterator = self
                    conn.on_can_send(self)
            if not flags & _READABLE:
                return
            callback = conn.on_receive
            if callback is None:
                # nobody listens: read and drop, so end of stream is still seen, nothing spins
                buf = conn._scratch()
                while self.recv_into(buf):
                    pass
                return
            conn.iterator = self
            # drain on hint: again while the handler reads and its reads come back full
            for _ in range(_DRAIN_MAX if self.drain_on_hint else 1):
                if self.state != "connected":
                    return
                self._read = _NONE
                callback(self)
                if self._read != _GOT:
                    return
        except Exception as exc:
            conn._fail(exc)

    # -- connect ------------------------------------------------------------------------

    def _try_next(self, code):
        """Connect to the next resolved address; fail with the last error when none is left."""
        port = self._port
        addrs = self._addrs
        while addrs:
            raw = port.open(addrs[0][0], port.STREAM)
            code = port.connect(raw, addrs[0][1])
            # 0 (connected) or None (under way: the port knows its runtime's words for it,
            # EINPROGRESS, Winsock's WSAEWOULDBLOCK, lwIP's EAGAIN). Even an immediate success
            # waits for its hint: on_connect always comes from the loop, never from connect()
            if not code:
                self._raw = raw
                port.register(raw, self, READ | WRITE)
                return
            port.close_socket(raw)
            addrs.pop(0)
        self._later(net_error(code, "connect to", self.peer_address, self.peer_port))

    def _check(self):
        """Check a connect under way (a hint came): connected, failed, or not decided yet; or
        take the next step of a TLS handshake (core/tls.py). Once up: on_connect (after a
        connect), then the first on_can_send."""
        if self._tls is not None:
            connected = self._tls._step(self)
        else:
            port = self._port
            code = port.connect_result(self._raw)
            if code is None:
                return
            if code:
                port.unregister(self._raw)
                port.close_socket(self._raw)
                self._raw = None
                self._addrs.pop(0)
                self._try_next(code)
                return
            name = self.peer_address
            self.peer_address, self.peer_port = port.address(self._addrs[0][1])
            local = port.local(self._raw)
            if local[0] is not None:  # unknown on MicroPython (no getsockname): the defaults stay
                self.local_address, self.local_port = local
            self._addrs = None
            session = self._conn.session
            # implicit TLS: the handshake first, on_connect after it
            connected = True if session is None else session._begin(self, name, True)
        if connected is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = "connected"
        self._port.modify(self._raw, self, READ)
        conn = self._conn
        conn.iterator = self
        if connected and conn.on_connect is not None:
            conn.on_connect(self)
        # the first on_can_send comes right after on_connect, whatever send() did before
        self._want_write = False
        if self.state == "connected" and conn.on_can_send is not None:
            conn.on_can_send(self)

    def _deadline(self):
        """The connect timer fired."""
        self._timer = None
        if self.state == "connecting":
            where = endpoint(self.peer_address, self.peer_port)
            what = "connect to" if self._tls is None else "TLS handshake with"
            self._later(TimeoutError("%s %s: timed out" % (what, where)))

    # -- reports and close ----------------------------------------------------------------------

    def _later(self, error):
        """Queue a report for after this round's dispatch: a transport failure (the socket
        closes now, on_error once), or with None the end of stream (on_disconnect once)."""
        if error is None:
            if self._error is None:
                self._error = True  # end of stream (a failure queued before it wins)
        elif self.state == "closed" or self.state == "closing":
            return
        else:
            self._error = error
            self._close()
        pending = self._conn.eventer._pending
        if self not in pending:  # queued once; the eventer empties the list after settling it
            pending.append(self)

    def _settle(self):
        """Deliver the queued report, once."""
        conn = self._conn
        report, self._error = self._error, None
        try:
            if report is True:
                if self.state == "connected":
                    self._close()
                    conn.iterator = self
                    if conn.on_disconnect is not None:
                        conn.on_disconnect(self)
            elif report is not None:
                conn.iterator = self
                if conn.on_error is not None:
                    conn.on_error(self, report)
        except Exception as exc:
            conn._fail(exc)

    def _close(self):
        """Close now, or at the end of the round if one is running (so the OS cannot hand this
        handle to a new socket while the round still holds events for it): the eventer calls
        this again then."""
        if self.state == "closed":
            return
        eventer = self._conn.eventer
        if self.state != "closing":
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.state = "closing"
            if eventer._in_round:
                eventer._closing.append(self)
                return
        elif eventer._in_round:
            return
        raw = self._raw
        if raw is not None:
            self._raw = None
            self._port.unregister(raw)
            self._port.close_socket(raw)
        self.state = "closed"
        self._conn._lost(self)
