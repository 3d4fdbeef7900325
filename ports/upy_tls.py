"""The MicroPython port's TLS part (the `tls` module), loaded at the first TLS use: the runtime's
TLS calls for core/tls.py, and the I/O of TLS sockets (their Socket._port).

A TLS socket is the SSLSocket wrapped around the plain one, registered with the poller in its
place: its poll asks the plain socket for whatever the handshake needs next, and counts the bytes
mbedtls holds as readable. The plain socket type's methods refuse an SSLSocket, so its I/O goes
through here. What the 1.29 `tls` module gives and lacks (measured on the unix port):
- no do_handshake(): the handshake runs inside read and write, which answer None meanwhile, and
  nothing tells when it is over (cipher() crashes the interpreter until it is). So a handshake
  step is a read of one byte, and the handshake counts as done once a read that ran the verify
  callback for the server's certificate came back without an error: the certificate is verified.
  Its last round trip (our key exchange and Finished, the server's Finished) completes in the
  next read or write; mbedtls sends no application byte before it is over. A byte of data such a
  read returns is held and handed to the next read;
- verification errors raise ValueError with mbedtls' text, other failures OSError(-0x..., name);
- load_verify_locations takes DER (this build parses no PEM: core/tls.py converts); no
  getpeercert (the verify callback keeps the certificate); no session resumption; no
  close_notify on close;
- readinto reads on after data while it can (py/stream.c's loop), so a close_notify right
  behind data is consumed and lost with that read: the end is seen at the TCP end.
- a write mbedtls could not finish leaves a record of it inside mbedtls, and the next write must
  give the same length again: mbedtls answers the length it is given, not what the record held
  (offered the rest and more, it counted the more as sent and dropped it). send() keeps the
  length owed per socket and writes that first, alone.
Hot path: writes and reads are the SSLSocket's own write(buf, off, n) and readinto, each behind
one method call; nothing is allocated per chunk.
"""

import errno

from ulnet.errors import NetError, errno_of

_READ = 1  # poll(2)'s POLLIN, as core/socket.py's READ


class TLS:
    def __init__(self, port):
        self.modify = port.modify
        self.unregister = port.unregister
        self.RECV_SIZE = port.RECV_SIZE
        self._port = port
        self._scratch = port._scratch
        self.plain = {}  # SSLSocket -> the plain socket under it (closed with it)
        self.held = {}  # SSLSocket -> a byte of data the handshake's last read returned
        self.certs = {}  # SSLSocket -> the server's certificate (DER), until core/tls.py asks
        # SSLSocket -> the length of the write mbedtls holds a record of, 0 for none (a key
        # per socket from its wrap on, so updating it allocates nothing)
        self.owed = {}
        self.shaking = None  # the SSLSocket whose handshake step is running
        self.one = bytearray(1)

    # -- the runtime's TLS calls (core/tls.py) -----------------------------------------------

    def tls_context(self, cas, check):
        """A tls.SSLContext: with check, the chain and the name are verified against the DER
        certificates `cas` (a board has no system store); without, mbedtls checks nothing but
        still shows the certificate to the verify callback (pinning, verify=False)."""
        import tls

        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        if check:
            if not cas:
                raise NetError(errno.EINVAL, "no CA certificate to verify with (a board has"
                               " no CA store): give cafile= or fingerprint=")
            ctx.verify_mode = tls.CERT_REQUIRED
            for der in cas:
                ctx.load_verify_locations(der)
        else:
            ctx.verify_mode = tls.CERT_OPTIONAL
        ctx.verify_callback = self.verified
        return ctx

    def wrap_tls(self, raw, handle, context, hostname, session):
        """Wrap a connected socket; the SSLSocket takes its place with the poller.
        `session` is ignored: no resumption here."""
        port = self._port
        tls = context.wrap_socket(raw, server_hostname=hostname, do_handshake_on_connect=False)
        try:
            port.unregister(raw)
            self.plain[tls] = raw
            self.owed[tls] = 0
            port.register(tls, handle, _READ)  # it rolls itself back when it fails
        except BaseException:  # no room (MemoryError): nothing may keep mbedtls' state
            self.plain.pop(tls, None)
            self.owed.pop(tls, None)
            tls.close()  # and the plain socket under it; the caller's close finds it closed
            raise
        return tls

    def handshake(self, raw):
        """One step (a one-byte read): 0 once the certificate is verified, else READ (the
        SSLSocket's poll watches the direction the handshake needs); failures raise NetError."""
        self.shaking = raw
        try:
            got = raw.readinto(self.one)
        except ValueError as exc:  # mbedtls' verify info, a line per flaw
            raise NetError(errno.ECONNABORTED, "certificate verify failed: " + _verify_reason(exc))
        except OSError as exc:
            raise _tls_failure(exc)
        finally:
            self.shaking = None
        if got == 0:
            raise NetError(errno.ECONNRESET, "the server closed the connection")
        if got:
            self.held[raw] = self.one[0]
        return 0 if got or raw in self.certs else _READ

    def peer_cert(self, raw):
        return self.certs.pop(raw, None)

    def tls_session(self, raw):
        return None

    def verified(self, cert, depth):
        """mbedtls' verify callback: keep a copy of the server's certificate (depth 0: `cert`
        is a view of mbedtls' memory, valid only now); 0 = no veto."""
        if depth == 0 and self.shaking is not None:
            self.certs[self.shaking] = bytes(cert)
        return 0

    # -- the I/O of TLS sockets (Socket._port) ----------------------------------------------

    def send(self, raw, data, off, n):
        """raw.write(data, off, n); after a write that took less, the rest of that write
        goes first, alone (its length is what mbedtls needs again). A caller that offers less
        than that broke the rule every TLS library has (send the bytes not taken first): an
        error, never bytes counted twice."""
        owed = self.owed[raw]
        if owed:
            if n < owed:
                raise NetError(errno.EINVAL, "TLS: a send after a short one must offer the"
                               " bytes not taken")
            n = owed
        got = raw.write(data, off, n)
        self.owed[raw] = n if got is None else n - got
        return got

    def recv_into(self, raw, buf, n):
        held = self.held
        if held and raw in held:
            buf[0] = held.pop(raw)
            more = raw.readinto(memoryview(buf)[1:n]) if n > 1 else None
            return 1 + (more or 0)
        return raw.readinto(buf, n)

    def recv(self, raw, n):
        scratch = self._scratch
        got = self.recv_into(raw, scratch, min(n, len(scratch)))
        return None if got is None else bytes(scratch[:got])

    def end(self, raw):
        """TLSSession.end: no half-close here (no shutdown, no close_notify but by closing), and
        none needed: this mbedtls speaks TLS 1.2 only, whose server sends nothing unasked after
        the handshake. The caller closes the socket now."""
        return False

    def close_socket(self, raw):
        raw.close()
        plain = self.plain.pop(raw, None)
        if plain is not None:
            plain.close()  # a failed handshake leaves it open under the SSLSocket
        self.held.pop(raw, None)
        self.certs.pop(raw, None)
        self.owed.pop(raw, None)


def _verify_reason(exc):
    """mbedtls' verify info lines, in the words the desktop port uses."""
    reasons = []
    for line in str(exc.args[0] if exc.args else exc).split("\n"):
        line = line.strip()
        if "Common Name" in line:
            reasons.append("hostname mismatch")  # core/tls.py names the host
        elif "expired" in line:
            reasons.append("certificate has expired")
        elif "trusted CA" in line:
            reasons.append("unknown CA (%s)" % line)
        elif line:
            reasons.append(line)
    return "; ".join(reasons) or "rejected"


def _tls_failure(exc):
    """NetError for an mbedtls failure (OSError(-0x..., 'MBEDTLS_ERR_SSL_...')); a transport
    failure (a positive errno) stays what it is."""
    code = errno_of(exc)
    if code is None or code >= 0:
        return exc
    if code == -0x7280:  # MBEDTLS_ERR_SSL_CONN_EOF
        return NetError(errno.ECONNRESET, "the server closed the connection")
    name = exc.args[1] if len(exc.args) > 1 else "mbedtls error -0x%x" % -code
    return NetError(errno.ECONNABORTED, "TLS: " + name.replace("MBEDTLS_ERR_", "").lower()
                    .replace("_", " "))
