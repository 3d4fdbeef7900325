"""The sans-I/O FTP control-channel machine (RFC 959): bytes in, events out, bytes to send.

Rules: no sockets, clock, files or threads; the caller moves bytes. `send(verb, arg)` formats a
command, appends it to a FIFO of commands awaiting their final reply and returns the bytes to
write. `receive_data(data)` takes what the server sent (b"" = end of stream) and `next_event()`
returns the next `Reply`, `NEED_DATA` or `ConnectionClosed`. Each reply is matched to the oldest
pending command by its class (RFC 959 section 4.2): 1yz is preliminary (the command stays
pending), 2yz, 3yz, 4yz and 5yz are final. The server's greeting is the implicit first command
(verb ""). A command the machine cannot format (an unknown verb, a missing or bad argument) is
refused with LocalProtocolError and changes nothing: nothing was sent, so the caller may go on
(as h11 refuses a malformed event before it reaches the connection). Any other protocol error
moves the machine to the sticky ERROR state. Passwords (PASS, ACCT) never appear in a repr, a
message or anywhere the machine keeps them.

Client loop:

    proto = FTPProtocol()
    sock.write(proto.send("USER", "scanner"))
    proto.receive_data(sock.read())        # b"" at end of stream
    while True:
        event = proto.next_event()
        if event is NEED_DATA:
            break
        ...                                # Reply or ConnectionClosed
"""

from ulnet.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ulnet.ftp.parse import decode_text

try:
    from micropython import const
except ImportError:  # CPython; int, not a function: on a board each function costs heap
    const = int

# Longest reply line accepted, in bytes before the LF. Honest lines are short: the longest carry
# one path (257 of PWD/MKD, 550 naming a file), and 2048 holds a 2000-byte path with its quotes.
# An unfinished line longer than this raises at once, so a hostile server costs at most this
# much buffer plus one read (1/16 of a 32 KB heap), never its whole line.
_MAX_LINE = const(2048)

# Largest multi-line reply, in raw bytes and in lines. Real ones are FEAT (about 30 short lines
# on proftpd), greeting banners (pure-ftpd: 5 lines) and pure-ftpd's two-line 226 and 221; the
# line count also bounds the str objects a reply of tiny lines would make (each costs about
# 20 bytes of heap beyond its text on MicroPython).
_MAX_REPLY = const(4096)
_MAX_REPLY_LINES = const(64)

# States (public, so callers can compare `proto.state`)
AWAIT_GREETING = const(0)  # connected; the server's 220 (maybe after 120) is awaited
IDLE = const(1)            # greeted; no command awaits its final reply
BUSY = const(2)            # commands await their final replies, oldest first
CLOSING = const(3)         # the server said it closes (421, or 221 to QUIT); EOF next
CLOSED = const(4)          # end of stream reached and reported as ConnectionClosed
ERROR = const(5)           # sticky: a protocol error happened; every call raises
STATE_NAMES = ("AWAIT_GREETING", "IDLE", "BUSY", "CLOSING", "CLOSED", "ERROR")

# Events of the transition table
_SEND = const(0)    # the caller sent a command
_PRELIM = const(1)  # a 1yz reply; its command stays pending
_NEXT = const(2)    # a final reply; more commands are still pending
_DONE = const(3)    # a final reply; no command is pending any more
_BYE = const(4)     # a reply saying the server closes: 421, 221 to QUIT, a failed greeting
_EOF = const(5)     # the end of the server's stream was reached

# The transition table: one row of 6 per state (in state order), one column per event (in
# event order); each cell is the new state's digit, "-" where the event is not allowed there.
TRANSITIONS = (
    "002134"  # AWAIT_GREETING
    "2---34"  # IDLE
    "222134"  # BUSY
    "-33334"  # CLOSING
    "-----4"  # CLOSED
    "------"  # ERROR
)

# next_event() has nothing to return until more bytes arrive (compare with `is`; a str, so
# the sentinel costs no class on a board)
NEED_DATA = "NEED_DATA"


class Reply:
    """One server reply: `code` (int); `lines`, the text of each line with the "ddd-"/"ddd " of
    the first and last line removed; `text`, the lines joined with LF; `command`, the verb it
    answers ("" for the greeting, None for an unsolicited 421); `final`, False for a 1yz reply
    (its command is still pending)."""

    def __init__(self, code, lines, command, final):
        self.code = code
        self.lines = lines
        self.text = lines[0] if len(lines) == 1 else "\n".join(lines)  # one line: no copy
        self.command = command
        self.final = final

    def __repr__(self):
        return "Reply(%d, %r, %r, %r)" % (self.code, self.lines, self.command, self.final)


class ConnectionClosed:
    """The server's stream ended; `pending` is a tuple of the verbs that got no final reply."""

    def __init__(self, pending):
        self.pending = pending


def _arg_bytes(verb, kind, arg):
    """The encoded argument of verb with its leading space (b"" for none), or
    LocalProtocolError; kind is the command's argument rule (see send). Messages never quote
    the argument: it may be a password."""
    if verb == "REST" and isinstance(arg, int) and not isinstance(arg, bool) and arg >= 0:
        arg = str(arg)
    if isinstance(arg, str):
        arg = arg.encode("utf-8")
    elif arg is None:
        arg = b""
    elif not isinstance(arg, (bytes, bytearray)):
        raise LocalProtocolError("bad argument for " + verb)
    if not arg:
        if kind == 49:  # "1"
            raise LocalProtocolError(verb + " needs an argument")
        return b" " if kind == 51 else b""  # "3": "PASS " for an empty password, as ftplib
    if kind == 48:  # "0"
        raise LocalProtocolError(verb + " takes no argument")
    # a CR or LF would end the command early and start another: command injection (RFC 959 4.1)
    if b"\r" in arg or b"\n" in arg or b"\0" in arg:
        raise LocalProtocolError("CR, LF or NUL in the argument of " + verb)
    if verb == "TYPE" and arg not in (b"I", b"A") or verb == "REST" and not arg.isdigit():
        raise LocalProtocolError("bad argument for " + verb)  # TYPE I or A, REST an offset
    return b" " + arg


class FTPProtocol:
    """The FTP control-channel machine; the module docstring shows the loop that drives it.

    Read-only attributes: `state` (a state constant); `pending`, the list of verbs awaiting
    their final replies, oldest first ("" is the greeting); `transfer_type`, "A" as RFC 959
    starts, the argument of the last TYPE sent, None after a refused TYPE. Policy knobs are
    class attributes, so a subclass can change them.
    """

    max_line = _MAX_LINE
    max_reply = _MAX_REPLY
    max_reply_lines = _MAX_REPLY_LINES

    def __init__(self):
        self.state = AWAIT_GREETING
        self.pending = [""]  # the greeting is the implicit first command
        self.transfer_type = "A"
        self._buf = bytearray()
        self._start = 0     # consumed offset: bytes before it are parsed
        self._scan = 0      # searched-up-to mark: no LF in buf[_start:_scan]
        self._tail = 0      # bytes after the last LF received (an unfinished line); -1: too long
        self._eof = False
        self._code = 0      # code of the multi-line reply being read
        self._lines = None  # its lines so far; None between replies
        self._size = 0      # its raw size so far
        self._error = None  # (class, message, code) of the error that ended the machine

    def __repr__(self):
        return "<FTPProtocol %s pending=%r>" % (STATE_NAMES[self.state], self.pending)

    def send(self, verb, arg=None):
        """Format a command, queue it for its final reply and return the bytes to write.

        arg is str (sent as UTF-8, RFC 2640), bytes, or an int for REST. Raises
        LocalProtocolError for an unknown verb, a bad or missing argument, a CR or LF in it (the
        machine is left as it was), SIZE before TYPE I (servers refuse SIZE in ASCII mode) or a
        server that is closing (the machine is in ERROR then).
        """
        self._check()
        # The commands this machine sends (RFC 959, 2389, 2428, 3659, 2640 OPTS, 4217), 5 characters
        # each: the verb padded to 4, then its argument rule: 0 none, 1 required, 2 optional,
        # 3 secret (a possibly empty argument that never appears in any text: PASS, ACCT). One
        # string, because on a board a 29-entry dict costs about 700 bytes of heap.
        commands = (
            "USER1PASS3ACCT3TYPE1PASV0EPSV2PORT1EPRT1STOR1RETR1APPE1REST1SIZE1MDTM1LIST2NLST2"
            "MLSD2CWD 1PWD 0MKD 1RMD 1DELE1RNFR1RNTO1FEAT0SYST0NOOP0QUIT0OPTS1AUTH1PBSZ1PROT1"
        )
        at = -1
        if isinstance(verb, str) and 2 < len(verb) < 5:
            at = commands.find((verb.upper() + " ")[:4])
        if at < 0 or at % 5:
            raise LocalProtocolError("unknown FTP command %r" % (verb,))
        verb = verb.upper()
        data = _arg_bytes(verb, ord(commands[at + 4:at + 5]), arg)  # a slice: see _step
        try:
            if verb == "SIZE" and self.transfer_type != "I":
                raise LocalProtocolError("send TYPE I before SIZE")
            self._step(_SEND)
        except ProtocolError as exc:
            self._fail(exc)
            raise
        if verb == "TYPE":
            self.transfer_type = data[1:].decode()
        self.pending.append(verb)
        return verb.encode() + data + b"\r\n"

    def receive_data(self, data):
        """Take bytes the server sent; b"" means end of stream. An unfinished line that grows
        past max_line is dropped at once, so a hostile line is never held: next_event returns
        the replies complete before it, then raises RemoteProtocolError (however the bytes
        were split, the same events come out)."""
        self._check()
        if self._tail < 0:
            return  # a line overflowed: nothing after it counts
        if self._eof:
            if data:
                self._fail(LocalProtocolError("data received after end of stream"))
                self._check()
            return
        if not data:
            self._eof = True
            return
        buf = self._buf
        if self._start:  # drop consumed bytes; what moves is one unfinished line at most
            buf[0:self._start] = b""
            self._scan -= self._start
            self._start = 0
        old = len(buf)
        buf.extend(data)
        nl = buf.rfind(b"\n", old)  # only the new bytes are searched
        self._tail = len(buf) - nl - 1 if nl >= 0 else self._tail + len(buf) - old
        if self._tail > self.max_line:
            buf[len(buf) - self._tail:] = b""  # MicroPython's bytearray has no del of a slice
            if self._scan > len(buf):
                self._scan = len(buf)
            self._tail = -1  # overflowed: next_event raises once the complete lines are read

    def next_event(self):
        """The next Reply, NEED_DATA, or ConnectionClosed (again on every later call)."""
        self._check()
        try:
            while self.state != CLOSED:
                # the next complete line at _start stays in the buffer and is read in place;
                # only bytes not searched before are searched (_scan moves past its LF)
                buf = self._buf
                end = buf.find(b"\n", self._scan)
                if end >= 0:
                    self._scan = end + 1
                else:
                    self._scan = end = len(buf)
                    if self._tail < 0:
                        raise RemoteProtocolError("reply line longer than %d bytes" % self.max_line)
                    if not self._eof:
                        return NEED_DATA
                    if self._start == end:  # the stream ended between lines
                        if self._lines is not None:
                            raise RemoteProtocolError("stream ended inside a %d reply" % self._code,
                                                      self._code)
                        self._step(_EOF)
                        continue
                    # at end of stream a last unfinished line counts as complete
                if end - self._start > self.max_line:
                    raise RemoteProtocolError("reply line longer than %d bytes" % self.max_line)
                if end > self._start and buf[end - 1] == 13:  # CR LF, or a bare LF, ends a line
                    end -= 1
                event = self._read(end)
                self._start = self._scan  # consumed only now: the line was read in place
                if event is not None:
                    return event
        except ProtocolError as exc:
            self._fail(exc)
            raise
        return ConnectionClosed(tuple(self.pending))

    def _step(self, event):
        """One step of the machine: the one transition lookup; an event the table does not
        allow raises."""
        at = self.state * 6 + event
        new = TRANSITIONS[at:at + 1]  # a slice: indexing would intern a string on MicroPython
        if new == "-":
            if event == _SEND:
                raise LocalProtocolError("cannot send in state " + STATE_NAMES[self.state])
            raise RemoteProtocolError("event %d in state %s" % (event, STATE_NAMES[self.state]))
        self.state = ord(new) - 48

    def _check(self):
        if self._error is not None:
            cls, message, code = self._error
            raise cls(message, code)

    def _fail(self, exc):
        self._error = (type(exc), "FTP machine failed: " + exc.message, exc.code)
        self.state = ERROR
        self._buf = bytearray()  # release what a hostile peer made us hold
        self._lines = None

    def _read(self, end):
        """Read the line buf[_start:end]; returns a Reply when it completes one, else None.

        RFC 959 4.2: a reply is "ddd text", or "ddd-text" ... "ddd text" where the lines in
        between may start with anything, digits included; "ddd" alone counts as "ddd ".
        """
        buf = self._buf
        a = self._start
        code = -1  # the reply code the line starts with, if it starts with one
        if end - a >= 3:
            d0, d1, d2 = buf[a] - 48, buf[a + 1] - 48, buf[a + 2] - 48
            if 1 <= d0 <= 5 and 0 <= d1 <= 9 and 0 <= d2 <= 9:
                code = d0 * 100 + d1 * 10 + d2
        sep = buf[a + 3] if end - a > 3 else 32
        lines = self._lines
        if lines is None:
            if code < 0 or (sep != 32 and sep != 45):
                # quotes the start of the line, never a byte past its end
                raise RemoteProtocolError("malformed reply line %r" % bytes(buf[a:min(end, a + 16)]))
            text = decode_text(buf[a + 4:end])
            if sep == 32:
                return self._reply(code, [text])
            self._code, self._lines, self._size = code, [text], end - a
            return None
        self._size += end - a + 1
        if self._size > self.max_reply or len(lines) >= self.max_reply_lines:
            raise RemoteProtocolError("multi-line %d reply too large" % self._code, self._code)
        if sep == 32 and code == self._code:
            lines.append(decode_text(buf[a + 4:end]))
            self._lines = None
            return self._reply(code, lines)
        lines.append(decode_text(buf[a:end]))
        return None

    def _reply(self, code, lines):
        """Match a complete reply to the oldest pending command and move the state."""
        pending = self.pending
        if not pending:
            if code != 421:
                raise RemoteProtocolError("unsolicited %d reply" % code, code)
            self._step(_BYE)  # RFC 959 5.4: 421 may come at any time, the server then closes
            return Reply(code, lines, None, True)
        verb = pending[0]
        if code < 200:
            self._step(_PRELIM)
            return Reply(code, lines, verb, False)
        pending.pop(0)
        if verb == "TYPE" and code >= 400:
            self.transfer_type = None  # refused: the server's type is no longer known
        if code == 421 or (verb == "QUIT" and code < 300) or (verb == "" and code >= 300):
            self._step(_BYE)
        else:
            self._step(_NEXT if pending else _DONE)
        return Reply(code, lines, verb, True)
