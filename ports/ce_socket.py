"""Emulated Winsock sockets: a loopback socket that answers the way a Python on Windows does.

The second half of the CE emulator (ports/ce_source.py posts the notifications). The CE port
makes its sockets through its source, so on a device they are real Winsock sockets and here
they are these; the port's own code is the same in both cases. What differs from Linux:
- a non-blocking connect that is under way answers WSAEWOULDBLOCK (10035), never EINPROGRESS
  (connect on Microsoft Learn). On Windows errno.EWOULDBLOCK is 10035, a number of its own;
  Linux spells EWOULDBLOCK as EAGAIN, so the emulator answers with Winsock's number itself.
Everything else is the real socket's.
"""

import errno

# WSABASEERR (10000) + EWOULDBLOCK's BSD number (35): Winsock's ABI, the same on every Windows
WSAEWOULDBLOCK = 10035


class WinsockSocket:
    """One emulated socket: its real loopback socket, and the source that watches it."""

    def __init__(self, source, real):
        self._source = source
        self._real = real

    def __getattr__(self, name):
        # fileno, bind, listen, setsockopt, getsockname, getpeername, setblocking, type...:
        # the real socket's, unchanged
        return getattr(self._real, name)

    def __repr__(self):
        return "<WinsockSocket fd=%d>" % self._real.fileno()

    # -- connect and accept ---------------------------------------------------------------

    def connect_ex(self, sockaddr):
        code = self._real.connect_ex(sockaddr)
        return WSAEWOULDBLOCK if code == errno.EINPROGRESS else code

    def accept(self):
        real, sockaddr = self._real.accept()
        return WinsockSocket(self._source, real), sockaddr
