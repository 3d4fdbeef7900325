"""Plain functions that read the text of FTP replies and data-channel listings, and format
PORT/EPRT arguments.

Rules: no I/O and no state; each parser takes the text of one reply (`Reply.text`, or
`Reply.lines` for FEAT) or one listing line, and returns plain values. Text the server got wrong
raises RemoteProtocolError carrying the reply code it came from; arguments the caller got wrong
raise LocalProtocolError. Runs unchanged on CPython and MicroPython: no `re`, no latin-1 codec,
no str.format_map.
"""

from ulnet.errors import LocalProtocolError, RemoteProtocolError

# U+FFFD stands in for every non-ASCII byte of a line that is not valid UTF-8 (RFC 2640 makes
# UTF-8 the FTP text encoding). MicroPython has neither latin-1 nor errors="replace", so the
# fallback is spelled out and both runtimes give the same text for the same bytes.
REPLACEMENT = "\ufffd"

# How much of a bad reply an error message quotes: enough to recognise it, never a whole line.
_QUOTE = 60

_DIGITS = "0123456789"


def decode_text(data):
    """bytes/bytearray -> str: UTF-8, or ASCII with U+FFFD per other byte when it is not UTF-8."""
    try:
        return str(data, "utf-8")
    except UnicodeError:
        return "".join([chr(c) if c < 128 else REPLACEMENT for c in data])


def _text(line):
    """A listing line as str without its line end (bytes are decoded)."""
    if not isinstance(line, str):
        line = decode_text(line)
    while line[-1:] in ("\n", "\r"):
        line = line[:-1]
    return line


def _digits(text):
    """True for a non-empty run of ASCII digits (str.isdigit also takes "\u00b2", int() not)."""
    for c in text:
        if c not in _DIGITS:
            return False
    return text != ""


def _bad(text, code):
    return RemoteProtocolError("bad %s reply %r" % (code or "MLSD", text[:_QUOTE]), code)


def parse_pasv(text):
    """227 text -> (host, port): "Entering Passive Mode (127,0,0,1,4,1)." -> ("127.0.0.1", 1025).

    RFC 1123 4.1.2.6: the format is not standardised, so scan for the first run of six
    comma-separated numbers, with or without parentheses. A number over 255 or port 0 raises.
    """
    n = len(text)
    i = 0
    while i < n:
        if text[i] not in _DIGITS:
            i += 1
            continue
        j = i
        while j < n and (text[j] in _DIGITS or text[j] in ", "):
            j += 1
        parts = text[i:j].split(",")
        if len(parts) >= 6 and parts[5].strip():
            nums = []
            for p in parts[:6]:
                p = p.strip()
                if not _digits(p) or len(p) > 3 or int(p) > 255:
                    raise _bad(text, 227)
                nums.append(int(p))
            port = nums[4] * 256 + nums[5]
            if port == 0:
                raise _bad(text, 227)
            return "%d.%d.%d.%d" % (nums[0], nums[1], nums[2], nums[3]), port
        i = j + 1
    raise _bad(text, 227)


def parse_epsv(text):
    """229 text -> port, e.g. "Entering Extended Passive Mode (|||6446|)" -> 6446 (RFC 2428)."""
    i = text.find("(")
    d = text[i + 1:i + 2]
    end = text.find(d, i + 4) if d else -1
    digits = text[i + 4:end] if i >= 0 and end > 0 and text[i + 2:i + 4] == d + d else ""
    # the delimiter is any printable ASCII but a digit; the fields before the port are empty
    if d in _DIGITS or not "!" <= d <= "~" or not _digits(digits) or len(digits) > 5:
        raise _bad(text, 229)
    if not 0 < int(digits) < 65536:
        raise _bad(text, 229)
    return int(digits)


def format_port(host, port):
    """The PORT argument for an IPv4 host and a port: ("127.0.0.1", 1025) -> "127,0,0,1,4,1"."""
    parts = host.split(".")
    ok = isinstance(port, int) and 0 < port < 65536 and len(parts) == 4
    for p in parts:
        ok = ok and _digits(p) and int(p) < 256
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
        raise _bad(text, 257)
    out = []
    i += 1
    while True:
        j = text.find('"', i)
        if j < 0:
            raise _bad(text, 257)
        out.append(text[i:j])
        if text[j + 1:j + 2] != '"':
            return "".join(out) if len(out) > 1 else out[0]
        out.append('"')
        i = j + 2


def parse_size(text):
    """213 text of SIZE -> int, e.g. "1048576" -> 1048576 (RFC 3659 section 4)."""
    words = text.split(None, 1)
    if not words or not _digits(words[0]):
        raise _bad(text, 213)
    return int(words[0])


# (first digit, last digit, lowest, highest) of each field of an RFC 3659 time-val, UTC
_MDTM_FIELDS = ((0, 4, 0, 9999), (4, 6, 1, 12), (6, 8, 1, 31),
                (8, 10, 0, 23), (10, 12, 0, 59), (12, 14, 0, 60))


def parse_mdtm(text):
    """213 text of MDTM -> (year, month, day, hour, minute, second) in UTC (RFC 3659 section 3).

    "20240131235960.123" -> (2024, 1, 31, 23, 59, 60); fractions are dropped.
    """
    words = text.split(None, 1)
    stamp = words[0].split(".")[0] if words else ""
    if len(stamp) != 14 or not _digits(stamp):
        raise _bad(text, 213)
    out = []
    for a, b, low, high in _MDTM_FIELDS:
        value = int(stamp[a:b])
        if not low <= value <= high:
            raise _bad(text, 213)
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
        raise _bad(line, None)
    facts = {}
    for fact in line[:i].split(";"):
        if not fact:
            continue
        eq = fact.find("=")
        if eq <= 0:
            raise _bad(line, None)
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

