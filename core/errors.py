"""The one error family of ulnet.

Rules: transport failures are NetError (an OSError carrying errno and a message that names the
peer); a protocol machine raises LocalProtocolError for the caller's misuse and
RemoteProtocolError for the peer's garbage. Messages never contain a password: callers pass
host, port and what was attempted, nothing else. Runs unchanged on CPython and MicroPython
(no builtin TimeoutError there, so ours derives from NetError on both).
"""

import errno


def errno_text(code):
    """A short human text for an errno (or getaddrinfo EAI_*) value or an OSError."""
    if isinstance(code, Exception):
        code = errno_of(code)
    if code is None or code < 0:
        name = str(code)
    else:
        name = errno.errorcode.get(code)
        if name is None:
            return "error %s" % code
        if code > 9999:
            # CPython on Windows names socket errors (WSABASEERR, 10000, and up) by their
            # Winsock names (10054: WSAECONNRESET). Told by the number: a "WSA" literal would
            # be one more qstr, heap on a board at import
            name = name[3:]
    # keyed by name, since errno values differ between ports; one string, not a dict: on a
    # board every dict entry and every name costs heap
    texts = (
        "|ECONNREFUSED:connection refused|ECONNRESET:connection reset by peer"
        "|ECONNABORTED:connection aborted|ETIMEDOUT:timed out|EHOSTUNREACH:host unreachable"
        "|ENETUNREACH:network unreachable|EPIPE:broken pipe|ENOTCONN:not connected"
        "|EADDRINUSE:address in use|EACCES:permission denied|ENOMEM:out of memory"
        "|ENOENT:no such file or directory|ENOSPC:no space left on device|EISDIR:is a directory"
        "|-2:name not known|-3:temporary failure in name resolution|-5:no address for name|"
    )
    at = texts.find("|" + name + ":")
    if at < 0:
        return name
    start = at + len(name) + 2
    return texts[start:texts.find("|", start)]


def errno_of(exc):
    """The errno of an OSError on both runtimes, or None.

    MicroPython keeps it in args[0], and its getaddrinfo raises OSError("[addrinfo error -2]").
    """
    code = exc.args[0] if exc.args else None
    if isinstance(code, str) and code.startswith("[addrinfo error "):
        code = int(code[16:-1])
    return code if isinstance(code, int) else None


def endpoint(host, port):
    """host:port, with brackets around an IPv6 address."""
    return ("[%s]:%s" if ":" in str(host) else "%s:%s") % (host, port)


class NetError(OSError):
    """A transport failure: `errno` is the system's code, the message names what and whom.

    Example: NetError(ECONNREFUSED, "connect to 127.0.0.1:9: connection refused").
    """

    def __str__(self):
        return self.args[1]


def net_error(code, action, host, port):
    """NetError for `action` (e.g. "connect to") against host:port, text taken from errno.

    `code` is an errno value or the OSError itself; a failed "resolve" without one is
    EAI_NONAME.
    """
    what = None
    if isinstance(code, Exception):
        args = code.args
        # a port's own words (a TLS failure: its NetError, or mbedtls naming its -0x... code)
        if isinstance(code, NetError) or len(args) > 1 and type(args[0]) is int and args[0] < -99:
            what = args[1]
        code = errno_of(code)
    if code is None and action == "resolve":
        code = -2  # EAI_NONAME: getaddrinfo codes are negative on Linux and the unix port
    return NetError(code, "%s %s: %s" % (action, endpoint(host, port), what or errno_text(code)))


class TimeoutError(NetError):
    """A deadline passed: a connect, a protocol reply, a transfer or run_until."""

    def __init__(self, message):
        super().__init__(errno.ETIMEDOUT, message)


class ProtocolError(Exception):
    """A protocol machine failed; the machine is in its sticky ERROR state afterwards.

    `code` is the reply code (FTP) or option (Telnet) involved, when there is one.
    """

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        self.code = code


class LocalProtocolError(ProtocolError):
    """The caller used the machine wrongly (e.g. a command in a state that forbids it)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (malformed, oversized, hostile)."""
