"""The less common FTP operations: downloads, listings (LIST, NLST, MLSD) and active mode.

Loaded by the client on first use, so a board that only uploads never holds this code. Same
generator protocol as ops.py.
"""

import os

from ulnet.ftp import listing
from ulnet.errors import errno_text
from ulnet.ftp.ops import FTPError, Op, check, transfer
from ulnet.ftp.parse import decode_text, parse_size


def download(session, op, remote, local):
    if session._proto.transfer_type != "I":
        check(op, (yield ("TYPE", "I")))  # binary before SIZE and RETR
    reply = yield ("SIZE", remote)
    total = parse_size(reply.text) if reply.code == 213 else None
    part = local + ".part"
    try:
        f = open(part, "wb")
    except OSError as exc:
        raise FTPError(None, "cannot open %s: %s" % (part, errno_text(exc)), op.name)
    try:
        xfer = yield from transfer(session, op, "RETR", remote, f, 0, total, False)
        f.close()
        os.rename(part, local)
        op.result = xfer.done
    finally:
        f.close()
        if op.result is None:
            try:
                os.remove(part)
            except OSError:
                pass


class Sink:
    """A bounded in-memory file for listings: a huge listing fails instead of eating the heap."""

    def __init__(self, limit):
        self.data = bytearray()
        self.limit = limit

    def write(self, chunk):
        if len(self.data) + len(chunk) > self.limit:
            raise OSError(27, "listing larger than %d bytes" % self.limit)  # EFBIG
        self.data.extend(chunk)


def lines(session, op, verb, path):
    sink = Sink(session.listing_limit)
    yield from transfer(session, op, verb, path or None, sink, 0, None, False)
    found = []
    for line in bytes(sink.data).split(b"\n"):
        if not line.strip():
            continue
        if verb == "MLSD":
            found.append(listing.parse_mlsd_line(line))
        elif verb == "LIST":
            found.append(decode_text(line.rstrip(b"\r")))
        elif listing.parse_nlst_line(line):
            found.append(listing.parse_nlst_line(line))
    op.result = found


def active(session, op):
    """Active mode: listen beside the control connection, tell the server where (EPRT, or PORT
    when EPRT is refused); the server connects to us after the transfer command."""
    local = session._ctl.local_address
    if local is None:
        raise FTPError(None, "active mode needs the local address, which this port cannot tell", op.name)
    session._conn.on_accept = lambda sock: accepted(session, sock)
    port = session._conn.listen(0, local).local_port
    if session._epsv:
        if (yield ("EPRT", listing.format_eprt(local, port))).code // 100 == 2:
            return None
        session._epsv = False
    check(op, (yield ("PORT", listing.format_port(local, port))))
    return None


def accepted(session, sock):
    if sock.peer_address != session._ctl.peer_address:
        sock.disconnect()  # only the server may connect: anyone else could feed or take the data
        return
    for listener in session._conn.listeners[:]:
        listener.disconnect()
    session._dsock = sock
    if session._tls is not None:  # FTPS: the client is the TLS client here too (RFC 4217 section 9)
        session._conn.start_tls(session._tls, sock, session.connect_timeout_ms)
    elif session._xfer is not None:
        session._xfer.pump(session, sock)  # an upload whose 150 came first starts sending


def start(session, name, args):
    """Queue one of this module's operations (the client's get/list/nlst/mlsd call this)."""
    if name != "get":
        args = (args[0] or None,)  # "": the current directory (an empty name is refused)
    op = Op(name, args)
    if name == "get":
        program = download(session, op, *args)
    else:
        program = lines(session, op, name.upper(), args[0])
    return session._add(op, program)
