"""FTPClient: lNet's TLFTPClient, event-driven, over one eventer (control + data connections).

Rules:
- Every call queues an operation at once and returns it (`op.name`, `op.args`, `op.done`,
  `op.error`, `op.result`); each reports exactly once, through on_success(op) or
  on_failure(op, code, text), in queue order. `code` is the server's reply code, or None for a
  local or transport failure.
- One command in flight at a time: a reply always belongs to the command just sent, so a failed
  transfer can never shift later replies onto the wrong commands.
- Operations are generators: `reply = yield (verb, arg)` sends a command and resumes with its
  final reply; `yield (None, (host, port))` opens the data connection. A transfer is complete
  only when both the data stream ended and the final reply arrived, in either order.
- Passive by default (EPSV, then PASV); the data connection goes to the control connection's
  peer, whatever address PASV names, unless `trust_pasv_address` (this blocks FTP bounce).
- Deadlines: connect, each reply, an idle data connection; a NOOP keeps an idle link alive.
  Losing the control connection fails the running and every queued operation, once each.
- Uploads read the file into one preallocated buffer (nothing allocated per chunk on
  MicroPython); on CPython plain uploads use os.sendfile through the port.
- The password is kept only inside the connect operation's generator: never in `op.args`, a
  repr, a log line or an error text.
"""

import os

from ulnet.ftp.ops import FTPError, Op, download, listing, login, simple, upload
from ulnet.ftp.parse import format_eprt, format_port, parse_epsv, parse_pasv
from ulnet.ftp.protocol import NEED_DATA, FTPProtocol, Reply
from ulnet.tcp import TCP

__all__ = ("FTPClient", "FTPError", "Op")


class FTPClient:
    # policy knobs (override per object, or in a subclass as umqtt.robust does)
    connect_timeout_ms = 15000
    reply_timeout_ms = 30000
    data_idle_ms = 30000
    keepalive_ms = 60000
    passive = True
    trust_pasv_address = False
    use_sendfile = True  # uploads through the port's sendfile where it has one (the desktop)
    listing_limit = 1 << 20  # bytes a listing may take in memory (a board sets it lower)

    def __init__(self, eventer):
        self.eventer = eventer
        self.on_success = self.on_failure = self.on_progress = None
        self._queue = []
        self._op = None
        self._starting = False
        self._keepalive = False  # a NOOP of ours is in flight
        self._proto = None
        self._logged_in = False
        self._epsv = True
        self._lost = None  # (code, text) that ended the last session, for operations after it
        self._ctl = self._tcp(self._ctl_receive, self._ctl_lost, self._ctl_lost)
        self._ctl.on_connect = None
        self._dt = self._tcp(self._data_receive, self._data_end, self._data_error)
        self._dt.on_connect = self._data_connected
        self._dt.on_can_send = self._pump
        self._dt.on_accept = self._data_accepted
        self._dsock = None
        self._xfer = None  # the running transfer (see ops.Transfer)
        self._final = None  # a transfer's final reply, held until its data is done
        self._timer = eventer.call_later(self.keepalive_ms, self._deadline)
        self._timer.cancel()
        # one chunk buffer for the client's life: uploads read into it, downloads receive into it
        self.buf = bytearray(eventer.port.RECV_SIZE)

    def __repr__(self):
        peer = self._ctl.sockets[0] if self._ctl.sockets else None
        return "<FTPClient %s>" % (peer or "not connected")

    def _tcp(self, receive, end, error):
        tcp = TCP(self.eventer)
        tcp.on_receive = receive
        tcp.on_disconnect = end
        tcp.on_error = error
        return tcp

    # -- operations ------------------------------------------------------------------------

    def connect(self, host, port=21, user="anonymous", password=""):
        """Open the session: greeting, USER, PASS. Queue other operations right after it."""
        op = Op("connect", (host, port, user))
        return self._add(op, login(self, op, host, port, user, password))

    def put(self, local, remote=None, atomic=True, resume=True):
        """Upload a local file; op.result is the number of bytes sent this time."""
        op = Op("put", (local, remote or local.rsplit("/", 1)[-1], atomic, resume))
        return self._add(op, upload(self, op, *op.args))

    def get(self, remote, local=None):
        """Download to a local file (written as LOCAL.part, renamed when complete)."""
        op = Op("get", (remote, local or remote.rsplit("/", 1)[-1]))
        return self._add(op, download(self, op, *op.args))

    def list(self, path=""):
        return self._listing("list", "LIST", path)

    def nlst(self, path=""):
        return self._listing("nlst", "NLST", path)

    def mlsd(self, path=""):
        """op.result: a list of (facts, name), fact names lower-case."""
        return self._listing("mlsd", "MLSD", path)

    def size(self, name):
        return self._simple("size", "SIZE", name)

    def mdtm(self, name):
        return self._simple("mdtm", "MDTM", name)

    def delete(self, name):
        return self._simple("delete", "DELE", name)

    def rename(self, old, new):
        return self._simple("rename", "RNFR", old, new)

    def mkdir(self, name):
        return self._simple("mkdir", "MKD", name)

    def rmdir(self, name):
        return self._simple("rmdir", "RMD", name)

    def cwd(self, path):
        return self._simple("cwd", "CWD", path)

    def pwd(self):
        return self._simple("pwd", "PWD")

    def features(self):
        return self._simple("features", "FEAT")

    def quit(self):
        return self._simple("quit", "QUIT")

    def _listing(self, name, verb, path):
        op = Op(name, (path,))
        return self._add(op, listing(self, op, verb, path))

    def _simple(self, name, verb, arg=None, arg2=None):
        op = Op(name, (arg, arg2)[: 2 if arg2 is not None else 1 if arg is not None else 0])
        return self._add(op, simple(self, op, verb, arg, arg2))

    @property
    def connected(self):
        return self._logged_in

    @property
    def idle(self):
        """True when no operation is running or queued."""
        return self._op is None and not self._queue

    # -- the queue ---------------------------------------------------------------------------

    def _add(self, op, program):
        op.program = program
        self._queue.append(op)
        for arg in op.args:
            # a CR or LF in a name would smuggle a second command onto the control connection
            if isinstance(arg, str) and ("\r" in arg or "\n" in arg or "\0" in arg):
                self._queue.remove(op)
                self._report(op, None, "CR, LF or NUL in an argument")
                return op
        self._start_next()
        return op

    def _start_next(self):
        if self._starting:
            return  # an operation that finished at once: the loop below takes the next
        self._starting = True
        try:
            while self._op is None and self._queue:
                op = self._queue.pop(0)
                if op.name != "connect" and not self._logged_in:
                    code, text = self._lost or (None, "not connected")
                    self._report(op, code, text)
                    continue
                self._op = op
                self._step(None)
        finally:
            self._starting = False

    def _step(self, reply, error=None):
        """Resume the running operation with a reply (None to start it), or throw a local
        failure into it."""
        op = self._op
        try:
            if error is None:
                verb, arg = op.program.send(reply)
            else:
                verb, arg = op.program.throw(FTPError(None, error, op.name))
        except StopIteration:
            self._report(op, None, None)
            return
        except FTPError as exc:
            self._report(op, exc.code, exc.text)
            return
        except Exception as exc:  # a reply the parsers refuse (RemoteProtocolError), an OSError
            self._report(op, getattr(exc, "code", None), str(exc))
            return
        if verb is None:
            self._open_data(arg)
        elif verb == "":
            self._arm(self.connect_timeout_ms + self.reply_timeout_ms)  # wait for the greeting
        else:
            self._command(verb, arg)

    def _report(self, op, code, text):
        """Finish op (success when text is None) and start the next one."""
        if op is self._op:
            self._op = None
            self._close_data()
        op.done = True
        if text is None:
            if self.on_success is not None:
                self.on_success(op)
        else:
            op.error = FTPError(code, text, op.name)
            if self.on_failure is not None:
                self.on_failure(op, code, text)
        if self._logged_in:
            self._arm(self.keepalive_ms)
        self._start_next()

    def _fatal(self, text, code=None):
        """The control connection is gone: fail the running and every queued operation, and
        every later one until the next connect, with the same code and text (so a 421 that came
        while idle still explains why)."""
        self._hangup()
        self._lost = (code, text)
        ops = ([self._op] if self._op else []) + self._queue
        self._queue = []
        for op in ops:
            if op is self._op:
                op.program.close()
            self._report(op, code, text)

    # -- control connection -------------------------------------------------------------------

    def _open_control(self, host, port):
        self._hangup()
        self._proto = FTPProtocol()
        self._epsv = True
        self._lost = None
        self._ctl.connect(host, port, self.connect_timeout_ms)

    def _hangup(self):
        """Close the control connection quietly (after QUIT, or a failed login)."""
        self._logged_in = self._keepalive = False
        self._proto = None
        self._timer.cancel()
        for sock in self._ctl.sockets[:]:
            sock.disconnect()

    def _command(self, verb, arg):
        sock = self._ctl.sockets[0] if self._ctl.sockets else None
        if sock is None or self._proto is None:
            self._fatal("not connected")
            return
        data = self._proto.send(verb, arg)
        self._arm(self.reply_timeout_ms)
        # a command is far smaller than any socket buffer; before the connect completes the
        # greeting is what we wait for, so nothing is sent before it anyway
        if sock.send(data) != len(data):
            self._fatal("control connection cannot take a %d-byte command" % len(data))

    def _ctl_receive(self, sock):
        proto = self._proto
        if proto is None:
            sock.get()
            return
        try:
            proto.receive_data(sock.get())
            while self._proto is proto:
                event = proto.next_event()
                if event is NEED_DATA:
                    return
                if not isinstance(event, Reply):
                    self._fatal("server closed the control connection")
                    return
                self._reply(event)
        except Exception as exc:  # a hostile or broken server: RemoteProtocolError and kin
            self._fatal("%s" % exc)

    def _ctl_lost(self, sock, error=None):
        if self._proto is not None or self._op is not None:
            self._fatal(str(error) if error else "server closed the control connection")

    def _reply(self, reply):
        if not reply.final:
            if self._xfer is not None and reply.code < 200:
                # data flows from now on: its idle deadline applies (the pump re-arms it)
                self._arm(self.data_idle_ms)
                self._xfer.started(self)
            else:
                self._arm(self.reply_timeout_ms)
            return
        if reply.code == 421:
            self._fatal(reply.text, 421)  # RFC 959: the server is closing the control connection
            return
        if reply.command == "NOOP" and self._keepalive:
            self._keepalive = False
            if self._op is None:
                self._arm(self.keepalive_ms)
            return
        self._timer.cancel()
        xfer = self._xfer
        if xfer is not None and reply.code < 400 and not xfer.finished:
            if not xfer.active:
                xfer.started(self)  # a server that skipped its 150
            if not xfer.finished:
                self._final = reply  # held until the data connection is done too
                self._arm(self.data_idle_ms)
                return
        self._step(reply)

    def _arm(self, ms):
        self._timer.restart(ms)

    def _deadline(self):
        if self._op is None and self._logged_in and not self._keepalive:
            self._keepalive = True
            self._command("NOOP", None)  # keep-alive on an idle control link
        elif self._xfer is not None and self._xfer.active and not self._xfer.finished:
            self._xfer.fail(self, "data connection idle for %d ms" % self.data_idle_ms)
        elif self._op is not None or self._proto is not None:
            self._fatal("no reply from the server within %d ms" % self.reply_timeout_ms)

    # -- data connection ----------------------------------------------------------------------

    def _open_data(self, address):
        if address is None:  # active mode: we listen, the server connects
            return
        # the data connect has its own deadline; its failure fails only this operation
        self._dsock = self._dt.connect(address[0], address[1], self.connect_timeout_ms)

    def _data_connected(self, sock):
        self._timer.cancel()
        self._step(None)

    def _data_accepted(self, sock):
        for listener in self._dt.listeners[:]:
            listener.disconnect()
        self._dsock = sock
        if self._xfer is not None:
            self._xfer.attach(self, sock)

    def _data_receive(self, sock):
        if self._xfer is not None:
            self._xfer.receive(self, sock)
        else:
            sock.get()

    def _pump(self, sock):
        if self._xfer is not None:
            self._xfer.pump(self, sock)

    def _data_end(self, sock):
        if self._xfer is not None and sock is self._dsock:
            self._xfer.ended(self)

    def _data_error(self, sock, error):
        if sock is not self._dsock:
            return
        if self._xfer is not None:
            self._xfer.fail(self, str(error))
        elif self._op is not None:
            self._step(None, str(error))  # e.g. the data connect was refused

    def _transfer_done(self):
        """The data half of a transfer is done: resume with the final reply if it is in."""
        reply, self._final = self._final, None
        if reply is not None:
            self._step(reply)
        else:
            self._arm(self.reply_timeout_ms)

    def _close_data(self):
        self._xfer = None
        self._final = None
        for sock in self._dt.sockets[:] + self._dt.listeners[:]:
            sock.disconnect()
        self._dsock = None

    # -- passive/active setup, used by the operations -------------------------------------------

    def _passive_address(self, reply, epsv):
        """Where to connect for a 229/227 reply: always the control peer, unless trusted."""
        peer = self._ctl.sockets[0].peer_address
        if epsv:
            return peer, parse_epsv(reply.text)
        host, port = parse_pasv(reply.text)
        return (host if self.trust_pasv_address else peer), port

    def _active_argument(self, epsv):
        """Listen for the server's data connection; the PORT or EPRT argument naming it."""
        local = self._ctl.sockets[0].local_address
        if local is None:
            raise FTPError(None, "active mode needs the local address, which this port cannot tell", "data")
        listener = self._dt.listen(0, local)
        if epsv:
            return format_eprt(local, listener.local_port)
        return format_port(local, listener.local_port)

    def _local_size(self, path):
        return os.stat(path)[6]
