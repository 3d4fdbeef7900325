"""Ports: the only place that knows a runtime's selector and socket API.

`load(name)` returns a port module by name; `None` picks the best one for the running runtime.
"""

import sys

NAMES = ("desktop", "upy", "ce")


def default_name():
    return "upy" if sys.implementation.name == "micropython" else "desktop"


def load(name=None):
    if name is None:
        name = default_name()
    if name not in NAMES:
        raise ValueError("unknown port %r (known: %s)" % (name, ", ".join(NAMES)))
    return __import__("ulnet.ports." + name, None, None, ["Port"])
