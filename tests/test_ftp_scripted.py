"""The FTP client against a scripted server (tests/servers/scripted_ftp.py): real FTP bytes over
real sockets, for what real servers will not do on demand. Each test checks what a user would:
the bytes that reached the server, the operation's error code and text, and that later
operations still get their own replies."""

import os
import time

import pytest

import ulnet
from servers.ftp import free_port
from servers.scripted_ftp import ScriptedFTP
from test_ftp_client import Session, write


def run(script, test, **knobs):
    """Play script on a scripted server while test(session) drives a client against it."""
    with ScriptedFTP(script) as srv:
        s = Session(srv, **knobs)
        try:
            test(s)
        finally:
            s.close()  # before the server joins its script: a script may wait for the close
    return srv


def transfer_setup(c, size=None):
    """What the client sends before a transfer: TYPE I, SIZE (when asked), EPSV."""
    c.expect("TYPE", "200 Type set to I")
    if size is not None:
        c.expect("SIZE", size)
    return c.passive()


# -- replies cut and merged ---------------------------------------------------------------------


def test_replies_split_at_every_byte():
    def script(c):
        c.reply("220 scripted server ready", pieces=1)
        c.expect("USER", "331 password please", pieces=1)
        c.expect("PASS", "230-Welcome.\n230-Scans go to /scans.\n230 Logged in.", pieces=1)
        c.expect("PWD", '257 "/scans" is the current directory', pieces=1)
        c.expect("MKD", '257 "/scans/2026" created', pieces=1)
        c.expect("TYPE", "200 Type set to I", pieces=1)
        c.expect("SIZE", "213 4096", pieces=1)
        c.wait_closed()

    def test(s):
        pwd, mkd, size = s.client.pwd(), s.client.mkdir("2026"), s.client.size("a.csv")
        s.wait(s.login, pwd, mkd, size)
        assert s.login.error is None
        assert (pwd.result, mkd.result, size.result) == ("/scans", "/scans/2026", 4096)

    srv = run(script, test)
    assert srv.verbs() == ["USER", "PASS", "PWD", "MKD", "TYPE", "SIZE"]


def test_several_replies_in_one_read():
    names = b"a.csv\r\nb.csv\r\nc d.csv\r\n"

    def script(c):
        c.reply("120 Ready in a moment.\n220 Ready.")  # preliminary and final in one write
        c.expect("USER", "331 password please")
        c.expect("PASS", "230 logged in")
        data = c.accept(c.passive())
        c.expect("NLST")
        data.sendall(names)
        data.close()
        c.reply("150 Here it comes.\n226 Transfer complete.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        nlst, pwd = s.client.nlst(), s.client.pwd()
        s.wait(s.login, nlst, pwd)
        assert nlst.error is None and nlst.result == ["a.csv", "b.csv", "c d.csv"]
        assert pwd.result == "/"

    run(script, test)


def test_greeting_in_pieces():
    def script(c):
        c.reply("220-Welcome to the\n220-scripted server.\n220 Ready.", pieces=[2, 1, 3, 9, 1, 12, 5])
        c.expect("USER", "331 password please")
        c.expect("PASS", "230 logged in")
        c.expect("PWD", '257 "/home"')
        c.wait_closed()

    def test(s):
        pwd = s.client.pwd()
        s.wait(s.login, pwd)
        assert s.login.error is None and pwd.result == "/home"

    run(script, test)


def test_feat_split_after_211():
    def script(c):
        c.login()
        c.expect("FEAT")
        c.send(b"211")
        time.sleep(0.05)  # the client has read "211" alone: neither "211-" nor "211 " yet
        c.send(b"-Features:\r\n SIZE\r\n MDTM\r\n REST STREAM\r\n EPSV\r\n211 End\r\n")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        feat, pwd = s.client.features(), s.client.pwd()
        s.wait(s.login, feat, pwd)
        assert feat.error is None
        assert feat.result == {"SIZE": "", "MDTM": "", "REST": "STREAM", "EPSV": ""}
        assert pwd.result == "/"

    run(script, test)


def test_final_reply_before_the_data_ends(tmp_path):
    """A transfer is complete when both the data stream ended and the final reply came, in
    either order: here 226 arrives while the data is still on its way."""
    data = os.urandom(200000)

    def script(c):
        c.login()
        data_sock = c.accept(transfer_setup(c, "213 200000"))
        c.expect("RETR")
        c.reply("150 Opening.\n226 Transfer complete.")
        time.sleep(0.05)
        for at in range(0, len(data), 50000):
            data_sock.sendall(data[at:at + 50000])
            time.sleep(0.02)
        data_sock.close()
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        local = tmp_path / "scan.csv"
        get, pwd = s.client.get("scan.csv", str(local)), s.client.pwd()
        s.wait(s.login, get, pwd)
        assert get.error is None and local.read_bytes() == data
        assert pwd.result == "/"

    run(script, test)


def test_keepalive_noop_while_idle_keeps_replies_matched():
    def script(c):
        c.login()
        c.expect("NOOP")
        time.sleep(0.2)  # the client queues PWD while its NOOP is still unanswered
        c.reply("200 NOOP ok.")
        c.expect("PWD", '257 "/scans"')
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        s = Session(srv, keepalive_ms=100)
        try:
            s.wait(s.login)
            s.ev.run_until(lambda: srv.verbs()[-1:] == ["NOOP"], 5000)
            pwd = s.client.pwd()
            s.wait(pwd)
            assert pwd.error is None and pwd.result == "/scans"
        finally:
            s.close()
    assert srv.verbs() == ["USER", "PASS", "NOOP", "PWD"]


def test_operation_queued_by_a_report_gets_the_reply_deadline_not_the_keepalive():
    # the job queues its next command from on_success: its wait must be reply_timeout_ms, not
    # the idle keepalive that settling the previous operation arms
    def script(c):
        c.login()
        c.expect("PWD", '257 "/scans"')
        c.expect("TYPE")
        time.sleep(0.6)  # three keepalive periods, well inside the reply deadline
        c.reply("200 Type set to I")
        c.expect("SIZE", "213 30")
        c.wait_closed()

    def test(s):
        queued = []
        report = s.client.on_success

        def on_success(op):
            report(op)
            if op.name == "pwd":
                queued.append(s.client.size("a.csv"))

        s.client.on_success = on_success
        pwd = s.client.pwd()
        s.wait(s.login, pwd)
        s.ev.run_until(lambda: queued and queued[0].done, 5000)
        assert queued[0].error is None and queued[0].result == 30

    srv = run(script, test, keepalive_ms=200, reply_timeout_ms=5000)
    assert srv.verbs() == ["USER", "PASS", "PWD", "TYPE", "SIZE"]


# -- hostile and broken servers ------------------------------------------------------------------


def test_lost_greeting_fails_at_the_deadline():
    def script(c):
        c.wait_closed()  # accept, say nothing

    with ScriptedFTP(script) as srv:
        started = time.monotonic()  # before the connect begins: the deadline counts from there
        s = Session(srv, connect_timeout_ms=250, reply_timeout_ms=250)
        try:
            pwd = s.client.pwd()
            s.wait(s.login, pwd, timeout_ms=10000)
            elapsed = time.monotonic() - started
        finally:
            s.close()
    assert 0.5 <= elapsed < 5  # connect + reply deadline (0.25 s + 0.25 s)
    assert s.login.error.code is None and "no reply from the server" in s.login.error.text
    assert pwd.error.text == s.login.error.text  # what was queued fails with it
    assert srv.commands == []


def test_missing_final_reply_fails_at_the_reply_deadline(tmp_path):
    data = os.urandom(100000)
    got = {}

    def script(c):
        c.login()
        data_sock = c.accept(transfer_setup(c))
        c.expect("STOR", "150 Ok to send data.")
        got["data"] = c.receive_all(data_sock)
        c.wait_closed()  # and never say 226

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", data), "scan.csv", atomic=True, resume=False)
        after = s.client.pwd()
        s.wait(s.login)
        started = time.monotonic()
        s.wait(put, after, timeout_ms=10000)
        assert time.monotonic() - started >= 0.5
        assert put.error.code is None and "no reply from the server within 500 ms" in put.error.text
        assert after.error is not None  # the session is gone: nothing answers it

    srv = run(script, test, reply_timeout_ms=500)
    assert got["data"] == data
    assert "RNFR" not in srv.verbs()  # a transfer not confirmed is never renamed into place


def test_idle_data_connection_fails_the_upload_even_if_the_server_says_226(tmp_path):
    """The server stops reading: the client gives up after data_idle_ms and closes the data
    connection; the server takes the end as complete and says 226, which must not count."""
    data = os.urandom(16 << 20)  # far more than the socket buffers hold

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        data_sock = c.accept(c.passive(rcvbuf=65536))
        c.expect("STOR", "150 Ok to send data.")
        time.sleep(1.0)  # read nothing: the client is idle for data_idle_ms and gives up
        try:
            c.receive_all(data_sock)
        except ConnectionResetError:
            pass
        c.reply("226 Transfer complete.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.bin", data), "scan.bin", resume=False)
        pwd = s.client.pwd()
        s.wait(s.login, put, pwd, timeout_ms=10000)
        assert put.error.code is None and put.error.text == "data connection idle for 300 ms"
        assert pwd.result == "/"

    srv = run(script, test, data_idle_ms=300)
    assert "RNFR" not in srv.verbs()


def test_stalled_download_fails_at_the_data_deadline(tmp_path):
    """After 150 the data deadline applies, not the (longer) reply deadline."""
    def script(c):
        c.login()
        data_sock = c.accept(transfer_setup(c, "213 5000"))
        c.expect("RETR")
        data_sock.sendall(b"x" * 1000)
        time.sleep(0.05)  # the client has the data: the 150 comes last, then nothing at all
        c.reply("150 Opening BINARY mode data connection.")
        assert data_sock.recv(1) == b""  # until the client gives up and closes it
        c.reply("426 Connection closed; transfer aborted.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        get, pwd = s.client.get("scan.csv", str(tmp_path / "scan.csv")), s.client.pwd()
        s.wait(s.login)
        started = time.monotonic()
        s.wait(get, pwd, timeout_ms=10000)
        assert time.monotonic() - started < 5  # data_idle_ms, not the 20 s reply deadline
        assert get.error.code == 426 and pwd.result == "/"
        assert os.listdir(tmp_path) == []

    run(script, test, data_idle_ms=300, reply_timeout_ms=20000)


def test_transfer_command_never_answered_fails_at_one_reply_deadline(tmp_path):
    def script(c):
        c.login()
        c.accept(transfer_setup(c))
        c.expect("STOR")  # and no 150, no anything
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", b"1234"), "scan.csv", resume=False)
        s.wait(s.login)
        started = time.monotonic()
        s.wait(put, timeout_ms=10000)
        assert 1.0 <= time.monotonic() - started < 1.8  # one reply deadline, not two
        assert put.error.code is None and put.error.text == "no reply from the server within 1000 ms"

    run(script, test, reply_timeout_ms=1000)


def test_server_closing_after_150_fails_at_once(tmp_path):
    def script(c):
        c.login()
        listener = transfer_setup(c, "213 5000")
        data_sock = c.accept(listener)
        c.expect("RETR", "150 Opening BINARY mode data connection.")
        c.sock.close()  # the control connection goes; the data connection stays silent
        data_sock.settimeout(5)
        assert data_sock.recv(1) == b""  # the client closes the data connection too

    def test(s):
        local = tmp_path / "scan.csv"
        get = s.client.get("scan.csv", str(local))
        started = time.monotonic()
        s.wait(s.login, get, timeout_ms=5000)
        assert time.monotonic() - started < 5  # not the 20 s data deadline
        assert get.error.code is None and "closed the control connection" in get.error.text
        assert os.listdir(tmp_path) == []  # neither scan.csv nor scan.csv.part

    run(script, test, data_idle_ms=20000, reply_timeout_ms=20000)


def test_421_while_idle_fails_the_next_operation_clearly():
    def script(c):
        c.login()
        c.reply("421 Timeout.")
        c.sock.close()

    def test(s):
        s.wait(s.login)
        s.ev.run_until(lambda: not s.client.connected, 5000)
        pwd = s.client.pwd()
        s.wait(pwd)
        assert pwd.error.code == 421 and "Timeout." in pwd.error.text

    run(script, test)


def test_421_in_answer_to_a_command_carries_its_code():
    def script(c):
        c.login()
        c.expect("PWD", "421 Too many connections, closing.")
        c.sock.close()

    def test(s):
        pwd, after = s.client.pwd(), s.client.mkdir("x")
        s.wait(s.login, pwd, after)
        assert pwd.error.code == 421 and "Too many connections" in pwd.error.text
        assert after.error.code == 421

    run(script, test)


# -- passive mode and resume ---------------------------------------------------------------------


def test_bad_pasv_reply_and_refused_data_connection_fail_only_their_operation():
    def script(c):
        c.login()
        c.expect("EPSV", "502 Command not implemented.")
        c.expect("PASV", "227 Entering Passive Mode (127,0,0,1,0,0).")  # port 0: garbage
        c.expect("PASV", "227 Entering Passive Mode (127,0,0,1,%d,%d)." % divmod(free_port(), 256))
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        bad, refused, pwd = s.client.nlst(), s.client.nlst(), s.client.pwd()
        s.wait(s.login, bad, refused, pwd)
        assert bad.error.code == 227 and "bad 227 reply" in bad.error.text
        assert refused.error.code is None and "connection refused" in refused.error.text
        assert pwd.result == "/"

    run(script, test)


def test_epsv_refused_falls_back_to_pasv_and_stays_there():
    def script(c):
        c.login()
        c.expect("EPSV", "502 Command not implemented.")  # once: PASV for the rest
        for names in (b"a\r\n", b"b\r\n"):
            listener = c.data_listener()
            c.pasv(listener)
            data_sock = c.accept(listener)
            c.expect("NLST", "150 Here comes the listing.")
            data_sock.sendall(names)
            data_sock.close()
            c.reply("226 Directory send OK.")
        c.wait_closed()

    def test(s):
        first, second = s.client.nlst(), s.client.nlst()
        s.wait(s.login, first, second)
        assert (first.result, second.result) == (["a"], ["b"])

    srv = run(script, test)
    assert srv.verbs() == ["USER", "PASS", "EPSV", "PASV", "NLST", "PASV", "NLST"]


def test_rest_refused_during_resume_appends_with_appe(tmp_path):
    data = os.urandom(20000)
    got = {}

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        c.expect("SIZE", "213 5000")  # 5000 bytes of .scan.csv.part are there already
        c.expect("REST", "502 REST not implemented.")
        data_sock = c.accept(c.passive())
        c.expect("APPE", "150 Ok to send data.")
        got["data"] = c.receive_all(data_sock)
        c.reply("226 Transfer complete.")
        c.expect("SIZE", "213 20000")  # a resumed .part is checked before it takes the name
        c.expect("RNFR", "350 Ready for RNTO.")
        c.expect("RNTO", "250 Rename successful.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", data), "scan.csv")
        pwd = s.client.pwd()
        s.wait(s.login, put, pwd)
        assert put.error is None and put.result == len(data) - 5000
        assert pwd.result == "/"

    srv = run(script, test)
    assert got["data"] == data[5000:]
    assert srv.commands[2:] == [
        ("TYPE", "I"), ("SIZE", ".scan.csv.part"), ("REST", "5000"), ("EPSV", None),
        ("APPE", ".scan.csv.part"), ("SIZE", ".scan.csv.part"), ("RNFR", ".scan.csv.part"),
        ("RNTO", "scan.csv"), ("PWD", None)]


def test_resumed_part_of_the_wrong_size_never_takes_the_final_name(tmp_path):
    # the server took REST 5000 but its file does not add up: no rename, the .part is deleted
    # so the next attempt starts over, and the operation fails saying so
    data = os.urandom(20000)

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        c.expect("SIZE", "213 5000")
        c.expect("REST", "350 Restarting at 5000.")
        data_sock = c.accept(c.passive())
        c.expect("STOR", "150 Ok to send data.")
        c.receive_all(data_sock)
        c.reply("226 Transfer complete.")
        c.expect("SIZE", "213 35000")
        c.expect("DELE", "250 Deleted.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", data), "scan.csv")
        pwd = s.client.pwd()
        s.wait(s.login, put, pwd)
        assert str(put.error) == ("put: resumed upload of scan.csv: the server holds 35000 bytes, "
                                  "not 20000; its partial file is removed")
        assert pwd.error is None and pwd.result == "/"  # the session goes on

    srv = run(script, test)
    assert "RNFR" not in srv.verbs() and srv.verbs()[-3:] == ["SIZE", "DELE", "PWD"]


def test_retr_ending_in_250_succeeds(tmp_path):
    data = os.urandom(30000)

    def script(c):
        c.login()
        data_sock = c.accept(transfer_setup(c, "213 30000"))
        c.expect("RETR", "150 Opening BINARY mode data connection.")
        data_sock.sendall(data)
        data_sock.close()
        c.reply("250 Transfer complete.")  # RFC 959 allows 250 as RETR's final reply
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        local = tmp_path / "scan.csv"
        get, pwd = s.client.get("scan.csv", str(local)), s.client.pwd()
        s.wait(s.login, get, pwd)
        assert get.error is None and get.result == len(data)
        assert local.read_bytes() == data
        assert pwd.result == "/"

    run(script, test)


# -- the blocking facade against the scripted server -------------------------------------------


def test_facade_sends_the_decoded_password_and_never_shows_it():
    password = "Pa:ss@w%rd"

    def script(c):
        c.login()
        c.expect("PWD", "550 Permission denied.")
        c.expect("QUIT", "221 Goodbye.")

    with ScriptedFTP(script, password=password) as srv:
        url = "ftp://scanner:Pa%%3Ass%%40w%%25rd@127.0.0.1:%d/" % srv.port
        with ulnet.FTP(url, timeout_s=5) as ftp:
            with pytest.raises(ulnet.FTPError) as err:
                ftp.pwd()
            texts = [repr(ftp), str(ftp), ftp.url, str(err.value), repr(err.value)]
    assert err.value.code == 550
    for text in texts:
        assert password not in text and "Pa%3Ass%40w%25rd" not in text
    assert "***" in repr(ftp)


def test_facade_lost_greeting_raises_at_its_timeout():
    def script(c):
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        started = time.monotonic()
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url, timeout_s=0.3):
                pass
        assert 0.6 <= time.monotonic() - started < 5
    assert err.value.code is None and "no reply from the server" in str(err.value)


def test_facade_backstop_ends_a_wait_the_client_never_would():
    """The facade's own deadline (12 x timeout_s without progress) ends a wait even when the
    client's deadlines are switched off; leaving then closes without QUIT."""
    def script(c):
        c.login()
        c.expect("PWD")  # never answered
        c.wait_closed()

    with ScriptedFTP(script) as srv:
        with pytest.raises(ulnet.FTPError) as err:
            with ulnet.FTP(srv.url, timeout_s=0.1) as ftp:
                ftp.client.reply_timeout_ms = 10 ** 9
                started = time.monotonic()
                try:
                    ftp.pwd()
                finally:
                    elapsed = time.monotonic() - started
    assert 1.2 <= elapsed < 5
    assert err.value.code is None and "no progress within 1200 ms" in err.value.text
    assert srv.verbs() == ["USER", "PASS", "PWD"]
