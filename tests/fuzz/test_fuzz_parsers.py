"""Fuzz: the reply and listing parsers (core/ftp/parse.py, listing.py).

Properties: whatever text a server writes, each parser returns a value of its documented shape
and range or raises RemoteProtocolError carrying the reply code it parses (never another
exception); what a well-formed reply carries comes back exactly (round trips); decoded server
text never holds a control character; PORT/EPRT arguments are refused with LocalProtocolError or
read back as what was given.
"""

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from ulnet.errors import LocalProtocolError, RemoteProtocolError
from ulnet.ftp.listing import (
    format_eprt, format_port, parse_features, parse_mdtm, parse_mlsd_line, parse_nlst_line, parse_path,
)
from ulnet.ftp.parse import decode_text, parse_epsv, parse_pasv, parse_size

# reply texts: arbitrary, and made of the pieces the parsers look for
PIECES = ["(", ")", ",", "|", " ", "\"", "\"\"", ";", "=", ".", "-", "0", "1", "9", "255", "256", "65535",
          "65536", "20240131235960", "\r", "\n", "\x1b", "\u00e9", "\u0661"]
TEXT = st.one_of(st.text(max_size=60),
                 st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=30).map("".join))


def refused(fn, arg, code):
    """fn(arg), or None when it raised RemoteProtocolError with code (anything else raises)."""
    try:
        return fn(arg)
    except RemoteProtocolError as exc:
        assert exc.code == code, (fn.__name__, arg, exc.code)
        return None


def is_control(c):
    return (ord(c) < 32 and c != "\t") or 127 <= ord(c) < 160


@fuzz(500)
@given(TEXT)
def test_each_parser_returns_its_shape_or_raises_a_remote_error(text):
    pasv = refused(parse_pasv, text, 227)
    if pasv is not None:
        host, port = pasv
        octets = host.split(".")
        assert len(octets) == 4 and all(o.isdigit() and int(o) < 256 and str(int(o)) == o for o in octets)
        assert 0 < port < 65536
    epsv = refused(parse_epsv, text, 229)
    assert epsv is None or 0 < epsv < 65536
    size = refused(parse_size, text, 213)
    assert size is None or (type(size) is int and size >= 0)
    mdtm = refused(parse_mdtm, text, 213)
    if mdtm is not None:
        year, month, day, hour, minute, second = mdtm
        assert 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60
    path = refused(parse_path, text, 257)
    assert path is None or (type(path) is str and path.replace('"', '""') in text)
    mlsd = refused(parse_mlsd_line, text, None)
    if mlsd is not None:
        facts, name = mlsd
        assert name and all(key == key.lower() and "=" not in key and ";" not in key for key in facts)
    name = parse_nlst_line(text)
    assert name is None or (name and name not in (".", "..") and not name.endswith(("\r", "\n")))
    features = parse_features(text.split("\n"))
    assert all(key == key.upper() and key and not any(c.isspace() for c in key) for key in features)


HOSTS = st.tuples(*[st.integers(0, 255)] * 4).map(lambda o: "%d.%d.%d.%d" % o)
PORTS = st.integers(1, 65535)
NO_DIGIT_END = st.text(max_size=12).filter(lambda t: not t[-1:].isdigit() and not t[-1:] == ",")


@fuzz(500)
@given(HOSTS, PORTS, NO_DIGIT_END, st.sampled_from(["(%s)", "%s", "( %s )", "=%s."]))
def test_what_a_good_reply_carries_comes_back(host, port, prefix, frame):
    quad = host.replace(".", ",") + ",%d,%d" % divmod(port, 256)
    if not any(c.isdigit() for c in prefix):  # a number in the text before would be read first
        assert parse_pasv("Entering Passive Mode " + prefix + frame % quad) == (host, port)
    assert parse_epsv("Entering Extended Passive Mode (|||%d|)" % port) == port
    assert parse_size("%d" % (port * 99991)) == port * 99991
    assert parse_pasv("(" + format_port(host, port) + ")") == (host, port)


@fuzz(500)
@given(st.text(max_size=40), st.text(max_size=20).filter(lambda t: t[:1] != '"'))  # '""' is a quote
def test_a_quoted_path_comes_back_exactly(path, tail):
    assert parse_path('"%s"%s' % (path.replace('"', '""'), tail)) == path


@fuzz(300)
@given(st.tuples(st.integers(0, 9999), st.integers(1, 12), st.integers(1, 31), st.integers(0, 23),
                 st.integers(0, 59), st.integers(0, 60)), st.sampled_from(["", ".5", ".123456"]))
def test_a_time_val_comes_back(stamp, fraction):
    assert parse_mdtm("%04d%02d%02d%02d%02d%02d%s" % (stamp + (fraction,))) == stamp


@fuzz(1000)
@given(st.binary(max_size=80))
def test_decoded_server_text_never_holds_a_control_character(data):
    text = decode_text(data)
    assert not any(is_control(c) for c in text)
    try:
        plain = data.decode("utf-8")
    except UnicodeDecodeError:  # one character per byte, ASCII or U+FFFD
        assert len(text) == len(data) and all(c == "\ufffd" or 32 <= ord(c) < 127 or c == "\t" for c in text)
    else:  # as decoded, each control character one U+FFFD
        assert text == "".join("\ufffd" if is_control(c) else c for c in plain)


@fuzz(500)
@given(st.one_of(HOSTS, st.text(max_size=20)), st.one_of(PORTS, st.integers(-5, 70000), st.none()))
def test_a_port_argument_is_refused_or_reads_back(host, port):
    try:
        text = format_port(host, port)
    except LocalProtocolError:
        text = None
    if text is not None:
        assert parse_pasv("(" + text + ")") == (".".join(str(int(p)) for p in host.split(".")), port)
    try:
        text = format_eprt(host, port)
    except LocalProtocolError:
        return
    proto, address, number = text.strip("|").split("|")
    assert (address, int(number)) == (host, port) and proto in ("1", "2")
