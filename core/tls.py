"""TLSSession: lNet's fourth part, the session that plugs into a TCP connection and changes how
its bytes travel (TLS, client side), implicit or as an upgrade in place (start_tls).

Rules:
- Secure by default: the server's certificate chain and name are verified (the system's CA store
  on CPython, `cafile=` PEM or DER, e.g. a file on a board's flash), or the certificate is pinned
  (`fingerprint=`, its SHA-256). verify=False checks nothing, only when asked by name, and the
  session says "unverified" (repr, status). The name checked (and sent as SNI) is
  server_hostname, else the host given to connect() (IP addresses included), or for start_tls
  the address the socket is connected to (a socket keeps no name: give server_hostname).
- Implicit (`tcp.session = TLSSession(...)` before connect): the socket stays "connecting" until
  the handshake is done; the connect deadline covers both; on_connect fires once, after it.
- Upgrade (`tcp.start_tls(session, sock)` on a connected socket): from that call nothing goes
  out in clear; the socket is "connecting" (send returns 0, reads nothing) until the handshake is
  done, then on_can_send fires once. Neither ever reports from inside the call.
- A failure is one on_error with a NetError naming the peer and why ("TLS handshake with
  127.0.0.1:990: certificate verify failed: certificate has expired"; a wrong name also says
  what the certificate is for, read by core/x509.py, loaded only then); the socket is closed
  before any application byte left. A clean TLS close is on_disconnect, as for TCP.
- Resumption (CPython): a socket handshaking with a session that has completed one before (the
  first of its connections still open, else the last seen) offers that TLS session, as FTPS data
  connections must. MicroPython's tls module cannot resume (docs/tls.md).
- The runtime's TLS calls are the port's TLS part (port.tls(): tls_context, wrap_tls,
  handshake, peer_cert, tls_session), which is also what a TLS socket's I/O goes through
  (Socket._port: send, recv_into, recv, modify, unregister, close_socket, and never sendfile).
  This module is the state machine, and is imported only when TLS is used.
"""

import binascii
import errno

from ulnet.errors import NetError, endpoint, net_error
from ulnet.socket import READ, WRITE

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"


def read_cas(path):
    """The DER certificates in a CA file: PEM (any number of certificates) or DER (one). None
    in it is an error: an empty file must not leave the choice to the runtime (CPython's
    default context then trusts the system's store)."""
    with open(path, "rb") as f:
        data = f.read()
    cas = []
    at = data.find(_PEM_BEGIN)
    if at < 0 and data[:1] == b"0":  # DER: one certificate, a SEQUENCE (0x30)
        cas.append(data)
    while at >= 0:
        end = data.find(_PEM_END, at)
        if end < 0:
            break
        cas.append(binascii.a2b_base64(data[at + len(_PEM_BEGIN):end]))
        at = data.find(_PEM_BEGIN, end)
    if not cas:
        raise ValueError("cafile %s: no certificate in it" % path)
    return cas


def _pin(fingerprint):
    """A SHA-256 fingerprint (hex, colons and spaces allowed) as 32 bytes."""
    try:
        pin = binascii.unhexlify(fingerprint.replace(":", "").replace(" ", ""))
    except (ValueError, TypeError, AttributeError):  # not hex, or not a str
        pin = b""
    if len(pin) != 32:
        raise ValueError("fingerprint: 64 hex digits of a SHA-256 expected")
    return pin


def _hex(digest):
    return binascii.hexlify(digest, ":").decode().upper()


class TLSSession:
    """TLS settings for connections, and what they share (the context, a session to resume)."""

    # policy knob: the handshake's deadline when the caller gave none (connect without
    # timeout_ms, start_tls without timeout_ms)
    timeout_ms = 30000

    def __init__(self, cafile=None, fingerprint=None, verify=True, server_hostname=None, context=None):
        # off only by name: verify=None (a setting passed on unset) must not mean "off", nor
        # cafile="" or fingerprint="" "not given"
        if verify is not True and verify is not False:
            raise ValueError("verify must be True or False")
        if cafile is not None and (type(cafile) is not str or not cafile):
            raise ValueError("cafile must be a file name")
        if not verify and (cafile is not None or fingerprint is not None):
            raise ValueError("verify=False checks nothing: give no cafile or fingerprint with it")
        # mbedtls would check the name only up to a NUL
        if server_hostname is not None and (type(server_hostname) is not str
                                            or "\0" in server_hostname):
            raise ValueError("server_hostname must be a name or an address (str)")
        self.cafile = cafile
        self.fingerprint = fingerprint
        self.verify = verify
        self.server_hostname = server_hostname
        self._pin = None if fingerprint is None else _pin(fingerprint)
        if not verify:
            self.status = "unverified"
        else:
            self.status = "verified" if self._pin is None else "pinned"
        self._ctx = context  # another session's context(), same settings: see context()
        # resumption: the socket whose TLS session others resume, and the last one seen
        self._origin = self._saved = None

    def __repr__(self):
        if self.status == "unverified":
            return "<TLSSession unverified>"
        if self._pin is not None:
            return "<TLSSession pinned sha256 %s>" % _hex(self._pin)
        return "<TLSSession verified against %s>" % (self.cafile or "the system CA store")

    def context(self, eventer):
        """The runtime's TLS context for these settings (it reads the CA file), made at the
        first handshake or here. Sessions with the same settings may share it
        (TLSSession(..., context=)): the upload job makes one for all its FTP sessions, at its
        start, while a board's heap is still in one piece (an SSLContext is a 3 KB block)."""
        if self._ctx is None:
            cas = None if self.cafile is None else read_cas(self.cafile)
            # the chain and the name, as the status says (set when the session was made,
            # whatever is changed since); with a pin and no cafile, the pin alone decides
            status = self.status
            check = status == "verified" or status == "pinned" and self.cafile is not None
            self._ctx = eventer.port.tls().tls_context(cas, check)
        return self._ctx

    # -- the socket's side (core/socket.py, core/tcp.py) ------------------------------------------

    def _begin(self, sock, host, implicit, timeout_ms=None):
        """Wrap sock's connected TCP socket and take the first handshake step (the ClientHello
        goes now: a port may send no hint for it, as the CE port's FD_WRITE came long ago).
        implicit: after connect (on_connect follows the handshake), else start_tls. Returns
        as _Link._step does."""
        port = sock._conn.eventer.port.tls()
        host = self.server_hostname or host
        link = _Link(self, host, implicit)
        try:
            raw = port.wrap_tls(sock._raw, sock, self.context(sock._conn.eventer), host,
                                self._resumable(port, host))
        except Exception as exc:  # whatever the runtime refuses: one on_error, the socket closed
            sock._later(link._failure(sock, exc))
            return None
        sock._raw, sock._port, sock._tls, sock.state = raw, port, link, "connecting"
        if sock._timer is None:
            ev = sock._conn.eventer
            sock._timer = ev.call_later(timeout_ms or self.timeout_ms, sock._deadline)
        if not link._advance(sock):
            return None
        if implicit:
            return link._step(sock)
        # an upgrade that is over at once (TLS 1.3 on loopback can be) reports from the loop:
        # start_tls never calls back from inside itself
        sock._conn.eventer.call_later(0, lambda: sock.state == "connecting" and sock._check())
        return None

    def end(self, sock):
        """End sock's sending side and keep it open for reading, where the port can (the
        desktop): close_notify, then the TCP end; what the peer still sends is read (and its end
        comes as on_disconnect) until the caller closes the socket. An FTPS upload ends so: a
        TLS 1.3 server writes its session tickets once it has read the handshake's last flight,
        which can be after the client sent its last byte, and a socket closed at once answers
        them with a reset, which throws away what the server had not read yet (pyftpdlib
        stored 112 KB of 1 MB and answered 226; vsftpd 426). Elsewhere sock is closed now."""
        if sock._raw is None or not sock._port.end(sock._raw):  # closed already: nothing to end
            sock.disconnect()

    def _resumable(self, port, host):
        """The TLS session a new connection to `host` offers: the origin's current one (it may
        have got a ticket since its handshake), else the last one seen; only if it was made
        for that name (a resumption shows no certificate: the name would go unchecked)."""
        origin = self._origin
        if origin is None or origin._tls.host != host:
            return None
        if origin.state == "connected" and origin._tls.session is self:
            self._saved = port.tls_session(origin._raw) or self._saved
        return self._saved


class _Link:
    """One socket's TLS: its session, the name verified, its handshake's progress (Socket._tls;
    a repr reads `status`)."""

    def __init__(self, session, host, implicit):
        self.session = session
        self.status = session.status
        self.host = host
        self.implicit = implicit
        self.done = False  # the handshake is over and checked; reported once _step says so

    def _step(self, sock):
        """A hint came during the handshake (core/socket.py's _check): None while it runs or
        when it failed (on_error follows), else True after a connect (on_connect follows) or
        False after start_tls; then the socket is up."""
        if not self.done and not self._advance(sock):
            return None
        session = self.session
        origin = session._origin
        if origin is None or origin.state != "connected" or origin._tls.session is not session:
            session._origin = sock
            session._saved = sock._port.tls_session(sock._raw)
        return self.implicit

    def _advance(self, sock):
        """One handshake step; True once it is over and the pin, if any, matched."""
        port, raw = sock._port, sock._raw
        try:
            want = port.handshake(raw)
            if not want:
                cert = port.peer_cert(raw)  # taken always: a port may hold it until asked
                pin = self.session._pin
                if pin is not None:
                    import hashlib

                    digest = hashlib.sha256(cert).digest() if cert else b""
                    if digest != pin:
                        raise NetError(errno.ECONNABORTED, "fingerprint mismatch: server"
                                       " certificate sha256 is " + _hex(digest))
        except Exception as exc:  # one on_error whatever failed, and the socket closed
            sock._later(self._failure(sock, exc))
            return False
        if want:
            port.modify(raw, sock, READ | WRITE if want == WRITE else READ)
            return False
        self.done = True
        return True

    def _failure(self, sock, exc):
        """The NetError reporting a failed handshake: the port's reason, named and placed."""
        where = endpoint(sock.peer_address, sock.peer_port)
        if not isinstance(exc, NetError):
            if isinstance(exc, MemoryError):  # a board out of heap: "out of memory"
                exc = OSError(errno.ENOMEM)
            if isinstance(exc, OSError):
                return net_error(exc, "TLS handshake with", sock.peer_address, sock.peer_port)
            exc = NetError(errno.EINVAL, str(exc) or repr(exc))  # a bad cafile, a refused name
        text = str(exc)
        if "hostname mismatch" in text:  # the port does not know the name: say it here
            try:  # and what the certificate the server showed is for (core/x509.py)
                from ulnet.x509 import names

                found = " (it is for %s)" % ", ".join(names(sock._port.peer_cert(sock._raw)))
            except Exception:  # no certificate, no name in it, no room for x509 on a board
                found = ""
            text = text.replace("mismatch", "mismatch, certificate is not valid for %s%s"
                                % (self.host, found), 1)
        return NetError(exc.errno, "TLS handshake with %s: %s" % (where, text))
