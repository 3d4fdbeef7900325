"""Timers and the allocation-free steady state on the board."""
import gc

DEADLINE_S = 60
FREE_HEAP = "38K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "16K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def test_timers_fire_in_order_and_cancel():
    from ulnet.eventer import Eventer

    ev = Eventer()
    fired = []
    ev.call_later(60, lambda: fired.append("b"))
    ev.call_later(20, lambda: fired.append("a"))
    dead = ev.call_later(30, lambda: fired.append("x"))
    dead.cancel()
    ev.run_until(lambda: len(fired) == 2, 3000)
    for _ in range(5):
        ev.call_action(20)
    assert fired == ["a", "b"]


def _measure(ev, count, total):
    """Bytes allocated while `count()` advances by `total` events."""
    gc.collect()
    gc.disable()
    try:
        start = count()
        before = gc.mem_alloc()
        while count() < start + total:
            ev.call_action(1000)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def test_zero_bytes_allocated_per_event():
    """1,000 receive, 1,000 can-send and 1,000 timer events allocate nothing."""
    from ulnet.eventer import Eventer
    from ulnet.tcp import TCP

    ev = Eventer()
    server = TCP(ev)
    listener = server.listen(0)
    sbuf = bytearray(64)

    def echo(sock):
        n = sock.recv_into(sbuf)
        if n:
            sock.send(sbuf, 0, n)

    server.on_receive = echo
    client = TCP(ev)
    cbuf = bytearray(64)
    received = [0]

    def bounce(sock):
        n = sock.recv_into(cbuf)
        if n:
            received[0] += 1
            sock.send(cbuf, 0, n)

    client.on_receive = bounce
    client.on_can_send = lambda s: s.send(cbuf, 0, 16) if not received[0] else None
    sock = client.connect("127.0.0.1", listener.local_port)
    ev.run_until(lambda: received[0] > 10, 5000)
    receive_bytes = _measure(ev, lambda: received[0], 1000)

    big = bytearray(2048)
    can_send = [0]

    def fill(s):
        can_send[0] += 1
        while s.send(big):
            pass

    def drain(s):
        while s.recv_into(big):
            pass

    server.on_receive = drain
    client.on_receive = None
    client.on_can_send = fill
    fill(sock)
    can_send_bytes = _measure(ev, lambda: can_send[0], 1000)

    client.on_can_send = None
    ticks = [0]

    def tick():
        ticks[0] += 1
        timer.restart(0)

    timer = ev.call_later(0, tick)
    timer_bytes = _measure(ev, lambda: ticks[0], 1000)
    timer.cancel()
    assert (receive_bytes, can_send_bytes, timer_bytes) == (0, 0, 0), (receive_bytes, can_send_bytes, timer_bytes)
