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
  on_can_send then fires once.
- End of stream is seen by a read returning 0 bytes, so every earlier byte was offered first;
  it is reported once, through on_disconnect, after the current dispatch. Transport errors are
  reported once through on_error and close the socket. Nothing is reported after a close.
- Hot paths (_hint, send, recv_into) allocate nothing on MicroPython. Few methods: on a board
  each function costs about 100 bytes of heap.
"""

import errno

from ulnet.errors import TimeoutError, endpoint, net_error

# readiness flags: the poll(2)/epoll bit values, which MicroPython's select uses too
READ = 1
WRITE = 4
ERROR = 8
HANGUP = 16
# an error or hang-up reads as "readable": the read itself surfaces what happened
READABLE = READ | ERROR | HANGUP

CONNECTING = "connecting"  # connect() issued, outcome not known yet
CONNECTED = "connected"  # data may flow
LISTENING = "listening"  # a TCP listener or a bound UDP socket
CLOSING = "closing"  # closed during a round; the OS handle goes at the end of the round
CLOSED = "closed"  # gone; every call returns 0 or does nothing

# connect() answers that mean "under way" (EAGAIN: lwIP boards)
_IN_PROGRESS = (0, errno.EINPROGRESS, errno.EAGAIN)
# on_receive calls per read hint at most, so one busy socket cannot starve a round
DRAIN_MAX = 64


class Socket:
    """One endpoint owned by a connection object (TCP or UDP) whose callbacks it fires."""

    # policy knob: False restores lNet's behaviour (one on_receive per hint, and a hint that
    # arrives while connecting only completes the connect); tests use it to show the hang
    drain_on_hint = True

    def __init__(self, conn, raw, state):
        self._conn = conn
        self._eventer = conn.eventer
        self._port = conn.eventer.port
        self._raw = raw
        self.state = state
        self.user_data = None
        self.local_address = self.local_port = None
        self.peer_address = self.peer_port = None
        self._want_write = self._eof = self._queued = False
        # set by reads: the last one came up short (nothing more now) / returned data
        self._drained = self._got = False
        self._error = self._timer = None
        # connect only: addresses still to try, the one being tried, the name asked for
        self._addrs = self._sockaddr = self._host = None

    def __repr__(self):
        if self.peer_address:
            return "<Socket %s %s>" % (self.state, endpoint(self.peer_address, self.peer_port))
        return "<Socket %s %s>" % (self.state, endpoint(self.local_address, self.local_port))

    # -- data ----------------------------------------------------------------------------

    def send(self, data, off=0, n=-1):
        """Send data[off:off+n]; returns the bytes the OS took (less: wait for on_can_send)."""
        if self.state != CONNECTED:
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
                    self._wait_writable()
                    break
                total += sent
                off += sent
                n -= sent
        except OSError as exc:
            self._fail_io(exc, "send to")
        return total

    def sendfile(self, f, offset, count):
        """Send count bytes of file f from offset through the port's sendfile (only ports that
        have one: the desktop port). Returns the bytes sent, 0 at end of file, or None when
        nothing can go now: full (on_can_send follows) or failed (on_error follows)."""
        if self.state != CONNECTED:
            return None
        try:
            sent = self._port.sendfile(self._raw, f, offset, count)
        except OSError as exc:
            self._fail_io(exc, "send to")
            return None
        if sent is None:
            self._wait_writable()
        return sent

    def _wait_writable(self):
        """The OS is full: ask for a write hint; on_can_send fires once when it comes."""
        if not self._want_write:
            self._want_write = True
            self._port.modify(self._raw, self, READ | WRITE)

    def recv_into(self, buf, n=0):
        """Read up to n (default len(buf)) bytes into buf; 0 means nothing now."""
        if self.state != CONNECTED:
            return 0
        if n <= 0:
            n = len(buf)
        try:
            got = self._port.recv_into(self._raw, buf, n) if n else None
        except OSError as exc:
            self._fail_io(exc, "receive from")
            return 0
        if not got:
            self._drained = True
            if got == 0:
                self._eof = True
                self._queue_settle()
            return 0
        self._got = True
        if got < n:
            self._drained = True
        return got

    def get(self, n=0):
        """Read up to n bytes (default: the port's RECV_SIZE); b"" means nothing now."""
        if self.state != CONNECTED:
            return b""
        n = n or self._port.RECV_SIZE
        try:
            data = self._port.recv(self._raw, n)
        except OSError as exc:
            self._fail_io(exc, "receive from")
            return b""
        if not data:
            self._drained = True
            if data is None:
                return b""
            self._eof = True
            self._queue_settle()
            return data
        self._got = True
        if len(data) < n:
            self._drained = True
        return data

    def disconnect(self):
        """Close by the user's wish: no further callback of any kind for this socket."""
        self._error = None
        self._eof = False
        self._close()

    # -- dispatch (called by the port with the poll flags) ----------------------------------

    def _hint(self, flags):
        conn = self._conn
        try:
            state = self.state
            if state == CONNECTING:
                self._check_connect(flags)
                if not self.drain_on_hint:
                    return
                state = self.state
            if state == LISTENING:
                conn._ready(self)
                return
            if state != CONNECTED:
                return
            if flags & WRITE and self._want_write:
                self._want_write = False
                self._port.modify(self._raw, self, READ)
                if conn.on_can_send is not None:
                    conn.iterator = self
                    conn.on_can_send(self)
            if not flags & READABLE:
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
            for _ in range(DRAIN_MAX if self.drain_on_hint else 1):
                if self.state != CONNECTED:
                    return
                self._drained = self._got = False
                callback(self)
                if self._drained or not self._got:
                    return
        except Exception as exc:
            conn._handler_failed(exc)

    # -- connect ------------------------------------------------------------------------

    def _try_next(self, code):
        """Connect to the next resolved address; fail with the last error when none is left."""
        port = self._port
        while self._addrs:
            family, sockaddr = self._addrs.pop(0)
            raw = port.open(family, port.STREAM)
            code = port.connect(raw, sockaddr)
            if code in _IN_PROGRESS:
                # even an immediate success waits for its hint: on_connect always comes from
                # the loop, never from inside connect()
                self._raw = raw
                self._sockaddr = sockaddr
                port.register(raw, self, READ | WRITE)
                return
            port.close_socket(raw)
        self._fail(net_error(code, "connect to", self._host, self.peer_port))

    def _check_connect(self, flags):
        port = self._port
        code = port.connect_result(self._raw, flags)
        if code is None:
            return
        if code:
            port.unregister(self._raw)
            port.close_socket(self._raw)
            self._raw = None
            self._try_next(code)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = CONNECTED
        self.peer_address, self.peer_port = port.address(self._sockaddr)
        self.local_address, self.local_port = port.local(self._raw)
        self._addrs = self._sockaddr = None
        port.modify(self._raw, self, READ)
        conn = self._conn
        conn.iterator = self
        if conn.on_connect is not None:
            conn.on_connect(self)
        # the first on_can_send comes right after on_connect, whatever send() did before
        self._want_write = False
        if self.state == CONNECTED and conn.on_can_send is not None:
            conn.on_can_send(self)

    def _connect_timeout(self):
        self._timer = None
        if self.state == CONNECTING:
            self._fail(TimeoutError("connect to %s: timed out" % endpoint(self._host, self.peer_port)))

    # -- failure, end of stream, close --------------------------------------------------------

    def _fail_io(self, exc, action):
        self._fail(net_error(exc, action, self.peer_address, self.peer_port))

    def _fail(self, error):
        """A transport failure: close now, report once through on_error after dispatch."""
        if self.state == CLOSED or self.state == CLOSING:
            return
        self._error = error
        self._close()
        self._queue_settle()

    def _queue_settle(self):
        if not self._queued:
            self._queued = True
            self._eventer._pending.append(self)

    def _settle(self):
        """Deliver the queued report (error or end of stream), once."""
        self._queued = False
        conn = self._conn
        error = self._error
        try:
            if error is not None:
                self._error = None
                conn.iterator = self
                if conn.on_error is not None:
                    conn.on_error(self, error)
            elif self._eof and self.state == CONNECTED:
                self._close()
                conn.iterator = self
                if conn.on_disconnect is not None:
                    conn.on_disconnect(self)
        except Exception as exc:
            conn._handler_failed(exc)

    def _close(self):
        if self.state == CLOSED or self.state == CLOSING:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = CLOSING
        if self._eventer._in_round:
            # closed for real at the end of the round, so the OS cannot hand this handle to a
            # new socket while the round still holds events for it
            self._eventer._closing.append(self)
        else:
            self._close_now()

    def _close_now(self):
        raw = self._raw
        if raw is not None:
            self._raw = None
            self._port.unregister(raw)
            self._port.close_socket(raw)
        self.state = CLOSED
        self._conn._forget(self)
