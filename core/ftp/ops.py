"""FTP operations as generators, and the data transfer they share (driven by ftp/client.py).

An operation generator yields `(verb, arg)` to send a command and receives its final Reply;
`("", None)` waits for the greeting; `(None, (host, port))` opens the data connection and
resumes once it is up. It raises FTPError to fail, returns to succeed, and sets `op.result`.

Rules: a local file that is missing or unreadable fails the operation before anything is sent;
an atomic upload goes to `.NAME.part` in the same directory and is renamed only after the final
226/250, so the server never shows a partial file under the real name; a resumed upload asks
SIZE of that file and continues with REST+STOR (APPE when REST is refused). This module holds
what a session and an upload need; extra.py (downloads, listings, active mode) loads on first use.
"""

import os

from ulnet.errors import errno_text
from ulnet.ftp.parse import parse_epsv, parse_pasv, parse_size
from ulnet.ftp.protocol import FTPProtocol


class FTPError(Exception):
    """An FTP operation failed: `code` is the server's reply code (None: local or transport)."""

    def __init__(self, code, text, what="ftp"):
        super().__init__("%s: %s%s" % (what, "%d " % code if code else "", text))
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
        state = "failed" if self.error else "done" if self.done else "queued"
        return "<Op %s %r %s>" % (self.name, self.args, state)


def check(op, reply, kind=2):
    """Raise FTPError unless the reply is of class kind (2: done, 3: more needed)."""
    if reply.code // 100 != kind:
        raise FTPError(reply.code, reply.text, op.name)


def login(client, op, host, port, user, password):
    client._hangup()
    client._error = None
    client._proto = FTPProtocol()
    client._epsv = True
    client._ctl = client._conn.connect(host, port, client.connect_timeout_ms)
    try:
        check(op, (yield ("", None)))  # the greeting: 220 (after any 120)
        reply = yield ("USER", user)
        if reply.code == 331:
            reply = yield ("PASS", password)
        if reply.code == 332:
            raise FTPError(332, "the server wants an account (ACCT), which ulnet does not send", op.name)
        check(op, reply)
    except FTPError:
        client._hangup()
        raise
    client._logged_in = True


def simple(client, op, verb, arg=None, arg2=None, parse=None):
    """One command (RNFR takes two); op.result is parse(reply text) or the text itself."""
    if verb == "SIZE" and client._proto.transfer_type != "I":
        # binary before SIZE and transfers: servers refuse SIZE in ASCII mode
        check(op, (yield ("TYPE", "I")))
    reply = yield (verb, arg)
    if verb == "RNFR":
        check(op, reply, 3)
        reply = yield ("RNTO", arg2)
    check(op, reply)
    op.result = parse(reply.text) if parse else reply.text
    if verb == "QUIT":
        client._hangup()


def open_file(op, path, mode):
    try:
        return open(path, mode)
    except OSError as exc:
        raise FTPError(None, "cannot open %s: %s" % (path, errno_text(exc)), op.name)


def temp_name(remote):
    """Where an atomic upload of `remote` goes first: .NAME.part beside it."""
    at = remote.rfind("/") + 1
    return remote[:at] + "." + remote[at:] + ".part"


def upload(client, op, local, remote, atomic, resume):
    f = open_file(op, local, "rb")
    try:
        size = os.stat(local)[6]
        if client._proto.transfer_type != "I":
            check(op, (yield ("TYPE", "I")))  # binary, as for SIZE below
        target = temp_name(remote) if atomic else remote
        offset = sent = 0
        if resume:
            reply = yield ("SIZE", target)
            if reply.code == 213 and parse_size(reply.text) <= size:
                offset = parse_size(reply.text)
        if offset < size or size == 0:
            verb = "STOR"
            if offset:
                if (yield ("REST", offset)).code != 350:
                    verb = "APPE"  # no restart marker: append to what is there
                f.seek(offset)
            xfer = Transfer(op, f, offset, size, True)
            yield from transfer(client, op, verb, target, xfer)
            sent = xfer.done - offset
        if atomic:
            check(op, (yield ("RNFR", target)), 3)
            check(op, (yield ("RNTO", remote)))
        op.result = sent
    finally:
        f.close()


def transfer(client, op, verb, arg, xfer):
    """Run one data transfer: set up the data connection (passive: we connect; active: the
    server connects to us), send the command; returns the final reply once the data is done."""
    if client.passive:
        # the data connection goes to the control connection's peer, whatever address PASV
        # names (this blocks FTP bounce), unless the user trusts it
        host = client._ctl.peer_address
        port = 0
        if client._epsv:
            reply = yield ("EPSV", None)
            if reply.code == 229:
                port = parse_epsv(reply.text)
            else:
                client._epsv = False  # not understood: PASV from now on
        if not port:
            reply = yield ("PASV", None)
            check(op, reply)
            named, port = parse_pasv(reply.text)
            if client.trust_pasv_address:
                host = named
        yield (None, (host, port))
    else:
        from ulnet.ftp.extra import active

        yield from active(client, op)
    client._xfer = xfer
    reply = yield (verb, arg)
    if xfer.error is not None and reply.code < 400:
        raise FTPError(None, xfer.error, op.name)
    check(op, reply)
    return reply


class Transfer:
    """One data transfer: upload from a file, or download into a file (or a listing Sink)."""

    def __init__(self, op, f, offset, total, up):
        self.op = op
        self.file = f
        self.done = offset
        self.total = total
        self.up = up
        self.pos = self.end = 0
        # active: the server's 1yz came, data may flow; finished: the data half is over
        self.active = self.finished = False
        self.error = None

    def started(self, client):
        self.active = True
        if self.up and client._dsock is not None:
            self.pump(client, client._dsock)

    def pump(self, client, sock):
        """Send the file: read a chunk into the client's one buffer, send it, repeat until the
        OS is full (on_can_send brings us back). Nothing is allocated per chunk. A port with
        sendfile (the desktop) lets the kernel copy the file instead."""
        if not self.active or self.finished:
            return
        if client.use_sendfile and hasattr(client.eventer.port, "sendfile"):
            while True:
                # at offset `done`: the file position is not used, resume included
                sent = sock.sendfile(self.file, self.done, 1 << 18)
                if sent is None:
                    return  # full: on_can_send brings us back (or on_error ends it)
                if not sent:
                    self.stop(client, None)  # end of file: closing the data connection ends it
                    return
                self.progress(client, sent)
        buf = client.buf
        while True:
            if self.pos >= self.end:
                n = self.file.readinto(buf)
                if not n:
                    self.stop(client, None)  # end of file: closing the data connection ends it
                    return
                self.pos, self.end = 0, n
            sent = sock.send(buf, self.pos, self.end - self.pos)
            if not sent:
                return
            self.pos += sent
            self.progress(client, sent)

    def receive(self, client, sock):
        buf = client.buf
        n = sock.recv_into(buf)
        if n:
            try:
                self.file.write(buf if n == len(buf) else memoryview(buf)[:n])
            except OSError as exc:
                self.stop(client, "cannot write: %s" % errno_text(exc))
                return
            self.progress(client, n)

    def progress(self, client, n):
        self.done += n
        client._timer.restart(client.data_idle_ms)
        if client.on_progress is not None:
            client.on_progress(self.op, self.done, self.total)

    def stop(self, client, error):
        """The data half is over (an error, or None when it ended as it should): resume the
        operation with the final reply if it is in, else wait for it."""
        if self.error is None:
            self.error = error
        if self.finished:
            return
        self.finished = True
        if client._dsock is not None:
            client._dsock.disconnect()
        reply, client._final = client._final, None
        if reply is None:
            client._timer.restart(client.reply_timeout_ms)
        else:
            client._timer.cancel()
            client._step(reply)
