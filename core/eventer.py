"""The eventer: one dispatch loop over a port poller, timers, deferred reports and closes.

Rules (lNet's CallAction, kept):
- One round = poll the port once (it calls each ready handle's `_hint(flags)`), then settle the
  sockets that queued a report (errors, end of stream), then fire due timers, then close the
  sockets closed during the round. Closing is deferred to the end of the round so a handle
  closed by a callback is never reused by the OS while the round still holds events for it.
- The eventer never knows a protocol, and only the port knows the runtime's selector API.
- Steady state allocates nothing per round on MicroPython: the lists below are reused and
  timers are re-armed in place (`Timer.restart`).
- A deadline never comes early: ticks are whole milliseconds, truncated, so "now" may be up to
  1 ms past the tick it reads; a timer or run_until of ms > 0 is due one tick after now + ms,
  so at least ms of real time passes first (at most one more, plus the loop's latency).
"""

import sys

from ulnet.errors import TimeoutError


def report_exception(exc):
    """Print a handler's exception that nobody could take; the loop goes on."""
    try:
        sys.print_exception(exc)  # MicroPython
    except AttributeError:
        sys.excepthook(type(exc), exc, exc.__traceback__)  # CPython


class Timer:
    """A one-shot timer from `Eventer.call_later`; `restart` re-arms it without allocating."""

    def __init__(self, eventer, fn):
        self.eventer = eventer
        self.fn = fn
        self.due = 0
        self.active = False
        # True while the timer sits in the eventer's list (a cancelled one stays until a scan)
        self._queued = False

    def cancel(self):
        self.active = False
        # out of the list at once (a connect per upload must not leave one behind each), except
        # during a scan, which drops inactive timers itself
        ev = self.eventer
        if self._queued and not ev._scanning:
            self._queued = False
            ev._timers.remove(self)
            if not ev._timers:
                ev._deadline = None  # nothing left to wake up for

    def restart(self, ms):
        """(Re-)arm to fire ms from now, in place: nothing is allocated."""
        ev = self.eventer
        port = ev.port
        # + 1: never early (see above); 0 stays "the next round"
        self.due = due = port.ticks_add(port.ticks_ms(), ms + 1 if ms > 0 else ms)
        self.active = True
        if not self._queued:
            self._queued = True
            ev._timers.append(self)
        if ev._deadline is None or port.ticks_diff(due, ev._deadline) < 0:
            ev._deadline = due


class Eventer:
    """One event loop. `port=None` picks the runtime's best port; options go to the port."""

    def __init__(self, port=None, **options):
        if port is None:
            port = "upy" if sys.implementation.name == "micropython" else "desktop"
        if port not in ("desktop", "upy", "ce"):
            raise ValueError("unknown port %r (known: desktop, upy, ce)" % (port,))
        self.port = __import__("ulnet.ports." + port, None, None, ["Port"]).Port(**options)
        self._timers = []
        self._scanning = False  # inside _fire_timers: the list must not shift under it
        # _deadline: the earliest due time among queued timers (None: no timer queued)
        self._deadline = None
        # sockets that queued a report (error, end of stream): settled after the dispatch
        self._pending = []
        # sockets closed during the current round, closed for real when it ends
        self._closing = []
        self._in_round = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close every socket still registered (no callbacks), then the port's poller."""
        for handle in self.port.handles():
            handle.disconnect()
        self._timers.clear()
        self.port.close()

    # -- rounds ---------------------------------------------------------------------------

    def call_action(self, timeout_ms=0):
        """Run one round, waiting up to timeout_ms for events (-1 or None: no limit)."""
        port = self.port
        if timeout_ms is None:
            timeout_ms = -1
        if self._pending:
            timeout_ms = 0
        elif self._deadline is not None:
            wait = port.ticks_diff(self._deadline, port.ticks_ms())
            if wait < 0:
                wait = 0
            if timeout_ms < 0 or wait < timeout_ms:
                timeout_ms = wait
        self._in_round = True
        try:
            port.dispatch(timeout_ms)
            pending = self._pending
            if pending:
                i = 0
                # settling may queue more sockets; they are settled in this same pass
                while i < len(pending):
                    pending[i]._settle()
                    i += 1
                pending.clear()
            if self._timers:
                self._fire_timers()
        finally:
            self._in_round = False
            closing = self._closing
            if closing:
                for sock in closing:
                    sock._close()  # out of the round now: this closes for real
                closing.clear()

    def run_until(self, predicate, timeout_ms):
        """Run rounds until predicate() is true; raise ulnet.TimeoutError at the deadline."""
        port = self.port
        deadline = port.ticks_add(port.ticks_ms(), timeout_ms + 1)  # + 1: never early (see above)
        while not predicate():
            left = port.ticks_diff(deadline, port.ticks_ms())
            if left <= 0:
                raise TimeoutError("run_until: condition not met within %d ms" % timeout_ms)
            self.call_action(left)

    # -- timers ---------------------------------------------------------------------------

    def call_later(self, ms, fn):
        """Call fn() once, ms milliseconds from now; returns the Timer (cancel, restart)."""
        timer = Timer(self, fn)
        timer.restart(ms)
        return timer

    def _fire_timers(self):
        port = self.port
        now = port.ticks_ms()
        if self._deadline is not None and port.ticks_diff(self._deadline, now) > 0:
            return
        timers = self._timers
        # callbacks may arm timers during the scan: restart lowers _deadline for them, and they
        # land past `end`, so a callback re-arming itself with 0 ms cannot spin in one scan
        self._deadline = None
        self._scanning = True
        end = len(timers)
        i = 0
        next_due = None
        try:
            while i < end:
                timer = timers[i]
                due_now = timer.active and port.ticks_diff(timer.due, now) <= 0
                if due_now or not timer.active:
                    timer._queued = False
                    timers.pop(i)
                    end -= 1
                    if due_now:
                        timer.active = False
                        try:
                            timer.fn()
                        except Exception as exc:
                            report_exception(exc)
                    continue
                if next_due is None or port.ticks_diff(timer.due, next_due) < 0:
                    next_due = timer.due
                i += 1
        finally:
            self._scanning = False
        if next_due is not None:
            if self._deadline is None or port.ticks_diff(next_due, self._deadline) < 0:
                self._deadline = next_due
