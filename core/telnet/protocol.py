"""The sans-I/O Telnet protocol machine (RFC 854, 855, 1143): bytes in, events out.

Rules:
- No sockets, clocks or files. The caller feeds what it read with receive_data(data) (b"" when
  the peer closed), calls next_event() until it returns NEED_DATA, and writes to the peer
  whatever data_to_send() and the sending methods return, in the order it got them.
- Received bytes are parsed at once. Answers to the peer's negotiation are queued for
  data_to_send(); events wait for next_event(). Every sending method returns its bytes with
  the queued answers in front, so bytes leave in protocol order whichever way the caller drains.
- Data is the common case: runs without IAC are found with bytes.find and kept as one slice,
  and a call's data between two events comes out as one Data event (no per-byte loop).
- A two-byte command ends exactly after its second byte ("AB IAC NOP CD" is data "ABCD" around
  Command(NOP)); subnegotiation bytes never reach the data; MAX_SB bounds them.
- Options follow the RFC 1143 Q method (options.py), our side and the peer's kept apart.
- The peer's garbage never raises out of receive_data: parsing stops, the machine goes to ERROR
  and next_event() raises RemoteProtocolError after the events that came before it. Misuse
  raises LocalProtocolError at once. ERROR is sticky.
- MicroPython: no typing, enum or dataclasses; only bytes.find/replace, slices and bytearrays.
"""

try:
    from micropython import const  # private ints below become literals in the bytecode
except ImportError:  # CPython

    def const(value):
        return value


from ..errors import LocalProtocolError, RemoteProtocolError
from . import BINARY, DO, DONT, ECHO, IAC, NAWS, SB, SE, SGA, TTYPE, WILL, WONT
from .events import NEED_DATA, Command, ConnectionClosed, Data, OptionChanged  # noqa: F401
from .options import ASK_OFF, ASK_ON, RECV_OFF, RECV_ON, RECV_ON_REFUSED, SEND_ON, YES, Options

# Longest subnegotiation accepted, option byte and unescaped payload together. The only one a
# client must read is TTYPE SEND (2 bytes); options we refuse should send none (RFC 855), and
# the chatty ones of a broken server (NEW-ENVIRON SEND, STATUS) stay well below. 256 bytes
# ends an endless SB long before it costs a 32 KB heap anything.
MAX_SB = 256
MAX_TTYPE = 40  # RFC 1091 via RFC 1010: terminal type names are at most 40 characters
_TTYPE_SEND = const(1)  # RFC 1091: IAC SB TTYPE SEND IAC SE (IS, code 0, is our answer)
_CR = const(13)
_IAC_B = b"\xff"
_IAC_IAC = b"\xff\xff"
# send_command accepts the two-byte commands: XEOF (236) .. EOR (239) and NOP (241) .. GA (249)
_COMMANDS = (236, 237, 238, 239, 241, 242, 243, 244, 245, 246, 247, 248, 249)
_CLOSED = ConnectionClosed()  # the one instance next_event returns once the peer closed

# States of the connection, `TelnetProtocol.state`.
OPEN = "OPEN"  # receiving and sending allowed
CLOSED = "CLOSED"  # the peer closed (receive_data(b"")): queued events and queries only
ERROR = "ERROR"  # a protocol error happened; sticky: sending and receiving raise

# {state: {action: new state}}; an action missing from a state is the caller's misuse.
_TRANSITIONS = {
    OPEN: {"receive": OPEN, "send": OPEN, "close": CLOSED, "fail": ERROR},
    CLOSED: {"fail": ERROR},
    ERROR: {"fail": ERROR},
}

# States of the byte parser (RFC 854 command structure, RFC 855 subnegotiation).
_DATA = const(0)  # plain data; an IAC starts a command
_IAC = const(1)  # after IAC: IAC (a data 0xFF), a verb, SB or a two-byte command follows
_VERB = const(2)  # after IAC DO/DONT/WILL/WONT: the option byte follows
_SB = const(3)  # inside IAC SB: option and payload up to IAC SE
_SB_IAC = const(4)  # after IAC inside a subnegotiation: IAC (a payload 0xFF) or SE follows


def _slice(data, i, j):
    """data[i:j] as bytes with one copy at most (none for a whole bytes object)."""
    if type(data) is bytes:
        return data if i == 0 and j == len(data) else data[i:j]
    return bytes(memoryview(data)[i:j])  # slicing a bytearray, then bytes(), would copy twice


def _check_size(size):
    cols, rows = size
    for v in (cols, rows):
        if type(v) is not int or not 0 <= v <= 0xFFFF:  # RFC 1073: 16-bit width and height
            raise LocalProtocolError("window size must be two ints 0..65535, got %r" % (size,))
    return (cols, rows)


def _check_terms(term):
    """The configured terminal types as a tuple of bytes (empty: refuse TERMINAL-TYPE)."""
    if not term:
        return ()
    if isinstance(term, (str, bytes)):
        term = (term,)
    names = []
    for name in term:
        if isinstance(name, str):
            name = name.encode()
        ok = isinstance(name, bytes) and 0 < len(name) <= MAX_TTYPE
        for b in name if ok else ():
            ok = ok and 32 < b < 127  # RFC 1091: printable NVT ASCII, so never an IAC
        if not ok:
            raise LocalProtocolError("bad terminal type %r" % (name,), TTYPE)
        names.append(name)
    return tuple(names)


class TelnetProtocol:
    """One Telnet connection's protocol state, client side, without any I/O.

    term: terminal type(s) for TERMINAL-TYPE (a str, or a list/tuple cycled through on repeated
    SEND); None refuses the option. size: (cols, rows) for NAWS; None refuses it until
    set_size() is called.
    """

    # Policy knobs (a subclass may change them): what we agree to when the peer asks.
    REMOTE_OPTIONS = (ECHO, SGA, BINARY)  # answered with DO when the peer sends WILL
    LOCAL_OPTIONS = (SGA, BINARY, NAWS, TTYPE)  # answered with WILL when the peer sends DO
    MAX_SB = MAX_SB

    def __init__(self, term="VT100", size=(80, 24)):
        self.state = OPEN
        self._terms = _check_terms(term)
        self._ttype_next = 0  # index of the type the next TTYPE SEND gets
        self._size = None if size is None else _check_size(size)
        self._opt = Options()
        self._parse = _DATA
        self._verb = 0  # the verb of an IAC verb waiting for its option byte
        self._cr = False  # the last data byte was a CR, so a NUL right after it is dropped
        self._sb = bytearray()  # the subnegotiation being read, bounded by MAX_SB
        self._pieces = []  # data slices of this call's current run, one Data event at the end
        self._events = []
        self._head = 0  # next_event reads _events[_head]
        self._out = bytearray()  # answers waiting for data_to_send()
        self._error = None  # the error that put the machine in ERROR

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data, n=-1):
        """Feed bytes read from the peer; b"" (or n=0) means it closed the connection.

        data is bytes or bytearray (a memoryview is copied once). With n >= 0 only data[:n] is
        read, so a client can hand over its recv_into buffer without slicing it.
        """
        if n < 0 or n > len(data):
            if n > len(data):
                raise self._local("receive_data: n=%d but only %d bytes given" % (n, len(data)))
            n = len(data)
        if n == 0:
            self._enter("close")
            return
        self._enter("receive")
        if type(data) is memoryview:
            data = bytes(data[:n])
        i = 0
        while i < n and self.state == OPEN:
            parse = self._parse
            if parse == _DATA:
                i = self._scan_data(data, i, n)
            elif parse == _SB:
                i = self._scan_sb(data, i, n)
            else:
                self._byte(data[i])
                i += 1
        self._flush()

    def next_event(self):
        """The next event, else NEED_DATA (or ConnectionClosed once the peer closed).

        In ERROR it raises the error that caused it, after the events queued before it.
        """
        events = self._events
        if self._head < len(events):
            event = events[self._head]
            events[self._head] = None
            self._head += 1
            return event
        if self._head:
            events.clear()
            self._head = 0
        if self._error is not None:
            raise self._error
        return _CLOSED if self.state == CLOSED else NEED_DATA

    def _scan_data(self, data, i, n):
        j = data.find(_IAC_B, i, n)
        end = n if j < 0 else j
        if end > i:
            self._add_data(data, i, end)
        if j < 0:
            return n
        self._parse = _IAC
        self._cr = False  # any command ends a CR NUL pair, as BSD telnet does
        return j + 1

    def _add_data(self, data, i, j):
        if self._opt.them[BINARY] == YES:  # RFC 856: binary data has no CR NUL rule
            self._pieces.append(_slice(data, i, j))
            return
        if self._cr and data[i] == 0:  # RFC 854: CR NUL is a bare CR, split across reads
            i += 1
        self._cr = data[j - 1] == _CR
        if j > i:
            piece = _slice(data, i, j)
            if piece.find(b"\r\0") >= 0:
                piece = piece.replace(b"\r\0", b"\r")
            self._pieces.append(piece)

    def _scan_sb(self, data, i, n):
        j = data.find(_IAC_B, i, n)
        end = n if j < 0 else j
        if end > i:
            self._sb_add(memoryview(data)[i:end])
        if j < 0:
            return n
        self._parse = _SB_IAC
        return j + 1

    def _sb_add(self, chunk):
        sb = self._sb
        if len(sb) + len(chunk) > self.MAX_SB:
            option = sb[0] if sb else chunk[0]
            self._remote("subnegotiation longer than %d bytes" % self.MAX_SB, option)
        else:
            sb.extend(chunk)

    def _byte(self, b):
        """One byte after IAC, after IAC verb, or after IAC inside a subnegotiation."""
        parse = self._parse
        self._parse = _DATA
        if parse == _VERB:
            self._negotiate(self._verb, b)
        elif parse == _IAC:
            if b == IAC:  # RFC 854: IAC IAC is one data byte 0xFF
                self._pieces.append(_IAC_B)
            elif WILL <= b <= DONT:
                self._verb = b
                self._parse = _VERB
            elif b == SB:
                self._parse = _SB
            else:  # a two-byte command; the byte after it is data again
                self._emit(Command(b))
        elif b == IAC:  # _SB_IAC: an escaped 0xFF in the payload
            self._parse = _SB
            self._sb_add(_IAC_B)
        else:
            self._subnegotiation()
            if b != SE:  # IAC not doubled or SE left out (RFC 855 broken): the SB ends
                self._parse = _IAC  # here, like BSD telnet, and "IAC b" is read as a command
                self._byte(b)

    def _subnegotiation(self):
        sb = self._sb
        # RFC 1091: IAC SB TTYPE SEND IAC SE, answered only while we WILL TTYPE (RFC 855)
        if len(sb) >= 2 and sb[0] == TTYPE and sb[1] == _TTYPE_SEND and self._opt.us[TTYPE] == YES:
            self._queue_ttype()
        sb[:] = b""  # other subnegotiations are for options we refused: ignored

    def _negotiate(self, verb, option):
        remote = verb == WILL or verb == WONT
        if verb == WILL or verb == DO:
            self._step(option, remote, RECV_ON if self._agree(option, remote) else RECV_ON_REFUSED)
        else:
            self._step(option, remote, RECV_OFF)

    def _agree(self, option, remote):
        if remote:
            return option in self.REMOTE_OPTIONS
        if option == NAWS and self._size is None or option == TTYPE and not self._terms:
            return False
        return option in self.LOCAL_OPTIONS

    def _step(self, option, remote, event):
        """Move one side of one option through the Q method; queue the answer, report changes."""
        old, new, send = self._opt.step(option, remote, event)
        if send:
            if remote:
                verb = DO if send == SEND_ON else DONT
            else:
                verb = WILL if send == SEND_ON else WONT
            out = self._out
            out.append(IAC)
            out.append(verb)
            out.append(option)
        if (old == YES) != (new == YES):
            self._emit(OptionChanged(option, remote, new == YES))
            if remote and option == BINARY:
                self._cr = False
            elif not remote and option == NAWS and new == YES and self._size is not None:
                self._queue_naws()  # RFC 1073: the size follows WILL NAWS at once
            elif not remote and option == TTYPE:
                self._ttype_next = 0

    def _emit(self, event):
        self._flush()
        self._events.append(event)

    def _flush(self):
        pieces = self._pieces
        if pieces:
            self._events.append(Data(pieces[0] if len(pieces) == 1 else b"".join(pieces)))
            pieces.clear()

    # -- sending -----------------------------------------------------------------------------

    def data_to_send(self):
        """The queued answers to the peer (b"" if none); empties the queue."""
        out = self._out
        if not out:
            return b""
        data = bytes(out)
        out[:] = b""
        return data

    def send_data(self, data):
        """Bytes to write for application data: IAC doubled, CR made CR NUL unless BINARY.

        RFC 854: a CR not followed by LF in this call is sent as CR NUL (so a CR at the end of
        one call and an LF at the start of the next still read as CR LF). A bare LF is sent as
        it is, like telnetlib did: servers on Unix read it as end of line.
        """
        self._enter("send")
        if isinstance(data, str):
            raise self._local("send_data takes bytes, not str")
        if type(data) is not bytes:
            data = bytes(data)
        if data.find(_IAC_B) >= 0:
            data = data.replace(_IAC_B, _IAC_IAC)
        if self._opt.us[BINARY] != YES and data.find(b"\r") >= 0:
            data = data.replace(b"\r", b"\r\0").replace(b"\r\0\n", b"\r\n")
        return self.data_to_send() + data if self._out else data

    def send_command(self, command):
        """Bytes to write for a two-byte command such as NOP, AYT, IP, BRK, GA or EOR."""
        self._enter("send")
        if command not in _COMMANDS:
            raise self._local("not a two-byte command: %r" % (command,))
        self._out.append(IAC)
        self._out.append(command)
        return self.data_to_send()

    def request(self, option, how):
        """Ask for an option through the Q method: how is DO/DONT (the peer's side) or
        WILL/WONT (ours). Returns the bytes to write; b"" when nothing needs saying (already
        in that state, or a negotiation is under way and the request is queued behind it).
        """
        self._enter("send")
        if how not in (DO, DONT, WILL, WONT) or type(option) is not int or not 0 <= option <= 255:
            raise self._local("bad request (%r, %r)" % (option, how), option)
        self._step(option, how == DO or how == DONT, ASK_ON if how in (DO, WILL) else ASK_OFF)
        return self.data_to_send()

    def set_size(self, cols, rows):
        """Set the window size; returns the NAWS report to write when NAWS is on and it changed."""
        self._enter("send")
        try:
            size = _check_size((cols, rows))
        except LocalProtocolError as err:
            raise self._local(str(err), NAWS)
        if size != self._size:
            self._size = size
            if self._opt.us[NAWS] == YES:
                self._queue_naws()
        return self.data_to_send()

    def option_enabled(self, option, remote=True):
        """True when the option is on: remote=True the peer's side (it WILL), False ours."""
        return self._opt.enabled(option, remote)

    def _queue_naws(self):
        cols, rows = self._size
        out = self._out
        out.extend(b"\xff\xfa\x1f")  # IAC SB NAWS
        for b in (cols >> 8, cols & 255, rows >> 8, rows & 255):
            out.append(b)
            if b == IAC:  # RFC 1073: a 255 in the size is doubled like any IAC
                out.append(IAC)
        out.extend(b"\xff\xf0")  # IAC SE

    def _queue_ttype(self):
        terms = self._terms or (b"UNKNOWN",)  # only when the caller forced WILL TTYPE
        # RFC 1091: each SEND gets the next type; once exhausted the last one is repeated,
        # which tells the server the list has ended.
        name = terms[min(self._ttype_next, len(terms) - 1)]
        self._ttype_next = min(self._ttype_next + 1, len(terms))
        out = self._out
        out.extend(b"\xff\xfa\x18\x00")  # IAC SB TERMINAL-TYPE IS
        out.extend(name)
        out.extend(b"\xff\xf0")  # IAC SE

    # -- state -------------------------------------------------------------------------------

    def _enter(self, action):
        """The one lookup in _TRANSITIONS: moves the state or raises LocalProtocolError."""
        new = _TRANSITIONS[self.state].get(action)
        if new is None:
            why = " (%s)" % self._error if self._error is not None else ""
            raise self._local("cannot %s: connection is %s%s" % (action, self.state, why))
        self.state = new

    def _local(self, message, option=None):
        """Go to ERROR for the caller's misuse; returns the error to raise."""
        err = LocalProtocolError(message, option)
        if self._error is None:
            self._error = err
        self.state = _TRANSITIONS[self.state]["fail"]
        return err

    def _remote(self, message, option):
        """Go to ERROR for the peer's garbage; next_event raises it after the queued events."""
        self._error = RemoteProtocolError(message, option)
        self.state = _TRANSITIONS[self.state]["fail"]
