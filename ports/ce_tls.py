"""The CE port's TLS part: TLS over the port's own socket objects through ssl.MemoryBIO.

An ssl.SSLSocket reads and writes its descriptor in C. On Windows CE that is still Winsock, which
re-enables its notifications inside recv and send whoever calls them; but the port takes its
sockets from its source (ports/ce.py), and here the bytes must pass through them: the emulated
sockets re-enable, keep their failures and play the faults (ports/ce_socket.py). So the TLS
library works on memory (SSLObject with two MemoryBIOs) and BIOSocket moves the bytes through the
socket's recv and send: every byte on the wire goes through the same calls as plain TCP's.

BIOSocket answers as an SSLSocket does where the desktop port's TLS part asks (do_handshake,
recv_into, recv, send, pending, getpeercert, session, close): SSLWantReadError and
SSLWantWriteError for "would block", 0 / b"" at the end (close_notify, or the TCP end). What the
socket did not take of a record stays in `left`: the port sends it at each dispatch (flush), and
a handshake counts as done only once its last flight is out. A send that fails there is kept
and counts as something to read: the socket's next call raises it (one on_error).
"""

import socket

from ulnet.ports import desktop
from ulnet.ports.desktop import DesktopTLS

# bytes read from the socket per call; a TLS record is at most 16 KB plus its overhead
_READ_SIZE = 65536


class CETLS(DesktopTLS):
    def wrap_tls(self, raw, handle, context, hostname, session):
        tls = BIOSocket(raw, context, hostname, session)
        self.port._ssl[raw.fileno()] = tls
        return tls

    def end(self, raw):
        """TLSSession.end: close_notify, then the TCP end (Winsock's shutdown(SD_SEND)), once the
        socket took the whole record; else False (the caller closes it)."""
        if not raw.unwrap():
            return False
        try:
            raw.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True


class BIOSocket:
    def __init__(self, sock, context, hostname, session):
        ssl = desktop._ssl
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=hostname,
                                     session=session)
        self.left = b""  # encrypted bytes the socket has not taken yet
        # a send that failed: kept, as Winsock keeps a socket's failure, and raised by every
        # later call (a flush at dispatch has no caller to report it to)
        self.failed = None
        # the last read ended on the socket's "would block" (or its end): its recv re-enabled
        # FD_READ, so the stack says when more comes; else a read may find more at once
        self._drained = True

    def fileno(self):
        return self.sock.fileno()

    @property
    def session(self):
        return self._obj.session

    @property
    def session_reused(self):
        return self._obj.session_reused

    def getpeercert(self, binary_form=False):
        return self._obj.getpeercert(binary_form)

    @property
    def _sslobj(self):  # as SSLSocket's: the certificate a refused handshake saw (peer_cert)
        return self._obj._sslobj

    def pending(self):
        """A read now finds bytes no notification will announce: decrypted ones, or maybe more
        (the last read was filled before it met the socket's "would block"), or a failure."""
        return self._obj.pending() or not self._drained or self.failed is not None

    # -- the calls --------------------------------------------------------------------------

    def do_handshake(self):
        self._run(self._obj.do_handshake)
        if self.left:  # our last flight is not out yet: the peer waits for it
            raise desktop._ssl.SSLWantWriteError("the handshake's last flight waits")

    def recv_into(self, buf, n=0):
        return self._read(n or len(buf), buf) or 0

    def recv(self, n):
        return self._read(n) or b""

    def send(self, data):
        if not self.flush():
            raise desktop._ssl.SSLWantWriteError("earlier records wait")
        return self._run(self._obj.write, data)

    def flush(self):
        """Send what TLS wrote; True once the socket took all of it."""
        if self.failed is not None:
            raise self.failed
        data = self.left + self._out.read()
        while data:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                break
            except OSError as exc:
                self.failed = exc
                raise
            data = data[sent:]
        self.left = data
        return not data

    def unwrap(self):
        """Say close_notify (best effort: the peer's answer is not awaited); True when the
        socket took all of it."""
        try:
            self._obj.unwrap()
        except desktop._ssl.SSLError:
            pass
        return self.flush()

    def close(self):
        self.sock.close()

    # -- moving the bytes ------------------------------------------------------------------------

    def _read(self, n, buf=None):
        """Up to n bytes, across records, until the socket has no more now: a short read means
        the wire is drained and the socket's recv re-enabled FD_READ, as for plain TCP (a read
        served from decrypted bytes alone calls no recv). None at the end (close_notify, or
        the TCP end, as SSLSocket's suppress_ragged_eofs)."""
        ssl = desktop._ssl
        view = None if buf is None else memoryview(buf)
        got, parts = 0, []
        while got < n:
            try:
                if view is None:
                    part = self._run(self._obj.read, n - got)
                    parts.append(part)
                    size = len(part)
                else:
                    size = self._run(self._obj.read, n - got, view[got:])
            except ssl.SSLWantReadError:
                if not got:
                    raise
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._drained = True
                if not got:
                    return None
                break
            got += size
        if got == n:
            self._drained = False
        return got if view is not None else b"".join(parts)

    def _run(self, call, *args):
        """call(*args) until it needs no more bytes from the socket; what it wrote is sent."""
        want_read = desktop._ssl.SSLWantReadError
        while True:
            try:
                result = call(*args)
            except want_read as exc:
                self.flush()
                try:
                    data = self.sock.recv(_READ_SIZE)
                except BlockingIOError:
                    self._drained = True
                    raise exc from None
                if data:
                    self._in.write(data)
                else:
                    self._in.write_eof()
                continue
            self.flush()
            return result
