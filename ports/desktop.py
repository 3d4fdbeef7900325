"""Desktop port: CPython sockets under epoll (Linux) or the best `selectors` backend elsewhere.

A port is the only place that knows its runtime's selector and socket API. Its contract:
- readiness: register/modify/unregister(raw, handle, flags) and dispatch(timeout_ms), which
  waits once and calls handle._hint(flags) for each ready handle, with the poll(2) bit values
  READ=1, WRITE=4, ERROR=8, HANGUP=16;
- socket I/O that answers None for "would block" instead of raising, 0 bytes for end of stream,
  and raises OSError for real failures; connect(raw, sockaddr) answers 0 (connected), None
  (under way) or the errno of the failure; connect_result(raw) decides a connect from the
  system (SO_ERROR, then getpeername), never from the flags;
- a millisecond clock: ticks_ms, ticks_diff, ticks_add.

The shared part (DesktopPort) keeps the handle map and rolls it back when the OS refuses a
registration; each backend only translates flags and timeouts. Level-triggered throughout.

TLS (core/tls.py drives it; `ssl` is imported at the first TLS use, never by `import ulnet`): a
TLS socket is an ssl.SSLSocket over the same descriptor, so the poller keeps its registration and
the socket I/O below serves it too (its would-block exceptions join _BLOCKED). OpenSSL keeps
decrypted bytes that no poll announces: dispatch reports a TLS socket holding some as readable
and does not wait while one does.
"""

import errno
import os
import select
import selectors
import socket
import time

from ulnet.errors import NetError

READ = 1
WRITE = 4
ERROR = 8
HANGUP = 16

# selectors' flags differ from poll(2)'s: translate both ways
_TO_SELECTORS = {
    READ: selectors.EVENT_READ,
    WRITE: selectors.EVENT_WRITE,
    READ | WRITE: selectors.EVENT_READ | selectors.EVENT_WRITE,
}
_FROM_SELECTORS = (0, READ, WRITE, READ | WRITE)
# what a non-blocking connect_ex answers while the connect is under way: EINPROGRESS on POSIX,
# WSAEWOULDBLOCK on Windows (there errno.EWOULDBLOCK is 10035, no alias of EAGAIN)
_UNDER_WAY = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)

# what "would block" raises: BlockingIOError, plus ssl's SSLWantReadError and SSLWantWriteError
# once TLS is used (a global, so a plain upload never imports ssl)
_BLOCKED = (BlockingIOError,)
# ssl.SSLError once TLS is used: a TLS failure after the handshake (a bad record, an alert)
_TLS_FAILED = ()
_ssl = None  # the ssl module, once TLS is used


class DesktopTLS:
    """The desktop port's TLS part: the runtime's TLS calls for core/tls.py, and the I/O of TLS
    sockets (their Socket._port): the port's own calls, without sendfile, which would put a
    file's bytes on the wire in clear. ssl is imported here, at the first TLS use."""

    def __init__(self, port):
        global _BLOCKED, _TLS_FAILED, _ssl
        import ssl

        _ssl = ssl
        _BLOCKED = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        _TLS_FAILED = ssl.SSLError
        self.port = port
        self.send, self.recv_into, self.recv = port.send, port.recv_into, port.recv
        self.modify, self.unregister = port.modify, port.unregister
        self.close_socket = port.close_socket
        self.RECV_SIZE = port.RECV_SIZE

    def tls_context(self, cas, check):
        """An ssl.SSLContext for clients: with check, the chain and the name are verified
        against the DER certificates `cas` (None: the system's CA store); without, nothing is
        (pinning or verify=False: core/tls.py checks the pin)."""
        if check:
            return _ssl.create_default_context(cadata=b"".join(cas) if cas else None)
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
        return ctx

    def wrap_tls(self, raw, handle, context, hostname, session):
        """Wrap a connected socket (same descriptor: the registration stays); `session`: a TLS
        session to resume."""
        fd = raw.fileno()
        try:
            hostname.encode("idna")  # what ssl checks only after it took the descriptor over
            tls = context.wrap_socket(raw, server_hostname=hostname,
                                      do_handshake_on_connect=False, session=session)
        except BaseException:
            if raw.fileno() < 0:  # taken over, then refused (ssl closed it): forget it here
                port = self.port
                if port._map.pop(fd, None) is not None:
                    try:
                        port._remove(fd)
                    except (OSError, KeyError):
                        pass  # epoll dropped it with the descriptor
            raise
        self.port._ssl[fd] = tls
        return tls

    def handshake(self, raw):
        """One step: 0 when done, else the readiness it waits for (READ or WRITE); a failure
        raises NetError with the reason."""
        try:
            raw.do_handshake()
        except _ssl.SSLWantReadError:
            return READ
        except _ssl.SSLWantWriteError:
            return WRITE
        except _ssl.SSLCertVerificationError as exc:
            raise NetError(errno.ECONNABORTED, "certificate verify failed: " + _verify_reason(exc))
        except (_ssl.SSLEOFError, _ssl.SSLZeroReturnError):
            raise NetError(errno.ECONNRESET, "the server closed the connection")
        except _ssl.SSLError as exc:
            raise _tls_failure(exc)
        return 0

    def peer_cert(self, raw):
        """The server's certificate (DER): once the handshake is done, the one it proved it
        holds; after a refusal, the one it showed (where ssl tells it: CPython 3.10 and
        later), else None."""
        try:
            return raw.getpeercert(True)
        except ValueError:  # the handshake is not done: it was refused
            pass
        try:
            return raw._sslobj.get_unverified_chain()[0].public_bytes(_ssl._ssl.ENCODING_DER)
        except Exception:  # not in this CPython, or nothing shown
            return None

    def tls_session(self, raw):
        """What a later connection can resume (ssl.SSLSession), or None."""
        return raw.session

    def end(self, raw):
        """End the sending side and keep reading (TLSSession.end): close_notify, when the
        socket takes it now, then the TCP end (the FIN). True: the caller closes it later."""
        try:
            raw.unwrap()
        except (OSError, ValueError):
            pass  # the usual case, SSLWantReadError: close_notify went, the peer's is not in
        else:
            # the peer's close_notify was in too: TLS is over on this socket, and SSLSocket
            # reads in clear from now on (a man in the middle's bytes would come up as data)
            return False
        try:
            # the plain socket's shutdown: SSLSocket's own would stop its TLS for the reads
            socket.socket.shutdown(raw, socket.SHUT_WR)
        except OSError:
            return False
        return True


class DesktopPort:
    """CPython socket I/O plus the handle map; backends add the OS readiness call."""

    TLS = DesktopTLS  # the class of the port's TLS part

    STREAM = socket.SOCK_STREAM
    DGRAM = socket.SOCK_DGRAM
    # get() size: a desktop has memory to spare, and fewer, larger reads are faster
    RECV_SIZE = 65536

    def __init__(self):
        self._map = {}
        self._ssl = {}  # fd -> SSLSocket, for the bytes OpenSSL holds (dispatch)
        self._tls = None  # the TLS part (TLS), once TLS is used

    # -- clock ----------------------------------------------------------------------------

    @staticmethod
    def ticks_ms():
        return time.monotonic_ns() // 1000000

    @staticmethod
    def ticks_diff(a, b):
        return a - b

    @staticmethod
    def ticks_add(a, b):
        return a + b

    # -- readiness --------------------------------------------------------------------------

    def register(self, raw, handle, flags):
        fd = raw.fileno()
        self._map[fd] = handle
        try:
            self._add(fd, flags)
        except BaseException:
            del self._map[fd]
            raise

    def modify(self, raw, handle, flags):
        self._change(raw.fileno(), flags)

    def unregister(self, raw):
        fd = raw.fileno()
        self._ssl.pop(fd, None)
        if self._map.pop(fd, None) is not None:
            self._remove(fd)

    def handles(self):
        return list(self._map.values())

    def dispatch(self, timeout_ms):
        handles = self._map
        buffered = self._buffered()
        for fd, flags in self._wait(0 if buffered else timeout_ms):
            handle = handles.get(fd)
            if handle is not None:
                handle._hint(flags)
        self._hint_buffered(buffered)

    def _buffered(self):
        """TLS sockets holding decrypted bytes: readable, though no poll says so."""
        ssl_socks = self._ssl
        return [fd for fd, raw in ssl_socks.items() if raw.pending()] if ssl_socks else None

    def _hint_buffered(self, buffered):
        if buffered:
            handles = self._map
            for fd in buffered:
                handle = handles.get(fd)
                if handle is not None and fd in self._ssl:  # still that TLS socket
                    handle._hint(READ)

    # -- socket I/O ---------------------------------------------------------------------------

    def resolve(self, host, port, kind):
        found = []
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, 0, kind):
            if (family, sockaddr) not in found:
                found.append((family, sockaddr))
        return found

    def open(self, family, kind):
        raw = socket.socket(family, kind)
        raw.setblocking(False)
        return raw

    def connect(self, raw, sockaddr):
        code = raw.connect_ex(sockaddr)
        return None if code in _UNDER_WAY else code

    def connect_result(self, raw):
        code = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            return code
        try:
            raw.getpeername()
        except OSError as exc:
            # ENOTCONN: still connecting and this was a spurious hint
            return None if exc.errno == errno.ENOTCONN else exc.errno
        return 0

    def listen(self, raw, sockaddr, backlog):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raw.bind(sockaddr)
        raw.listen(backlog)
        return self.local(raw)

    def bind(self, raw, sockaddr):
        raw.bind(sockaddr)
        return self.local(raw)

    def accept(self, raw):
        try:
            conn, sockaddr = raw.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return None
        conn.setblocking(False)
        return conn, sockaddr

    def address(self, sockaddr):
        return sockaddr[0], sockaddr[1]

    def local(self, raw):
        sockaddr = raw.getsockname()
        return sockaddr[0], sockaddr[1]

    def recv_into(self, raw, buf, n):
        try:
            return raw.recv_into(buf, n)
        except _BLOCKED:
            return None
        except _TLS_FAILED as exc:
            raise _tls_failure(exc)

    def recv(self, raw, n):
        try:
            return raw.recv(n)
        except _BLOCKED:
            return None
        except _TLS_FAILED as exc:
            raise _tls_failure(exc)

    def send(self, raw, data, off, n):
        try:
            if off == 0 and n == len(data):
                return raw.send(data)
            return raw.send(memoryview(data)[off:off + n])
        except _BLOCKED:
            return None
        except _TLS_FAILED as exc:
            raise _tls_failure(exc)

    def recvfrom_into(self, raw, buf):
        try:
            return raw.recvfrom_into(buf)
        except BlockingIOError:
            return None

    def sendto(self, raw, data, sockaddr):
        try:
            return raw.sendto(data, sockaddr)
        except BlockingIOError:
            return None

    def close_socket(self, raw):
        if hasattr(raw, "unwrap"):
            # a TLS socket says close_notify first (best effort: it never waits), so the peer
            # sees a clean end of data, not a cut (a truncation)
            try:
                raw.unwrap()
            except (OSError, ValueError):
                pass
        raw.close()

    def close(self):
        """Release the poller itself (the eventer is done)."""
        self._close_poller()

    # -- TLS ---------------------------------------------------------------------------------

    def tls(self):
        """The port's TLS part (core/tls.py uses it), made at the first TLS use."""
        if self._tls is None:
            self._tls = self.TLS(self)
        return self._tls


class _Sendfile:
    """The kernel's sendfile for the desktop backends, where the OS has one (not on Windows, and
    not in the CE port, which inherits DesktopPort: uploads there take the buffer path)."""

    if hasattr(os, "sendfile"):

        def sendfile(self, raw, f, offset, count):
            """Send count bytes of file f from offset; the kernel copies them, nothing passes
            through Python. None for would-block, 0 at end of file."""
            try:
                return os.sendfile(raw.fileno(), f.fileno(), offset, count)
            except BlockingIOError:
                return None


class EpollPort(_Sendfile, DesktopPort):
    """Linux: epoll directly; its flags are poll(2)'s, so events pass through untranslated."""

    def __init__(self):
        super().__init__()
        self._ep = select.epoll()

    def _add(self, fd, flags):
        self._ep.register(fd, flags)

    def _change(self, fd, flags):
        self._ep.modify(fd, flags)

    def _remove(self, fd):
        self._ep.unregister(fd)

    def _wait(self, timeout_ms):
        return self._ep.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1)

    def _close_poller(self):
        self._ep.close()


class SelectorPort(_Sendfile, DesktopPort):
    """Any `selectors` backend (kqueue on BSD/macOS, poll or select elsewhere)."""

    def __init__(self, selector=None):
        super().__init__()
        self._sel = selector if selector is not None else selectors.DefaultSelector()

    def _add(self, fd, flags):
        self._sel.register(fd, _TO_SELECTORS[flags & (READ | WRITE)])

    def _change(self, fd, flags):
        self._sel.modify(fd, _TO_SELECTORS[flags & (READ | WRITE)])

    def _remove(self, fd):
        self._sel.unregister(fd)

    def _wait(self, timeout_ms):
        ready = self._sel.select(timeout_ms / 1000 if timeout_ms >= 0 else None)
        return [(key.fd, _FROM_SELECTORS[mask]) for key, mask in ready]

    def _close_poller(self):
        self._sel.close()


def _verify_reason(exc):
    """The reason of a failed verification, in words a user can act on."""
    code = exc.verify_code
    if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        return "hostname mismatch"  # core/tls.py names the host
    if code in (2, 18, 19, 20, 21):  # no issuer, self-signed, untrusted root, no local issuer
        return "unknown CA (%s)" % exc.verify_message
    if code == 10:
        return "certificate has expired"
    return exc.verify_message or exc.reason or str(exc)


def _tls_failure(exc):
    """NetError for a TLS failure (a fatal alert, a bad record): its reason in words."""
    reason = (exc.reason or str(exc)).lower().replace("_", " ")
    return NetError(errno.ECONNABORTED, "TLS: " + reason)


_DEFAULT = EpollPort if hasattr(select, "epoll") else SelectorPort


def Port(selector=None):
    """The port for Eventer(): epoll where the OS has it, else selectors' best backend.

    `selector` (a selectors.BaseSelector instance) forces that backend instead.
    """
    if selector is None:
        return _DEFAULT()
    return SelectorPort(selector)
