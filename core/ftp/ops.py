"""FTP operations as generators, and the data transfer they share (driven by ftp/session.py).

An operation generator yields `(verb, arg)` to send a command and receives its final Reply;
`("", None)` waits for the greeting; `(None, (host, port))` opens the data connection and
resumes once it is up. It raises FTPError to fail, returns to succeed, and sets `op.result`.

Rules: a local file that is missing or unreadable fails the operation before anything is sent;
an atomic upload goes to `.NAME.part` in the same directory and is renamed only after the final
226/250, so the server never shows a partial file under the real name; a resumed upload asks
SIZE of that file and continues with REST+STOR (APPE when REST is refused). A verified upload
ends with SIZE of the final name, sent in one group with RNFR and RNTO (one round trip where
the session pipelines): it succeeds only when the server holds as many bytes as the file. RNTO
goes even after a refused RNFR (the server answers 503), so a group never leaves a server
holding a pending RNFR that a later RNTO could complete. An operation yields a tuple of verbs
(and one of arguments) for a group and gets back the list of its final replies. This module holds
what a session and an upload need; extra.py (downloads, listings, active mode) loads on first use.
"""

import os

from ulnet.errors import errno_text
from ulnet.ftp.parse import parse_epsv, parse_pasv, parse_size
from ulnet.ftp.protocol import FTPProtocol


class FTPError(Exception):
    """An FTP operation failed: `code` is the server's reply code (None: local or transport)."""

    def __init__(self, code, text, name="ftp"):
        super().__init__("%s: %s%s" % (name, "%d " % code if code else "", text))
        self.code = code
        self.text = text


class Op:
    """A queued operation: `name`, `args`, `done`, `error` (FTPError or None), `result`."""

    def __init__(self, name, args):
        self.name = name
        self.args = args
        self.done = False
        self.error = self.result = self.program = None

    def __repr__(self):
        return "<Op %s %r done=%s error=%r>" % (self.name, self.args, self.done, self.error)


def check(op, reply, kind=2):
    """Raise FTPError unless the reply is of class kind (2: done, 3: more needed)."""
    if reply.code // 100 != kind:
        raise FTPError(reply.code, reply.text, op.name)


def login(session, op, host, port, user, password, tls=None, implicit=False):
    """tls: the TLSSession of an FTPS login (ftps.py), implicit or explicit; None: plain FTP."""
    session._close()
    session._error = None
    session._proto = FTPProtocol()
    session._epsv = True
    session._tls = None  # data connections speak TLS once PROT P is accepted (ftps.protect)
    conn = session._conn
    conn.session = tls if implicit else None  # implicit: TLS from the first byte, greeting after
    try:
        # a port out of range raises ValueError here: this operation fails with it
        session._ctl = conn.connect(host, port, session.connect_timeout_ms)
        check(op, (yield ("", None)))  # the greeting: 220 (after any 120)
        conn.session = None  # data connections start their TLS themselves (see transfer)
        if tls is not None:
            from ulnet.ftp import ftps

            if not implicit:
                yield from ftps.auth(session, op, tls)
        reply = yield ("USER", user)
        if reply.code == 331:
            reply = yield ("PASS", password)
        if reply.code == 332:
            raise FTPError(332, "the server wants an account (ACCT), which ulnet does not send", op.name)
        check(op, reply)
        if tls is not None:
            yield from ftps.protect(session, op, tls)
    except Exception:  # FTPError, or a bad argument (the port, an empty user)
        session._close()
        raise
    session.connected = True


def simple(session, op, verb, arg=None, new=None, parse=None):
    """One command (RNFR: then RNTO new); op.result is parse(reply text) or the text itself."""
    if verb == "SIZE" and session._proto.transfer_type != "I":
        # binary before SIZE and transfers: servers refuse SIZE in ASCII mode
        check(op, (yield ("TYPE", "I")))
    reply = yield (verb, arg)
    if verb == "RNFR":
        check(op, reply, 3)
        reply = yield ("RNTO", new)
    check(op, reply)
    op.result = parse(reply.text) if parse else reply.text
    if verb == "QUIT":
        session._close()


def temp_name(remote):
    """Where an atomic upload of `remote` goes first: .NAME.part beside it."""
    at = remote.rfind("/") + 1
    return remote[:at] + "." + remote[at:] + ".part"


def upload(session, op, local, remote, atomic, resume, verify):
    try:
        f = open(local, "rb")
    except OSError as exc:  # missing or unreadable: fail before anything is sent
        raise FTPError(None, "cannot open %s: %s" % (local, errno_text(exc)), op.name)
    try:
        size = os.stat(local)[6]
        if session._proto.transfer_type != "I":
            check(op, (yield ("TYPE", "I")))  # binary, as for SIZE below
        target = temp_name(remote) if atomic else remote
        offset = sent = 0
        if resume:
            reply = yield ("SIZE", target)
            if reply.code == 213 and parse_size(reply.text) <= size:
                offset = parse_size(reply.text)
            reply = None  # not held through the transfer: a Reply is ~200 bytes on a board
        if offset < size or size == 0:
            verb = "STOR"
            if offset:
                if (yield ("REST", offset)).code != 350:
                    verb = "APPE"  # no restart marker: append to what is there
                f.seek(offset)
            xfer = yield from transfer(session, op, verb, target, f, offset, size, True)
            sent = xfer.done - offset
        if atomic:
            if offset and sent:
                # resumed: the server joined two pieces, and it takes the final name only if
                # they add up (a server that took REST but wrote elsewhere would put a wrong
                # file there, and a crash before the caller's check would leave it)
                reply = yield ("SIZE", target)
                check(op, reply)
                got, reply = parse_size(reply.text), None
                if got != size:
                    yield ("DELE", target)  # so the next attempt starts over
                    raise FTPError(None, "resumed upload of %s: the server holds %d bytes, not %d; "
                                   "its partial file is removed" % (remote, got, size), op.name)
        yield from finish(op, remote, target if atomic else None, size if verify else -1)
        op.result = sent
    finally:
        f.close()


def finish(op, remote, part, size):
    """The end of an upload, one command group: RNFR part and RNTO remote (when part), then
    SIZE remote (when size >= 0), which must be size."""
    verbs, args = ("RNFR", "RNTO"), (part, remote)
    if part is None:
        verbs = args = ()
    if size >= 0:
        verbs, args = verbs + ("SIZE",), args + (remote,)
    if not verbs:
        return
    replies = yield (verbs, args)
    if part is not None:
        check(op, replies[0], 3)
        check(op, replies[1])
    if size >= 0:
        reply = replies[-1]
        check(op, reply)
        got = parse_size(reply.text)
        if got != size:
            raise FTPError(None, "%s: the server has %d bytes, not %d" % (remote, got, size), op.name)


def transfer(session, op, verb, arg, f, done, total, up):
    """Run one data transfer of file f (see Transfer): set up the data connection (passive: we
    connect; active: the server connects to us), send the command; returns the Transfer once
    the data is done and the final reply came."""
    if session.passive:
        # the data connection goes to the control connection's peer, whatever address PASV
        # names (this blocks FTP bounce), unless the user trusts it
        host = session._ctl.peer_address
        port = 0
        if session._epsv:
            reply = yield ("EPSV", None)
            if reply.code == 229:
                port = parse_epsv(reply.text)
            else:
                session._epsv = False  # not understood: PASV from now on
        if not port:
            reply = yield ("PASV", None)
            check(op, reply)
            named, port = parse_pasv(reply.text)
            if session.trust_pasv_address:
                host = named
        reply = None  # not held through the transfer
        yield (None, (host, port))
        if session._tls is not None:
            # FTPS (PROT P): the handshake starts now, and the transfer command goes out while
            # it runs: vsftpd and pure-ftpd take the data connection's handshake only after it
            session._conn.start_tls(session._tls, session._dsock, session.connect_timeout_ms)
    else:
        from ulnet.ftp.extra import active

        yield from active(session, op)
    session._xfer = xfer = Transfer(f, done, total, up)
    reply = yield (verb, arg)
    if xfer.error is not None and reply.code < 400:
        raise FTPError(None, xfer.error, op.name)
    if reply.code == 522 and session._tls is not None:
        from ulnet.ftp.ftps import refused

        refused(session, op, reply)
    check(op, reply)
    return xfer


class Transfer:
    """One data transfer of the session's running operation: upload from a file, or download
    into a file (or a listing Sink)."""

    def __init__(self, f, done, total, up):
        self.file = f
        self.done = done  # the resume offset: what the server holds already
        self.total = total
        self.up = up
        self.pos = self.end = 0
        # active: data may flow (the server's 1yz came, or an upload's command went: the
        # session sets it); accepted: the server took the command; finished: the data half is
        # over; reply: the final reply when it came first, held until then
        self.active = self.accepted = self.finished = False
        self.error = self.reply = None

    def pump(self, session, sock):
        """Send the file until the OS is full (on_can_send brings us back): a chunk at a time
        into the session's one buffer, nothing allocated per chunk; or, on a port with sendfile
        (the desktop), the kernel copies the file. The loop keeps its state in locals and
        re-arms the idle deadline once per call, not per chunk: it is the upload's hot path."""
        # not before the 1yz, nor while a TLS handshake runs (its end fires on_can_send)
        if not self.up or sock is None or not self.active or self.finished or sock.state != "connected":
            return
        port = sock._port  # the socket's: a TLS socket's I/O has no sendfile, it takes buf
        kernel = session.use_sendfile and hasattr(port, "sendfile")
        buf, f = session.buf, self.file
        pos, end, done = self.pos, self.end, self.done
        progress = session.on_progress if self.accepted else None  # one lookup per call
        # a chunk the OS takes whole needs no socket bookkeeping, so it goes straight to the
        # port's send (on a board the socket's own write, in C): no Python call per chunk,
        # which on a board costs about as much as the chunk's copy. Anything else (a short or
        # refused write, an error) goes through sock.send, which arms on_can_send or reports
        write, raw = port.send, sock._raw
        while True:
            if kernel:
                # at offset `done`: the file position is not used, resume included
                sent = sock.sendfile(f, done, 1 << 18)
                if sent is None:
                    break  # full (or failed: on_error ends it)
            else:
                if pos == end:  # a chunk is read and sent in one pass
                    pos, end = 0, f.readinto(buf)
                sent = n = end - pos
                if n:
                    try:
                        sent = write(raw, buf, pos, n) or 0  # None: would block
                    except OSError:
                        sent = 0  # sock.send meets it again and reports it
                    if sent != n:
                        sent += sock.send(buf, pos + sent, n - sent)
                        if not sent:
                            break
                    pos += sent
            if not sent:
                self.pos, self.end, self.done = pos, end, done
                self.stop(session, None)  # end of file: closing the data connection ends it
                return
            done += sent
            if progress is not None:
                self.done = done
                progress(session._op, done, self.total)
        if done != self.done or pos != self.pos:
            session._timer.restart(session.data_idle_ms)
        self.pos, self.end, self.done = pos, end, done

    def accept(self, session):
        """The server took the transfer command (its 1yz, or a positive final reply that came
        first). An upload may have sent data before (the session's early_data): only from here
        does the server store what it gets under the command's name, so progress is reported
        from here on, starting with what went before; an upload whose command is refused never
        reports progress (its data went nowhere), and a caller that journals on the first
        progress report journals only uploads the server took."""
        self.accepted = True
        if self.up and session.on_progress is not None:
            session.on_progress(session._op, self.done, self.total)

    def receive(self, session, sock):
        if self.up:
            # an upload's data connection carries nothing back, and reading into the buffer
            # would overwrite bytes not sent yet: a byte here is the server's error (b"" is the
            # end of stream, which on_disconnect reports)
            if sock.get(1):
                self.stop(session, "the server sent data on the data connection of an upload")
            return
        buf = session.buf
        n = sock.recv_into(buf)
        if n:
            try:
                self.file.write(buf if n == len(buf) else memoryview(buf)[:n])
            except OSError as exc:
                self.stop(session, "cannot write: %s" % errno_text(exc))
                return
            self.done += n
            session._timer.restart(session.data_idle_ms)
            if session.on_progress is not None:
                session.on_progress(session._op, self.done, self.total)

    def stop(self, session, error):
        """The data half is over (an error, or None when it ended as it should): resume the
        operation with the final reply if it is in, else wait for it."""
        if self.finished:
            return  # e.g. the server's end of an FTPS upload's data connection (below)
        self.error = error
        self.finished = True
        dsock = session._dsock
        if dsock is not None:
            if error is None and self.up and session._tls is not None:
                session._tls.end(dsock)  # FTPS: closed after the final reply (TLSSession.end)
            else:
                dsock.disconnect()
        if self.reply is None:
            session._timer.restart(session.reply_timeout_ms)
        else:
            session._timer.cancel()
            session._step(self.reply)
