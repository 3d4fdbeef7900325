"""Tests of ulnet.ftp.parse: reply-text parsers and PORT/EPRT formatting, table-driven (their
properties over any text are in the fuzz suite, tests/fuzz/test_fuzz_parsers.py)."""

import pytest

from ulnet.errors import LocalProtocolError, RemoteProtocolError
from ulnet.ftp import listing, parse
from ulnet.ftp.listing import (
    format_eprt, format_port, parse_features, parse_mdtm, parse_mlsd_line, parse_nlst_line, parse_path,
)
from ulnet.ftp.parse import decode_text, parse_epsv, parse_pasv, parse_size


@pytest.mark.parametrize("text, expected", [
    ("Entering Passive Mode (127,0,0,1,156,219).", ("127.0.0.1", 156 * 256 + 219)),  # vsftpd
    ("Entering passive mode (127,0,0,1,200,10).", ("127.0.0.1", 200 * 256 + 10)),     # pyftpdlib
    ("Entering Passive Mode (192,168,1,20,4,1)", ("192.168.1.20", 1025)),             # proftpd
    ("Entering Passive Mode 10,0,0,7,255,255", ("10.0.0.7", 65535)),                  # no parens
    ("=10,0,0,7,0,21", ("10.0.0.7", 21)),                                              # RFC 1123
    ("Entering Passive Mode (010,000,000,001,004,001)", ("10.0.0.1", 1025)),          # zeros
    ("Entering Passive Mode ( 127, 0, 0, 1, 4, 1 )", ("127.0.0.1", 1025)),            # spaces
    ("Passive 2 (v4) mode (127,0,0,1,4,1)", ("127.0.0.1", 1025)),                     # digits first
])
def test_parse_pasv(text, expected):
    assert parse_pasv(text) == expected


@pytest.mark.parametrize("text", [
    "Entering Passive Mode (256,0,0,1,4,1)",    # octet out of range
    "Entering Passive Mode (127,0,0,1,4,256)",  # port byte out of range
    "Entering Passive Mode (127,0,0,1,0,0)",    # port 0
    "Entering Passive Mode (127,0,0,1,4)",      # five numbers
    "Entering Passive Mode",                    # none
    "Entering Passive Mode (127,0,0,1,4,-1)",   # sign
    "Entering Passive Mode (1270,0,0,1,4,1)",   # four digits
    "",
])
def test_parse_pasv_rejects(text):
    with pytest.raises(RemoteProtocolError) as info:
        parse_pasv(text)
    assert info.value.code == 227


@pytest.mark.parametrize("text, port", [
    ("Entering Extended Passive Mode (|||40123|)", 40123),   # vsftpd
    ("Entering extended passive mode (|||51210|).", 51210),  # pyftpdlib
    ("Extended Passive mode OK (|||30016|)", 30016),         # pure-ftpd
    ("Entering Extended Passive Mode (!!!1!)", 1),           # any printable delimiter
    ("(|||65535|", 65535),                                   # no closing parenthesis
])
def test_parse_epsv(text, port):
    assert parse_epsv(text) == port


@pytest.mark.parametrize("text", [
    "Entering Extended Passive Mode (|||0|)", "Entering Extended Passive Mode (|||65536|)",
    "Entering Extended Passive Mode (||1|)", "Entering Extended Passive Mode (|1|::1|21|)",
    "Entering Extended Passive Mode (|||x|)", "Entering Extended Passive Mode", "(",
    "Entering Extended Passive Mode (1111)", "(|||123456|)", "(|||12", "(   12 )",
])
def test_parse_epsv_rejects(text):
    with pytest.raises(RemoteProtocolError) as info:
        parse_epsv(text)
    assert info.value.code == 229


def test_format_port_and_eprt():
    assert format_port("127.0.0.1", 1025) == "127,0,0,1,4,1"
    assert format_port("10.0.0.7", 65535) == "10,0,0,7,255,255"
    assert format_eprt("127.0.0.1", 1025) == "|1|127.0.0.1|1025|"
    assert format_eprt("::1", 21) == "|2|::1|21|"
    # the two formats name the same endpoint as the passive parsers read it back
    assert parse_pasv("(" + format_port("192.168.4.9", 50000) + ")") == ("192.168.4.9", 50000)


@pytest.mark.parametrize("host, port", [
    ("127.0.0.1", 0), ("127.0.0.1", 65536), ("127.0.0.1", "21"), ("127.0.0", 21),
    ("127.0.0.256", 21), ("::1", 21), ("localhost", 21), ("1.2.3.", 21),
])
def test_format_port_rejects(host, port):
    with pytest.raises(LocalProtocolError):
        format_port(host, port)


@pytest.mark.parametrize("host, port", [("a|b", 21), ("", 21), ("::1", 0), ("1.2.3.999", 21)])
def test_format_eprt_rejects(host, port):
    with pytest.raises(LocalProtocolError):
        format_eprt(host, port)


@pytest.mark.parametrize("text, path", [
    ('"/home/scanner" is the current directory', "/home/scanner"),     # vsftpd PWD
    ('"/scans" directory created.', "/scans"),                          # pyftpdlib MKD
    ('"/scans/2024" - Directory successfully created', "/scans/2024"),  # proftpd MKD
    ('"/a""b" created', '/a"b'),                                        # doubled quote
    ('"""q""" ok', '"q"'),
    ('"/with space/x" ok', "/with space/x"),
    ('MKD ok "/x"', "/x"),
    ('""', ""),
])
def test_parse_path(text, path):
    assert parse_path(text) == path


@pytest.mark.parametrize("text", ["/home/scanner is current", '"/unterminated', ""])
def test_parse_path_rejects(text):
    with pytest.raises(RemoteProtocolError) as info:
        parse_path(text)
    assert info.value.code == 257


def test_parse_size():
    assert parse_size("1048576") == 1048576
    assert parse_size("0") == 0
    assert parse_size("12 bytes") == 12
    for bad in ("", "x12", "-1", "1.5"):
        with pytest.raises(RemoteProtocolError) as info:
            parse_size(bad)
        assert info.value.code == 213


@pytest.mark.parametrize("text, stamp", [
    ("20240131235959", (2024, 1, 31, 23, 59, 59)),
    ("19991231000000.123", (1999, 12, 31, 0, 0, 0)),
    ("20161231235960", (2016, 12, 31, 23, 59, 60)),  # a leap second is allowed
])
def test_parse_mdtm(text, stamp):
    assert parse_mdtm(text) == stamp


@pytest.mark.parametrize("text", [
    "191000101000000",  # the old Y2K bug: 19100 for 2000
    "20241301000000", "20240100000000", "20240132000000", "20240101240000",
    "20240101006000", "20240101000061", "2024010100000", "2024-01-01", "",
])
def test_parse_mdtm_rejects(text):
    with pytest.raises(RemoteProtocolError):
        parse_mdtm(text)


def test_parse_features():
    vsftpd = ["Features:", " EPRT", " EPSV", " MDTM", " PASV", " REST STREAM", " SIZE",
              " TVFS", " UTF8", "End"]
    assert parse_features(vsftpd) == {
        "EPRT": "", "EPSV": "", "MDTM": "", "PASV": "", "REST": "STREAM", "SIZE": "",
        "TVFS": "", "UTF8": ""}
    pyftpdlib = ["Features supported:", " EPRT", " mlst type*;perm*;size*;modify*;", "End FEAT."]
    assert parse_features(pyftpdlib) == {"EPRT": "", "MLST": "type*;perm*;size*;modify*;"}
    assert parse_features(["No features"]) == {}
    assert parse_features(["Features:", "End"]) == {}
    # a server that prefixes every line with the code, and repeated names
    assert parse_features(["Features:", "211-MDTM", " AUTH TLS", " AUTH SSL", "  ", "End"]) == {
        "MDTM": "", "AUTH": "TLS SSL"}


def test_parse_mlsd_line():
    facts, name = parse_mlsd_line(
        "Type=file;Size=12;modify=20240101000000;UNIX.mode=0644; scan 1.txt\r\n")
    assert name == "scan 1.txt"
    assert facts == {"type": "file", "size": "12", "modify": "20240101000000", "unix.mode": "0644"}
    assert parse_mlsd_line(b"type=cdir; .") == ({"type": "cdir"}, ".")
    assert parse_mlsd_line(" name;with;semicolons") == ({}, "name;with;semicolons")
    assert parse_mlsd_line("type=file;  lead space") == ({"type": "file"}, " lead space")
    assert parse_mlsd_line(b"type=file; caf\xc3\xa9\n") == ({"type": "file"}, "caf\xe9")


@pytest.mark.parametrize("line", ["type=file;size=1;", "type=file; ", "nofacts;x y", "=v; n", ""])
def test_parse_mlsd_line_rejects(line):
    with pytest.raises(RemoteProtocolError):
        parse_mlsd_line(line)


def test_parse_nlst_line():
    assert parse_nlst_line("scan1.txt\r\n") == "scan1.txt"
    assert parse_nlst_line(b"dir/scan 2.txt\n") == "dir/scan 2.txt"
    for skipped in (".", "..", "\r\n", "", "dir/.", "dir/.."):
        assert parse_nlst_line(skipped) is None
    assert parse_nlst_line("..hidden") == "..hidden"


def test_decode_text():
    assert decode_text(b"caf\xc3\xa9") == "caf\xe9"
    # not UTF-8: ASCII kept, every other byte replaced, on both runtimes alike
    assert decode_text(b"caf\xe9 ok") == "caf" + "\ufffd" + " ok"
    assert decode_text(bytearray(b"\xff\xfe")) == "\ufffd" * 2


def test_parsers_under_micropython(micropython):
    """The same parser calls give the same values under MicroPython."""
    calls = [
        ("parse_pasv", "Entering Passive Mode (127,0,0,1,156,219)."),
        ("parse_pasv", "Entering Passive Mode 10,0,0,7,255,255"),
        ("parse_epsv", "Entering Extended Passive Mode (|||40123|)"),
        ("parse_path", '"/a""b" created'),
        ("parse_size", "1048576"),
        ("parse_mdtm", "20240131235959.5"),
        ("parse_features", ["Features:", " REST STREAM", " UTF8", "End"]),
        ("parse_mlsd_line", "Type=file;Size=12; scan 1.txt\r\n"),
        ("parse_nlst_line", "..\r\n"),
        ("decode_text", b"caf\xe9 \xc3\xa9"),
        ("format_port", ("127.0.0.1", 1025)),
        ("format_eprt", ("::1", 21)),
        ("parse_pasv", "(300,0,0,1,4,1)"),
        ("parse_mdtm", "20241301000000"),
    ]
    code = "import json\nfrom ulnet.ftp import listing, parse\nfrom ulnet.errors import ProtocolError\n"
    code += "for name, arg in %r:\n" % (calls,)
    code += (
        "    try:\n"
        "        fn = getattr(parse, name, None) or getattr(listing, name)\n"
        "        value = fn(*arg) if name.startswith('format') else fn(arg)\n"
        "    except ProtocolError as exc:\n"
        "        value = ['error', type(exc).__name__, exc.code]\n"
        "    if isinstance(value, tuple) and value and isinstance(value[0], dict):\n"
        "        value = list(value)\n"
        "    print(json.dumps(value))\n"
    )
    out = micropython(code).splitlines()
    import json
    expected = []
    for name, arg in calls:
        fn = getattr(parse, name, None) or getattr(listing, name)
        try:
            value = fn(*arg) if name.startswith("format") else fn(arg)
        except RemoteProtocolError as exc:
            value = ["error", type(exc).__name__, exc.code]
        expected.append(json.loads(json.dumps(value)))
    assert [json.loads(line) for line in out] == expected
