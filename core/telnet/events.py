"""Events of the Telnet protocol machine, and NEED_DATA.

Rules: events are nouns with plain attributes, created by the machine only and never changed
afterwards; they compare by type and fields, so transcript tests compare whole lists, and their
repr is the same on CPython and MicroPython. No typing or dataclasses (MicroPython lacks them).
"""


class _Sentinel:
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")  # next_event(): nothing more until receive_data is called


class Event:
    """Base of the events: compares by type and fields, so transcripts can compare lists."""

    _fields = ()

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        for name in self._fields:
            if getattr(self, name) != getattr(other, name):
                return False
        return True

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        args = ", ".join("%s=%r" % (name, getattr(self, name)) for name in self._fields)
        return "%s(%s)" % (type(self).__name__, args)


class Data(Event):
    """Received data (bytes), commands removed, IAC IAC and CR NUL decoded."""

    _fields = ("data",)

    def __init__(self, data):
        self.data = data


class Command(Event):
    """A two-byte command from the peer: `command` is the byte after IAC (NOP, GA, AYT, DM,
    BRK, IP, AO, EC, EL, EOR, ...; any byte that is not IAC, SB or a verb, even an unassigned
    one, so nothing after IAC is ever mistaken for data)."""

    _fields = ("command",)

    def __init__(self, command):
        self.command = command


class OptionChanged(Event):
    """option_enabled(option, remote) is now `enabled`; remote=True is the peer's side."""

    _fields = ("option", "remote", "enabled")

    def __init__(self, option, remote, enabled):
        self.option = option
        self.remote = remote
        self.enabled = enabled


class ConnectionClosed(Event):
    """The peer closed the connection; next_event() keeps returning it once the queue is empty."""
