"""`ulnet upload SPOOL_DIR URL` as a user runs it: a process with plain lines, or a progress bar
on a terminal, a summary table, exit code 0 only when the spool is empty, never the password."""

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest

from servers.ftp import PyFTPD, free_port
from test_spool import DEVICE, assert_delivered, make_scans, small_sizes

PASSWORD = "s3cret"  # PyFTPD's


def upload(spool, url, *options, tty=False, timeout=60):
    """Run the command; returns (exit code, everything it printed)."""
    cmd = [sys.executable, "-m", "ulnet.tools", "upload", str(spool), url, "--device-id", DEVICE] + list(options)
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(timeout), out.decode()


def row(output, label):
    """The cells of one summary table row."""
    line = next(line for line in output.splitlines() if line.startswith(label.ljust(17)))
    return line[17:].split()


@pytest.fixture
def pyftpd():
    with PyFTPD() as srv:
        yield srv


def test_uploads_everything_then_exits_0_with_a_summary_table(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), small_sizes(20))
    code, out = upload(spool, pyftpd.url, "--keep")
    assert code == 0, out
    total = sum(map(len, scans.values()))
    assert 1024 <= total < 1 << 20  # so the size is in KB, one decimal
    lines = out.splitlines()
    # the job's rules first: where each scan goes, under which name, and what becomes of it
    assert lines[0] == "uploading 20 scans (%.1f KB) from %s to %s as %s-NAME, moving each to %s once the " \
        "server has it" % (total / 1024, spool, pyftpd.url.replace(PASSWORD, "***"), DEVICE, spool / "sent")
    assert "uploading scan000.csv (%d bytes)" % len(scans["scan000.csv"]) in lines
    assert "sent scan000.csv" in lines
    assert row(out, "uploaded") == ["20", "%.1f" % (total / 1024), "KB"]
    assert row(out, "set aside") == ["0", "-"] and row(out, "left") == ["0", "0", "B"]
    assert row(out, "failed attempts") == ["0"] and row(out, "time")[1] == "s"
    assert row(out, "sessions") == ["4", "of", "4"]  # the default: 4 at once for 20 scans
    assert lines[-1] == "done: 20 sent (%d bytes), 0 set aside, 0 left" % total
    assert out.count("done: ") == 1  # said once, at the end
    assert PASSWORD not in out
    assert_delivered(pyftpd.home, scans)
    assert sorted(os.listdir(spool / "sent")) == sorted(scans)


def test_an_empty_spool_is_success(pyftpd, tmp_path):
    os.mkdir(tmp_path / "spool")
    code, out = upload(tmp_path / "spool", pyftpd.url)
    assert code == 0 and "uploading 0 scans" in out and row(out, "uploaded") == ["0", "0", "B"]
    assert row(out, "sessions") == ["0", "of", "4"] and "connecting" not in out  # nothing to send


def test_sessions_option(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), small_sizes(6))
    code, out = upload(spool, pyftpd.url, "--sessions", "2")
    assert code == 0 and row(out, "sessions") == ["2", "of", "2"], out
    assert_delivered(pyftpd.home, scans)
    code, out = upload(spool, pyftpd.url, "--sessions", "9")
    assert code == 2 and "--sessions" in out


def test_progress_bar_on_a_terminal(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), [100, 2000, 3 << 20])
    code, out = upload(spool, pyftpd.url, tty=True)
    assert code == 0, out
    bar = [part for part in out.split("\r") if part.startswith("\x1b[K[")]
    last = re.search(r"\[#{24}\] 3/3 files  3\.0 MB/3\.0 MB  (\d+\.\d) scans/s", bar[-1])
    seconds = float(row(out.replace("\r", ""), "time")[0])
    # 3 scans in that time (the table rounds it to 10 ms)
    assert last and 3 / (seconds + 0.02) <= float(last.group(1)) <= 3 / max(seconds - 0.02, 0.001), (bar[-1], seconds)
    assert out.splitlines()[-1].startswith("done: 3 sent") and out.count("done: ") == 1
    assert any("] 0/3 files" in part for part in bar)
    # the bar is redrawn in place: status lines do not scroll by on a terminal
    assert "\nsent scan000.csv" not in out and row(out.replace("\r", ""), "uploaded")[0] == "3"
    assert PASSWORD not in out
    assert_delivered(pyftpd.home, scans)


def test_wrong_password_gives_up_at_once_with_67_and_keeps_every_scan(pyftpd, tmp_path):
    """Issue 12 item 7: a 530 was retried until the deadline (465 attempts in 600 s)."""
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), small_sizes(5))
    wrong = pyftpd.url.replace(PASSWORD, "WRONG-pw-123")
    started = time.monotonic()
    code, out = upload(spool, wrong)  # the default deadline: 600 s
    assert time.monotonic() - started < 30  # pyftpdlib answers a wrong password after 3 s
    assert code == 67, out
    assert out.splitlines()[-1].startswith("gave up: 0 sent (0 bytes), 0 set aside, 5 left; last failure: "
                                           "login refused: 530"), out
    assert row(out, "left")[0] == "5" and row(out, "failed attempts") == ["1"]
    assert "WRONG-pw-123" not in out and PASSWORD not in out
    assert sorted(n for n in os.listdir(spool) if not n.startswith(".")) == sorted(scans)
    assert os.listdir(pyftpd.home) == []


def test_a_remote_folder_that_does_not_exist_gives_up_with_9_naming_it(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), [10, 20])
    started = time.monotonic()
    code, out = upload(spool, pyftpd.url + "pty")
    assert time.monotonic() - started < 30
    assert code == 9, out
    last = out.splitlines()[-1]
    assert last.startswith("gave up: 0 sent (0 bytes), 0 set aside, 2 left; last failure: put scan"), last
    assert "failed: 550 " in last and "(remote path pty/%s-scan00" % DEVICE in last, last
    assert sorted(n for n in os.listdir(spool) if not n.startswith(".")) == sorted(scans)


@pytest.mark.parametrize("source", ["netrc", "netrc-file", "environment", "prompt"])
def test_the_password_comes_from_netrc_the_environment_or_a_prompt(pyftpd, tmp_path, source):
    """Issue 12 item 9: the password could only be in the URL, where ps shows it."""
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), [10, 20])
    url = "ftp://127.0.0.1:%d/" % pyftpd.port  # no user, no password
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    env.pop("ULNET_PASSWORD", None)
    options = []
    netrc = "machine 127.0.0.1 login %s password %s\n" % (pyftpd.user, PASSWORD)
    if source == "netrc":
        (home / ".netrc").write_text(netrc)
        (home / ".netrc").chmod(0o600)
    elif source == "netrc-file":
        (tmp_path / "creds").write_text(netrc)
        (tmp_path / "creds").chmod(0o600)
        options = ["--netrc-file", str(tmp_path / "creds")]
    else:
        url = "ftp://%s@127.0.0.1:%d/" % (pyftpd.user, pyftpd.port)
        if source == "environment":
            env["ULNET_PASSWORD"] = PASSWORD
    cmd = [sys.executable, "-m", "ulnet.tools", "upload", str(spool), url, "--device-id", DEVICE] + options
    if source == "prompt":
        code, out = run_on_terminal(cmd, env, answer=("password for %s@127.0.0.1: " % pyftpd.user, PASSWORD))
    else:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        code, out = done.returncode, done.stdout + done.stderr
    assert code == 0, out
    assert PASSWORD not in out
    assert_delivered(pyftpd.home, scans)


def test_no_password_anywhere_is_one_line_saying_where_to_put_it(tmp_path):
    os.mkdir(tmp_path / "spool")
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("ULNET_PASSWORD", None)
    done = subprocess.run([sys.executable, "-m", "ulnet.tools", "upload", str(tmp_path / "spool"),
                           "ftp://scanner@127.0.0.1:%d/" % free_port()], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr == ("ulnet upload: no password for scanner@127.0.0.1: put it in ULNET_PASSWORD, in "
                           "~/.netrc (or --netrc-file), or run on a terminal to be asked\n")


def run_on_terminal(cmd, env, answer):
    """Run cmd on a pty; when its output ends with answer[0], type answer[1]; (code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out, typed = b"", False
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not typed and out.decode(errors="replace").endswith(answer[0]):
                os.write(master, answer[1].encode() + b"\n")
                typed = True
    finally:
        os.close(master)
    return proc.wait(60), out.decode(errors="replace")


def test_ctrl_c_stops_with_130_and_the_summary(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), [10, 20])
    wrong = pyftpd.url.replace(PASSWORD, "WRONG-pw-123")  # the login hangs for 3 s
    cmd = [sys.executable, "-m", "ulnet.tools", "upload", str(spool), wrong, "--device-id", DEVICE]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().startswith("uploading 2 scans")
    assert proc.stdout.readline().startswith("connecting to")
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out
    assert out.splitlines()[-1] == "interrupted: 0 sent (0 bytes), 0 set aside, 2 left"
    assert row(out, "left") == ["2", "30", "B"] and "WRONG-pw-123" not in out
    assert sorted(n for n in os.listdir(spool) if not n.startswith(".")) == sorted(scans)


def test_server_down_exits_7_saying_why(tmp_path):
    spool = tmp_path / "spool"
    make_scans(str(spool), [10])
    code, out = upload(spool, "ftp://scanner:%s@127.0.0.1:%d/" % (PASSWORD, free_port()), "--deadline", "1")
    assert code == 7  # curl's "could not connect"
    assert "server unreachable: connect to 127.0.0.1" in out and "connection refused" in out
    assert row(out, "left") == ["1", "10", "B"] and PASSWORD not in out


def test_a_scan_set_aside_exits_1_though_the_spool_is_empty(pyftpd, tmp_path):
    spool = tmp_path / "spool"
    make_scans(str(spool), [10, 20])
    os.mkdir(spool / "not-a-scan")
    code, out = upload(spool, pyftpd.url)
    assert code == 1, out
    assert row(out, "set aside")[0] == "1" and row(out, "left") == ["0", "0", "B"]
    assert "set aside not-a-scan: not a regular file" in out
    assert "set aside in %s/bad/ (NAME.why says why)" % spool in out


def test_bad_arguments_exit_2_with_one_line_and_no_password(tmp_path):
    os.mkdir(tmp_path / "spool")
    code, out = upload(tmp_path / "spool", "ftp://scanner:TOPSECRET@host:port/")
    assert code == 2 and out == "ulnet upload: url: bad port in ftp://scanner:***@host:port/ (1-65535)\n"
    code, out = upload(tmp_path / "nope", "ftp://scanner:TOPSECRET@127.0.0.1/")
    assert code == 2 and out == "ulnet upload: %s: no such file or directory\n" % (tmp_path / "nope")
    code, out = upload(tmp_path / "spool", "http://scanner:TOPSECRET@127.0.0.1/")
    assert code == 2 and "not an ftp://, ftpes:// or ftps:// URL" in out and "TOPSECRET" not in out


# -- FTPS: --cafile, --fingerprint, --insecure ----------------------------------------------------

def test_ftpes_with_a_cafile_and_unverified_said_so(certs, tmp_path):
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), small_sizes(8))
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        code, out = upload(spool, srv.url, "--cafile", certs.ca)
        assert code == 0 and row(out, "uploaded")[0] == "8", out
        assert_delivered(srv.home, scans)
        assert "TLS unverified" not in out and PASSWORD not in out
    more = make_scans(str(spool), small_sizes(2), prefix="more")
    with PyFTPD(tls="explicit", cert=certs["unknown"]) as srv:
        code, out = upload(spool, srv.url, "--insecure")
        assert code == 0 and "connecting to ftpes://scanner:***@127.0.0.1:%d/ (TLS unverified)" % srv.port in out
        assert_delivered(srv.home, more)


def test_ftps_refusals_exit_with_the_reason_and_send_no_login(certs, tmp_path):
    spool = tmp_path / "spool"
    make_scans(str(spool), small_sizes(2))
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        code, out = upload(spool, srv.url, "--fingerprint", "ab" * 32)  # gives up at once: exit 60, as curl
        assert code == 60 and "fingerprint mismatch: server certificate sha256 is" in out.splitlines()[-1], out
        assert out.splitlines()[-1].startswith("gave up") and out.count("connecting to") == 1, out
        assert "USER" not in srv.verbs() and sorted(os.listdir(spool)) == ["scan000.csv", "scan001.csv"]
    with PyFTPD() as srv:  # no AUTH TLS there: 64, as curl --ssl-reqd
        code, out = upload(spool, srv.url.replace("ftp://", "ftpes://"))
        assert code == 64 and "the server refused AUTH TLS" in out and srv.verbs() == ["AUTH"], out
    code, out = upload(spool, "ftp://scanner:%s@127.0.0.1:21/" % PASSWORD, "--cafile", certs.ca)
    assert code == 2 and "TLS settings, not for plain FTP" in out and PASSWORD not in out
    code, out = upload(spool, "ftpes://scanner:%s@127.0.0.1:21/" % PASSWORD, "--insecure", "--cafile", certs.ca)
    assert code == 2 and "verify=False checks nothing" in out and PASSWORD not in out


@pytest.mark.parametrize("source", ["netrc", "environment"])
def test_a_password_from_elsewhere_keeps_an_ftpes_url_ftpes(certs, tmp_path, source):
    """The URL the password is filled into keeps its scheme: built as ftp://, it went to a
    TLS-only server in clear (which refused the login, and a plain server would have taken it)."""
    spool = tmp_path / "spool"
    scans = make_scans(str(spool), [10, 20])
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    env.pop("ULNET_PASSWORD", None)
    with PyFTPD(tls="explicit", cert=certs["good"]) as srv:
        url = "ftpes://127.0.0.1:%d/" % srv.port
        if source == "netrc":
            (home / ".netrc").write_text("machine 127.0.0.1 login %s password %s\n" % (srv.user, PASSWORD))
            (home / ".netrc").chmod(0o600)
        else:
            url = "ftpes://%s@127.0.0.1:%d/" % (srv.user, srv.port)
            env["ULNET_PASSWORD"] = PASSWORD
        done = subprocess.run([sys.executable, "-m", "ulnet.tools", "upload", str(spool), url, "--device-id", DEVICE,
                               "--cafile", certs.ca], capture_output=True, text=True, timeout=60, env=env)
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "to ftpes://scanner:***@127.0.0.1" in out, out
        assert PASSWORD not in out and srv.verbs()[0] == "AUTH"
        assert_delivered(srv.home, scans)
