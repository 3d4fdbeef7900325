"""ulnet.FTP: the blocking FTP facade for scripts and tests, an FTPClient on an eventer of its own.

    with ulnet.FTP("ftp://scanner:pw@10.0.0.5:2121/scans", timeout_s=30) as ftp:
        ftp.put("scan01.csv")                   # atomic and resumable, like FTPClient.put
        print(ftp.nlst())

    with ulnet.FTP("ftpes://scanner:pw@ftp.example.com/scans", cafile="ca.pem") as ftp:
        ...                                     # explicit FTPS; ftps:// is implicit (port 990)

Rules:
- Entering connects, logs in and changes to the URL's directory; leaving sends QUIT and closes
  every socket, also when the body raised. One session per object.
- Each method queues the FTPClient operation of the same name and arguments, runs the loop until
  it reports and returns `op.result`; a failure raises the operation's FTPError (`code` is the
  server's reply code, None for a local or transport failure).
- `timeout_s` is idle time, as ftplib's timeout: the deadline of the connect, of each reply and
  of a data connection without progress, never of a whole transfer. The loop between calls does
  not run, so no keep-alive NOOP is sent while the caller is busy elsewhere.
- The password lives only in the private URL kept for the login; `url`, the repr and every
  error text use the redacted URL.
- FTPS as the URL says (ftpes://, ftps://; see ftp/url.py), verified as the keyword arguments
  say (cafile, fingerprint, verify: FTPClient.connect's); the repr says "tls unverified" when
  verify=False. TLS settings with an ftp:// URL are refused, never ignored.
- MicroPython: one __getattr__ maps the operation names onto the client, instead of fourteen
  methods (each function costs about 100 bytes of heap on a board).
"""

from ulnet.eventer import Eventer
from ulnet.ftp.client import FTPClient
from ulnet.ftp.ops import FTPError
from ulnet.ftp.url import parse_url, redact

# operations run as blocking calls, with FTPClient's arguments (one string: heap on a board)
_OPS = " put get list nlst mlsd size mdtm delete rename mkdir rmdir cwd pwd features "

# The most replies one operation waits for without any data in between: put sends TYPE, SIZE,
# REST, EPSV, PASV and STOR (150, then 226), RNFR and RNTO; a login waits for the connect, the
# greeting, USER and PASS. The facade's own deadline is this many client deadlines without
# progress: the client's deadlines end every stall first, this one only ends a client bug.
_MAX_STEPS = 12


class FTP:
    """Blocking FTP session: `with FTP(url, timeout_s) as ftp:` then put, get, list, nlst, mlsd,
    size, mdtm, delete, rename, mkdir, rmdir, cwd, pwd, features (FTPClient's arguments).

    `client` is the FTPClient, for its knobs (e.g. `ftp.client.trust_pasv_address = True`);
    `on_progress(op, done, total)`, if set, is called as the client's would be (the facade
    keeps the client's own for its deadline).
    """

    def __init__(self, url, timeout_s=30, cafile=None, fingerprint=None, verify=True):
        parse_url(url)  # a bad URL fails here, with a redacted message
        self.url = redact(url)
        self._url = url
        self._tls = (cafile, fingerprint, verify)
        self._timeout_ms = ms = int(timeout_s * 1000)
        self._ev = Eventer()
        self.client = client = FTPClient(self._ev)
        client.connect_timeout_ms = client.reply_timeout_ms = client.data_idle_ms = ms
        client.on_progress = self._progressed
        self.on_progress = None
        self._progress = 0

    def __repr__(self):
        state = "connected" if self.client.connected else "not connected"
        if self.url[3] != ":":  # ftpes://, ftps://
            state += " tls " + ("unverified" if not self._tls[2] else "pinned" if self._tls[1] else "verified")
        return "<ulnet.FTP %s %s>" % (self.url, state)

    def __enter__(self):
        host, port, user, password, path, tls = parse_url(self._url)
        try:
            self._wait(self.client.connect(host, port, user, password, tls, *self._tls))
            if path:
                self._wait(self.client.cwd(path))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """QUIT (when logged in) and close every socket; errors on the way out are dropped."""
        try:
            # a stuck operation (see _wait) would hold QUIT behind it: then just close
            if self.client.connected and self.client.idle:
                self._wait(self.client.quit())
        except Exception:
            pass  # the session is ending anyway; the body's own exception must win
        finally:
            self._ev.close()

    def __getattr__(self, name):
        if " %s " % name not in _OPS:
            raise AttributeError("'FTP' object has no attribute '%s'" % name)
        start = getattr(self.client, name)
        return lambda *args, **kw: self._wait(start(*args, **kw)).result

    def _progressed(self, op, done, total):
        self._progress += 1
        if self.on_progress is not None:
            self.on_progress(op, done, total)

    def _wait(self, op):
        """Run the loop until op reports; raise its FTPError. The deadline slides with each
        progress report (see _MAX_STEPS); nothing is allocated per round."""
        port = self._ev.port
        quiet_ms = _MAX_STEPS * self._timeout_ms
        seen = -1
        while not op.done:
            if self._progress != seen:
                seen = self._progress
                deadline = port.ticks_add(port.ticks_ms(), quiet_ms + 1)  # never early: see eventer.py
            left = port.ticks_diff(deadline, port.ticks_ms())
            if left <= 0:
                raise FTPError(None, "no progress within %d ms" % quiet_ms, op.name)
            self._ev.call_action(left)
        if op.error is not None:
            raise op.error
        return op
