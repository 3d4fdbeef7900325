"""FTP URLs: `ftp://user:password@host:port/dir`, parsed without urllib (MicroPython has none).

Schemes, as FileZilla and curl read them: `ftp://` plain FTP (port 21), `ftpes://` explicit FTPS,
required (AUTH TLS on port 21; never falls back to plain), `ftps://` implicit FTPS (TLS from the
first byte, port 990). parse_url names the mode: None, "explicit" or "implicit".

Rules: user and password may be %-encoded (an "@", ":" or "/" in a password is %40 / %3A /
%2F); an IPv6 host is written in brackets; no user means anonymous. An "@" after the host part
is refused rather than guessed at: `ftp://user:pa/ss@host` is a password with an unescaped "/",
never a login as anonymous to host "user", and in `ftp://u:@h/pw@x` the path would hold a piece
of the password (an "@" in a path is written %40). `redact(url)` is the only form of a URL that may be
printed or logged: the password never appears anywhere else, even in a malformed URL.
"""

_HEX = b"0123456789abcdefABCDEF"


def _unquote(text):
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        if raw[i] == 37:  # "%XX"
            a, b = raw[i + 1:i + 2], raw[i + 2:i + 3]
            # two hex digits (int() alone takes "+1" and " 1" too); the message never quotes
            # them: they may be a piece of the password
            if not a or not b or a not in _HEX or b not in _HEX:
                raise ValueError("bad %-escape in an FTP URL")
            out.append(int(a + b, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode()
    except ValueError:  # UnicodeError: its message would quote the bytes
        raise ValueError("bad %-escape in an FTP URL (not UTF-8)") from None


def parse_url(url):
    """-> (host, port, user, password, path, tls) with tls None, "explicit" or "implicit";
    raises ValueError naming what is wrong (never quoting the password)."""
    skip = url.find("://") + 3
    # "ftp" plain, "ftpes" explicit FTPS (AUTH TLS on 21), "ftps" implicit (TLS on 990)
    scheme = url[:skip - 3] if skip > 2 else ""
    if scheme != "ftp" and scheme != "ftpes" and scheme != "ftps":
        raise ValueError("not an ftp://, ftpes:// or ftps:// URL: %s" % redact(url))
    tls = "implicit" if scheme == "ftps" else "explicit" if scheme == "ftpes" else None
    port = 990 if tls == "implicit" else 21
    rest = url[skip:]
    slash = rest.find("/")
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1:])
    if "@" in path:  # also after a netloc with its own "@": the path would hold the password's tail
        raise ValueError("'@' after the host in %s: write a '/' in the user or password as %%2F, "
                         "an '@' in the path as %%40" % redact(url))
    user, password = "anonymous", ""
    at = netloc.rfind("@")
    if at >= 0:
        creds, netloc = netloc[:at], netloc[at + 1:]
        colon = creds.find(":")
        user = _unquote(creds if colon < 0 else creds[:colon])
        password = "" if colon < 0 else _unquote(creds[colon + 1:])
    if netloc.startswith("["):
        end = netloc.find("]")
        host, tail = netloc[1:end], netloc[end + 1:]
    else:
        colon = netloc.rfind(":")
        host, tail = (netloc, "") if colon < 0 else (netloc[:colon], netloc[colon:])
    if tail:
        # ASCII digits (str.isdigit takes "\u0661\u0662" too), 1 to 65535: getaddrinfo would wrap
        # 99999 to 34463 and send the password to a port the user never named
        digits = tail[1:].encode()
        if not tail.startswith(":") or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise ValueError("bad port in %s (1-65535)" % redact(url))
        port = int(digits)
    if not host:
        raise ValueError("no host in %s" % redact(url))
    return host, port, user, password, _unquote(path), tls


def redact(url):
    """The URL with its password replaced by ***. Everything up to the last "@" counts as the
    credentials, so a password with an unescaped "/" is hidden too (an "@" in a path hides a
    little of the path: the safe side)."""
    skip = url.find("://") + 3
    if skip < 3:
        return url.split("@")[-1]
    rest = url[skip:]
    at = rest.rfind("@")
    if at < 0:
        return url
    creds = rest[:at]
    colon = creds.find(":")
    if colon >= 0:
        creds = creds[:colon] + ":***"
    return url[:skip] + creds + rest[at:]
