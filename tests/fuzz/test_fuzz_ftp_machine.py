"""Fuzz: the FTP control-channel machine (core/ftp/protocol.py).

Properties: the same bytes give the same events and the same outcome whether they come whole or
split at any point (every point for short streams); a stream of valid replies gives exactly the
replies it holds, matched to the commands in order; whatever the bytes, only RemoteProtocolError
comes out, its buffer stays within one line and one read; a command is either formatted onto one
line or refused with LocalProtocolError leaving the machine as it was, and a password never
shows in anything the machine keeps or says.
"""

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from test_ftp_protocol import R, ev_list
from ulnet.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ulnet.ftp.protocol import ERROR, NEED_DATA, ConnectionClosed, FTPProtocol

MAX_LINE = FTPProtocol.max_line

# pieces of replies, so random streams often look like FTP and reach deep states; and runs of
# bytes around the line limit
PIECES = [b"1", b"2", b"3", b"5", b"0", b"9", b"-", b" ", b"\r", b"\n", b"\r\n", b"220", b"211-",
          b"211 End", b"421 ", b"150 ", b"226 ok", b"230-", b"\x1b[2J", b"\xc2\x9b", b"\xff", b"\x00",
          b"caf\xc3\xa9", b"x" * 100]
REPLY_LIKE = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)), max_size=40).map(b"".join)
LONG_LINE = st.tuples(st.sampled_from([b"", b"200 ok\r\n", b"211-a\r\n"]), st.integers(MAX_LINE - 8, MAX_LINE + 8),
                      st.sampled_from([b"", b"\n", b"\r\n", b"\r", b"\r\n200 more\r\n"])).map(
    lambda t: t[0] + b"220 " + b"y" * t[1] + t[2])
VERBS = ["NOOP", "STOR", "FEAT", "USER", "QUIT", "RETR", "PASV", "PASS"]
TEXT = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


def shown(text):
    """text as the machine shows it: control characters (C0 but TAB, DEL, C1) as U+FFFD."""
    return "".join("\ufffd" if (ord(c) < 32 and c != "\t") or 127 <= ord(c) < 160 else c for c in text)


@st.composite
def reply_streams(draw):
    """(bytes, expected replies as (code, lines, final), number of final replies) for a stream
    of valid replies, one or several lines each."""
    out, events, finals = [], [], 0
    for _ in range(draw(st.integers(1, 8))):
        code = draw(st.integers(100, 599))
        end = draw(st.sampled_from([b"\r\n", b"\n"]))
        first = draw(TEXT)
        if draw(st.booleans()):  # multi-line
            inner = draw(st.lists(TEXT, max_size=5))
            inner = [t for t in inner if t[:4] != "%d " % code and t != str(code)]
            last = draw(TEXT)
            lines = [first] + inner + [last]
            raw = ("%d-%s" % (code, first)).encode() + end
            raw += b"".join(t.encode() + end for t in inner)
            raw += ("%d %s" % (code, last)).encode() + end
        else:
            lines = [first]
            raw = ("%d %s" % (code, first)).encode() + end
        out.append(raw)
        events.append((code, lines, code >= 200))
        finals += code >= 200
    return b"".join(out), events, finals


def expected_events(events, commands):
    """The replies as the machine must give them, matched to the pending commands in order."""
    pending = list(commands)
    expected = []
    for code, lines, final in events:
        verb = pending[0] if pending else None
        if final and pending:
            pending.pop(0)
        expected.append(R(code, verb, [shown(line) for line in lines], final))
    return expected


def machine(verbs):
    proto = FTPProtocol()
    for verb in verbs:
        proto.send(verb, None if verb in ("NOOP", "FEAT", "QUIT", "PASV") else "x")
    return proto


def outcome(verbs, chunks):
    """What a fresh machine (verbs sent) makes of the chunks: (events, error, state), checking on
    the way that it never holds more than one line and one chunk."""
    proto = machine(verbs)
    events, error = [], None
    try:
        for chunk in chunks:
            proto.receive_data(chunk)
            assert len(proto._buf) - proto._start <= MAX_LINE + 2 + len(chunk)
            while True:
                event = proto.next_event()
                if event is NEED_DATA:
                    break
                events.append(ev_list(event))
                if isinstance(event, ConnectionClosed):
                    return events, error, proto.state
    except RemoteProtocolError as exc:
        error = (exc.message, exc.code)
        assert proto.state == ERROR and len(proto._buf) == 0  # released at once
    return events, error, proto.state


def split_points(data, draw_points):
    """Every point for a short stream; around the line limit and some others for a long one."""
    if len(data) <= 300:
        return range(1, len(data))
    near = [p for p in range(MAX_LINE - 12, MAX_LINE + 16) if 0 < p < len(data)]
    return sorted(set(near + [p % (len(data) - 1) + 1 for p in draw_points]))


@fuzz(150)
@given(st.lists(st.sampled_from(VERBS), max_size=5), st.one_of(REPLY_LIKE, LONG_LINE), st.booleans(),
       st.lists(st.integers(0, 10 ** 6), max_size=40))
def test_the_same_bytes_give_the_same_events_however_split(verbs, data, eof, points):
    tail = [b""] if eof else []
    whole = outcome(verbs, [data] + tail if data else tail)
    for at in split_points(data, points):
        assert outcome(verbs, [data[:at], data[at:]] + tail) == whole, at


@fuzz(300)
@given(st.lists(st.sampled_from(VERBS), max_size=5), st.lists(st.binary(min_size=1, max_size=64), max_size=12),
       st.booleans())
def test_any_bytes_in_any_pieces_raise_only_remote_errors(verbs, chunks, eof):
    events, error, state = outcome(verbs, chunks + ([b""] if eof else []))
    assert (error is None) == (state != ERROR)
    assert outcome(verbs, [b"".join(chunks)] + ([b""] if eof else []) if chunks or eof else []) == (events, error, state)


@fuzz(150)
@given(reply_streams(), st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_valid_replies_come_out_as_sent_matched_to_their_commands(stream, cuts):
    data, events, finals = stream
    commands = [""] + ["NOOP"] * finals
    chunks, i, k = [], 0, 0
    while i < len(data):
        chunks.append(data[i:i + cuts[k % len(cuts)]])
        i, k = i + cuts[k % len(cuts)], k + 1
    got, error, _ = outcome(commands[1:], chunks)
    assert error is None and got == expected_events(events, commands)


ARGS = st.one_of(st.none(), st.text(max_size=12), st.binary(max_size=12), st.integers(-3, 10 ** 12),
                 st.lists(st.text(max_size=2), max_size=2))
ANY_VERB = st.one_of(st.sampled_from(["USER", "PASS", "ACCT", "TYPE", "PASV", "EPSV", "PORT", "STOR",
                                      "REST", "SIZE", "LIST", "CWD", "PWD", "MKD", "NOOP", "QUIT",
                                      "OPTS", "SITE", "noop", "Stor"]), st.text(max_size=6), st.none())


@fuzz(300)
@given(st.lists(st.tuples(ANY_VERB, ARGS), max_size=4))
def test_a_command_is_one_line_or_refused_leaving_the_machine_as_it_was(commands):
    proto = machine(["USER"])
    proto.receive_data(b"220 hi\r\n331 pw\r\n")
    assert [e.code for e in iter(proto.next_event, NEED_DATA)] == [220, 331]
    proto.transfer_type = "I"  # so SIZE is a plain command here (its rule has its own test)
    for verb, arg in commands:
        before = (proto.state, list(proto.pending), proto.transfer_type)
        try:
            line = proto.send(verb, arg)
        except LocalProtocolError as exc:
            assert (proto.state, proto.pending, proto.transfer_type) == before
            if verb == "PASS" and isinstance(arg, str) and len(arg) > 3:
                assert arg not in str(exc) and arg not in repr(vars(proto))
            continue
        assert line.endswith(b"\r\n") and b"\r" not in line[:-2] and b"\n" not in line[:-2]
        assert line[:4].rstrip() == verb.upper().encode() and proto.pending[-1] == verb.upper()
        if verb.upper() == "PASS" and isinstance(arg, str) and len(arg) > 3:
            assert arg not in repr(proto) and arg not in repr(vars(proto))


def test_the_helpers_see_what_they_should():
    # the properties above compare outcomes: a sanity check that an outcome holds events and
    # errors at all (a helper that always returned ([], None, state) would pass them)
    assert outcome(["NOOP"], [b"220 hi\r\n200 ok\r\n"])[0] == [R(220, "", ["hi"]), R(200, "NOOP", ["ok"])]
    assert outcome([], [b"x" * (MAX_LINE + 10)])[1] == ("reply line longer than %d bytes" % MAX_LINE, None)
    assert isinstance(RemoteProtocolError("x"), ProtocolError)
