"""TLS on the board: an echo through a TLS session to the host, verified against a CA file on
the board's flash, and the steady state allocates nothing per chunk (the session's reads and
writes are the SSLSocket's own). On the unix port mbedtls takes its buffers from the system
allocator, so gc.mem_alloc sees ulnet's objects only (docs/tls.md)."""
import gc
import os

DEADLINE_S = 120
CA_PATH = "/ulnet_test_ca.der"  # removed again: the board's files stay as they were


def _echo(port, **tls):
    """Ping-pong 1 KB chunks through TLS: 256 round trips, then 200 more with the GC off;
    returns (bytes allocated over those 200, the socket's repr, what came back is right)."""
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP
    from ulnet.tls import TLSSession

    ev = Eventer()
    tcp = TCP(ev)
    tcp.session = TLSSession(**tls)
    chunk = bytearray(1024)
    for i in range(1024):
        chunk[i] = (i * 7) % 256
    buf = bytearray(1024)
    state = [0, 0, True]  # round trips, bytes of the current one back, all bytes right
    errors = []

    def bounce(sock):
        n = sock.recv_into(buf, 1024 - state[1])
        if not n:
            return
        if state[2] and buf[:n] != chunk[state[1]:state[1] + n]:  # slices: off when measuring
            state[2] = False
        state[1] += n
        if state[1] == 1024:
            state[0] += 1
            state[1] = 0
            sock.send(chunk)

    tcp.on_can_send = lambda s: s.send(chunk) if not state[0] and not state[1] else None
    tcp.on_receive = bounce
    tcp.on_error = lambda s, e: errors.append(e)
    sock = tcp.connect("127.0.0.1", port, 10000)
    ev.run_until(lambda: state[0] >= 256 or errors, 60000)
    assert not errors, errors
    return ev, sock, state, errors


def test_tls_echo_with_cafile_on_flash_allocates_nothing_per_chunk(tls_echo):
    port, ca, _ = tls_echo
    with open(CA_PATH, "wb") as f:
        f.write(ca)
    try:
        ev, sock, state, errors = _echo(port, cafile=CA_PATH)
    finally:
        os.remove(CA_PATH)
    assert repr(sock) == "<Socket connected 127.0.0.1:%d tls verified>" % port, repr(sock)
    assert state[2]
    # the steady state: 200 more round trips (one 1 KB write, reads until it is back) with the
    # GC off. The check in bounce allocates a slice per read, so it is off meanwhile
    checked = state[2]
    state[2] = None
    gc.collect()
    gc.disable()
    try:
        start = state[0]
        before = gc.mem_alloc()
        while state[0] < start + 200 and not errors:
            ev.call_action(1000)
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    sock.disconnect()
    assert checked and not errors, errors
    assert used == 0, "%d bytes allocated over 200 TLS round trips" % used


def test_tls_echo_with_a_pinned_certificate(tls_echo):
    port, _, pin = tls_echo
    ev, sock, state, errors = _echo(port, fingerprint=pin)
    assert repr(sock) == "<Socket connected 127.0.0.1:%d tls pinned>" % port
    assert state[2]
    sock.disconnect()
