"""Emulated Winsock sockets: a loopback socket that answers the way a Python on Windows does.

The second half of the CE emulator (ports/ce_source.py posts the notifications). The CE port
makes its sockets through its source, so on a device they are real Winsock sockets and here
they are these; the port's own code is the same in both cases. What differs from Linux:
- a non-blocking connect that is under way answers WSAEWOULDBLOCK (10035), never EINPROGRESS
  (connect on Microsoft Learn). On Windows errno.EWOULDBLOCK is 10035, a number of its own;
  Linux spells EWOULDBLOCK as EAGAIN, so the emulator answers with Winsock's number itself.
- each call re-enables its notification inside the stack, also when it fails (WSAAsyncSelect:
  "any call to the reenabling routine, even one that fails"): recv re-enables FD_READ, a send
  that would block FD_WRITE, accept FD_ACCEPT.
- a failure stays with its socket: once the stack saw a reset or an abort (FD_CLOSE carries
  it), every recv and send fails with it (recv on Microsoft Learn), and a failed connect's
  SO_ERROR stays too. Linux hands a socket's error out once, to whoever reads first (the
  emulator's peek), so it is kept here.
- a link that vanished silently (the `suspend` fault) reads as "would block" forever and
  swallows what is sent, as a dead Wi-Fi link does until TCP gives up.
Errors are raised with the host's errno of the same name (on Windows, errno.ECONNRESET is
WSAECONNRESET), so the core's by-name comparisons see what they see on a device.
"""

import errno
import os
import socket

# Winsock's FD_* bits, the notifications each call re-enables
FD_READ = 0x01
FD_WRITE = 0x02
FD_ACCEPT = 0x08

# WSABASEERR (10000) + EWOULDBLOCK's BSD number (35): Winsock's ABI, the same on every Windows
WSAEWOULDBLOCK = 10035


class WinsockSocket:
    """One emulated socket: its real loopback socket, the source that watches it, and what the
    stack holds against it: `error` (an errno every call fails with) or `gone`."""

    def __init__(self, source, real):
        self._source = source
        self._real = real
        self.error = None
        self.gone = False
        # the connect's failure (SO_ERROR), kept: Linux hands it out once, Winsock keeps it
        self.connect_error = None

    def __getattr__(self, name):
        # fileno, bind, listen, setsockopt, getsockname, getpeername, setblocking, close,
        # type: the real socket's, unchanged
        return getattr(self._real, name)

    def __repr__(self):
        return "<WinsockSocket fd=%d>" % self._real.fileno()

    def _held(self):
        """Raise what the stack holds against this socket."""
        if self.error:
            raise OSError(self.error, os.strerror(self.error))
        if self.gone:
            raise BlockingIOError(errno.EAGAIN, "would block")

    # -- connect and accept ---------------------------------------------------------------

    def connect_ex(self, sockaddr):
        code = self._real.connect_ex(sockaddr)
        return WSAEWOULDBLOCK if code == errno.EINPROGRESS else code

    def getsockopt(self, level, option, *args):
        if level != socket.SOL_SOCKET or option != socket.SO_ERROR or args:
            return self._real.getsockopt(level, option, *args)
        if not self.connect_error:
            self.connect_error = self._real.getsockopt(level, option) or None
        return self.connect_error or 0

    def accept(self):
        try:
            real, sockaddr = self._real.accept()
        finally:
            self._source.enable(self, FD_ACCEPT)
        return WinsockSocket(self._source, real), sockaddr

    # -- data: FD_READ re-enabled by every receive, FD_WRITE by a send that would block ------

    def recv_into(self, buf, n=0):
        return self._receive(self._real.recv_into, buf, n)

    def recv(self, n, flags=0):
        return self._receive(self._real.recv, n, flags)

    def recvfrom_into(self, buf, n=0):
        return self._receive(self._real.recvfrom_into, buf, n)

    def send(self, data):
        if self.gone and not self.error:
            return len(data)  # into a send buffer that never drains to anyone
        return self._send(self._real.send, data)

    def sendto(self, data, sockaddr):
        return self._send(self._real.sendto, data, sockaddr)

    def _receive(self, call, *args):
        try:
            self._held()
            return call(*args)
        finally:
            self._source.enable(self, FD_READ)

    def _send(self, call, *args):
        self._held()
        try:
            return call(*args)
        except BlockingIOError:
            self._source.enable(self, FD_WRITE)
            raise
