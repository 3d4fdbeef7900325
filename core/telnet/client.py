"""TelnetClient: lNet's TLTelnetClient, event-driven: one TCP connection driving the sans-I/O
machine of protocol.py.

Rules:
- Callbacks are plain attributes set to a callable or None: on_connect(client),
  on_receive(client, data), on_can_send(client), on_error(client, err), on_disconnect(client).
  They come from the eventer's loop only, never from inside connect() or send().
- on_receive is handed the data without commands: the bytes the machine made, passed on as
  they are. The client keeps no receive buffer and allocates nothing per read beyond what the
  machine does (the read goes into one preallocated bytearray). on_receive unset: the data is
  dropped and negotiation still runs.
- Bytes are never lost or reordered: what the OS does not take waits in one bytearray and goes
  out on on_can_send before anything newer. send() takes what the OS takes plus at most max_out
  bytes of the caller's data to wait, and returns how many it took (TCP's ping-pong send);
  after a send() that took less than it was given, on_can_send fires once all has gone out.
- The machine's answers to the peer go out at once, in protocol order. A peer that makes us
  queue more than 4 * max_out bytes without reading them (endless TTYPE SEND or NAWS requests;
  checked after each read, whose answers come on top) is a RemoteProtocolError.
- One report per end: a transport failure (NetError; a connect past connect_timeout_ms is
  ulnet.TimeoutError) or the peer's garbage (RemoteProtocolError) reaches on_error once and the
  connection is closed; the peer closing, mid-negotiation or not, is one on_disconnect.
  disconnect() is final: no callback afterwards. The caller's misuse raises LocalProtocolError
  at once; one that breaks the machine (it is sticky) closes the connection first.
- Local echo (local_echo = True): while the server does not echo (it has not agreed to WILL
  ECHO), what send() took comes back through on_receive, as given (unescaped), from the loop and
  before any data received after it, as lNet's LocalEcho does.
"""

from ulnet.errors import LocalProtocolError, ProtocolError, RemoteProtocolError, endpoint
from ulnet.eventer import report_exception
from ulnet.tcp import TCP

from . import ECHO
from .events import ConnectionClosed, Data
from .protocol import ERROR, NEED_DATA, TelnetProtocol

_CR = 13


class TelnetClient:
    # policy knobs (override per object, or in a subclass)
    connect_timeout_ms = 15000
    # caller bytes send() accepts while bytes wait for the OS; escaping (IAC IAC, CR NUL) can
    # double them, so the outgoing buffer holds at most ~2 * max_out of the caller's data
    max_out = 4096
    local_echo = False

    def __init__(self, eventer, term="VT100", size=(80, 24)):
        self.eventer = eventer
        self.term = term
        self.size = size
        self.on_connect = self.on_receive = self.on_can_send = None
        self.on_error = self.on_disconnect = None
        tcp = self._tcp = TCP(eventer)
        tcp.on_connect = self._connected
        tcp.on_can_send = self._can_send
        tcp.on_receive = self._received
        tcp.on_disconnect = self._ended
        tcp.on_error = self._failed
        self._sock = self._proto = None
        self._out = bytearray()  # bytes the OS has not taken yet, in order
        self._echo = bytearray()  # local echo waiting for the loop
        self._owed = False  # send() took less than asked: on_can_send once all is out
        self._buf = bytearray(eventer.port.RECV_SIZE)  # every read lands here (no allocation)
        self._timer = eventer.call_later(0, self._flush_echo)  # delivers the local echo
        self._timer.cancel()

    def __repr__(self):
        sock = self._sock
        if sock is None:
            return "<TelnetClient not connected>"
        tls = "" if sock._tls is None else " tls " + sock._tls.status
        where = endpoint(sock.peer_address, sock.peer_port)
        return "<TelnetClient %s %s%s>" % (sock.state, where, tls)

    @property
    def connected(self):
        """True once on_connect has fired, until the connection ends."""
        return self._sock is not None and self._sock.state == "connected"

    @property
    def pending(self):
        """Bytes handed to send() (escaped) and answers that the OS has not taken yet."""
        return len(self._out)

    # -- the caller's side -----------------------------------------------------------------

    def connect(self, host, port=None, timeout_ms=None, tls=None, cafile=None, fingerprint=None,
                verify=True):
        """Start connecting (a fresh negotiation); outcome: on_connect or on_error, once.

        Telnet over TLS (telnets: TLS from the first byte, port 992 by default) when tls is True
        or a ulnet.TLSSession, or when cafile, fingerprint or verify=False ask for it;
        on_connect then follows the handshake and the certificate check (docs/tls.md)."""
        if self._sock is not None:
            raise LocalProtocolError("connect: already connected or connecting")
        session = tls
        # a TLS setting given, even empty or odd (cafile=""), asks for TLS: never plain Telnet
        asked = cafile is not None or fingerprint is not None or verify is not True
        if tls is True or tls is None and asked:
            from ulnet.tls import TLSSession  # only now: a plain client never loads TLS

            session = TLSSession(cafile, fingerprint, verify)  # ValueError for a bad setting
        elif not tls and asked:
            raise ValueError("tls=False with cafile, fingerprint or verify: no TLS to apply")
        self._proto = TelnetProtocol(self.term, self.size)  # raises for a bad term or size
        self._tcp.session = session or None
        if port is None:
            port = 23 if session is None else 992
        self._sock = self._tcp.connect(host, port, timeout_ms or self.connect_timeout_ms)

    def send(self, data):
        """Queue data for the server (bytes-like; IAC doubled, CR made CR NUL by the machine).

        Returns how many bytes of data it took: all that the OS takes at once, plus up to
        max_out more waiting for it. Fewer than len(data) (maybe 0) means on_can_send follows
        once what waits is out. Before on_connect the data waits and goes out right after it.
        """
        proto = self._live()
        total = len(data)
        took = 0
        while took < total:
            room = self.max_out - len(self._out) - len(self._echo)
            if room <= 0:
                self._owed = True
                break
            n = total - took
            if n > room:
                n = room
                if n > 1 and data[took + n - 1] == _CR:
                    n -= 1  # keep CR with the LF after it: a CR alone goes out as CR NUL
            part = data if n == total else memoryview(data)[took:took + n]
            self._write(self._guard(proto, proto.send_data, part))
            if self.local_echo and not proto.option_enabled(ECHO):
                self._echo.extend(part)
                self._timer.restart(0)
            took += n
        return took

    def send_command(self, option, how=None):
        """Negotiate: send_command(ECHO, DONT) with DO/DONT (the server's side) or WILL/WONT
        (ours), through the RFC 1143 Q method (nothing is sent when nothing would change).
        With how=None, send the two-byte command `option` instead, e.g. send_command(AYT)."""
        proto = self._live()
        if how is None:
            self._write(self._guard(proto, proto.send_command, option))
        else:
            self._write(self._guard(proto, proto.request, option, how))

    def set_size(self, cols, rows):
        """Set the window size; sent at once (NAWS) when the server asked for it."""
        self.size = (cols, rows)
        if self._sock is not None:
            proto = self._proto
            self._write(self._guard(proto, proto.set_size, cols, rows))

    def option_enabled(self, option, remote=True):
        """True when the option is on: remote=True the server's side (it WILL), False ours."""
        return self._proto is not None and self._proto.option_enabled(option, remote)

    def disconnect(self):
        """Close now; what still waits to be sent is dropped. No callback follows."""
        sock = self._sock
        self._drop()
        if sock is not None:
            sock.disconnect()

    # -- internals ---------------------------------------------------------------------------

    def _drop(self):
        """Forget the connection and its buffers (what waits for it can never go out)."""
        self._sock = None
        self._timer.cancel()
        self._out[:] = self._echo[:] = b""
        self._owed = False

    def _live(self):
        if self._sock is None:
            raise LocalProtocolError("not connected")
        return self._proto

    def _guard(self, proto, method, a, b=None):
        """Call a sending method of the machine; misuse leaves it dead, so close first."""
        try:
            return method(a) if b is None else method(a, b)
        except ProtocolError:
            if proto.state == ERROR:
                self.disconnect()
            raise

    def _write(self, data):
        """Send now or after what waits; the remainder waits (on_can_send flushes it)."""
        if not data:
            return
        out = self._out
        if not out:
            taken = self._sock.send(data)
            if taken == len(data):
                return
            data = memoryview(data)[taken:]
        out.extend(data)

    def _settle_send(self):
        """Fire the on_can_send a short send() owes, once nothing waits any more."""
        if self._owed and not self._out and not self._echo:
            self._owed = False
            if self.on_can_send is not None:
                self.on_can_send(self)

    def _report(self, err):
        if self.on_error is not None:
            self.on_error(self, err)
        else:
            report_exception(err)

    def _abort(self, err):
        """The peer broke the protocol: close, then report once."""
        self.disconnect()
        self._report(err)

    # -- TCP events ----------------------------------------------------------------------------

    def _connected(self, sock):
        if self.on_connect is not None:
            self.on_connect(self)

    def _can_send(self, sock):
        out = self._out
        if out:
            out[: sock.send(out)] = b""
            if out:
                return  # the socket fires on_can_send again when the OS can take more
        self._settle_send()

    def _received(self, sock):
        n = sock.recv_into(self._buf)
        if not n:
            return
        proto = self._proto
        proto.receive_data(self._buf, n)
        answers = proto.data_to_send()
        if answers:
            self._write(answers)
            if len(self._out) > 4 * self.max_out:
                self._abort(RemoteProtocolError("the server does not read our answers"))
                return
        self._deliver()

    def _deliver(self):
        """Hand the machine's events to the caller; False if the connection ended meanwhile."""
        if self._echo:
            self._flush_echo()  # typed before anything that arrives now
        proto = self._proto
        while self._proto is proto and self._sock is not None:
            try:
                event = proto.next_event()
            except ProtocolError as err:
                self._abort(err)
                return False
            if event is NEED_DATA or type(event) is ConnectionClosed:
                return True
            if type(event) is Data and self.on_receive is not None:
                self.on_receive(self, event.data)
        return False

    def _flush_echo(self):
        echo = self._echo
        if echo:
            data = bytes(echo)
            echo[:] = b""
            try:
                if self.on_receive is not None:
                    self.on_receive(self, data)
                self._settle_send()
            except Exception as exc:  # from a timer: the caller's handler raised
                self._report(exc)

    def _ended(self, sock):
        if sock is self._sock and self._deliver():  # events a raising handler left behind
            self._drop()
            if self.on_disconnect is not None:
                self.on_disconnect(self)

    def _failed(self, sock, err):
        if sock is not None and sock is self._sock and sock.state != "connected" \
                and sock.state != "connecting":
            self._drop()  # a transport failure closed it; else a handler of ours raised
        self._report(err)
