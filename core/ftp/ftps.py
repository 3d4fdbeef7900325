"""FTPS (RFC 4217): FTP over TLS, the steps a login adds. Loaded only when a connect asks for
TLS, so a plain FTP session (and a board that never uses TLS) never holds this code.

Explicit FTPS: the greeting in clear, then `AUTH TLS`; a 234 and the handshake on the control
connection; only then USER and PASS. Implicit FTPS: TLS from the first byte (the port's 990),
greeting included. Both then send `PBSZ 0` and `PROT P` after the login (as curl, FileZilla and
ftplib do; RFC 4217 allows either place), and every data connection speaks TLS (ops.transfer
starts it once the data connection is up, before the transfer command's reply: vsftpd and
pure-ftpd accept the data connection's handshake only after that command).

Rules:
- Never a downgrade: AUTH TLS refused, a handshake or verification that fails, PBSZ or PROT P
  refused: the login fails, and nothing more is sent in clear (USER and PASS never are).
- Bytes the server sends after its 234 but before the handshake (in clear) would be read as
  if they came over TLS (a command injection, as with STARTTLS): the login fails instead.
- Data connections offer the control connection's TLS session for resumption (the one
  TLSSession carries it, core/tls.py), which vsftpd and proftpd demand; MicroPython's tls cannot
  resume, and such a server's refusal (vsftpd: 522) says so.
"""

from ulnet.ftp.ops import FTPError, check


def tls_session(host, mode, cafile=None, fingerprint=None, verify=True, context=None):
    """The TLSSession of a connect(tls=mode, ...): verified against cafile (or the system's CA
    store), pinned by fingerprint, or verify=False; the name checked is the control
    connection's host, also on the data connections (they go to its address). ValueError for
    an unknown mode, TLS settings without TLS, or a setting of the wrong type."""
    for key, value in (("cafile", cafile), ("fingerprint", fingerprint)):
        if value is not None and type(value) is not str:  # a device config's values (spool.py)
            raise ValueError(key + " must be a string")
    if mode != "explicit" and mode != "implicit":
        if mode is None:
            raise ValueError("cafile, fingerprint and verify are TLS settings, not for plain FTP"
                             " (an ftp:// URL, tls=None)")
        raise ValueError("tls must be None, 'explicit' or 'implicit'")
    from ulnet.tls import TLSSession

    return TLSSession(cafile, fingerprint, verify, host, context)


def auth(session, op, tls):
    """Explicit FTPS: AUTH TLS and the handshake on the control connection (RFC 4217 section 4)."""
    reply = yield ("AUTH", "TLS")
    if reply.code != 234:
        raise FTPError(reply.code, "the server refused AUTH TLS (%s): no login without TLS" % reply.text, op.name)
    proto = session._proto
    if len(proto._buf) != proto._start:
        raise FTPError(None, "the server sent bytes in clear after its 234 reply: not logging in", op.name)
    session._conn.start_tls(tls, session._ctl, session.connect_timeout_ms)
    yield (None, None)  # resumed by the handshake's end; its failure fails the login


def protect(session, op, tls):
    """PBSZ 0 and PROT P (RFC 4217 sections 8, 9): every data connection from now on is TLS."""
    for verb, arg in (("PBSZ", "0"), ("PROT", "P")):
        reply = yield (verb, arg)
        if reply.code // 100 != 2:
            raise FTPError(reply.code, "the server refused %s %s (%s): data would go in clear"
                           % (verb, arg, reply.text), op.name)
    session._tls = tls


def refused(session, op, reply):
    """A transfer's final reply 522 (RFC 4217: the data connection's TLS failed): when the
    control connection had no TLS session to offer for resumption, say that this is the likely
    cause (a server like vsftpd demands it; MicroPython's tls cannot resume)."""
    ctl = session._ctl
    if ctl is not None and ctl._port.tls_session(ctl._raw) is None:  # a TLS socket's _port: the port's TLS part
        raise FTPError(522, "%s (the server demands that data connections resume the control"
                       " connection's TLS session, and this client has none to offer: MicroPython"
                       " cannot resume TLS sessions; allow data connections without it, e.g."
                       " vsftpd's require_ssl_reuse=NO)" % reply.text, op.name)
    check(op, reply)
