"""The FTP client against hostile servers (tests/servers/scripted_ftp.py, real sockets on
loopback): each misbehaviour ends in a clear error within its deadline, with the client's memory
bounded, and nothing wrong reaches the server's files or the local disk. docs/architecture.md
("What ulnet promises under bad input") points here.

Deadlines are checked both ways (never before, and not long after: a server must not be able to
push one back), which is what the deadlines promise, not a speed."""

import os
import socket
import time
import tracemalloc

import pytest

import ulnet
from servers.scripted_ftp import ScriptedFTP
from test_ftp_client import Session, write
from test_ftp_scripted import run, transfer_setup

# what a run of the loop may add to a deadline on a loaded 2-core machine
SLACK_S = 1.0


def login_against(srv, **knobs):
    """A session logging in to srv, and the monotonic time its connect began."""
    started = time.monotonic()
    return Session(srv, **knobs), started


def keep_sending(c, data, times, pause_s=0):
    """Send data again and again, until the client hangs up (or times runs out)."""
    try:
        for _ in range(times):
            c.send(data)
            if pause_s:
                time.sleep(pause_s)
    except OSError:
        pass  # the client gave up and closed: what it should do


def traced(fn):
    """Run fn() with tracemalloc on (the whole process: client and server thread); returns the
    peak of bytes allocated meanwhile."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def receive_until_closed(sock):
    """What arrives on sock until the peer closes it (or resets it: what came before counts)."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return b"".join(chunks)
        chunks.append(data)


# -- replies that never end, or never come -----------------------------------------------------


def test_a_slow_greeting_of_endless_120s_fails_at_the_greeting_deadline():
    # RFC 959's "120 ready in nnn minutes", every 50 ms and never a 220: a 1yz does not extend
    # the wait, so the login fails at the connect + reply deadline
    def script(c):
        keep_sending(c, b"120 Service ready in a moment.\r\n", 200, 0.05)
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        s, started = login_against(srv, connect_timeout_ms=250, reply_timeout_ms=250)
        try:
            s.wait(s.login, timeout_ms=10000)
            elapsed = time.monotonic() - started
        finally:
            s.close()
    assert 0.5 <= elapsed < 0.5 + SLACK_S
    assert s.login.error.code is None and s.login.error.text == "no reply from the server within 250 ms"


@pytest.mark.parametrize("during", ["a command", "a transfer"])
def test_a_flood_of_1xx_replies_cannot_hold_an_operation(during, tmp_path):
    # a server answering PWD (or a RETR whose data never comes) with "150 still working" every
    # 20 ms held an operation for as long as it went on: now the reply deadline (the data
    # deadline once a transfer began) ends it
    def script(c):
        c.login()
        if during == "a transfer":
            c.accept(transfer_setup(c, "213 5000"))
            c.expect("RETR")
        else:
            c.expect("PWD")
        keep_sending(c, b"150 still working\r\n", 250, 0.02)
        c.wait_closed()

    def test(s):
        s.wait(s.login)
        op = s.client.get("scan.csv", str(tmp_path / "scan.csv")) if during == "a transfer" else s.client.pwd()
        started = time.monotonic()
        s.wait(op, timeout_ms=10000)
        # in a transfer: the data deadline, then the reply deadline for its final reply
        bound = 1.0 if during == "a transfer" else 0.5
        assert bound <= time.monotonic() - started < bound + SLACK_S
        assert op.error.code is None and op.error.text == "no reply from the server within 500 ms"

    run(script, test, reply_timeout_ms=500, data_idle_ms=500)
    assert os.listdir(tmp_path) == []


def test_a_flood_of_1xx_replies_cannot_hold_the_blocking_facade():
    def script(c):
        c.login()
        c.expect("PWD")
        keep_sending(c, b"150 still working\r\n", 250, 0.02)
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        with ulnet.FTP(srv.url, timeout_s=0.5) as ftp:
            started = time.monotonic()
            with pytest.raises(ulnet.FTPError) as err:
                ftp.pwd()
            elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.5 + SLACK_S  # was 12 x timeout_s, the facade's backstop
    assert str(err.value) == "pwd: no reply from the server within 500 ms"


def test_a_1xx_to_the_keepalive_noop_leaves_the_session_working():
    def script(c):
        c.login()
        c.expect("NOOP", "150 hm.\n200 NOOP ok.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        s = Session(srv, keepalive_ms=100)
        try:
            s.wait(s.login)
            s.ev.run_until(lambda: srv.verbs()[-1:] == ["NOOP"], 5000)
            pwd = s.client.pwd()  # behind the NOOP, whose 150 and 200 come first
            s.wait(pwd, timeout_ms=5000)
        finally:
            s.close()
    assert s.client.connected and pwd.result == "/"


def test_an_endless_multi_line_reply_fails_at_its_size_limit_with_bounded_memory():
    line = b" and more welcome text, line after line\r\n"

    def script(c):
        c.reply("220 scripted server ready")
        c.expect("USER", "331 password please")
        c.expect("PASS")
        c.send(b"230-Welcome.\r\n")
        keep_sending(c, line, 50000)  # 2 MB, if the client read it all
        c.wait_closed()

    def login():
        with ScriptedFTP(script) as srv:
            s, started = login_against(srv, reply_timeout_ms=20000)
            try:
                s.wait(s.login, timeout_ms=10000)
                assert time.monotonic() - started < SLACK_S  # the limit ended it, not a deadline
            finally:
                s.close()
        assert s.login.error.code is None and s.login.error.text == "multi-line 230 reply too large"

    assert traced(login) < 400000  # a 4 KB reply at most, plus reads: never the 2 MB


def test_a_10mb_line_fails_at_the_line_limit_with_bounded_memory():
    chunk = b"A" * 65536  # made before tracing: only what the client holds is measured

    def script(c):
        c.send(b"220-")
        keep_sending(c, chunk, 160)  # a 10 MB line, if the client read it all
        c.wait_closed()

    def login():
        with ScriptedFTP(script) as srv:
            s, started = login_against(srv, connect_timeout_ms=20000, reply_timeout_ms=20000)
            try:
                s.wait(s.login, timeout_ms=10000)
                assert time.monotonic() - started < SLACK_S
            finally:
                s.close()
        assert s.login.error.code is None and s.login.error.text == "reply line longer than 2048 bytes"

    assert traced(login) < 400000  # one 2 KB line plus one 64 KB read, never the 10 MB line


# -- the data connection ---------------------------------------------------------------------------


@pytest.mark.parametrize("use_sendfile", [True, False], ids=["sendfile", "buffer"])
def test_data_sent_back_during_an_upload_fails_it_and_never_corrupts_it(use_sendfile, tmp_path):
    # the server writes on the data connection of a STOR: read into the upload buffer, those
    # bytes went out as the file's (the buffer pump), or the upload was reported as done. The
    # server reads nothing for a while, so the client's pump waits on a full socket and sees
    # what came back (a client that finished first never reads it, and its upload is whole)
    data = os.urandom(16 << 20)  # far more than the socket buffers hold
    got = {}

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        data_sock = c.accept(c.passive(rcvbuf=65536))
        c.expect("STOR", "150 Ok to send data.")
        data_sock.sendall(b"the server talks back " * 50)
        time.sleep(0.2)
        got["data"] = receive_until_closed(data_sock)
        c.reply("226 Transfer complete.")  # it took what came as the whole file
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.bin", data), "scan.bin", atomic=False, resume=False)
        pwd = s.client.pwd()
        s.wait(s.login, put, pwd, timeout_ms=10000)
        assert put.error.code is None
        assert put.error.text == "the server sent data on the data connection of an upload"
        assert pwd.result == "/"  # the session goes on

    run(script, test, use_sendfile=use_sendfile)
    assert len(got["data"]) < len(data) and data.startswith(got["data"])  # cut, never garbage


@pytest.mark.parametrize("trust", [False, True])
def test_pasv_naming_a_foreign_address_is_ignored_unless_trusted(trust, tmp_path):
    """FTP bounce: PASV names 127.0.0.3; the data connection goes to the control connection's
    peer (the server, on 127.0.0.2, while the client's end is 127.0.0.1: local and peer differ),
    unless trust_pasv_address: then to the named host."""
    data = os.urandom(50000)
    got = {}

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        c.expect("EPSV", "500 EPSV not understood")
        listener = c.data_listener("127.0.0.3" if trust else None)  # None: the server's own
        c.pasv(listener, named_host="127.0.0.3")
        data_sock = c.accept(listener)
        got["address"] = data_sock.getsockname()[0]
        c.expect("STOR", "150 Ok to send data.")
        got["data"] = c.receive_all(data_sock)
        c.reply("226 Transfer complete.")
        c.wait_closed()

    def test(s):
        s.wait(s.login)
        ctl = s.client._ctl
        assert (ctl.local_address, ctl.peer_address) == ("127.0.0.1", "127.0.0.2")
        put = s.client.put(write(tmp_path, "scan.csv", data), "scan.csv", atomic=False, resume=False)
        s.wait(put)
        assert put.error is None and put.result == len(data)

    with ScriptedFTP(script, host="127.0.0.2") as srv:
        s = Session(srv, trust_pasv_address=trust)
        try:
            test(s)
        finally:
            s.close()
    assert got["address"] == ("127.0.0.3" if trust else "127.0.0.2")
    assert got["data"] == data


def test_active_mode_takes_the_data_connection_from_the_server_only(tmp_path):
    # another host connects to the client's data listener first and sends its own bytes: it is
    # dropped, and the download holds the server's bytes only
    data = os.urandom(30000)
    got = {}

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        c.expect("SIZE", "213 %d" % len(data))
        port = int(c.expect("EPRT", "200 EPRT command successful.").split("|")[3])
        intruder = socket.create_connection(("127.0.0.1", port), 5, ("127.0.0.3", 0))
        intruder.sendall(b"the intruder's bytes")
        intruder.settimeout(5)
        got["intruder"] = receive_until_closed(intruder)  # the client hangs up on it
        intruder.close()
        c.expect("RETR", "150 Opening BINARY mode data connection.")
        data_sock = socket.create_connection(("127.0.0.1", port), 5, ("127.0.0.1", 0))
        data_sock.sendall(data)
        data_sock.close()
        c.reply("226 Transfer complete.")
        c.wait_closed()

    def test(s):
        local = tmp_path / "scan.bin"
        get = s.client.get("scan.bin", str(local))
        s.wait(s.login, get, timeout_ms=10000)
        assert get.error is None and local.read_bytes() == data

    run(script, test, passive=False)
    assert got["intruder"] == b""


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_server_closing_mid_transfer_fails_at_once_leaving_nothing_half_done(direction, tmp_path):
    data = os.urandom(4 << 20)

    def script(c):
        c.login()
        listener = transfer_setup(c, None if direction == "upload" else "213 %d" % len(data))
        data_sock = c.accept(listener)
        c.expect("STOR" if direction == "upload" else "RETR", "150 Ok.")
        if direction == "upload":
            data_sock.recv(100000)
        else:
            data_sock.sendall(data[:100000])
        data_sock.close()
        c.sock.close()  # control and data connections go, mid-transfer

    def test(s):
        s.wait(s.login)
        if direction == "upload":
            op = s.client.put(write(tmp_path, "scan.bin", data), "scan.bin", resume=False)
        else:
            op = s.client.get("scan.bin", str(tmp_path / "scan.bin"))
        started = time.monotonic()
        s.wait(op, timeout_ms=10000)
        assert time.monotonic() - started < SLACK_S  # not the 20 s deadlines
        assert op.error.code is None and ("closed" in op.error.text or "reset" in op.error.text)

    srv = run(script, test, reply_timeout_ms=20000, data_idle_ms=20000)
    assert "RNFR" not in srv.verbs()  # never renamed into place
    assert os.listdir(tmp_path) == (["scan.bin"] if direction == "upload" else [])  # no .part


# -- what the server says -------------------------------------------------------------------------


def test_a_reply_the_parser_refuses_carries_the_code_it_came_with():
    # SIZE answered with a 250 the parser cannot read: the job's retry logic reads the code
    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        c.expect("SIZE", "250 fine")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        size, pwd = s.client.size("scan.csv"), s.client.pwd()
        s.wait(s.login, size, pwd)
        assert (size.error.code, size.error.text) == (250, "bad 213 reply 'fine'")
        assert pwd.result == "/"

    run(script, test)


def test_control_characters_from_the_server_never_reach_a_result_or_an_error():
    # an ESC sequence in a reply would act on the terminal that prints the error or the path
    def script(c):
        c.login()
        c.expect("DELE", "550 \x1b[2J\x1b]0;owned\x07No such file.")
        c.expect("PWD", '257 "/sc\x1b[31mans\x9b" is the current directory')
        c.wait_closed()

    def test(s):
        dele, pwd = s.client.delete("x"), s.client.pwd()
        s.wait(s.login, dele, pwd)
        assert dele.error.text == "\ufffd[2J\ufffd]0;owned\ufffdNo such file."
        assert pwd.result == "/sc\ufffd[31mans\ufffd"
        assert "\x1b" not in str(dele.error) + repr(dele) + pwd.result

    run(script, test)
