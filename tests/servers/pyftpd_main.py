"""A pyftpdlib server for the tests, run as its own process (so a test can stop, restart or
kill it like a real server). Prints "PORT n" once it listens.

Faults a real server produces but will not produce on demand:
- --quota BYTES: uploads fail with "disk full" (ENOSPC) once the home holds more than BYTES;
- --drop-after BYTES: the first upload's data connection is closed after BYTES arrived, as a
  flaky link would (later uploads are untouched), so clients must resume; with --drop-every
  every upload's is, and --drop-reply is the final reply then (default the 426 pyftpdlib gives
  when the link really breaks; a 5xx makes it a failure of that one file);
- --refuse-stor N: the first N STOR commands are answered "451" (a transient refusal), before
  any data flows;
- --short-stor N: every upload is stored N bytes short (its last N bytes are lost) and still
  answered 226, as a server with a failing disk might;
- --size-lie N: SIZE answers N bytes less than the file holds;
- --refuse VERB:TEXT:REPLY (repeatable): the first VERB command whose argument holds TEXT is
  answered REPLY, nothing done (e.g. "RNTO:scan3:553 Not allowed.", "STOR:scan5:552 Quota.");
- --short-once TEXT: the first upload whose name holds TEXT loses its last byte once complete,
  and the server still says 226 (a quota that truncates, a disk full it does not report);
- --cut-after BYTES: the first upload's control and data connections are closed after BYTES
  arrived (a session cut mid-transfer; the others are untouched);
- --max-cons-per-ip N: a login beyond N connections from one address gets 421 (a server that
  takes a few sessions per client);
- --one-per-read: of what one read of the control connection brings, only the first command
  is taken (a server, or a NAT helper, that drops commands sent together);
- --delay-ms D: every reply reaches the client D ms after the server sent it, as over a link
  whose round trip is D (the replies are held in order, not the server: commands sent together
  are answered together, as on a real link); data connections are not delayed.

--commands FILE records the verb of every command received (one a line), so a test can check
what a client sent, e.g. that no USER or PASS ever came in clear. --tls explicit|implicit with
--certfile/--keyfile serves FTPS (pyftpdlib's TLS_FTPHandler, needs pyOpenSSL): explicit
requires AUTH TLS before the login and PROT P before any data connection; implicit starts TLS
on the first byte of every control connection.
"""

import argparse
import collections
import errno
import os
import sys
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer


def home_size(root):
    return sum(os.path.getsize(os.path.join(base, f)) for base, _, files in os.walk(root) for f in files)


class QuotaFile:
    """A file whose writes fail with ENOSPC once the home passes the quota."""

    def __init__(self, f, root, quota):
        self._f, self._root, self._quota = f, root, quota

    def write(self, data):
        if home_size(self._root) + len(data) > self._quota:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


class ShortFile:
    """A file that loses its last `short` bytes when it is closed."""

    def __init__(self, f, short):
        self._f, self._short = f, short

    def close(self):
        if not self._f.closed:
            self._f.truncate(max(0, self._f.tell() - self._short))
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


class Delayed(FTPHandler):
    """A control connection whose replies travel delay_s: each is held that long after the
    server sent it, in order (one timer at a time, so replies never overtake each other)."""

    delay_s = 0

    def __init__(self, *args, **kwargs):
        self._held = collections.deque()  # (due, bytes), oldest first
        self._timer = None
        self._close_after = False
        super().__init__(*args, **kwargs)

    def push(self, data):
        self._held.append((time.monotonic() + self.delay_s, data))
        if self._timer is None:
            self._timer = self.call_later(self.delay_s, self._release)

    def _release(self):
        self._timer = None
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            FTPHandler.push(self, self._held.popleft()[1])
        if self._held:
            self._timer = self.call_later(max(0, self._held[0][0] - now), self._release)
        elif self._close_after:
            FTPHandler.close_when_done(self)

    def close_when_done(self):
        if self._held:
            self._close_after = True  # after the held replies, as the server meant
        else:
            super().close_when_done()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--user", default="scanner")
    parser.add_argument("--password", default="s3cret")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quota", type=int, default=0)
    parser.add_argument("--drop-after", type=int, default=0)
    parser.add_argument("--drop-every", action="store_true", help="every upload, not the first only")
    parser.add_argument("--drop-reply", default="426 Transfer aborted; connection reset.")
    parser.add_argument("--refuse-stor", type=int, default=0)
    parser.add_argument("--short-stor", type=int, default=0, help="store every upload this many bytes short")
    parser.add_argument("--size-lie", type=int, default=0, help="SIZE answers this many bytes less")
    parser.add_argument("--perm", default="elradfmwMT", help="pyftpdlib's permission letters for the user")
    parser.add_argument("--delay-ms", type=int, default=0, help="hold every reply this long")
    parser.add_argument("--refuse", action="append", default=[], metavar="VERB:TEXT:REPLY")
    parser.add_argument("--short-once", metavar="TEXT")
    parser.add_argument("--cut-after", type=int, default=0, metavar="BYTES")
    parser.add_argument("--max-cons-per-ip", type=int, default=0)
    parser.add_argument("--one-per-read", action="store_true")
    parser.add_argument("--commands", help="append the verb of every command received to this file")
    parser.add_argument("--tls", choices=("explicit", "implicit"))
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    control, data = FTPHandler, DTPHandler
    if args.tls and args.delay_ms:
        parser.error("--delay-ms holds plain replies only: not with --tls")
    if args.tls:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        control, data = TLS_FTPHandler, TLS_DTPHandler

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.home, perm=args.perm)
    authorizer.add_anonymous(args.home)

    class FS(AbstractedFS):
        def open(self, filename, mode):
            f = super().open(filename, mode)
            if args.quota and ("w" in mode or "a" in mode or "+" in mode):
                return QuotaFile(f, args.home, args.quota)
            if args.short_stor and ("w" in mode or "a" in mode):
                return ShortFile(f, args.short_stor)
            return f

    dropped = {"done": not args.drop_after}
    cut = [args.cut_after]  # 0 once done

    class DTP(data):
        def handle_read_event(self):
            # the base class's: the TLS handshake, or DTPHandler.handle_read (which it aliases)
            super().handle_read_event()
            if not dropped["done"] and self.tot_bytes_received >= args.drop_after:
                dropped["done"] = not args.drop_every
                # by default what pyftpdlib answers when the link really breaks (see
                # DTPHandler.handle_error)
                self._resp = (args.drop_reply, self.cmd_channel.log)
                self.close()
            elif cut[0] and self.tot_bytes_received >= cut[0]:
                cut[0] = 0
                self.cmd_channel.close()  # and this data connection with it

        def handle_error(self):
            # pyftpdlib wraps a failed file write as _FileReadWriteError(err), which drops the
            # errno, and answers "426 None; transfer aborted."; answer with the errno's text, as
            # it means to (disk full: "426 No space left on device; transfer aborted.")
            cause = getattr(sys.exc_info()[1], "__cause__", None)
            if isinstance(cause, OSError) and cause.errno:
                self._resp = ("426 %s; transfer aborted." % os.strerror(cause.errno), self.cmd_channel.log)
                self.close()
            else:
                super().handle_error()

    refused = [0]
    refusals = [line.split(":", 2) for line in args.refuse]  # each used once, then dropped
    short = [args.short_once]

    log = open(args.commands, "a") if args.commands else None

    class Handler(Delayed if args.delay_ms else control):
        delay_s = args.delay_ms / 1000

        def pre_process_command(self, line, cmd, arg):
            if log is not None:
                log.write(cmd + "\n")
                log.flush()
            for refusal in refusals:
                if refusal[0] == cmd and refusal[1] in (arg or ""):
                    refusals.remove(refusal)
                    self.respond(refusal[2])
                    return None
            return super().pre_process_command(line, cmd, arg)

        def recv(self, size):
            data = super().recv(size)
            if args.one_per_read and b"\r\n" in data:
                data = data[:data.index(b"\r\n") + 2]
            return data

        def on_file_received(self, file):
            if short[0] and short[0] in file:
                short[0] = None
                with open(file, "r+b") as f:
                    f.truncate(os.path.getsize(file) - 1)

        def handle(self):
            if args.tls == "implicit":
                self.secure_connection(self.ssl_context)  # the banner waits for the handshake
            super().handle()

        def ftp_SIZE(self, path):
            if not args.size_lie:
                return super().ftp_SIZE(path)
            try:
                size = self.run_as_current_user(self.fs.getsize, path)
            except OSError as err:
                self.respond("550 %s." % err.strerror)
                return None
            self.respond("213 %d" % (size - args.size_lie))
            return None

        def ftp_STOR(self, file, mode="w"):
            if refused[0] < args.refuse_stor:
                refused[0] += 1
                self.respond("451 Requested action aborted: try again later.")
                return None
            return super().ftp_STOR(file, mode)

    Handler.authorizer = authorizer
    Handler.abstracted_fs = FS
    Handler.dtp_handler = DTP
    Handler.passive_ports = None
    Handler.banner = "pyftpdlib ready"
    if args.tls:
        Handler.certfile, Handler.keyfile = args.certfile, args.keyfile
        Handler.tls_control_required = Handler.tls_data_required = True
    server = FTPServer(("127.0.0.1", args.port), Handler)
    server.max_cons = 256
    server.max_cons_per_ip = args.max_cons_per_ip
    print("PORT %d" % server.address[1], flush=True)
    # without a timeout the loop wakes for each held reply on time (with one, it polls that long)
    server.serve_forever(timeout=None if args.delay_ms else 0.5)


if __name__ == "__main__":
    main()
