"""Fewer round trips per upload, against a scripted server. An operation's command group (a
verified upload's RNFR, RNTO and SIZE): sent in one write where the session pipelines, one at
a time where it does not; each reply goes to its own command whatever the server refuses, and
a server that does not answer a group turns pipelining off instead of costing every later
upload a deadline. Early data: an upload's data follows its STOR at once; progress counts only
from the server's 150, and a refused STOR reports none."""

import os

from servers.scripted_ftp import ScriptedFTP
from test_ftp_client import Session, write
from test_ftp_scripted import run

DATA = os.urandom(1000)


def upload(c, got=None):
    """The server side of an atomic upload up to its 226 (the data kept in got["data"])."""
    c.expect("TYPE", "200 Type set to I")
    data_sock = c.accept(c.passive())
    c.expect("STOR", "150 Ok to send data.")
    data = c.receive_all(data_sock)
    if got is not None:
        got["data"] = data
    c.reply("226 Transfer complete.")


def group(c):
    """The three commands of the group, read without answering any: a client that waits for a
    reply before its next command never gets here (the script's deadline fails the test)."""
    return [c.command() for _ in range(3)]


def verified_put(tmp_path, replies, **knobs):
    """A verified put whose group the server answers with `replies` (in one write), then a PWD:
    returns (the put, the PWD, the group the server read)."""
    seen = {}

    def script(c):
        c.login()
        upload(c, seen)
        seen["group"] = group(c)
        c.reply("\n".join(replies))
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    ops = {}

    def test(s):
        ops["put"] = s.client.put(write(tmp_path, "scan.csv", DATA), "scan.csv", resume=False, verify=True)
        ops["pwd"] = s.client.pwd()
        s.wait(s.login, ops["put"], ops["pwd"])

    run(script, test, **knobs)
    assert seen["data"] == DATA
    return ops["put"], ops["pwd"], seen["group"]


def test_a_verified_upload_sends_rnfr_rnto_and_size_at_once(tmp_path):
    put, pwd, sent = verified_put(tmp_path, ["350 Ready.", "250 Renamed.", "213 1000"])
    assert sent == [("RNFR", ".scan.csv.part"), ("RNTO", "scan.csv"), ("SIZE", "scan.csv")]
    assert put.error is None and put.result == 1000 and pwd.result == "/"


def test_a_refused_rnfr_fails_the_upload_and_each_reply_stays_with_its_command(tmp_path):
    # RNTO then has no source (503) and SIZE finds no file: the PWD after still gets its own reply
    put, pwd, _ = verified_put(tmp_path, ["550 No such file.", "503 RNFR first.", "550 No such file."])
    assert put.error.code == 550 and put.error.text == "No such file." and pwd.result == "/"


def test_a_refused_rnto_fails_the_upload_even_when_the_final_name_has_the_right_size(tmp_path):
    # a file of the same size already under the final name (say, another device's) is no proof
    put, pwd, _ = verified_put(tmp_path, ["350 Ready.", "553 Not allowed.", "213 1000"])
    assert put.error.code == 553 and put.error.text == "Not allowed." and pwd.result == "/"


def test_a_226_then_a_short_file_fails_the_upload_naming_both_sizes(tmp_path):
    put, pwd, _ = verified_put(tmp_path, ["350 Ready.", "250 Renamed.", "213 999"])
    assert str(put.error) == "put: scan.csv: the server has 999 bytes, not 1000"
    assert put.error.code is None and pwd.result == "/"


def test_without_pipelining_the_group_goes_one_command_at_a_time(tmp_path):
    def script(c):
        c.login()
        upload(c)
        for verb, answer in (("RNFR", "350 Ready."), ("RNTO", "250 Renamed."), ("SIZE", "213 1000")):
            c.expect(verb)
            assert c._buf == b""  # nothing sent after it before its reply
            c.reply(answer)
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", DATA), "scan.csv", resume=False, verify=True)
        s.wait(s.login, put)
        assert put.error is None

    srv = run(script, test, pipeline=False)
    assert srv.verbs()[-3:] == ["RNFR", "RNTO", "SIZE"]


def test_a_server_that_drops_piggybacked_commands_turns_pipelining_off(tmp_path):
    # it reads one command per segment and drops the rest: the group's RNTO is never answered.
    # The put fails at the reply deadline, the session pipelines no more, and the same upload
    # then goes through on the next connection, one command at a time
    def dropping(c):
        c.login()
        upload(c)
        c.expect("RNFR")
        c._buf = b""  # RNTO and SIZE, read with RNFR, are dropped
        c.reply("350 Ready.")
        c.wait_closed()

    def sync(c):
        c.login()
        upload(c)
        for verb, answer in (("RNFR", "350 Ready."), ("RNTO", "250 Renamed."), ("SIZE", "213 1000")):
            c.expect(verb)
            assert c._buf == b""
            c.reply(answer)
        c.wait_closed()

    path = write(tmp_path, "scan.csv", DATA)
    with ScriptedFTP(dropping) as first, ScriptedFTP(sync) as second:
        s = Session(first, reply_timeout_ms=500)
        try:
            put = s.client.put(path, "scan.csv", resume=False, verify=True)
            s.wait(s.login, put)
            assert put.error.code is None and put.error.text == "no reply from the server within 500 ms"
            assert s.client.pipeline is False and not s.client.connected
            login = s.client.connect("127.0.0.1", second.port, second.user, second.password)
            put = s.client.put(path, "scan.csv", resume=False, verify=True)
            s.wait(login, put)
            assert login.error is None and put.error is None and put.result == 1000
        finally:
            s.close()


def test_upload_data_goes_before_the_150_and_progress_counts_from_it(tmp_path):
    seen = {}

    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        data_sock = c.accept(c.passive())
        c.expect("STOR")
        seen["data"] = c.receive_all(data_sock)  # all of it, before the 150
        c.reply("150 Ok to send data.\n226 Transfer complete.")
        c.expect("RNFR", "350 Ready.")
        c.expect("RNTO", "250 Renamed.")
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", DATA), "scan.csv", resume=False)
        s.wait(s.login, put)
        assert put.error is None
        assert [(done, total) for op, done, total in s.progress] == [(1000, 1000)]  # at the 150

    run(script, test, pipeline=False)
    assert seen["data"] == DATA


def test_a_stor_refused_after_its_data_went_reports_no_progress(tmp_path):
    # the data went early, but the server refuses the STOR: it stored none of it, so nothing may
    # count as sent (the upload job journals a scan at its first progress report)
    def script(c):
        c.login()
        c.expect("TYPE", "200 Type set to I")
        data_sock = c.accept(c.passive())
        c.expect("STOR")
        c.receive_all(data_sock)
        c.reply("553 Not allowed.")
        c.expect("PWD", '257 "/"')
        c.wait_closed()

    def test(s):
        put = s.client.put(write(tmp_path, "scan.csv", DATA), "scan.csv", resume=False)
        pwd = s.client.pwd()
        s.wait(s.login, put, pwd)
        assert put.error.code == 553 and pwd.result == "/" and s.progress == []

    srv = run(script, test)
    assert "RNFR" not in srv.verbs()
