"""ulnet: a small event-driven networking stack for CPython and MicroPython.

Names are re-exported lazily (module __getattr__, which both runtimes support) so that
`import ulnet` on a board loads only what the program touches: a scanner that only uploads
never loads Telnet or UDP.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # "Name:module" pairs in one string: on a board a dict of 16 entries costs ~2 KB of heap,
    # this string a few hundred bytes
    where = (
        " Eventer:eventer Timer:eventer Socket:socket TCP:tcp UDP:udp NetError:errors"
        " TimeoutError:errors ProtocolError:errors LocalProtocolError:errors"
        " RemoteProtocolError:errors FTPClient:ftp.client FTPSession:ftp.session FTP:ftp.blocking"
        " FTPError:ftp.ops TelnetClient:telnet.client Telnet:telnet.blocking Spool:spool"
        " TLSSession:tls "
    )
    at = where.find(" " + name + ":")
    if at < 0:
        raise AttributeError("module 'ulnet' has no attribute '%s'" % name)
    start = at + len(name) + 2
    module = __import__("ulnet." + where[start:where.find(" ", start)], None, None, [name])
    value = getattr(module, name)
    globals()[name] = value
    return value
