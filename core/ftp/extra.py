"""The less common FTP operations: downloads, listings (LIST, NLST, MLSD) and active mode.

Loaded by the client on first use, so a board that only uploads never holds this code. Same
generator protocol as ops.py.
"""

import os

from ulnet.ftp import listing
from ulnet.ftp.ops import FTPError, Op, Transfer, check, open_file, transfer
from ulnet.ftp.parse import decode_text, parse_size


def download(client, op, remote, local):
    if client._proto.transfer_type != "I":
        check(op, (yield ("TYPE", "I")))  # binary before SIZE and RETR
    reply = yield ("SIZE", remote)
    total = parse_size(reply.text) if reply.code == 213 else None
    part = local + ".part"
    f = open_file(op, part, "wb")
    xfer = Transfer(op, f, 0, total, False)
    try:
        yield from transfer(client, op, "RETR", remote, xfer)
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


def lines(client, op, verb, path):
    sink = Sink(client.listing_limit)
    yield from transfer(client, op, verb, path or None, Transfer(op, sink, 0, None, False))
    found = []
    for line in bytes(sink.data).split(b"\n"):
        if not line.strip():
            continue
        if verb == "MLSD":
            found.append(listing.parse_mlsd_line(line))
        elif verb == "LIST":
            found.append(decode_text(line).rstrip("\r"))
        elif listing.parse_nlst_line(line):
            found.append(listing.parse_nlst_line(line))
    op.result = found


def active(client, op):
    """Active mode: listen beside the control connection, tell the server where (EPRT, or PORT
    when EPRT is refused); the server connects to us after the transfer command."""
    local = client._ctl.local_address
    if local is None:
        raise FTPError(None, "active mode needs the local address, which this port cannot tell", op.name)
    client._conn.on_accept = lambda sock: accepted(client, sock)
    port = client._conn.listen(0, local).local_port
    if client._epsv:
        if (yield ("EPRT", listing.format_eprt(local, port))).code // 100 == 2:
            return None
        client._epsv = False
    check(op, (yield ("PORT", listing.format_port(local, port))))
    return None


def accepted(client, sock):
    for listener in client._conn.listeners[:]:
        listener.disconnect()
    client._dsock = sock
    if client._xfer is not None and client._xfer.active:
        client._xfer.started(client)


def start(client, name, args):
    """Queue one of this module's operations (the client's get/list/nlst/mlsd call this)."""
    op = Op(name, args)
    if name == "get":
        program = download(client, op, *args)
    else:
        program = lines(client, op, name.upper(), args[0])
    return client._add(op, program)
