"""Spool: the store-and-forward upload job. Scan files dropped into a spool folder go to an FTP
server, each exactly once, whatever fails and whenever the power goes; several FTP sessions
carry scans at once, oldest scans first. The folder's layout and journal: ulnet.spooldir.

Rules:
- Scan NAME goes to URLPATH/DEVICEID-NAME by an atomic, verified put: the server writes
  .DEVICEID-NAME.part and renames it when complete, so the final name never holds a partial
  file and a retry replaces, never duplicates; then SIZE of the final name must equal the local
  size (RNFR, RNTO and SIZE go as one command group, see ulnet.ftp.ops). Scan names must be
  unique per device.
- A scan leaves the spool only after the server confirmed it: the put's final reply, its
  rename and SIZE. Then the scan moves (or is deleted), then the journal forgets it.
- Up to `sessions` FTP sessions (default 4 on CPython, 2 on a board) carry one scan each. Each
  pass hands every scan out once: the scans the journal names first, then a walk of the folder
  oldest first; so two sessions never carry one scan. Sessions open as scans wait (none for an
  empty spool); on a board one more opens only while the heap has `session_heap` bytes free,
  and a session that cannot be opened or run for lack of heap drops the job to the sessions
  logged in, or to that one when none is (it logs in again at once), saying so: the dropped
  sessions' buffers go back to the heap.
- Only a scan whose own bytes are in its .part is resumed: the journal names a scan once bytes
  of its upload went out after its STOR was accepted (its STOR has replaced whatever .part was
  there), so it names every session's scan in flight, plus the last few that were cut (scans
  cut one after another all resume). Every other scan goes from its start, without asking
  SIZE first (a round trip per scan), and its STOR replaces a stale .part.
- A crash at any instant, then a restart (for each scan in flight, whatever the others did):
    before the journal names the scan: at most a few bytes of it, or a stale .part, are on the
      server; the scan is sent from its start;
    mid-upload: the scan is still here and its .part on the server is resumed, then renamed;
    after the rename, before the local move: the journaled scan is checked with SIZE first and
      only moved, not sent again;
    after the local move (atomic: one rename or remove), before the journal forgets it: the
      scan is gone, so its .part (none, or an orphan of a scan that vanished mid-upload) is
      deleted;
    a journaled scan whose size changed since: its .part is deleted and it is sent from its
      start, never resumed onto the old bytes (even where DELE is refused, or the new upload
      fails before its data flows: the journal keeps the old size until then).
  Without a journal (lost, torn, flash full) every outcome is still right, only slower: a scan
  already on the server is sent again and replaces itself. So journal write errors are ignored,
  and so is a journal line that does not name a plain scan of the spool (a "../" or a NUL).
- Failures never drop a scan. The status line says why, and the job retries with capped
  exponential backoff (timers, never sleeps) until its deadline. A refusal of one scan (5xx,
  or a failed data connection) moves its session on to the next scan; anything else
  (unreachable, login refused, disk full, 4xx, a lost link) stops that session for the rest of
  the pass (and no session opens after a failed login), the others go on, and the pass ends
  in the backoff. A cause that will not go away by itself (login refused with 530; every scan
  of a pass refused with 550/553, whose reason names the remote path) waits the longest backoff
  at once, with the cause in the status.
- The password is only in the URL given to the job and is used only to log in: the status and
  reasons show `redact(url)`, the repr nothing of it.
- FTPS as the URL says (ftpes://, ftps://), verified against `cafile` or pinned by
  `fingerprint` (FTPSession.connect's), in every session; with verify=False the status says
  "TLS unverified".
- Runs unchanged on MicroPython: no os.path, numbers compared to errno by name.
"""

import json
import os
import sys

import ulnet.spooldir as sd
from ulnet.errors import errno_text
from ulnet.ftp.session import FTPSession
from ulnet.ftp.url import parse_url, redact
from ulnet.spooldir import JOURNAL, pending  # noqa: F401 (re-exported)
from ulnet.spoollane import Lane

BOARD = sys.implementation.name == "micropython"


def _check(url, folder, device_id, cafile=None, fingerprint=None, verify=True):
    """The URL's path; ValueError naming the (config key of the) first bad value, never quoting
    the password. FTPS settings are checked here too, not at the job's first login."""
    for key, value in (("url", url), ("spool", folder), ("device_id", device_id)):
        if type(value) is not str:
            raise ValueError(key + " must be a string")
    try:
        parts = parse_url(url)
    except ValueError as exc:  # its text quotes the URL redacted
        raise ValueError("url: %s" % exc) from None
    if not sd.is_scan(device_id):  # the rules of a scan name: it starts every remote name
        raise ValueError("device_id must be a name without '/', CR, LF or NUL")
    if not folder.strip("/") or "\0" in folder:
        raise ValueError("spool must be a folder other than /, without NUL")
    if parts[5] or cafile is not None or fingerprint is not None or not verify:
        from ulnet.ftp.ftps import tls_session

        tls_session("", parts[5], cafile, fingerprint, verify)  # its texts name the setting
    return parts[4]


class Spool:
    """The upload job on an eventer: `start()`, then run the eventer until `done`.

    Counters: `sent` scans and their `bytes`, `bad` (set aside), `failures` (failed attempts),
    `left` (scans still in the spool when done; -1 when the folder could not be read), `used`
    (the most sessions logged in at once); `reason` is the last failure, `status` one line
    saying what the job does or why it waits. Callbacks, set before start(): on_status(text)
    on each new status; on_progress(op, done, total) as bytes go out (each FTP session's own
    callback: op.args[0] is the scan's path).
    """

    backoff_ms = 1000  # the first wait after a failed pass; doubles after each failed pass
    backoff_max_ms = 60000  # up to this: a scanner on flaky Wi-Fi still tries every minute
    # a walk of the folder holds this many names at most; a pass over N scans walks it about
    # N / batch + 1 times, each listing and stat'ing every entry. A board's walk holds fewer:
    # as many as half its heap free beyond what its sessions need holds (see _load)
    walk_batch = 1024 if BOARD else 4096
    # free heap a board needs to make one more session (at start, after the first): a session
    # costs about 6 KB at its peak (2 KB of objects, 1 KB logged in, 3 KB uploading). Measured
    # on the 64-bit emulated board (ROMFS) under the board test harness: with 19.2 KB free then
    # (64 KB of heap) two sessions upload 200 scans without a MemoryError, with 18.1 KB (63 KB)
    # one upload runs out. FTPS needs tls_heap more (each connection's TLS objects, the
    # handshakes' garbage): two FTPS sessions upload 20 scans and 256 KB with 33.6 KB free
    # (88 KB), and not with 25.5 KB (80 KB). Half on a 32-bit board.
    session_heap = 18432 if sys.maxsize > 1 << 32 else 9216
    tls_heap = 13312 if sys.maxsize > 1 << 32 else 6656

    def __init__(self, eventer, url, folder, device_id, keep=False, deadline_ms=600000, cafile=None,
                 fingerprint=None, verify=True, sessions=None):
        path = _check(url, folder, device_id, cafile, fingerprint, verify)
        self._tls = (cafile, fingerprint, verify)
        self.eventer, self.folder, self.keep, self.deadline_ms = eventer, folder, keep, deadline_ms
        self.sessions = sessions or (2 if BOARD else 4)
        self._url = url
        self._dir = folder.rstrip("/") + "/"  # paths are self._dir + name
        self._prefix = (path.rstrip("/") + "/" if path.strip("/") else "") + device_id + "-"
        self.sent = self.bytes = self.bad = self.failures = self.left = self.used = self._delay = 0
        self.reason = self.on_status = self.on_progress = self._timer = self._end = self._ctx = None
        self.status = "not started"
        # permanent: the last failure will not go away by itself, the job waits its longest
        # backoff; _refused: every failure of this pass so far was one of those
        self.permanent = self._refused = False
        self._lanes = []
        # this pass: _recover, what the journal named and no session took yet; _seen, the
        # names it named (walks leave them out); _names, the walk's batch (None: not walked
        # yet), _at the next of it, _last the time of its last; _more: the walk left some out
        self._recover, self._seen, self._names, self._at, self._last, self._more = [], [], None, 0, 0, False
        # (size, name) of the scans whose own bytes are in their .part: the only ones resumed,
        # and what the journal lists (a few: an older one goes from its start again, only slower)
        self._own = []
        # _moved: this pass delivered or set a scan aside (so another pass follows); _failed: a
        # scan was refused; _broke: a session failed (the pass ends in the backoff); _closed: no
        # more sessions open this pass; _feeding, _again: see _feed
        self.done = self._moved = self._failed = self._broke = self._closed = False
        self._feeding = self._again = False

    def start(self):
        """Begin at once; raises OSError when the spool folder is missing. Returns self."""
        sd.entries(self.folder)  # ENOENT, ENOTDIR now rather than from inside the loop
        ev = self.eventer
        self._delay = self.backoff_ms
        host, _, _, _, _, tls = parse_url(self._url)
        self._tls_on = bool(tls)
        if tls:
            from ulnet.ftp.ftps import tls_session

            try:
                # one TLS context for every session and login, made first: on a board it is a
                # 3 KB block, which a heap the job has used may no longer hold in one piece
                self._ctx = tls_session(host, tls, *self._tls).context(ev)
            except Exception:  # (the CA file unreadable, no heap) each login tries, and says why
                pass
        # every session's objects now (each holds a chunk buffer), while a board's heap is still
        # in one piece; a board makes one more only with session_heap bytes free
        lanes = self._lanes
        while len(lanes) < self.sessions and (not lanes or not BOARD or self._spare(2) >= 0):
            try:
                # a board's extra sessions carry scans with half the chunk buffer: scans are
                # small, and each KB of heap counts there
                buf = bytearray(ev.port.RECV_SIZE // 2) if lanes and BOARD else None
                lanes.append(Lane(self, FTPSession(ev, buf)))
            except MemoryError:
                if not lanes:
                    raise
                break
        if len(lanes) < self.sessions:
            self.sessions = n = len(lanes)
            self._say("%d session%s: no heap for more" % (n, "s"[n == 1:]))
        self._end = ev.call_later(self.deadline_ms, self.stop)
        self._timer = ev.call_later(0, self._pass)
        return self

    def stop(self, why="deadline passed"):
        """End the job now (uploads in flight are dropped: their .part is resumed next time)."""
        if self.done:
            return
        self.done = True
        self._timer.cancel()
        self._end.cancel()
        for lane in self._lanes:
            c = lane.session
            if not c.idle:
                c.close(why)  # its reports are ignored now
            elif c.connected:
                c.quit()
        self._lanes = []  # their buffers go back to a board's heap, also while the job is kept
        self._ctx = None
        try:
            self.left = pending(self.folder)[0]
            left = "%d left" % self.left
        except OSError as exc:
            self.left = -1  # unknown, and not "nothing left"
            left = "the spool folder is unreadable (%s)" % errno_text(exc)
        tail = "; last failure: " + self.reason if self.left and self.reason else ""
        self._say("%s: %d sent (%d bytes), %d set aside, %s%s"
                  % (why, self.sent, self.bytes, self.bad, left, tail))

    @property
    def clients(self):
        """The FTP sessions (made by start(), dropped when the job stops), for their knobs."""
        return [lane.session for lane in self._lanes]

    def summary(self):
        return {"sent": self.sent, "bytes": self.bytes, "bad": self.bad, "failures": self.failures,
                "left": self.left, "sessions": self.used, "reason": self.reason, "status": self.status}

    # -- passes ----------------------------------------------------------------------------

    def _pass(self):
        """Walk the spool once, starting with the scans a crash may have left in flight (the
        journal names them)."""
        self._moved = self._failed = self._broke = self._closed = False
        self._refused = True
        for lane in self._lanes:
            lane.down = False
        # the journal is all that is known of the scans cut so far: each is checked again first
        self._own = []
        try:
            self._recover = sd.read_journal(self.folder)
            self._seen = [entry[1] for entry in self._recover]
        except MemoryError:
            self._recover, self._seen = [], []  # not read: only slower (see the rules)
        self._names = None
        self._feed()

    def _feed(self):
        """Hand scans to the sessions that can take one, open sessions for the scans that wait,
        end the pass when nothing is left in flight. Not re-entered: a session that reports at
        once (a put that fails before it sends) comes back here, and the loop goes round again."""
        if self._feeding:
            self._again = True
            return
        self._feeding = self._again = True
        try:
            while self._again and not self.done:
                self._again = False
                try:
                    self._dispatch()
                except MemoryError:
                    # a board's heap ran out: a failed pass, over once nothing is in flight
                    self.failures += 1
                    self._broke = True
                    self._refused = False
                    self.reason = "out of memory"
                    if not self._busy():
                        self._names = None
                        self._retry(self.reason)
        finally:
            self._feeding = False

    def _busy(self):
        for lane in self._lanes:
            if lane.name is not None or lane.stale is not None or lane.connecting:
                return True
        return False

    def _dispatch(self):
        lanes = self._lanes
        try:
            for lane in lanes:
                if lane.ready() and not self._hand(lane):
                    break
            waiting = len(self._recover) + (len(self._names) - self._at if self._load() else 0)
        except OSError as exc:  # the folder itself (a card pulled, an I/O error): a failed pass
            self.failures += 1
            self._broke = True
            self._refused = False
            self.reason = "cannot read the spool folder: " + errno_text(exc)
            self._recover, self._names, self._more = [], [], False
            waiting = 0
        for lane in lanes:
            if lane.connecting:
                waiting -= 1  # it takes a scan once logged in
        while waiting > 0 and self._open():
            waiting -= 1
        if self._busy() or self._again:  # _again: a session reported meanwhile, _feed goes round
            return
        self._names = None
        if self._broke or (self._failed and not self._moved):
            self._retry(self.reason, self._refused)
        elif self._moved:
            self._pass()  # scans may have arrived, or been missed while others moved out
        else:
            self.stop("done")

    def _hand(self, lane):
        """Give the lane the next scan: one the journal names, else the oldest not handed out
        yet this pass. False when there is none."""
        if self._recover:
            entry = self._recover.pop(0)
            lane.recover(entry[0], entry[1])
            return True
        while self._load():
            name = self._names[self._at]
            self._at += 1
            n = self._check(name)  # catches its own errors: they concern one scan
            if n >= 0:
                lane.carry(name, n, self._owns(name))
                return True
        return False

    def _load(self):
        """True when the walk has a key ready (walking the folder again when its batch is used
        up and it left keys out). Raises OSError when the folder cannot be read."""
        names = self._names
        if names is None or (self._at == len(names) and self._more):
            after = (self._last, names[-1]) if names else None
            self._names = names = None  # the old batch's heap is free for the new one
            n = self.walk_batch
            if BOARD:
                # half the heap free beyond half a session_heap for each session and one more
                # (what the sessions may still need), at 80 bytes a name on a 64-bit board, 40
                # on a 32-bit one (measured: 75 and 38 for 12-character names; the other half
                # is the margin for longer ones); at least 4 (a small heap walks more often),
                # at most walk_batch
                n = min(n, max(4, self._spare(len(self._lanes) + 1) // (160 if sys.maxsize > 1 << 32 else 80)))
            self._names, self._last, self._more = sd.oldest(self.folder, after, n, self._seen)
            self._at = 0
        return self._at < len(self._names)

    def _open(self):
        """Open one more session for a scan that waits; False when none can open."""
        lanes = self._lanes
        logged = sum(1 for lane in lanes if lane.session.connected)
        connecting = sum(1 for lane in lanes if lane.connecting)
        # one login first: a wrong password or a dead server costs one attempt, not `sessions`
        if self._closed or logged + connecting >= self.sessions or connecting and not logged:
            return False
        for lane in lanes:
            if not lane.session.connected and not lane.connecting and not lane.down:
                break
        else:
            return False
        if not logged:
            self._say("connecting to " + redact(self._url) + ("" if self._tls[2] else " (TLS unverified)"))
        host, port, user, password, _, tls = parse_url(self._url)
        lane.connecting = True
        try:
            lane.session.connect(host, port, user, password, tls, *self._tls, context=self._ctx)
        except MemoryError:
            lane.abort("connect")
            return False
        return True

    def _spare(self, halves):
        """A board's free heap after a collection, less `halves` halves of the heap one more
        session needs (session_heap, and tls_heap for FTPS)."""
        import gc

        gc.collect()
        return gc.mem_free() - halves * (self.session_heap + (self.tls_heap if self._tls_on else 0)) // 2

    def _retry(self, why, permanent=False):
        """Wait, then another pass. A cause that will not go away by itself (permanent: the
        login refused, or the server refusing every scan of a pass) waits the longest backoff
        at once; `permanent` tells the caller (`ulnet upload` gives up on it)."""
        self._names = None
        self.permanent = permanent
        if permanent:
            self._delay = self.backoff_max_ms
        delay = self._delay
        self._delay = min(delay * 2, self.backoff_max_ms)
        self._timer.restart(delay)  # before the status: its callback may stop the job
        self._say("retry in %d.%d s: %s" % (delay // 1000, delay % 1000 // 100, why))

    def _check(self, name):
        """The size of scan `name`; -1 when it is no scan, or is set aside now."""
        n = sd.check(self._dir + name, name)
        if type(n) is int:
            return n
        why = n
        try:
            sd.set_aside(self.folder, name, why, ".%d" % self.eventer.port.ticks_ms())
        except OSError as exc:
            self.failures += 1
            self._failed = True
            self._refused = False
            self.reason = "cannot move %s: %s" % (name, errno_text(exc))
            self._say(self.reason)
            return -1
        self.bad += 1
        self._moved = True
        self._say("set aside %s: %s" % (name, why))
        return -1

    # -- the journal: the scans whose own bytes are in their .part --------------------------

    def _owns(self, name):
        for entry in self._own:
            if entry[1] == name:
                return True
        return False

    def _begin(self, size, name):
        """The scan's .part holds its own bytes: resumable, and the journal names it."""
        own = self._own
        for entry in own:
            if entry[1] == name and entry[0] == size:
                return  # listed already
        self._forget(name, False)
        while len(own) >= self.sessions + 4:  # (>=: the job may have dropped sessions since)
            own.pop(0)  # the oldest cut scan goes from its start again: only slower
        own.append((size, name))
        self._write()

    def _forget(self, name, write=True):
        for entry in self._own:
            if entry[1] == name:
                self._own.remove(entry)
                if write:
                    self._write()
                return

    def _write(self):
        """The journal: the scans with their own bytes in a .part, those a crash left in it and
        no session took yet, and the gone or changed ones whose .part is being deleted."""
        named = self._own + self._recover
        for lane in self._lanes:
            if lane.stale is not None:
                named = named + [lane.stale]
        sd.write_journal(self.folder, named)

    # -- what sessions report -------------------------------------------------------------------

    def _delivered(self, lane):
        name = lane.name
        path = self._dir + name
        self._begin(lane.size, name)  # (an empty scan sent no bytes) the next pass only moves it
        lane.name = None
        try:
            if self.keep:
                sd.mkdir(self._dir + sd.SENT)
                sd.replace(path, self._dir + sd.SENT + "/" + name)
            else:
                os.remove(path)
        except OSError as exc:
            # on the server already; the journal makes the next pass check SIZE, not resend
            self.failures += 1
            self._broke = True
            self._refused = False
            self.reason = "cannot move %s: %s" % (name, errno_text(exc))
            self._say(self.reason)
            return self._feed()
        self._forget(name)
        self.sent += 1
        self.bytes += lane.size
        self._moved = True
        self._delay = self.backoff_ms
        self.permanent = False
        self._say("sent " + name)
        self._feed()

    def _unstale(self, lane):
        """The .part of a journaled scan that is gone or changed was deleted (or could not be):
        the journal forgets the old size, and a changed scan goes from its start."""
        name = lane.stale[1]
        lane.stale = None
        self._write()
        if sd.size(self._dir + name) >= 0:  # changed, not gone (delivered, or vanished)
            n = self._check(name)
            if n >= 0:
                return lane.carry(name, n, False)
        self._feed()

    def _failure(self, lane, what, code, text):
        """A failed operation (`what`, its name) of the lane's session: its scan stays in the
        spool (and in the journal when its bytes are on the server)."""
        reply = "%d %s" % (code, text) if code else text
        full = code in (452, 552) or "no space" in text.lower()  # 452, 552: RFC 959 for "full"
        # a MemoryError: ours ("out of memory"), or MicroPython's in the session
        heap = code is None and "memory" in text
        if what == "connect":
            why = ("login refused: " if code == 530 else "cannot log in: " if code or heap else
                   "" if text.startswith("TLS") else "server unreachable: ") + reply  # TLS: it says why
            # no heap: fewer sessions, with the heap the dropped ones held (a first login goes
            # again at once); else the next login would most likely fail alike
            shed = heap and self._shed(lane, why)
            if not shed:
                self._closed = True
            others = sum(1 for other in self._lanes if other.session.connected or other.connecting)
            if shed or any(other.session.connected for other in self._lanes):
                # others logged in: the job keeps to the sessions it has (the server lets no
                # more in: 421 "too many connections", or a 530 for the same)
                if not shed:
                    self.sessions = others
                    self._say("%d session%s: %s" % (others, "s"[others == 1:], why))
                self.failures += 1
                self.reason = why
                return self._feed()
        else:
            name = lane.name or lane.stale and lane.stale[1]
            why = "%s%s %s failed: %s" % ("server disk full: " if full else "", what, name, reply)
            if heap:
                self._shed(lane, why)  # with others logged in, this one closes and they go on
        if what == "put" and code in (550, 553):  # no such folder, no permission, a bad name
            why += " (remote path %s)" % (self._prefix + name)
        elif code != 530:  # the login refused (530) will not go away by itself either
            self._refused = False
        lane.name = lane.stale = None
        self.failures += 1
        self.reason = why
        if not lane.session.pipeline:  # its server left a command group unanswered: so may all
            for other in self._lanes:
                other.session.pipeline = False
        if lane.session.connected and not full and not (code and code < 500):
            self._failed = True  # this scan only: the session goes on with the next
        else:
            lane.down = True  # this session waits for the next pass; the others go on
            self._broke = True
        self._say(why)
        self._feed()

    def _shed(self, lane, why):
        """No heap for lane's session (`why` says where it ran out): the job keeps the sessions
        logged in or logging in, else this one alone, and drops the others, whose objects and
        chunk buffers go back to the heap. False when it dropped none."""
        keep = [other for other in self._lanes
                if other is not lane and (other.session.connected or other.connecting)]
        if not keep:
            keep = [lane]
        if len(keep) == len(self._lanes):
            return False
        self._lanes = keep  # a new list: _dispatch may be walking the old one
        self.sessions = n = len(keep)
        self._say("%d session%s: no heap for more (%s)" % (n, "s"[n == 1:], why))
        if lane not in keep:
            lane.down = True
            lane.session.close("out of memory")  # what it queued fails as usual
        return True

    def _say(self, text):
        self.status = text
        if self.on_status is not None:
            self.on_status(text)


def check_config(cfg):
    """The values of a device config (the JSON object of /ulnet.json), checked, in Spool's
    argument order: (url, folder, device_id, keep, deadline_ms, cafile, fingerprint), then
    sessions (Spool's keyword). Keys: "url" (ftp://user:password@host/dir, or ftpes://,
    ftps://) and "device_id", optional "spool" (default "/spool"), "keep" (false),
    "deadline_s" (600), "cafile" (a CA file on flash, PEM or DER) and "fingerprint" (the server
    certificate's SHA-256, hex), for FTPS, and "sessions" (1 to 8; default 4 on CPython, 2 on a
    board). Raises ValueError naming the first bad, missing or unknown key (a typo'd "keep"
    must not delete the scans); its text never quotes the password."""
    if not isinstance(cfg, dict):
        raise ValueError("not a JSON object")
    for key in sorted(cfg):  # sorted: the same first bad key on both runtimes (dict order differs)
        if key not in ("url", "spool", "device_id", "keep", "deadline_s", "cafile", "fingerprint", "sessions"):
            # named when it is a plain name (letters, digits, _); anything else may hold a
            # password, a control character, or text whose repr differs between runtimes
            name = key or "''"
            for c in key.encode():
                if not (c == 95 or 47 < c < 58 or 64 < c < 91 or 96 < c < 123):
                    name = "(not a plain name)"
            raise ValueError("unknown key " + name)
    for key in ("url", "device_id"):
        if key not in cfg:
            raise ValueError("missing " + key)
    url, folder, device_id = cfg["url"], cfg.get("spool", "/spool"), cfg["device_id"]
    cafile, fingerprint = cfg.get("cafile"), cfg.get("fingerprint")
    _check(url, folder, device_id, cafile, fingerprint)
    keep, s = cfg.get("keep", False), cfg.get("deadline_s", 600)
    if keep is not True and keep is not False:  # "no" would count as true
        raise ValueError("keep must be true or false")
    # at most 5 days: a board's millisecond ticks wrap at 2**30 and take deltas up to half that
    if type(s) not in (int, float) or not 0.001 <= s <= 432000:  # NaN fails too
        raise ValueError("deadline_s must be 0.001 to 432000 (seconds)")
    n = cfg.get("sessions")
    if n is not None and (type(n) is not int or not 1 <= n <= 8):  # bool is no int here
        raise ValueError("sessions must be 1 to 8")
    return url, folder, device_id, keep, int(s * 1000), cafile, fingerprint, n


def run_from_config(path="/ulnet.json", on_status=print):
    """Run the job a JSON config describes (see check_config) until the spool is empty or its
    deadline passes; returns the job (its counters and status)."""
    from ulnet.eventer import Eventer

    try:
        with open(path) as f:
            cfg = json.loads(f.read())
    except (OSError, ValueError, RuntimeError):  # RecursionError too; never quote the file
        raise ValueError("config %s: unreadable, or not JSON" % path) from None
    try:
        args = check_config(cfg)
    except ValueError as exc:
        raise ValueError("config %s: %s" % (path, exc)) from None
    ev = Eventer()
    try:
        job = Spool(ev, *args[:7], sessions=args[7])
        job.on_status = on_status
        job.start()
        # the job's own deadline ends it first; this bound only guards against a stuck loop
        ev.run_until(lambda: job.done, job.deadline_ms + 10000)
    finally:
        ev.close()
    return job
