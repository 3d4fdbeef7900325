"""ulnet: a small event-driven networking stack for CPython and MicroPython.

Names are re-exported lazily (module __getattr__, which both runtimes support) so that
`import ulnet` on a board loads only what the program touches: a scanner that only uploads
never loads Telnet.
"""

# public name -> module that defines it
_WHERE = {
    "Eventer": "eventer",
    "Timer": "eventer",
    "Socket": "socket",
    "TCP": "tcp",
    "UDP": "udp",
    "NetError": "errors",
    "TimeoutError": "errors",
    "ProtocolError": "errors",
    "LocalProtocolError": "errors",
    "RemoteProtocolError": "errors",
    "FTPClient": "ftp.client",
    "FTP": "ftp.blocking",
    "FTPError": "ftp.errors",
    "TelnetClient": "telnet.client",
    "Telnet": "telnet.blocking",
    "Spool": "spool",
}

__version__ = "0.1.0"


def __getattr__(name):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError("module 'ulnet' has no attribute '%s'" % name)
    module = __import__("ulnet." + where, None, None, [name])
    value = getattr(module, name)
    globals()[name] = value
    return value
