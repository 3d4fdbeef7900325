"""Fuzz: the Telnet machine (core/telnet/protocol.py).

Properties: the data out equals the data in minus the commands, however the stream is cut;
arbitrary bytes never raise anything but RemoteProtocolError and give the same events (and the
same answers to the peer) whether they come whole or split at any point; OptionChanged events
replay option_enabled whatever the peer and the caller do.
"""

from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from test_telnet_protocol import (
    AO, AYT, BINARY, BRK, DM, DO, DONT, EC, ECHO, EL, GA, IAC, IP, NAWS, NOP, SB, SE, SGA, TTYPE, WILL,
    WONT, describe, drain, merged, seq,
)
from ulnet.errors import RemoteProtocolError
from ulnet.telnet.protocol import Command, Data, OptionChanged, TelnetProtocol

TWO_BYTE = (NOP, DM, BRK, IP, AO, AYT, EC, EL, GA)
VERBS = (DO, DONT, WILL, WONT)
NOT_BINARY = st.integers(1, 255)  # BINARY would switch CR NUL decoding off midway


def escape(data):
    return data.replace(b"\xff", b"\xff\xff")


items = st.one_of(
    st.binary(max_size=40).map(lambda d: ("data", d)),
    st.sampled_from(TWO_BYTE).map(lambda c: ("cmd", c)),
    st.tuples(st.sampled_from(VERBS), NOT_BINARY).map(lambda v: ("neg",) + v),
    st.tuples(st.integers(0, 255), st.binary(max_size=30)).map(lambda s: ("sb",) + s),
)


def build(parts):
    """The wire bytes, the data the peer meant and the commands it sent, from a list of items."""
    wire, data, run, commands = b"", b"", b"", []
    for part in parts:
        if part[0] == "data":
            wire += escape(part[1])
            run += part[1]
            continue
        data += run.replace(b"\r\0", b"\r")  # RFC 854 inside one run of data (BSD: a command ends it)
        run = b""
        if part[0] == "cmd":
            wire += seq(IAC, part[1])
            commands.append(part[1])
        elif part[0] == "neg":
            wire += seq(IAC, part[1], part[2])
        else:
            wire += seq(IAC, SB) + escape(bytes((part[1],)) + part[2]) + seq(IAC, SE)
    return wire, data + run.replace(b"\r\0", b"\r"), commands


def feed(wire, cuts):
    """Events (as tuples, a RemoteProtocolError as ("error",)) and the bytes to send, from wire
    fed to a fresh machine in pieces cut at cuts."""
    proto = TelnetProtocol(term=["A", "B"], size=(255, 255))
    events, out, start = [], b"", 0
    for point in sorted(set(cuts)) + [len(wire)]:
        if point > start and proto.state == "OPEN":
            proto.receive_data(wire[start:point])
            out += proto.data_to_send()
            assert isinstance(out, bytes)
            try:
                events += [describe(e) for e in drain(proto)]
            except RemoteProtocolError:
                events.append(("error",))
            start = point
    return merged(events), out


@fuzz(300)
@given(st.lists(items, max_size=30), st.lists(st.integers(0, 10 ** 6), max_size=8))
def test_data_out_equals_data_in_minus_commands(parts, cuts):
    wire, data, commands = build(parts)
    events, _ = feed(wire, [c % (len(wire) + 1) for c in cuts])
    assert b"".join(e[1] for e in events if e[0] == "Data") == data
    assert [e[1] for e in events if e[0] == "Command"] == commands


RAW = st.one_of(st.binary(max_size=80), st.lists(items, max_size=12).map(lambda parts: build(parts)[0]),
                st.lists(st.sampled_from([b"\xff", b"\xfa", b"\xf0", b"\xfb", b"\xfd", b"\x18", b"\x1f",
                                          b"\r", b"\x00", b"\n", b"a"]), max_size=60).map(b"".join))


@fuzz(200)
@given(RAW)
def test_any_bytes_give_the_same_events_and_answers_however_split(wire):
    whole = feed(wire, [])
    for at in range(1, len(wire)):
        assert feed(wire, [at]) == whole, at


SOME_OPTIONS = st.sampled_from((ECHO, SGA, BINARY, NAWS, TTYPE, 99))
OPS = st.one_of(
    st.tuples(st.just("receive"), st.binary(min_size=1, max_size=24)),
    st.tuples(st.just("negotiate"), st.sampled_from(VERBS), SOME_OPTIONS),
    st.tuples(st.just("request"), SOME_OPTIONS, st.sampled_from(VERBS)),
    st.tuples(st.just("set_size"), st.integers(0, 300), st.integers(0, 300)),
    st.tuples(st.just("send_data"), st.binary(max_size=8)),
)


@fuzz(200)
@given(st.lists(OPS, max_size=40))
def test_option_changed_tracks_option_enabled(ops):
    """Whatever the peer and the caller do, OptionChanged events replay option_enabled."""
    proto, seen = TelnetProtocol(), {}
    for op in ops:
        if proto.state != "OPEN":
            break
        if op[0] == "receive":
            proto.receive_data(op[1])
        elif op[0] == "negotiate":
            proto.receive_data(seq(IAC, op[1], op[2]))
        else:
            assert isinstance(getattr(proto, op[0])(*op[1:]), bytes)
        try:
            for event in drain(proto):
                if type(event) is OptionChanged:
                    assert seen.get((event.option, event.remote), False) != event.enabled
                    seen[(event.option, event.remote)] = event.enabled
        except RemoteProtocolError:
            return
        for option in (ECHO, SGA, BINARY, NAWS, TTYPE, 99):
            for remote in (True, False):
                assert proto.option_enabled(option, remote) == seen.get((option, remote), False)


def test_the_helpers_see_what_they_should():
    wire = seq(b"hi", IAC, AYT, IAC, WILL, ECHO)
    assert feed(wire, [1]) == ([("Data", b"hi"), describe(Command(AYT)), describe(OptionChanged(ECHO, True, True))],
                               seq(IAC, DO, ECHO))
    assert Data(b"a") != Data(b"b")
