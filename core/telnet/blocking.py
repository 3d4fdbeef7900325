"""Telnet: a blocking facade over TelnetClient with its own eventer, for scripts and tests;
the common calls of CPython's telnetlib (removed in 3.13) with the same names and results.

Rules:
- Every wait has a deadline: timeout_s of the call, else the object's. Passing it raises
  ulnet.TimeoutError and keeps what arrived buffered for the next read (telnetlib returned
  partial data or -1 instead; that is the one deliberate difference).
- The end of the stream is telnetlib's: a read returns what is buffered (match or not) and raises
  EOFError only when nothing is left. The constructor raises only what kept the connection from
  being made; after that a transport failure or the server's garbage (NetError,
  RemoteProtocolError) is raised by the next call and every call after it.
- Received data waits in one bytearray bounded by max_buffer; a server sending more than that
  without the script reading it is a RemoteProtocolError. read_until searches only the new
  bytes (no rescanning); expect's regular expressions search the whole buffer, as telnetlib did.
- write() returns once the OS has taken every byte, so close() right after it loses nothing.
- Telnet over TLS takes TelnetClient.connect's arguments (tls, cafile, fingerprint, verify;
  port 992 by default); a refused certificate is raised by the constructor (docs/tls.md).
"""

import re

from ulnet.eventer import Eventer
from ulnet.errors import RemoteProtocolError, TimeoutError, endpoint

from .client import TelnetClient


def _end(match, text):
    """Where a match ends. MicroPython builds without match.end() get the end of the first
    occurrence of the matched text, which is the match itself unless the pattern is anchored
    with $ (search finds the leftmost match, and the same text earlier would match too)."""
    if hasattr(match, "end"):
        return match.end()
    found = match.group(0)
    return text.find(found) + len(found)


class Telnet:
    max_buffer = 1 << 20  # received bytes held for the script (a board sets it lower)

    def __init__(self, host, port=None, timeout_s=30, term="VT100", size=(80, 24), tls=None,
                 cafile=None, fingerprint=None, verify=True):
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._buf = bytearray()
        self._connected = self._eof = False
        self._error = None
        self._ev = Eventer()
        client = self.client = TelnetClient(self._ev, term, size)
        client.on_connect = self._up
        client.on_receive = self._received
        client.on_error = self._failed
        client.on_disconnect = self._ended
        try:
            client.connect(host, port, int(timeout_s * 1000), tls, cafile, fingerprint, verify)
            self.port = client._sock.peer_port  # 23, or 992 for Telnet over TLS
            self._wait(lambda: self._connected, None, "connect")
        except BaseException as err:
            if self._connected and isinstance(err, Exception):
                return  # it came after the connect, with the first data: the next call raises it
            self.close()
            raise

    def __repr__(self):
        return "<Telnet %s>" % endpoint(self.host, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connection and the eventer; safe to call again."""
        if self._ev is not None:
            self.client.disconnect()
            self._ev.close()
            self._ev = None
            self._eof = True

    # -- writing -----------------------------------------------------------------------------

    def write(self, data):
        """Send bytes (IAC doubled); returns once the OS has taken all of them."""
        client = self.client
        view = memoryview(data)
        off = 0
        while True:
            self._check(True)
            off += client.send(view[off:])
            if off >= len(view) and not client.pending:
                return
            self._wait(lambda: not client.pending, None, "write")

    def set_size(self, cols, rows):
        """Set the window size (sent at once when the server asked for NAWS)."""
        self._check()
        self.client.set_size(cols, rows)
        self._wait(lambda: not self.client.pending, None, "set_size")

    def option_enabled(self, option, remote=True):
        """True when the option is on: remote=True the server's side, False ours."""
        return self.client.option_enabled(option, remote)

    # -- reading -----------------------------------------------------------------------------

    def read_until(self, expected, timeout_s=None):
        """Read up to and including `expected` (bytes)."""
        start = 0

        def find(buf):
            nonlocal start
            at = buf.find(expected, start)
            if at < 0:
                start = max(0, len(buf) - len(expected) + 1)  # only new bytes next time
                return -1
            return at + len(expected)

        return self._read(find, timeout_s, "read_until %r" % (expected,))

    def expect(self, patterns, timeout_s=None):
        """Wait for the first of `patterns` (bytes or compiled regular expressions; bytes are
        compiled, as telnetlib did) that matches; returns (index, match, text up to its end).
        At the end of the stream without a match: (-1, None, what is left), or EOFError."""
        patterns = [re.compile(p) if isinstance(p, bytes) else p for p in patterns]
        found = []

        def find(buf):
            text = bytes(buf)  # a match must not see the buffer change under it
            for i, pattern in enumerate(patterns):
                m = pattern.search(text)
                if m:
                    found.append((i, m))
                    return _end(m, text)
            return -1

        text = self._read(find, timeout_s, "expect")
        if not found:
            return -1, None, text
        return found[0][0], found[0][1], text

    def read_all(self, timeout_s=None):
        """Read until the server closes the connection (b"" if nothing came)."""
        return self._read(lambda buf: -1, timeout_s, "read_all", False)

    def read_some(self, timeout_s=None):
        """Read at least one byte; b"" once the connection has ended."""
        return self._read(lambda buf: len(buf) or -1, timeout_s, "read_some", False)

    def read_available(self):
        """What has arrived, without waiting (telnetlib's read_very_eager): b"" if nothing,
        EOFError once the connection has ended and nothing is left."""
        self._check()
        if not self._eof:
            self._ev.call_action(0)
        return self._take(len(self._buf), True)

    read_very_eager = read_eager = read_available

    # -- internals ---------------------------------------------------------------------------

    def _read(self, find, timeout_s, what, eof_error=True):
        """Wait until find(buffer) gives the end of what to return, or the end of the stream."""
        seen = -1
        end = -1

        def ready():
            nonlocal seen, end
            if len(self._buf) != seen:  # search only when something arrived
                seen = len(self._buf)
                end = find(self._buf)
            return end >= 0

        self._wait(ready, timeout_s, what)
        return self._take(end if end >= 0 else len(self._buf), eof_error)

    def _take(self, end, eof_error):
        """Remove and return the first `end` buffered bytes."""
        buf = self._buf
        if eof_error and not buf and self._eof:
            raise self._closed()
        data = bytes(memoryview(buf)[:end])
        buf[:end] = b""
        return data

    def _check(self, writing=False):
        """Raise the error that ended the connection (it stays raised); EOFError once closed
        by close(), or by the server when writing."""
        if self._error is not None:
            raise self._error
        if self._ev is None or writing and self._eof:
            raise self._closed()

    def _closed(self):
        return EOFError("telnet %s: connection closed" % endpoint(self.host, self.port))

    def _wait(self, done, timeout_s, what):
        """Run the loop until done(), an error or the end; TimeoutError at the deadline."""
        self._check()
        seconds = self.timeout_s if timeout_s is None else timeout_s
        try:
            self._ev.run_until(lambda: done() or self._eof or self._error is not None,
                               int(seconds * 1000))
        except TimeoutError:
            raise TimeoutError("telnet %s: %s: timed out after %s s" % (
                endpoint(self.host, self.port), what, seconds)) from None
        self._check()

    def _up(self, client):
        self._connected = True

    def _received(self, client, data):
        buf = self._buf
        if len(buf) + len(data) > self.max_buffer:
            client.disconnect()
            self._failed(client, RemoteProtocolError(
                "more than %d bytes received and not read" % self.max_buffer))
            return
        buf.extend(data)

    def _failed(self, client, err):
        if self._error is None:
            self._error = err

    def _ended(self, client):
        self._eof = True
