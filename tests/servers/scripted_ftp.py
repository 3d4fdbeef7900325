"""A scripted FTP server for the tests: real FTP bytes over real sockets on 127.0.0.1, played by a
script function, for what real servers will not do on demand (replies cut at every byte, a 1 MB
line, a PASV reply naming another host, a lost greeting, a missing final reply...).

    def script(c):                       # c: Control, the server side of the control connection
        c.login()                        # 220, USER -> 331, PASS -> 230
        c.expect("PWD", '257 "/"')       # the next command must be PWD; answer it
        c.wait_closed()                  # until the client closes the control connection

    with ScriptedFTP(script) as srv:     # srv.url, srv.port; srv.commands: what arrived
        ...drive a client against srv.url...
    # leaving joins the script and re-raises what it raised (an unexpected command fails the test)

Rules: one client per server; the script runs in a thread; every socket wait has a deadline
(`deadline_s`), so a script waiting for a client that gave up fails instead of hanging.
"""

import socket
import ssl
import threading
import time

USER = "scanner"
PASSWORD = "s3cret"
# pause after each piece of a split send: long enough that the client reads each piece on its
# own on loopback, short enough that a reply cut at every byte costs a fraction of a second
PAUSE_S = 0.002


class ScriptedFTP:
    """Listen on host (any 127.x.y.z on Linux), accept one client and play `script(Control)`
    against it."""

    def __init__(self, script, user=USER, password=PASSWORD, deadline_s=10, host="127.0.0.1"):
        self.script = script
        self.user, self.password = user, password
        self.deadline_s = deadline_s
        self.host = host
        self.commands = []  # (verb, argument) of every command received, in order
        self.error = None  # what the script raised
        self._listener = socket.socket()
        self._listener.bind((host, 0))
        self._listener.listen(1)
        self._listener.settimeout(deadline_s)
        self.port = self._listener.getsockname()[1]
        self._sockets = [self._listener]
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self):
        return "ftp://%s:%s@%s:%d/" % (self.user, self.password, self.host, self.port)

    def verbs(self):
        return [verb for verb, _ in self.commands]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(self.deadline_s + 5)
        alive = self._thread.is_alive()
        for sock in self._sockets:
            sock.close()  # also ends a script stuck in a wait
        self._thread.join(5)
        if exc[0] is None:
            if alive:
                raise AssertionError("the script did not finish within %ss" % self.deadline_s)
            if self.error is not None:
                raise self.error

    def _run(self):
        try:
            sock, _ = self._listener.accept()
            self._sockets.append(sock)
            sock.settimeout(self.deadline_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.script(Control(self, sock))
        except BaseException as exc:  # handed to the test by __exit__
            self.error = exc


class Control:
    """The server side of one control connection: what a script calls."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self._buf = b""

    # -- control connection ------------------------------------------------------------------

    def send(self, data, pieces=None):
        """Send bytes; with `pieces`, cut into pieces of that many bytes (an int) or of those
        sizes (a list), each sent on its own after a pause."""
        if pieces is None:
            self.sock.sendall(data)
            return
        sizes = pieces if isinstance(pieces, list) else [pieces] * len(data)
        at = 0
        for size in sizes + [len(data)]:
            if at >= len(data):
                break
            self.sock.sendall(data[at:at + size])
            at += size
            time.sleep(PAUSE_S)

    def reply(self, text, pieces=None):
        """Send one reply (lines joined with CRLF), e.g. reply("200 ok")."""
        self.send(text.replace("\r\n", "\n").replace("\n", "\r\n").encode() + b"\r\n", pieces)

    def command(self):
        """The next command as (VERB, argument or None); (None, None) when the client closed."""
        while b"\r\n" not in self._buf:
            try:
                data = self.sock.recv(4096)
            except ConnectionResetError:  # the client closed with our bytes unread
                data = b""
            if not data:
                return None, None
            self._buf += data
        line, self._buf = self._buf.split(b"\r\n", 1)
        verb, _, arg = line.decode().partition(" ")
        self.server.commands.append((verb.upper(), arg if _ else None))
        return verb.upper(), (arg if _ else None)

    def expect(self, verb, answer=None, pieces=None):
        """Read the next command, which must be `verb`; send `answer` if given; return its
        argument."""
        got, arg = self.command()
        if got != verb:
            raise AssertionError("expected %s, the client sent %s %s" % (verb, got, arg))
        if answer is not None:
            self.reply(answer, pieces)
        return arg

    def login(self, greeting="220 scripted server ready"):
        self.reply(greeting)
        if self.expect("USER", "331 password please") != self.server.user:
            raise AssertionError("wrong user")
        if self.expect("PASS") != self.server.password:
            self.reply("530 Login incorrect.")
            raise AssertionError("wrong password")
        self.reply("230 logged in")

    def start_tls(self, cert):
        """AUTH TLS done (the script replied 234): the server side of the handshake on the
        control connection, certificate `cert` (a certs.Pair); the rest of the script is over
        TLS."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.server._sockets.append(self.sock)

    def wait_closed(self):
        """Answer nothing until the client closes the control connection; fails at the deadline."""
        while self.command()[0] is not None:
            pass

    # -- data connections --------------------------------------------------------------------

    def data_listener(self, host=None, rcvbuf=None):
        """A listening socket for one data connection (on any 127.x.y.z address on Linux; by
        default the server's own); rcvbuf: a small receive buffer, so a server that stops
        reading stalls the client."""
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host or self.server.host, 0))
        sock.listen(1)
        sock.settimeout(self.server.deadline_s)
        self.server._sockets.append(sock)
        return sock

    def passive(self, host=None, rcvbuf=None):
        """Answer EPSV (229) with a new data listener; returns the listener."""
        listener = self.data_listener(host, rcvbuf)
        self.expect("EPSV", "229 Entering Extended Passive Mode (|||%d|)" % listener.getsockname()[1])
        return listener

    def pasv(self, listener, named_host=None):
        """Answer PASV (227) naming named_host (default: where listener listens)."""
        host, port = listener.getsockname()
        named = (named_host or host).replace(".", ",")
        self.expect("PASV", "227 Entering Passive Mode (%s,%d,%d)." % (named, port >> 8, port & 255))

    def accept(self, listener):
        """The data connection the client opened to listener."""
        sock, _ = listener.accept()
        sock.settimeout(self.server.deadline_s)
        self.server._sockets.append(sock)
        listener.close()
        return sock

    @staticmethod
    def receive_all(sock):
        """Everything the client sends on a data connection, until it closes it."""
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
