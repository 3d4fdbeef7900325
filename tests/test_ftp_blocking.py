"""The blocking facade ulnet.FTP against real servers (pyftpdlib and vsftpd) on loopback."""

import logging
import os

import pytest

import ulnet
from upy import open_fds
from servers.ftp import PyFTPD, VSFTPD, free_port
from test_ftp_client import on_server, server, write  # noqa: F401  (server: the fixture)

# ":", "@" and "%" are what breaks naive URL handling; %-encoded in the URL as the RFC asks
PASSWORD = "Pa:ss@w%rd"
QUOTED = "Pa%3Ass%40w%25rd"


def url_with_password(srv, password=QUOTED):
    """srv's URL with a (%-encoded) password of our choosing."""
    user = "scanner" if srv.name == "pyftpdlib" else "anonymous"
    path = srv.url.split("/", 3)[3]
    return "ftp://%s:%s@127.0.0.1:%d/%s" % (user, password, srv.port, path)


@pytest.fixture
def secret_server(request):
    """A server that accepts PASSWORD: pyftpdlib's user, vsftpd's anonymous (any password)."""
    with (PyFTPD(password=PASSWORD) if request.param == "pyftpdlib" else VSFTPD()) as srv:
        yield srv


both = pytest.mark.parametrize("secret_server", ["pyftpdlib", "vsftpd"], indirect=True)


def test_round_trip(server, tmp_path):
    data = os.urandom(300000)
    with ulnet.FTP(server.url, timeout_s=10) as ftp:
        assert ftp.put(write(tmp_path, "scan.csv", data)) == len(data)
        assert ftp.size("scan.csv") == len(data)
        assert ftp.get("scan.csv", str(tmp_path / "back.csv")) == len(data)
        assert ftp.mkdir("sub").endswith("/sub")
        ftp.cwd("sub")
        assert ftp.pwd().endswith("/sub")
        assert ftp.put(write(tmp_path, "b.csv", b"b"), "b.csv", atomic=False, resume=False) == 1
        ftp.rename("b.csv", "c.csv")
        assert ftp.nlst() == ["c.csv"]
        assert len(ftp.list()) == 1 and "c.csv" in ftp.list()[0]
        assert len(ftp.mdtm("c.csv")) == 6  # (year, month, day, hour, minute, second)
        ftp.delete("c.csv")
        ftp.cwd("..")
        ftp.rmdir("sub")
        assert "SIZE" in ftp.features()
        assert ftp.nlst() == ["scan.csv"]
    assert (tmp_path / "back.csv").read_bytes() == data
    assert on_server(server, "scan.csv") == data


def test_progress_reaches_the_caller(server, tmp_path):
    # more than loopback's socket buffers take before the 150, from which progress counts
    data = os.urandom(24 << 20)
    seen = []
    with ulnet.FTP(server.url, timeout_s=10) as ftp:
        ftp.on_progress = lambda op, done, total: seen.append((op.name, done, total))
        ftp.put(write(tmp_path, "scan.bin", data))
    assert len(seen) > 1 and seen[-1] == ("put", len(data), len(data))


def test_mlsd_on_pyftpdlib(tmp_path):
    with PyFTPD() as srv, ulnet.FTP(srv.url, timeout_s=10) as ftp:
        ftp.put(write(tmp_path, "f.bin", b"12345"))
        assert [(facts["size"], name) for facts, name in ftp.mlsd()] == [("5", "f.bin")]


def test_missing_remote_file_raises_550_and_the_session_goes_on(server, tmp_path):
    with ulnet.FTP(server.url, timeout_s=10) as ftp:
        with pytest.raises(ulnet.FTPError) as err:
            ftp.get("absent.csv", str(tmp_path / "absent.csv"))
        assert err.value.code == 550
        with pytest.raises(ulnet.FTPError) as err:
            ftp.size("absent.csv")
        assert err.value.code == 550
        with pytest.raises(ulnet.FTPError) as err:
            ftp.cwd("no/such/dir")
        assert err.value.code == 550
        assert ftp.pwd().startswith("/")  # replies stay matched to their commands
    assert not (tmp_path / "absent.csv").exists()


def test_a_bad_argument_raises_at_once_and_the_session_goes_on(server):
    with ulnet.FTP(server.url, timeout_s=1) as ftp:
        for call, args, text in (("mkdir", ("",), "mkdir: an empty argument"), ("cwd", (None,), "cwd: CWD needs an argument"),
                                 ("size", (5,), "size: bad argument for SIZE")):
            with pytest.raises(ulnet.FTPError) as err:
                getattr(ftp, call)(*args)
            assert err.value.code is None and str(err.value) == text
            assert ftp.pwd().startswith("/")  # at once: not after a deadline, not disconnected
    with pytest.raises(ValueError, match="bad port"):
        ulnet.FTP(server.url.replace(":%d/" % server.port, ":%d/" % (server.port + 65536)))


def test_wrong_password_raises_530():
    with PyFTPD() as srv:
        before = open_fds()
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(url_with_password(srv, "WRONG"), timeout_s=10):
                pass
        assert err.value.code == 530
        assert open_fds() == before


def test_missing_local_file_raises_without_sending(server, tmp_path):
    with ulnet.FTP(server.url, timeout_s=10) as ftp:
        with pytest.raises(ulnet.FTPError) as err:
            ftp.put(str(tmp_path / "nope.csv"))
        assert err.value.code is None and "no such file" in err.value.text
        assert ftp.nlst() == []
    assert os.listdir(server.home) == []


def test_refused_connection_raises(tmp_path):
    with pytest.raises(ulnet.FTPError) as err:
        with ulnet.FTP("ftp://u:%s@127.0.0.1:%d/" % (QUOTED, free_port()), timeout_s=5):
            pass
    assert err.value.code is None and "connection refused" in str(err.value)


@pytest.mark.parametrize("failure", [RuntimeError, ulnet.FTPError])
def test_leaving_closes_the_connection_even_after_an_exception(server, tmp_path, failure):
    before = open_fds()
    ftp = ulnet.FTP(server.url, timeout_s=10)
    with pytest.raises(failure):
        with ftp:
            ftp.put(write(tmp_path, "a.csv", b"a"))
            if failure is RuntimeError:
                raise RuntimeError("the scanner's own bug")
            ftp.get("absent.csv", str(tmp_path / "absent.csv"))
    assert not ftp.client.connected
    assert open_fds() == before  # control, data and the eventer's own handle are gone
    # the server saw a proper end: a new session logs in and finds the upload complete
    with ulnet.FTP(server.url, timeout_s=10) as again:
        assert again.nlst() == ["a.csv"]


@both
def test_password_never_in_any_text(secret_server, tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    url = url_with_password(secret_server)
    texts = []
    with ulnet.FTP(url, timeout_s=10) as ftp:
        texts += [repr(ftp), str(ftp), ftp.url, repr(ftp.client)]
        ftp.put(write(tmp_path, "a.csv", b"a"))
        for fail in (lambda: ftp.get("absent", str(tmp_path / "x")), lambda: ftp.cwd("nowhere"),
                     lambda: ftp.put(str(tmp_path / "missing.csv"))):
            with pytest.raises(ulnet.FTPError) as err:
                fail()
            texts += [str(err.value), repr(err.value), err.value.text]
        texts += [repr(ftp)]
    bad_urls = [url.replace("127.0.0.1:%d" % secret_server.port, "127.0.0.1:%d" % free_port()),
                url.replace(":%d/" % secret_server.port, ":port/"), "http" + url[3:]]
    for bad in bad_urls:
        with pytest.raises((ulnet.FTPError, ValueError)) as err:
            with ulnet.FTP(bad, timeout_s=5):
                pass
        texts += [str(err.value), repr(err.value)]
    out, errors = capfd.readouterr()
    texts += [out, errors, caplog.text]
    assert len(texts) > 20
    for text in texts:
        assert PASSWORD not in text and QUOTED not in text, text


def test_facade_under_micropython(micropython):
    """The same facade on the MicroPython unix port (the board's runtime), heap of 256 KB."""
    with PyFTPD(password=PASSWORD) as srv:
        out = micropython("""
import ulnet
f = open("up.bin", "wb")
f.write(bytes(range(256)) * 400)
f.close()
with ulnet.FTP("ftp://scanner:%s@127.0.0.1:%d/", timeout_s=10) as ftp:
    print(ftp.put("up.bin"))
    print(ftp.nlst())
    try:
        ftp.size("absent")
    except ulnet.FTPError as e:
        print(e.code)
    print(repr(ftp))
""" % (QUOTED, srv.port), heap="256K")
        assert out.splitlines() == ["102400", "['up.bin']", "550",
                                    "<ulnet.FTP ftp://scanner:***@127.0.0.1:%d/ connected>" % srv.port]
        assert on_server(srv, "up.bin") == bytes(range(256)) * 400
