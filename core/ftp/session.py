"""FTPSession: the event-driven FTP engine (control + data connections over one eventer) and the
operations a device needs: connect, put, size, delete, rename, quit. FTPClient (client.py) adds
the rest of lNet's TLFTPClient; a board with a 32 KB heap uses FTPSession alone.

Rules:
- Every call queues an operation at once and returns it (`op.name`, `op.args`, `op.done`,
  `op.error`, `op.result`); each reports exactly once, through on_success(op) or
  on_failure(op, code, text), in queue order. `code` is the server's reply code, or None for a
  local or transport failure.
- One command in flight at a time: a reply always belongs to the command just sent, so a failed
  transfer can never shift later replies onto the wrong commands. The one exception is a group
  an operation asks for (an upload's RNFR, RNTO, SIZE): no transfer in it, its commands sent
  together when `pipeline` is on, their replies matched in order by the machine's FIFO. A
  group whose replies do not all come (the control connection lost, closed or silent) turns
  `pipeline` off, and the session sends groups one command at a time from then on.
- Operations are generators (ops.py, extra.py). A transfer is complete only when both the data
  stream ended and the final reply arrived, in either order.
- Passive by default (EPSV, then PASV); the data connection goes to the control connection's
  peer, whatever address PASV names, unless `trust_pasv_address` (this blocks FTP bounce).
- Deadlines: connect, each reply, an idle data connection; a NOOP keeps an idle link alive. A
  server cannot push one back for ever: a 1yz reply does not extend the wait for the final
  one, and a data connection's idle deadline restarts only when data moves.
  Losing the control connection fails the running and every queued operation, once each.
- Uploads read the file into one preallocated buffer: nothing is allocated per chunk.
- The password lives only inside the connect operation's generator: never in `op.args`, a
  repr, a log line or an error text.
- Heap is scarce on a board: one TCP object holds the control and the data connections (as
  lNet's TLTcp holds many sockets) and its callbacks tell them apart by socket, few methods;
  downloads, listings and active mode live in extra.py, which loads on first use, and their
  entry points in client.py; FTPS (connect(tls=...)) in ftps.py and core/tls.py, loaded only
  by a connect that asks for TLS.
"""

import errno

from ulnet.errors import LocalProtocolError, RemoteProtocolError, errno_of
from ulnet.ftp.ops import FTPError, Op, login, simple, upload  # noqa: F401 (FTPError re-exported)
from ulnet.ftp.parse import parse_size
from ulnet.ftp.protocol import ERROR, NEED_DATA
from ulnet.tcp import TCP


class FTPSession:
    # policy knobs (override per object, or in a subclass as umqtt.robust does)
    connect_timeout_ms = 15000
    reply_timeout_ms = 30000
    data_idle_ms = 30000
    keepalive_ms = 60000
    passive = True
    trust_pasv_address = False
    use_sendfile = True  # uploads through the port's sendfile where it has one (the desktop)
    pipeline = True  # send an operation's command group at once (off: one at a time)
    # passive uploads send their data at once after STOR, not after its 150: one round trip
    # less per upload (see Transfer.accept for what a refused STOR then means). Not over FTPS:
    # there the data connection's handshake costs that round trip anyway (vsftpd and pure-ftpd
    # start it after STOR), and pyftpdlib's TLS handler reads a data connection before its
    # STOR: data and close_notify that come first end it, and STOR then waits for ever
    early_data = True

    def __init__(self, eventer, buf=None):
        """buf: the chunk buffer (default: a new bytearray of the port's RECV_SIZE). A board
        allocates it first thing, while its heap is still in one piece, and passes it in."""
        # every attribute is set here, at once: the dict grows now, not in an error path
        self.on_success = self.on_failure = self.on_progress = None
        self.connected = False  # logged in (read-only)
        self._pending = []  # queued operations
        # _ctl: the control connection's Socket; _dsock: the data connection's
        # _tls: the TLSSession data connections start (FTPS, after PROT P), else None; _out:
        # bytes of a command the control connection did not take (a TLS one may take nothing
        # while its handshake ends), b"" while that handshake runs: on_can_send goes on
        self._op = self._proto = self._ctl = self._dsock = self._xfer = self._tls = self._out = None
        # _scanning: inside _run's loop; _keepalive: a NOOP of ours is in flight
        self._scanning = self._keepalive = False
        self._epsv = True
        # a command group in flight: _batch, the final replies so far (None: no group); _want,
        # how many it has; _group, (verbs, args) when its commands go one at a time
        self._batch = self._group = None
        self._want = 0
        self._error = None  # (code, text) that ended the last session, for operations after it
        self._conn = conn = TCP(eventer)
        conn.on_can_send = self._ready
        conn.on_receive = self._read
        conn.on_disconnect = conn.on_error = self._lost
        self._timer = eventer.call_later(0, self._deadline)
        self._timer.cancel()
        # one chunk buffer for the session's life: uploads read into it, downloads receive into it
        self.buf = bytearray(eventer.port.RECV_SIZE) if buf is None else buf

    def __repr__(self):
        # the control socket's repr says "tls verified", "tls pinned" or "tls unverified"
        return "<%s control %s>" % (type(self).__name__, self._ctl or "not connected")

    # -- operations ------------------------------------------------------------------------

    def connect(self, host, port=None, user="anonymous", password="", tls=None, cafile=None,
                fingerprint=None, verify=True, context=None):
        """Open the session: greeting, USER, PASS. Queue other operations right after it.

        tls: None (plain FTP), "explicit" (AUTH TLS, required) or "implicit" (TLS from the
        first byte); with TLS, every data connection is TLS too (ftps.py). The certificate is
        verified against cafile (PEM or DER; default the system's CA store), or pinned by
        fingerprint (its SHA-256, hex); verify=False checks nothing. Port: 21, or 990 for
        implicit; context: a TLSSession.context() made for the same settings, to share. Raises
        ValueError at once for bad TLS settings."""
        session = None
        if tls is not None or cafile or fingerprint or not verify:
            from ulnet.ftp.ftps import tls_session

            session = tls_session(host, tls, cafile, fingerprint, verify, context)
        if port is None:
            port = 990 if tls == "implicit" else 21
        op = Op("connect", (host, port, user))
        return self._add(op, login(self, op, host, port, user, password, session, tls == "implicit"))

    def put(self, local, remote=None, atomic=True, resume=True, verify=False):
        """Upload a local file; op.result is the number of bytes sent this time. verify: the
        upload succeeds only when SIZE of the remote file then equals the local size."""
        op = Op("put", (local, remote or local.rsplit("/", 1)[-1], atomic, resume, verify))
        return self._add(op, upload(self, op, *op.args))

    def size(self, name):
        return self._simple("size", "SIZE", name, None, parse_size)

    def delete(self, name):
        return self._simple("delete", "DELE", name)

    def rename(self, old, new):
        return self._simple("rename", "RNFR", old, new)

    def quit(self):
        return self._simple("quit", "QUIT")

    @property
    def idle(self):
        """True when no operation is running or queued."""
        return self._op is None and not self._pending

    def _simple(self, name, verb, arg=None, new=None, parse=None):
        """One command (RNFR: then RNTO new); op.result is parse(reply text), or the text."""
        op = Op(name, () if arg is None else (arg,) if new is None else (arg, new))
        return self._add(op, simple(self, op, verb, arg, new, parse))

    # -- the queue ---------------------------------------------------------------------------

    def _add(self, op, program):
        op.program = program
        for arg in op.args:
            # a CR or LF in a name would smuggle a second command onto the control connection;
            # an empty name is refused before an operation of several commands sends any
            if isinstance(arg, str) and (not arg or "\r" in arg or "\n" in arg or "\0" in arg):
                program.close()
                self._settle(op, None, "CR, LF or NUL in an argument" if arg else "an empty argument")
                return op
        self._pending.append(op)
        self._run()
        return op

    def _run(self):
        """Start queued operations while none is running (not re-entered: an operation that
        finishes at once returns here and the loop takes the next)."""
        if self._scanning:
            return
        self._scanning = True
        try:
            while self._op is None and self._pending:
                op = self._pending.pop(0)
                if op.name != "connect" and not self.connected:
                    op.program.close()
                    code, text = self._error or (None, "not connected")
                    self._settle(op, code, text)
                else:
                    self._op = op
                    self._step(None)
        finally:
            self._scanning = False

    def _step(self, reply, error=None):
        """Resume the running operation with a reply (None to start it), or throw a local
        failure into it; then send what it asks for next."""
        op = self._op
        try:
            if error is None:
                verb, arg = op.program.send(reply)
            else:
                verb, arg = op.program.throw(FTPError(None, error, op.name))
        except StopIteration:
            return self._settle(op, None, None)
        except Exception as exc:  # FTPError, a reply the parsers refuse, an OSError
            code = getattr(exc, "code", None)
            if code and isinstance(exc, RemoteProtocolError) and hasattr(reply, "code"):
                code = reply.code  # a parser refused this reply's text: the code it came with
            return self._settle(op, code, getattr(exc, "text", None) or str(exc))
        if verb is None and arg is None:
            # FTPS: the control connection's TLS handshake runs (with its own deadline); its end
            # (on_can_send) resumes the login through _ready, its failure ends it through _lost
            self._out = b""
        elif verb is None:
            # the data connect has its own deadline; its failure fails only this operation
            self._dsock = self._conn.connect(arg[0], arg[1], self.connect_timeout_ms)
        elif verb == "":
            self._timer.restart(self.connect_timeout_ms + self.reply_timeout_ms)  # the greeting
        elif type(verb) is tuple:
            self._send_group(verb, arg)
        else:
            try:
                self._command(verb, arg)
            except LocalProtocolError as exc:
                if self._proto.state == ERROR:  # the machine is done: so is the session
                    return self._fail(exc.message)
                # a bad argument (mkdir(""), size(5)): refused before anything was sent, so
                # this operation fails and the session goes on
                return self._step(None, exc.message)
            xfer = self._xfer
            if xfer is not None and xfer.up and not xfer.active and self.early_data and self.passive \
                    and self._tls is None:
                xfer.active = True  # STOR is on its way: its data follows it
                xfer.pump(self, self._dsock)

    def _settle(self, op, code, text):
        """Finish op and report it, once (success when text is None); start the next one."""
        if op is self._op:
            self._op = self._xfer = self._dsock = self._batch = self._group = None
            for sock in self._conn.sockets + self._conn.listeners:
                if sock is not self._ctl:
                    sock.disconnect()  # data connections and active-mode listeners
        op.done = True
        op.program = None  # the finished generator's frame holds files and buffers
        if self.connected:
            # idle from here; before the reports, as an operation they queue arms its own deadline
            self._timer.restart(self.keepalive_ms)
        if text is None:
            if self.on_success is not None:
                self.on_success(op)
        else:
            op.error = FTPError(code, text, op.name)
            if self.on_failure is not None:
                self.on_failure(op, code, text)
        self._run()

    def close(self, why="closed by the user"):
        """Abort: close the control connection now and fail the running and every queued
        operation (each once, with `why`). The session can connect again afterwards."""
        self._batch = None  # not the server's fault: pipelining stays as it is
        self._fail(why)

    def _fail(self, text, code=None):
        """The control connection is gone: fail the running and every queued operation."""
        if self._batch is not None and self._group is None:
            self.pipeline = False  # a group sent at once got no (full) answer: maybe the cause
        self._close()
        self._error = (code, text)
        ops = ([self._op] if self._op else []) + self._pending
        self._pending = []
        for op in ops:
            op.program.close()
            self._settle(op, code, text)

    # -- control connection -------------------------------------------------------------------

    def _close(self):
        """Close the control connection quietly (after QUIT, a failed login, a fatal error)."""
        self.connected = self._keepalive = False
        self._proto = self._out = None
        self._timer.cancel()
        if self._ctl is not None:
            self._ctl.disconnect()
            self._ctl = None

    def _command(self, verb, arg):
        self._send(self._proto.send(verb, arg))

    def _send(self, data):
        self._timer.restart(self.reply_timeout_ms)
        # a command (or a group of a few) is far smaller than any socket buffer, but a TLS
        # connection may take nothing until its handshake has ended: the rest goes on its
        # on_can_send (_ready), under this reply deadline
        sent = self._ctl.send(data)
        if sent != len(data):
            self._out = data[sent:]

    def _send_group(self, verbs, args):
        """Send an operation's command group: at once with `pipeline` (one write, the replies
        matched in order), else one command per reply. The operation resumes with the list
        of their final replies."""
        self._batch, self._want = [], len(verbs)
        if self.pipeline:
            data = b""
            for i in range(len(verbs)):
                data += self._proto.send(verbs[i], args[i])
            self._send(data)
        else:
            self._group = (verbs, args)
            self._command(verbs[0], args[0])

    def _read(self, sock):
        """on_receive: a reply (or part of one) on the control connection, or data."""
        proto = self._proto
        if sock is not self._ctl or proto is None:
            if sock is self._dsock and self._xfer is not None:
                self._xfer.receive(self, sock)
            else:
                sock.get()  # nobody wants it: read and drop, so the loop does not spin
            return
        data = sock.get()
        # b"" is "nothing now" (a spurious hint); the end of stream comes as on_disconnect
        if not data:
            return
        try:
            proto.receive_data(data)
            while self._proto is proto:
                reply = proto.next_event()
                if reply is NEED_DATA:
                    return
                if not hasattr(reply, "code"):  # ConnectionClosed
                    return self._fail("server closed the control connection")
                self._reply(reply)
        except Exception as exc:  # a hostile or broken server: RemoteProtocolError and kin
            self._fail(str(exc))

    def _reply(self, reply):
        xfer = self._xfer
        if reply.code == 421:
            self._fail(reply.text, 421)  # RFC 959: the server is closing the control connection
        elif xfer is not None and reply.code < 400 and not xfer.accepted:
            xfer.accept(self)  # the server took the transfer command
            self._reply(reply)
        elif reply.command == "NOOP" and self._keepalive and reply.final:
            self._keepalive = False
            if self._op is None:
                self._timer.restart(self.keepalive_ms)
        elif xfer is not None and reply.code < 400 and not xfer.finished:
            # the 150, or a final reply that came before the data half is done (held until
            # then): data flows from now on, under its idle deadline, which only data re-arms
            # (the pump, receive): more replies do not, a server could send them for ever
            if reply.final:
                xfer.reply = reply
            if not xfer.active:
                xfer.active = True  # also when a server skipped its 150
                self._timer.restart(self.data_idle_ms)
                xfer.pump(self, self._dsock)  # an upload starts sending
        elif not reply.final:
            return  # a 1yz leaves the reply deadline where it was: a server could send them for ever
        elif self._batch is not None and len(self._batch) + 1 < self._want:
            self._batch.append(reply)  # more replies of the group to come
            if self._group is None:
                self._timer.restart(self.reply_timeout_ms)
            else:
                n = len(self._batch)
                self._command(self._group[0][n], self._group[1][n])
        else:
            self._timer.cancel()
            if self._batch is not None:
                self._batch.append(reply)
                reply, self._batch, self._group = self._batch, None, None
            self._step(reply)

    def _deadline(self):
        if self._op is None and self.connected and not self._keepalive:
            self._keepalive = True
            self._command("NOOP", None)  # keep-alive on an idle control link
        elif self._xfer is not None and self._xfer.active and not self._xfer.finished:
            self._xfer.stop(self, "data connection idle for %d ms" % self.data_idle_ms)
        elif self._op is not None or self._proto is not None:
            self._fail("no reply from the server within %d ms" % self.reply_timeout_ms)

    # -- data connection ----------------------------------------------------------------------

    def _ready(self, sock):
        """on_can_send: the data connection came up (the first on_can_send follows on_connect),
        or it can take more of an upload; the control connection's TLS handshake ended, or it
        can take the rest of a command."""
        if sock is self._ctl:
            out = self._out
            if out is not None:
                self._out = None
                if out:
                    self._send(out)
                else:
                    self._step(None)  # the login goes on over TLS
        elif sock is self._dsock:
            if self._xfer is not None:
                self._xfer.pump(self, sock)
            elif self.passive:
                self._step(None)  # connected: the operation sends its transfer command
            # else an active-mode data connection the server opened before the transfer
            # command (pyftpdlib does, at EPRT), whose TLS handshake just ended: nothing waits

    def _lost(self, sock, error=None):
        """on_disconnect and on_error: the control or the data connection ended or failed."""
        if sock is self._ctl:
            if self._proto is not None or self._op is not None:
                self._fail(str(error) if error else "server closed the control connection")
            return
        if sock is not self._dsock:
            return
        if error is not None and (isinstance(error, MemoryError) or errno_of(error) == errno.ENOMEM):
            # no heap (a board's: the data connection's TLS handshake, a callback): a server may
            # never answer a transfer command whose data connection went before it was read
            # (pyftpdlib's TLS handler waits for another), so the session ends now, not at the
            # reply deadline; what the operation sent is retried as after any lost link
            return self._fail(str(error) if isinstance(error, OSError) else "out of memory")
        xfer = self._xfer
        if xfer is None:
            if self._op is not None:
                self._step(None, str(error or "data connection closed"))  # e.g. connect refused
        elif error is not None or xfer.up:
            xfer.stop(self, str(error or "the server closed the data connection after %d bytes" % xfer.done))
        else:
            xfer.stop(self, None)  # a download's end of stream
