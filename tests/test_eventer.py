"""The eventer alone: timers, run_until, deferred reports."""

import time

import pytest

import ulnet


def test_call_later_fires_once_in_order(ev):
    fired = []
    ev.call_later(60, lambda: fired.append("b"))
    ev.call_later(20, lambda: fired.append("a"))
    t0 = time.monotonic()
    ev.run_until(lambda: len(fired) == 2, 2000)
    assert fired == ["a", "b"]
    assert time.monotonic() - t0 >= 0.055
    for _ in range(5):
        ev.call_action(10)
    assert fired == ["a", "b"]


def test_cancel_and_restart(ev):
    fired = []
    t1 = ev.call_later(30, lambda: fired.append(1))
    t2 = ev.call_later(30, lambda: fired.append(2))
    t1.cancel()
    ev.run_until(lambda: fired, 2000)
    t2.restart(10)
    ev.run_until(lambda: len(fired) == 2, 2000)
    for _ in range(5):
        ev.call_action(10)
    assert fired == [2, 2]
    assert not t1.active and not t2.active


def test_restart_to_an_earlier_time_from_another_timer(ev):
    fired = []
    late = ev.call_later(5000, lambda: fired.append("late"))
    ev.call_later(10, lambda: late.restart(10))
    t0 = time.monotonic()
    ev.run_until(lambda: fired, 2000)
    assert time.monotonic() - t0 < 1.5


def test_timer_rearming_itself_with_zero_does_not_spin_one_round(ev):
    count = [0]

    def again():
        count[0] += 1
        timer.restart(0)

    timer = ev.call_later(0, again)
    ev.call_action(0)
    assert count[0] == 1
    ev.call_action(0)
    assert count[0] == 2
    timer.cancel()


def test_a_raising_timer_does_not_stop_the_others(ev, capsys):
    fired = []

    def boom():
        raise RuntimeError("timer bug")

    ev.call_later(0, boom)
    ev.call_later(0, lambda: fired.append("ok"))
    ev.run_until(lambda: fired, 1000)
    assert "timer bug" in capsys.readouterr().err


def test_run_until_raises_timeout_error_at_the_deadline(ev):
    t0 = time.monotonic()
    with pytest.raises(ulnet.TimeoutError) as info:
        ev.run_until(lambda: False, 150)
    took = time.monotonic() - t0
    assert 0.15 <= took < 0.6  # never early; late only by the loop's latency under load
    assert isinstance(info.value, ulnet.NetError)


def test_a_deadline_never_comes_early(ev):
    # ticks are whole milliseconds, truncated: armed 0.9 ms into a tick, a timer of ms due at
    # now + ms would fire 0.1 ms early. 300 short timers and waits, each timed with the clock
    # the ticks come from, while a timer that re-arms itself at once keeps the loop checking
    # (as a busy socket does), so a deadline is seen the moment its tick begins
    early = []

    def spin():
        spinner.restart(0)

    spinner = ev.call_later(0, spin)
    for i in range(300):
        ms = 1 + i % 4
        fired = []
        t0 = time.monotonic()
        ev.call_later(ms, lambda: fired.append(time.monotonic()))
        ev.run_until(lambda: fired, 1000)
        if fired[0] - t0 < ms / 1000:
            early.append(("timer", ms, fired[0] - t0))
        t0 = time.monotonic()
        with pytest.raises(ulnet.TimeoutError):
            ev.run_until(lambda: False, ms)
        if time.monotonic() - t0 < ms / 1000:
            early.append(("run_until", ms, time.monotonic() - t0))
    spinner.cancel()
    assert early == []


def test_close_closes_every_socket_without_callbacks(ev):
    tcp = ulnet.TCP(ev)
    listener = tcp.listen()
    events = []
    tcp.on_disconnect = lambda s: events.append("disconnect")
    tcp.on_error = lambda s, e: events.append("error")
    out = tcp.connect("127.0.0.1", listener.local_port)
    ev.run_until(lambda: out.state == "connected", 2000)
    ev.close()
    assert listener.state == "closed" and out.state == "closed"
    assert events == []
