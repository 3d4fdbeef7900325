"""The one error family of ulnet.

Rules: transport failures are NetError (an OSError carrying errno and a message that names the
peer); a protocol machine raises LocalProtocolError for the caller's misuse and
RemoteProtocolError for the peer's garbage. Messages never contain a password: callers pass
host, port and what was attempted, nothing else. Runs unchanged on CPython and MicroPython
(no builtin TimeoutError there, so ours derives from NetError on both).
"""

import errno

# errno values differ between ports, so texts are keyed by name and looked up at runtime.
_TEXT = {
    "ECONNREFUSED": "connection refused",
    "ECONNRESET": "connection reset by peer",
    "ECONNABORTED": "connection aborted",
    "ETIMEDOUT": "timed out",
    "EHOSTUNREACH": "host unreachable",
    "ENETUNREACH": "network unreachable",
    "EPIPE": "broken pipe",
    "ENOTCONN": "not connected",
    "EADDRINUSE": "address in use",
    "EADDRNOTAVAIL": "address not available",
    "EACCES": "permission denied",
    "ENOMEM": "out of memory",
    "ENOBUFS": "out of buffers",
}

# getaddrinfo failures carry no errno; EAI_NONAME is -2 on Linux and on the unix port.
EAI_NONAME = -2


def errno_text(code):
    """A short human text for an errno value, found by its name."""
    if code == EAI_NONAME:
        return "name not known"
    name = errno.errorcode.get(code) if code is not None else None
    if name is None:
        return "error %s" % code
    return _TEXT.get(name, name)


def errno_of(exc):
    """The errno of an OSError, on both runtimes (MicroPython keeps it in args[0])."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    return code


def endpoint(host, port):
    """host:port, with brackets around an IPv6 address."""
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


class NetError(OSError):
    """A transport failure: `errno` is the system's code, the message names what and whom.

    Example: NetError(ECONNREFUSED, "connect to 127.0.0.1:9: connection refused").
    """

    def __init__(self, code, message):
        super().__init__(code, message)
        self.message = message

    def __str__(self):
        return self.message


def net_error(code, action, host, port):
    """NetError for `action` (e.g. "connect to") against host:port, text taken from errno."""
    return NetError(code, "%s %s: %s" % (action, endpoint(host, port), errno_text(code)))


class TimeoutError(NetError):
    """A deadline passed: a connect, a protocol reply, a transfer or run_until."""

    def __init__(self, message):
        super().__init__(errno.ETIMEDOUT, message)


class ProtocolError(Exception):
    """A protocol machine failed; the machine is in its sticky ERROR state afterwards."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        # the reply code (FTP) or option (Telnet) involved, when there is one
        self.code = code

    def __str__(self):
        return self.message


class LocalProtocolError(ProtocolError):
    """The caller used the machine wrongly (e.g. a command in a state that forbids it)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (malformed, oversized, hostile)."""
