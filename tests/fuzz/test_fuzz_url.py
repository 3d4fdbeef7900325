"""Fuzz: ftp:// URLs and their redaction (core/ftp/url.py).

Properties: a URL made of any user, password and path (%-encoded as RFC 3986 asks), any host
and port comes back exactly from parse_url; any text gives a parsed URL of the documented shape
or a ValueError (never another exception); and neither an error nor redact() ever shows the
password, however the URL around it is malformed.
"""

from urllib.parse import quote

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from ulnet.ftp.url import parse_url, redact

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16)
HOSTS = st.one_of(st.sampled_from(["host", "ftp.example.com", "a-b.c9", "x"]),
                  st.tuples(*[st.integers(0, 255)] * 4).map(lambda o: "%d.%d.%d.%d" % o),
                  st.sampled_from(["::1", "fe80::1", "2001:db8::7"]))
PATHS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


SCHEMES = {"ftp://": (None, 21), "ftpes://": ("explicit", 21), "ftps://": ("implicit", 990)}


@fuzz(500)
@given(st.sampled_from(sorted(SCHEMES)), NAMES, NAMES, HOSTS, st.one_of(st.none(), st.integers(1, 65535)), PATHS)
def test_a_well_made_url_comes_back_exactly(scheme, user, password, host, port, path):
    netloc = "[%s]" % host if ":" in host else host
    url = "%s%s:%s@%s%s/%s" % (scheme, quote(user, safe=""), quote(password, safe=""), netloc,
                               "" if port is None else ":%d" % port, quote(path, safe="/"))
    tls, default = SCHEMES[scheme]
    assert parse_url(url) == (host, default if port is None else port, user, password, path, tls)
    assert redact(url) == "%s%s:***@%s" % (scheme, quote(user, safe=""), url.rsplit("@", 1)[1])


# a password stand-in no URL part can make up by chance: its core must never show
CORE = st.text("abcdefghijklmnopqrstuvwxyz", min_size=8, max_size=8).map(lambda t: "K7" + t)
JUNK = st.text(st.sampled_from("ab:@/%[]?#.\u0661 1\x00\r\n"), max_size=12)


@fuzz(500)
@given(st.sampled_from(["ftp://", "ftpes://", "ftps://", "ftp:/", "sftp://", "FTP://", ""]), JUNK, JUNK, CORE, JUNK, JUNK)
def test_no_error_and_no_redacted_form_ever_shows_the_password(scheme, user, before, core, after, rest):
    password = before + core + after
    for url in (scheme + user + ":" + password + "@" + rest, scheme + user + ":" + quote(password, safe="") + "@" + rest):
        try:
            host, port, _, _, path, _ = parse_url(url)
        except ValueError as exc:
            text = str(exc) + repr(exc)
            assert core not in text
            assert exc.__context__ is None or exc.__suppress_context__  # no chained error quoting it
        else:
            assert host and 0 < port < 65536 and core not in host + path
        assert core not in redact(url)


@fuzz(1000)
@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_value_error(text):
    for url in (text, "ftp://" + text, "ftps://" + text):
        try:
            host, port, user, password, path, _ = parse_url(url)
        except ValueError:
            continue
        assert host and 0 < port < 65536 and type(user) is str and type(password) is str
