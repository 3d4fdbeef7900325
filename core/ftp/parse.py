"""Plain functions that read the FTP replies every session needs: PASV/EPSV and SIZE (and the
text decoding all parsers share). listing.py has the rest (listings, FEAT, MDTM, 257 paths,
PORT/EPRT), which only the less common operations load: on a board every function costs heap.

Rules: no I/O and no state; each parser takes the text of one reply (`Reply.text`, or
`Reply.lines` for FEAT) or one listing line, and returns plain values. Text the server got wrong
raises RemoteProtocolError carrying the reply code it came from; arguments the caller got wrong
raise LocalProtocolError. Runs unchanged on CPython and MicroPython: no `re`, no latin-1 codec,
no str.format_map. Text is scanned as bytes or sliced, never indexed or iterated per character:
on MicroPython each such character becomes a new interned string, and interned strings cost heap
that is never freed.
"""

from ulnet.errors import RemoteProtocolError


def decode_text(data):
    """bytes/bytearray -> str: UTF-8, or ASCII with U+FFFD per other byte when it is not UTF-8.
    Control characters (C0 but TAB, DEL, and C1 such as U+009B CSI) become U+FFFD too: server
    text reaches terminals and logs, where an ESC sequence would act."""
    raw = data
    # min() and `in` run in C: a line without a control byte (or a C2 lead byte, which starts
    # the C1 controls in UTF-8) costs no per-byte loop here
    if data and (min(data) < 32 or b"\x7f" in data or b"\xc2" in data):
        data = bytearray()
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if c == 0xC2 and i + 1 < n and 0x80 <= raw[i + 1] < 0xA0:
                i += 1  # C1, two bytes
                c = 127
            if c < 32 and c != 9 or c == 127:
                data.extend(b"\xef\xbf\xbd")
            else:
                data.append(c)
            i += 1
    try:
        return str(data, "utf-8")
    except UnicodeError:
        # RFC 2640 makes UTF-8 the FTP text encoding; MicroPython has neither latin-1 nor
        # errors="replace", so the fallback is spelled out: both runtimes give the same text
        return "".join([chr(c) if 31 < c < 127 or c == 9 else "\ufffd" for c in raw])


def is_digits(text):
    """True for a non-empty run of ASCII digits (str.isdigit also takes "\u00b2", int() not;
    bytes.isdigit is ASCII-only on both runtimes)."""
    return text.encode().isdigit()


def bad_reply(text, code):
    # the message quotes enough of a bad reply to recognise it, never a whole line
    return RemoteProtocolError("bad %s reply %r" % (code or "MLSD", text[:60]), code)


def parse_pasv(text):
    """227 text -> (host, port): "Entering Passive Mode (127,0,0,1,4,1)." -> ("127.0.0.1", 1025).

    RFC 1123 4.1.2.6: the format is not standardised, so scan for the first run of six
    comma-separated numbers, with or without parentheses. A number over 255 or port 0 raises.
    """
    data = text.encode()
    n = len(data)
    i = 0
    while i < n:
        if not 48 <= data[i] <= 57:  # a digit starts a run
            i += 1
            continue
        j = i
        while j < n and (48 <= data[j] <= 57 or data[j] in b", "):
            j += 1
        parts = data[i:j].split(b",")
        if len(parts) >= 6 and parts[5].strip():
            nums = []
            for p in parts[:6]:
                p = p.strip()
                if not p.isdigit() or len(p) > 3 or int(p) > 255:
                    raise bad_reply(text, 227)
                nums.append(int(p))
            port = nums[4] * 256 + nums[5]
            if port == 0:
                raise bad_reply(text, 227)
            return "%d.%d.%d.%d" % (nums[0], nums[1], nums[2], nums[3]), port
        i = j + 1
    raise bad_reply(text, 227)


def parse_epsv(text):
    """229 text -> port, e.g. "Entering Extended Passive Mode (|||6446|)" -> 6446 (RFC 2428)."""
    i = text.find("(")
    d = text[i + 1:i + 2]
    end = text.find(d, i + 4) if d else -1
    digits = text[i + 4:end] if i >= 0 and end > 0 and text[i + 2:i + 4] == d + d else ""
    # the delimiter is any printable ASCII but a digit; the fields before the port are empty
    if d.isdigit() or not "!" <= d <= "~" or not is_digits(digits) or len(digits) > 5:
        raise bad_reply(text, 229)
    if not 0 < int(digits) < 65536:
        raise bad_reply(text, 229)
    return int(digits)


def parse_size(text):
    """213 text of SIZE -> int, e.g. "1048576" -> 1048576 (RFC 3659 section 4)."""
    words = text.split(None, 1)
    if not words or not is_digits(words[0]):
        raise bad_reply(text, 213)
    return int(words[0])
