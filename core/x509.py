"""The names an X.509 certificate (DER) is for, read so that a refused name can say what the
certificate is for instead ("hostname mismatch, certificate is not valid for 10.0.0.5 (it is for
ftp.example)"). core/tls.py loads it only then: a board pays nothing for it otherwise.

Rules:
- It reads, never judges: the runtime's TLS library has verified (or refused) the certificate.
  A certificate it cannot read gives no names (None), never an exception.
- The names come from a stranger: only printable ASCII is kept (anything else reads as "?"), at
  most MAX_NAMES of them, each cut at MAX_NAME characters, so they cannot forge a log line.
"""

# RFC 5280 4.1: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
# serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2],
# [3] extensions } ... }; the fields read here, counted after the version
_SUBJECT = 4
_EXTENSIONS = 0xA3
_SAN = b"\x55\x1d\x11"  # 2.5.29.17, subjectAltName (4.2.1.6)
_CN = b"\x55\x04\x03"  # 2.5.4.3, commonName
_DNS = 0x82  # GeneralName dNSName [2]
_IP = 0x87  # GeneralName iPAddress [7]: 4 or 16 bytes
# a message names a few: a certificate may hold hundreds
MAX_NAMES = 4
MAX_NAME = 64


def _item(der, at):
    """The DER element at `at`: (tag, start of its value, end of its value)."""
    n = der[at + 1]
    start = at + 2
    if n & 0x80:  # long form: the length in the next n & 0x7F bytes
        start += n & 0x7F
        n = int.from_bytes(der[at + 2:start], "big")
    if start + n > len(der):
        raise ValueError("truncated")
    return der[at], start, start + n


def _text(raw):
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in raw[:MAX_NAME])


def _ip(raw):
    if len(raw) == 4:
        return "%d.%d.%d.%d" % (raw[0], raw[1], raw[2], raw[3])
    return ":".join("%x" % (raw[i] << 8 | raw[i + 1]) for i in range(0, len(raw) - 1, 2))


def _san(der, at, end, found):
    """The DNS names and IP addresses of the extensions at der[at:end]."""
    while at < end:
        _, start, stop = _item(der, at)  # Extension ::= SEQUENCE { extnID, critical, extnValue }
        _, o, v = _item(der, start)
        if der[o:v] == _SAN:
            tag, v, ve = _item(der, v)
            if tag == 1:  # critical BOOLEAN
                tag, v, ve = _item(der, ve)
            _, v, ve = _item(der, v)  # the OCTET STRING holds GeneralNames, a SEQUENCE
            while v < ve:
                tag, s, e = _item(der, v)
                if tag == _DNS:
                    found.append(_text(der[s:e]))
                elif tag == _IP:
                    found.append(_ip(der[s:e]))
                v = e
        at = stop


def _cn(der, at, end, found):
    """The common names of the subject at der[at:end] (SEQUENCE OF SET OF {type, value})."""
    while at < end:
        _, s, e = _item(der, at)
        _, s, _ = _item(der, s)
        _, o, v = _item(der, s)
        if der[o:v] == _CN:
            _, v, ve = _item(der, v)
            found.append(_text(der[v:ve]))
        at = e


def names(der):
    """The names the certificate is for: its subjectAltName DNS names and IP addresses, or
    without those its subject's common name; None when it cannot be read."""
    try:
        _, at, _ = _item(der, 0)
        _, at, end = _item(der, at)
        fields = []
        while at < end:
            fields.append(_item(der, at))
            at = fields[-1][2]
        if fields[0][0] == 0xA0:  # [0] version
            fields.pop(0)
        found = []
        for tag, at, end in fields[_SUBJECT + 2:]:
            if tag == _EXTENSIONS:
                _, at, end = _item(der, at)
                _san(der, at, end, found)
        if not found:
            _cn(der, fields[_SUBJECT][1], fields[_SUBJECT][2], found)
    except Exception:  # IndexError, ValueError, TypeError: not a certificate it can read
        return None
    if len(found) > MAX_NAMES:
        found = found[:MAX_NAMES] + ["..."]
    return found or None
