"""FTP URLs (ftp://, ftpes://, ftps://): what parse_url takes apart, what it refuses, and that
neither its errors nor redact() ever show the password, however the URL is malformed."""

import pytest

from ulnet.ftp.url import parse_url, redact


@pytest.mark.parametrize("url, parts", [
    ("ftp://scanner:s3cret@10.0.0.5:2121/in/scans", ("10.0.0.5", 2121, "scanner", "s3cret", "in/scans", None)),
    ("ftp://10.0.0.5", ("10.0.0.5", 21, "anonymous", "", "", None)),
    ("ftp://u:p%40ss%3Aw%2Frd@host/", ("host", 21, "u", "p@ss:w/rd", "", None)),
    ("ftp://u:p@ss@host/d", ("host", 21, "u", "p@ss", "d", None)),
    ("ftp://u:pw@[::1]:21/x", ("::1", 21, "u", "pw", "x", None)),
    ("ftp://host/dir%40x", ("host", 21, "anonymous", "", "dir@x", None)),
    # FileZilla's and curl's schemes: ftpes explicit FTPS (AUTH TLS on 21), ftps implicit (990)
    ("ftpes://scanner:s3cret@10.0.0.5/scans", ("10.0.0.5", 21, "scanner", "s3cret", "scans", "explicit")),
    ("ftpes://10.0.0.5:2121", ("10.0.0.5", 2121, "anonymous", "", "", "explicit")),
    ("ftps://scanner:s3cret@10.0.0.5/scans", ("10.0.0.5", 990, "scanner", "s3cret", "scans", "implicit")),
    ("ftps://u:p%40ss@[::1]:9990/", ("::1", 9990, "u", "p@ss", "", "implicit")),
    ("ftp://u:%2b%2B%3d@host:65535/", ("host", 65535, "u", "++=", "", None)),
    ("ftp://host:1", ("host", 1, "anonymous", "", "", None)),
])
def test_parse(url, parts):
    assert parse_url(url) == parts


@pytest.mark.parametrize("url, why", [
    ("ftp://scan:se/cret@host/dir", "'@' after the host"),  # would be host "scan", port "se"
    ("ftp://scan:1234/secret@host/dir", "'@' after the host"),  # would be anonymous to scan:1234
    ("ftp://scan:@1/secret@host/dir", "'@' after the host"),  # the path would be "secret@host/dir"
    ("ftp://scan:secret@host:21x/", "bad port"),
    # getaddrinfo wraps 99999 to 34463: the password would go to a port nobody named
    ("ftp://scan:secret@host:99999/", "bad port"), ("ftp://scan:secret@host:65536/", "bad port"),
    ("ftp://scan:secret@host:0/", "bad port"), ("ftp://scan:secret@host:\u0661\u0662/", "bad port"),
    ("ftp://scan:secret@host:/", "bad port"), ("ftp://scan:secret@host:+21/", "bad port"),
    ("ftp://scan:%+1secret@host/", "bad %-escape"), ("ftp://scan:% 1secret@host/", "bad %-escape"),
    ("ftp://scan:secret%1@host/", "bad %-escape"), ("ftp://scan:secret%@host/", "bad %-escape"),
    ("ftp://scan:secret@:21/", "no host"),
    ("ftp://scan:%ZZsecret@host/", "bad %-escape"),
    ("ftp://scan:%FFsecret@host/", "not UTF-8"),
    ("http://scan:secret@host/", "not an ftp://, ftpes:// or ftps:// URL"),
    ("sftp://scan:secret@host/", "not an ftp://"),
    ("ftpes://scan:se/cret@host/dir", "'@' after the host"),
    ("ftps://scan:secret@host:99x/", "bad port"),
    ("FTPS://scan:secret@host/", "not an ftp://"),  # schemes are matched exactly, as before
    ("ftpx", "not an ftp://"),
    ("ftpscan:secret@host/", "not an ftp://"),
])
def test_refused_with_a_reason_and_never_the_password(url, why):
    with pytest.raises(ValueError) as err:
        parse_url(url)
    text = str(err.value) + repr(err.value)
    assert why in text
    assert "secret" not in text and "cret" not in text and "\\xff" not in text
    assert err.value.__context__ is None or err.value.__suppress_context__


@pytest.mark.parametrize("url, shown", [
    ("ftp://scanner:s3cret@host:2121/in", "ftp://scanner:***@host:2121/in"),
    ("ftp://scanner:se/cret@host/in", "ftp://scanner:***@host/in"),
    ("ftp://scanner:p@ss@host/in", "ftp://scanner:***@host/in"),
    ("ftp://host/in", "ftp://host/in"),
    ("ftp://scanner@host/in", "ftp://scanner@host/in"),
    ("sftp://scanner:s3cret@host/in", "sftp://scanner:***@host/in"),
    ("scanner:s3cret@host/in", "host/in"),
    ("ftpes://scanner:s3cret@host/in", "ftpes://scanner:***@host/in"),
    ("ftps://scanner:se/cret@host:990/in", "ftps://scanner:***@host:990/in"),
    ("ftps://host/in", "ftps://host/in"),
])
def test_redact(url, shown):
    assert redact(url) == shown
