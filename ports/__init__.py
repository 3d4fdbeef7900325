"""Ports: the only place that knows a runtime's selector and socket API.

`load(name)` returns a port module by name ("desktop", "upy", "ce"); `None` picks the best one
for the running runtime.
"""


def load(name=None):
    if name is None:
        import sys

        name = "upy" if sys.implementation.name == "micropython" else "desktop"
    if name not in ("desktop", "upy", "ce"):
        raise ValueError("unknown port %r (known: desktop, upy, ce)" % (name,))
    return __import__("ulnet.ports." + name, None, None, ["Port"])
