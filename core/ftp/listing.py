"""Plain functions for the less common FTP operations: listing lines (MLSD, NLST), FEAT, MDTM,
257 paths, and PORT/EPRT arguments (active mode).

Rules: as parse.py (no I/O, no state; the server's garbage raises RemoteProtocolError with the
reply code, the caller's raises LocalProtocolError). Loaded only when one of those operations
runs, so an uploading board never pays for it.
"""

from ulnet.errors import LocalProtocolError
from ulnet.ftp.parse import bad_reply, is_digits, decode_text


def _text(line):
    """A listing line as str without its line end (bytes are decoded, after the line end goes:
    decode_text turns a CR into U+FFFD)."""
    if not isinstance(line, str):
        line = decode_text(line.rstrip(b"\r\n"))
    while line[-1:] in ("\n", "\r"):
        line = line[:-1]
    return line


def format_port(host, port):
    """The PORT argument for an IPv4 host and a port: ("127.0.0.1", 1025) -> "127,0,0,1,4,1"."""
    parts = host.split(".")
    ok = isinstance(port, int) and 0 < port < 65536 and len(parts) == 4
    for p in parts:
        ok = ok and is_digits(p) and int(p) < 256
    if not ok:
        raise LocalProtocolError("bad PORT address %r" % ((host, port),))
    return "%s,%d,%d" % (",".join([str(int(p)) for p in parts]), port >> 8, port & 255)


def format_eprt(host, port):
    """The EPRT argument (RFC 2428): ("::1", 1025) -> "|2|::1|1025|", IPv4 gives "|1|...|"."""
    if ":" not in host:
        format_port(host, port)  # validates the dotted quad and the port
        return "|1|%s|%d|" % (host, port)
    if "|" in host or " " in host or not isinstance(port, int) or not 0 < port < 65536:
        raise LocalProtocolError("bad EPRT address %r" % ((host, port),))
    return "|2|%s|%d|" % (host, port)


def parse_path(text):
    """257 text -> path: the first quoted string; a doubled quote inside it stands for one
    quote (RFC 959 Appendix II): '"/scans/a""b" created' -> '/scans/a"b'.
    """
    i = text.find('"')
    if i < 0:
        raise bad_reply(text, 257)
    out = []
    i += 1
    while True:
        j = text.find('"', i)
        if j < 0:
            raise bad_reply(text, 257)
        out.append(text[i:j])
        if text[j + 1:j + 2] != '"':
            return "".join(out) if len(out) > 1 else out[0]
        out.append('"')
        i = j + 2


# (first digit, last digit, lowest, highest) of each field of an RFC 3659 time-val, UTC
_MDTM_FIELDS = ((0, 4, 0, 9999), (4, 6, 1, 12), (6, 8, 1, 31),
                (8, 10, 0, 23), (10, 12, 0, 59), (12, 14, 0, 60))


def parse_mdtm(text):
    """213 text of MDTM -> (year, month, day, hour, minute, second) in UTC (RFC 3659 section 3).

    "20240131235960.123" -> (2024, 1, 31, 23, 59, 60); fractions are dropped.
    """
    words = text.split(None, 1)
    stamp = words[0].split(".")[0] if words else ""
    if len(stamp) != 14 or not is_digits(stamp):
        raise bad_reply(text, 213)
    out = []
    for a, b, low, high in _MDTM_FIELDS:
        value = int(stamp[a:b])
        if not low <= value <= high:
            raise bad_reply(text, 213)
        out.append(value)
    return tuple(out)


def parse_features(lines):
    """FEAT reply lines (`Reply.lines`) -> {"NAME": "params"}, names upper-case (RFC 2389).

    The first and last lines are the reply's frame ("Features:", "End"); a one-line reply
    ("211 no features") gives {}. A repeated name joins its parameters with a space.
    """
    features = {}
    for line in lines[1:-1]:
        if line[:4] == "211-":  # some servers prefix every line with the code
            line = line[4:]
        words = line.strip().split(None, 1)
        if not words:
            continue
        name = words[0].upper()
        params = words[1] if len(words) > 1 else ""
        if name in features and params:
            params = (features[name] + " " + params).strip()
        features[name] = params
    return features


def parse_mlsd_line(line):
    """One MLSD listing line -> (facts, name); fact names lower-case (RFC 3659 section 7).

    "type=file;size=12;modify=20240101000000; scan 1.txt" ->
    ({"type": "file", "size": "12", "modify": "20240101000000"}, "scan 1.txt").
    """
    line = _text(line)
    i = line.find(" ")
    if i < 0 or i == len(line) - 1:
        raise bad_reply(line, None)
    facts = {}
    for fact in line[:i].split(";"):
        if not fact:
            continue
        eq = fact.find("=")
        if eq <= 0:
            raise bad_reply(line, None)
        facts[fact[:eq].lower()] = fact[eq + 1:]
    return facts, line[i + 1:]


def parse_nlst_line(line):
    """One NLST listing line -> name, or None for a blank line or a "." / ".." entry.

    pure-ftpd lists "." and ".." in NLST; other servers do not, so they are dropped here.
    """
    name = _text(line)
    if name in ("", ".", "..") or name[-2:] == "/." or name[-3:] == "/..":
        return None
    return name
