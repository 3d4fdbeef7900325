"""FTP operations as generators, and the data transfers they run (driven by ftp/client.py).

An operation generator yields `(verb, arg)` to send a command and receives its final Reply;
`("", None)` waits for the greeting; `(None, (host, port))` opens the data connection and
resumes once it is up. It raises FTPError to fail, returns to succeed, and sets `op.result`.

Rules: a local file that is missing or unreadable fails the operation before anything is sent;
an atomic upload goes to `.NAME.part` in the same directory and is renamed only after the final
226/250, so the server never shows a partial file under the real name; a resumed upload asks
SIZE of that file and continues with REST+STOR (APPE when REST is refused).
"""

import os

from ulnet.errors import errno_text
from ulnet.ftp.parse import parse_features, parse_mdtm, parse_mlsd_line, parse_nlst_line, parse_path, parse_size

# Bytes asked of one sendfile call (it returns early when the socket is full anyway). The cap
# keeps one call short (about 0.2 ms on loopback), so timers, other sockets and progress reports
# get their turn during a long upload; the Python work per call is then a few percent at most.
SENDFILE_COUNT = 1 << 18


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
        self.error = None
        self.result = None
        self.program = None

    def __repr__(self):
        state = "failed" if self.error else "done" if self.done else "queued"
        return "<Op %s %r %s>" % (self.name, self.args, state)


def _check(op, reply, kind=2):
    """Raise FTPError unless the reply is of class kind (2: done, 3: more needed)."""
    if reply.code // 100 != kind:
        raise FTPError(reply.code, reply.text, op.name)


def _type_i(client, op):
    # binary before SIZE and transfers: servers refuse SIZE in ASCII mode
    if client._proto.transfer_type != "I":
        _check(op, (yield ("TYPE", "I")))


def login(client, op, host, port, user, password):
    client._open_control(host, port)
    try:
        _check(op, (yield ("", None)))  # the greeting: 220 (after any 120)
        reply = yield ("USER", user)
        if reply.code == 331:
            reply = yield ("PASS", password)
        if reply.code == 332:
            raise FTPError(332, "the server wants an account (ACCT), which ulnet does not send", op.name)
        _check(op, reply)
    except FTPError:
        client._hangup()
        raise
    client._logged_in = True


def simple(client, op, verb, arg=None, arg2=None):
    """One command (RNFR takes two) and its parsed result."""
    if verb == "SIZE":
        yield from _type_i(client, op)
    reply = yield (verb, arg)
    if verb == "RNFR":
        _check(op, reply, 3)
        reply = yield ("RNTO", arg2)
    _check(op, reply)
    if verb == "SIZE":
        op.result = parse_size(reply.text)
    elif verb == "MDTM":
        op.result = parse_mdtm(reply.text)
    elif verb in ("PWD", "MKD"):
        op.result = parse_path(reply.text)
    elif verb == "FEAT":
        op.result = parse_features(reply.lines)
    else:
        op.result = reply.text
    if verb == "QUIT":
        client._hangup()


def _open_file(op, path, mode):
    try:
        return open(path, mode)
    except OSError as exc:
        raise FTPError(None, "cannot open %s: %s" % (path, errno_text(exc)), op.name)


def temp_name(remote):
    """Where an atomic upload of `remote` goes first: .NAME.part beside it."""
    at = remote.rfind("/") + 1
    return remote[:at] + "." + remote[at:] + ".part"


def upload(client, op, local, remote, atomic, resume):
    f = _open_file(op, local, "rb")
    try:
        size = os.stat(local)[6]
        yield from _type_i(client, op)
        target = temp_name(remote) if atomic else remote
        offset = 0
        if resume:
            reply = yield ("SIZE", target)
            if reply.code == 213 and parse_size(reply.text) <= size:
                offset = parse_size(reply.text)
        sent = 0
        if offset < size or size == 0:
            verb = "STOR"
            if offset:
                reply = yield ("REST", offset)
                if reply.code != 350:
                    verb = "APPE"  # no restart marker: append to what is there
                f.seek(offset)
            xfer = Transfer(op, f, offset, size, True)
            yield from transfer(client, op, verb, target, xfer)
            sent = xfer.done - offset
        if atomic:
            _check(op, (yield ("RNFR", target)), 3)
            _check(op, (yield ("RNTO", remote)))
        op.result = sent
    finally:
        f.close()


def download(client, op, remote, local):
    yield from _type_i(client, op)
    reply = yield ("SIZE", remote)
    total = parse_size(reply.text) if reply.code == 213 else None
    part = local + ".part"
    f = _open_file(op, part, "wb")
    try:
        xfer = Transfer(op, f, 0, total, False)
        yield from transfer(client, op, "RETR", remote, xfer)
        f.close()
        os.rename(part, local)
        op.result = xfer.done
    finally:
        f.close()
        if not op.result and op.result != 0:
            _remove(part)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def listing(client, op, verb, path):
    sink = Sink(client.listing_limit)
    yield from transfer(client, op, verb, path or None, Transfer(op, sink, 0, None, False))
    lines = bytes(sink.data).split(b"\n")
    if verb == "LIST":
        op.result = [_text(line) for line in lines if line.strip()]
    elif verb == "NLST":
        op.result = [name for name in (parse_nlst_line(line) for line in lines if line.strip()) if name]
    else:
        op.result = [parse_mlsd_line(line) for line in lines if line.strip()]


def _text(line):
    return parse_nlst_line(line) or ""


def data_address(client, op):
    """Set up the data connection: (host, port) to connect to, or None when the server connects."""
    if not client.passive:
        if client._epsv:
            reply = yield ("EPRT", client._active_argument(True))
            if reply.code // 100 == 2:
                return None
            client._epsv = False
        _check(op, (yield ("PORT", client._active_argument(False))))
        return None
    if client._epsv:
        reply = yield ("EPSV", None)
        if reply.code == 229:
            return client._passive_address(reply, True)
        client._epsv = False  # not understood: PASV from now on
    reply = yield ("PASV", None)
    _check(op, reply)
    return client._passive_address(reply, False)


def transfer(client, op, verb, arg, xfer):
    """Run one data transfer; returns its final reply after the data is done as well."""
    address = yield from data_address(client, op)
    if address is not None:
        yield (None, address)
    client._xfer = xfer
    reply = yield (verb, arg)
    if xfer.error is not None and reply.code < 400:
        raise FTPError(None, xfer.error, op.name)
    _check(op, reply)
    return reply


class Sink:
    """A bounded in-memory file for listings: a huge listing fails instead of eating the heap."""

    def __init__(self, limit):
        self.data = bytearray()
        self.limit = limit

    def write(self, chunk):
        if len(self.data) + len(chunk) > self.limit:
            raise OSError(27, "listing larger than %d bytes" % self.limit)  # EFBIG
        self.data.extend(chunk)

    def close(self):
        pass


class Transfer:
    """One data transfer's state: upload from a file or download into one (file or Sink)."""

    def __init__(self, op, f, offset, total, up):
        self.op = op
        self.file = f
        self.done = offset
        self.total = total
        self.up = up
        self.pos = self.end = 0
        self.sock = None
        self.active = False  # the server's 1yz came: data may flow
        self.finished = False
        self.error = None

    def started(self, client):
        self.active = True
        if self.sock is None:
            self.sock = client._dsock
        if self.up and self.sock is not None:
            self.pump(client, self.sock)

    def attach(self, client, sock):
        self.sock = sock
        if self.active and self.up:
            self.pump(client, sock)

    def pump(self, client, sock):
        """Send the file: read a chunk into the client's one buffer, send it, repeat until the
        OS is full (on_can_send brings us back). Nothing is allocated per chunk."""
        if not self.active or self.finished:
            return
        if client.use_sendfile and hasattr(client.eventer.port, "sendfile"):
            self._pump_sendfile(client, sock)
            return
        buf = client.buf
        f = self.file
        while True:
            if self.pos >= self.end:
                n = f.readinto(buf)
                if not n:
                    self._finish(client)
                    sock.disconnect()  # end of file: the server answers 226
                    return
                self.pos, self.end = 0, n
            sent = sock.send(buf, self.pos, self.end - self.pos)
            if not sent:
                return
            self.pos += sent
            self._moved(client, sent)

    def _pump_sendfile(self, client, sock):
        """pump() on a port with sendfile (the desktop port): the kernel copies the file to the
        socket. Reads at offset `done`, so the file position is not used (resume included)."""
        while True:
            sent = sock.sendfile(self.file, self.done, SENDFILE_COUNT)
            if sent is None:
                return  # full: on_can_send brings us back (or on_error ends the transfer)
            if not sent:
                self._finish(client)
                sock.disconnect()  # end of file: the server answers 226
                return
            self._moved(client, sent)

    def _moved(self, client, n):
        """n more bytes went through the data connection: deadline and progress."""
        self.done += n
        client._arm(client.data_idle_ms)
        if client.on_progress is not None:
            client.on_progress(self.op, self.done, self.total)

    def receive(self, client, sock):
        buf = client.buf
        n = sock.recv_into(buf)
        if not n:
            return
        try:
            self.file.write(buf if n == len(buf) else memoryview(buf)[:n])
        except OSError as exc:
            self.fail(client, "cannot write: %s" % (exc.args[-1] if exc.args else exc))
            return
        self._moved(client, n)

    def ended(self, client):
        if self.up and not self.finished:
            self.error = "the server closed the data connection after %d bytes" % self.done
        self._finish(client)

    def fail(self, client, text):
        if self.error is None:
            self.error = text
        if self.sock is not None:
            self.sock.disconnect()
        self._finish(client)

    def _finish(self, client):
        if not self.finished:
            self.finished = True
            client._transfer_done()
