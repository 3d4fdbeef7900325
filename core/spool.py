"""Spool: the store-and-forward upload job. Scan files dropped into a spool folder go to an FTP
server, each exactly once, whatever fails and whenever the power goes.

The spool folder (on the device's flash, or any folder on a host):
    NAME             a scan waiting to go (any bytes). A scanner writes `.NAME` and renames it
                     when complete: names starting with "." are never touched.
    sent/NAME        uploaded and confirmed, when `keep` (otherwise the scan is deleted)
    bad/NAME         set aside, never retried: a directory, a device node, unreadable, a name
                     FTP cannot carry; bad/NAME.why holds the reason (also when NAME vanished)
    .journal         "SIZE NAME" of the scan in flight, once its bytes reach the server (written
                     to .journal.tmp, then renamed)

Rules:
- Scan NAME goes to URLPATH/DEVICEID-NAME by an atomic, resumable put: the server writes
  .DEVICEID-NAME.part and renames it when complete, so the final name never holds a partial
  file and a retry replaces, never duplicates. Scan names must be unique per device.
- A scan leaves the spool only after the server confirmed it: the put's final reply and its
  rename, then SIZE equal to the local size. Then the scan moves (or is deleted), then the
  journal goes.
- Only a scan whose own bytes are in its .part is resumed: the journal names a scan once the
  first bytes of its upload were sent (its STOR has replaced whatever .part was there), and
  an empty scan once its put succeeded; the job also remembers the last few such scans of its
  run (scans cut one after another all resume). Every other scan goes from its start, without
  asking SIZE first (a round trip per scan), and its STOR replaces a stale .part.
- A crash at any instant, then a restart:
    before the journal names the scan: at most a few bytes of it, or a stale .part, are on the
      server; the scan is sent from its start;
    mid-upload: the scan is still here and its .part on the server is resumed, then renamed;
    after the rename, before the local move: the journaled scan is checked with SIZE first and
      only moved, not sent again;
    after the local move (atomic: one rename or remove), before the journal goes: the scan is
      gone, so its .part (none, or an orphan of a scan that vanished mid-upload) is deleted.
    a journaled scan whose size changed since: its .part is deleted and it is sent from its
      start, never resumed onto the old bytes (even where DELE is refused, or the new upload
      fails before its data flows: the journal keeps the old size until then).
  Without a journal (lost, torn, flash full) every outcome is still right, only slower: a scan
  already on the server is sent again and replaces itself. So journal write errors are ignored,
  and so is a journal that does not name a plain scan of the spool (a "../" or a NUL in it).
- Failures never drop a scan. The status line says why, and the job retries with capped
  exponential backoff (timers, never sleeps) until its deadline. A refusal of one scan (5xx,
  or a failed data connection) moves on to the next; anything else (unreachable, login refused,
  disk full, 4xx, a lost link) ends the pass until the backoff is over. A cause that will not go
  away by itself (login refused with 530; every scan of a pass refused with 550/553, whose
  reason names the remote path) waits the longest backoff at once, with the cause in the status.
- The password is only in the URL given to the job and is used only to log in: the status and
  reasons show `redact(url)`, the repr nothing of it.
- FTPS as the URL says (ftpes://, ftps://), verified against `cafile` or pinned by
  `fingerprint` (FTPSession.connect's); with verify=False the status says "TLS unverified".
- Runs unchanged on MicroPython: os.ilistdir, no os.path, numbers compared to errno by name.
"""

import errno
import json
import os

from ulnet.errors import errno_of, errno_text
from ulnet.ftp.ops import temp_name
from ulnet.ftp.session import FTPSession
from ulnet.ftp.url import parse_url, redact

JOURNAL = ".journal"
SENT = "sent"
BAD = "bad"
# os.stat()[0] file type bits: the same on CPython and every MicroPython port
S_IFMT = 0xF000
S_IFREG = 0x8000


def _entries(folder):
    """The folder's entries, tuples with the name first: os.ilistdir streams them on MicroPython
    (a board cannot hold a long list; FAT and littlefs list in order of creation); on CPython,
    oldest first (zip() makes the names 1-tuples; a name gone meanwhile sorts first, the walk
    then finds it gone)."""
    if hasattr(os, "ilistdir"):
        return os.ilistdir(folder)
    return zip(sorted(os.listdir(folder), key=lambda n: max(0, _size(folder + "/" + n, 8))))


def _size(path, field=6):
    """The size of path (or another os.stat field), -1 when it cannot be stat'ed."""
    try:
        return os.stat(path)[field]
    except OSError:
        return -1


def _is_scan(name):
    """True for the name of a scan: a plain name in the spool folder, not hidden, not sent/ or
    bad/, without a character FTP cannot carry (NUL also makes os.stat raise ValueError)."""
    return (name != "" and name[0] != "." and name != SENT and name != BAD and "/" not in name
            and "\r" not in name and "\n" not in name and "\0" not in name)


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError as exc:
        if errno_of(exc) != errno.EEXIST:
            raise


def _replace(src, dst):
    """Rename src onto dst, replacing it: the unix port and littlefs do that, FAT refuses."""
    try:
        os.rename(src, dst)
    except OSError as exc:
        if errno_of(exc) != errno.EEXIST:
            raise
        os.remove(dst)
        os.rename(src, dst)


def pending(folder):
    """(files, bytes) of what waits in the spool folder."""
    files = total = 0
    base = folder.rstrip("/") + "/"
    for entry in _entries(folder):
        name = entry[0]
        if name[0] != "." and name != SENT and name != BAD:
            files += 1
            total += max(0, _size(base + name))
    return files, total


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
    if not _is_scan(device_id):  # the rules of a scan name: it starts every remote name
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
    `left` (scans still in the spool when done; -1 when the folder could not be read); `reason`
    is the last failure, `status` one line saying what the job does or why it waits. Callbacks, set before start():
    on_status(text) on each new status; on_progress(op, done, total) as bytes go out (the FTP
    session's own callback: op.args[0] is the scan's path).
    """

    backoff_ms = 1000  # the first wait after a failed pass; doubles after each failed pass
    backoff_max_ms = 60000  # up to this: a scanner on flaky Wi-Fi still tries every minute

    def __init__(self, eventer, url, folder, device_id, keep=False, deadline_ms=600000, cafile=None,
                 fingerprint=None, verify=True):
        path = _check(url, folder, device_id, cafile, fingerprint, verify)
        self._tls = (cafile, fingerprint, verify)
        self.eventer, self.folder, self.keep, self.deadline_ms = eventer, folder, keep, deadline_ms
        self._url = url
        self._dir = folder.rstrip("/") + "/"  # paths are self._dir + name
        self._prefix = (path.rstrip("/") + "/" if path.strip("/") else "") + device_id + "-"
        self.sent = self.bytes = self.bad = self.failures = self.left = self._size = self._delay = 0
        # _scans: the walk of this pass; _name, _size: the scan in flight
        self.reason = self.on_status = self.on_progress = self.client = self._scans = self._name = None
        # permanent: the last failure will not go away by itself, the job waits its longest backoff
        self.permanent = self._refused = False
        self._timer = self._end = None
        # scans whose own bytes are in their .part: the only ones resumed (a few: an older one
        # is sent from its start again, which is only slower); _named: the one the journal names
        self._own = []
        self._named = None
        self.status = "not started"
        # _uploaded: the put of the scan in flight succeeded; _moved: this pass delivered or set
        # a scan aside (so another pass follows); _failed: a scan of this pass failed
        self.done = self._uploaded = self._moved = self._failed = False

    def start(self):
        """Begin at once; raises OSError when the spool folder is missing. Returns self."""
        _entries(self.folder)  # ENOENT, ENOTDIR now rather than from inside the loop
        ev = self.eventer
        self._delay = self.backoff_ms
        self.client = c = FTPSession(ev)
        c.on_success = c.on_failure = self._done
        self._end = ev.call_later(self.deadline_ms, self.stop)
        self._timer = ev.call_later(0, self._pass)
        return self

    def stop(self, why="deadline passed"):
        """End the job now (an upload in flight is dropped: its .part is resumed next time)."""
        if self.done:
            return
        self.done = True
        self._timer.cancel()
        self._end.cancel()
        c = self.client
        if not c.idle:
            c.close(why)  # its reports are ignored now
        elif c.connected:
            c.quit()
        try:
            self.left = pending(self.folder)[0]
            left = "%d left" % self.left
        except OSError as exc:
            self.left = -1  # unknown, and not "nothing left"
            left = "the spool folder is unreadable (%s)" % errno_text(exc)
        tail = "; last failure: " + self.reason if self.left and self.reason else ""
        self._say("%s: %d sent (%d bytes), %d set aside, %s%s"
                  % (why, self.sent, self.bytes, self.bad, left, tail))

    def summary(self):
        return {"sent": self.sent, "bytes": self.bytes, "bad": self.bad, "failures": self.failures,
                "left": self.left, "reason": self.reason, "status": self.status}

    # -- passes ----------------------------------------------------------------------------

    def _pass(self):
        """Log in when needed, then walk the spool once, starting with the scan a crash may
        have left in flight (the journal names it)."""
        c = self.client
        if not c.connected:
            host, port, user, password, _, tls = parse_url(self._url)
            self._say("connecting to " + redact(self._url) + ("" if self._tls[2] else " (TLS unverified)"))
            c.connect(host, port, user, password, tls, *self._tls)
            return  # its report comes back here
        self._moved = self._failed = False
        self._refused = True  # every failure of this pass was a refused remote path so far
        self._scans = None
        try:
            with open(self._dir + JOURNAL) as f:
                size, name = f.read(512).split(" ", 1)
        except (OSError, ValueError):
            size = name = ""
        # none, torn by a crash on a host, or not naming a plain scan of the spool (whatever can
        # drop scans here can write it: "../x" must not make the job upload and delete a file
        # elsewhere): ignored, the safe (slower) path
        if not size.encode().isdigit() or not _is_scan(name):  # digits int() takes on both runtimes
            return self._next()
        size = int(size)
        self._name, self._size, self._uploaded = name, size, False
        self._named = name
        remote = self._prefix + name
        if _size(self._dir + name) == size:
            self._begin()
            c.size(remote)  # it may be on the server already: then it only moves
        else:  # gone (delivered, or vanished mid-upload) or changed: its .part is an orphan
            self._forget(name)
            c.delete(temp_name(remote))  # a changed scan is then sent from its start (_next)

    def _next(self):
        """Start on the next scan of this pass, or end the pass."""
        try:  # the folder itself can fail (a card pulled, an I/O error): a failed pass, retried
            if self._scans is None:
                self._scans = _entries(self.folder)
            for entry in self._scans:
                name = entry[0]
                size = self._check(name)  # catches its own errors: they concern one scan
                if size >= 0:
                    self._name, self._size, self._uploaded = name, size, False
                    return self._put(name in self._own)
        except OSError as exc:
            self.failures += 1
            self.reason = "cannot read the spool folder: " + errno_text(exc)
            return self._retry(self.reason)
        self._scans = None
        if self._moved:
            self._pass()  # scans may have arrived, or been missed while others moved out
        elif self._failed:
            self._retry(self.reason, self._refused)
        else:
            self.stop("done")

    def _retry(self, why, permanent=False):
        """Wait, then another pass. A cause that will not go away by itself (permanent: the
        login refused, or the server refusing every scan of a pass) waits the longest backoff
        at once; `permanent` tells the caller (`ulnet upload` gives up on it)."""
        self._scans = None
        self.permanent = permanent
        if permanent:
            self._delay = self.backoff_max_ms
        delay = self._delay
        self._delay = min(delay * 2, self.backoff_max_ms)
        self._timer.restart(delay)  # before the status: its callback may stop the job
        self._say("retry in %d.%d s: %s" % (delay // 1000, delay % 1000 // 100, why))

    def _check(self, name):
        """The size of scan `name`; -1 when it is no scan, or is set aside now."""
        if name[0] == "." or name == SENT or name == BAD:
            return -1
        path = self._dir + name
        try:
            st = os.stat(path)
            if not _is_scan(name):  # a listed name has no "/": the rest is CR, LF or NUL
                why = "CR, LF or NUL in its name"
            elif st[0] & S_IFMT != S_IFREG:
                why = "not a regular file"
            else:
                open(path, "rb").close()  # readable: what the put will do
                return st[6]
        except OSError as exc:
            why = "vanished from the spool" if errno_of(exc) == errno.ENOENT else "unreadable: " + errno_text(exc)
        bad = self._dir + BAD
        target = bad + "/" + name
        try:
            _mkdir(bad)
            if _size(target) >= 0:  # an earlier bad scan of that name: keep both
                target += ".%d" % self.eventer.port.ticks_ms()
            # the reason first: a crash before the move leaves the entry here, to be set aside again
            with open(target + ".why", "w") as f:
                f.write(why + "\n")
            try:
                _replace(path, target)
            except OSError as exc:
                if errno_of(exc) != errno.ENOENT:  # vanished: the reason alone is the record
                    raise
        except OSError as exc:
            self.failures += 1
            self._failed = True
            self.reason = "cannot move %s: %s" % (name, errno_text(exc))
            self._say(self.reason)
            return -1
        self.bad += 1
        self._moved = True
        self._say("set aside %s: %s" % (name, why))
        return -1

    # -- the scan in flight ----------------------------------------------------------------

    def _put(self, resume):
        self._say("%s %s (%d bytes)" % ("resuming" if resume else "uploading", self._name, self._size))
        c = self.client
        if resume:
            self._begin()  # in flight again, with its own bytes in its .part
        c.on_progress = self._started  # until its first bytes are sent
        c.put(self._dir + self._name, self._prefix + self._name, True, resume)

    def _started(self, op, done, total):
        """The first progress of a put: bytes of this scan went out after its STOR (or REST)
        was accepted, so its .part holds its own bytes from here, and the journal may name it.
        The later chunks go to the user's on_progress alone: this costs one call per put."""
        self.client.on_progress = self.on_progress
        self._begin()
        if self.on_progress is not None:
            self.on_progress(op, done, total)

    def _begin(self):
        """The scan in flight's .part holds its own bytes: resumable, and the journal names it."""
        name, own = self._name, self._own
        self._forget(name)
        if len(own) == 4:
            own.pop(0)
        own.append(name)  # the latest last
        if self._named != name:
            self._note(name)

    def _forget(self, name):
        if name in self._own:
            self._own.remove(name)

    def _done(self, op, code=None, text=None):
        """The session's on_success(op) and on_failure(op, code, text) alike."""
        if self.done:
            return
        what = op.name
        c = self.client
        if text is None:
            if what == "connect":
                return self._pass()
            if what == "put":
                self._uploaded = True
                self._begin()  # an empty scan sent no bytes: journaled now, before the move
                return c.size(self._prefix + self._name)
            if what == "size" and op.result == self._size == _size(self._dir + self._name):
                return self._delivered()
            if what == "size" and self._uploaded:
                text = "server has %d bytes, not %d" % (op.result, self._size)
        if c.connected and what == "delete":  # deleted, or no orphan .part: the usual case
            self._note(None)
            return self._next()
        if c.connected and what == "size" and not self._uploaded:
            return self._put(True)  # the journaled scan is not (all) under its final name: resume
        reply = "%d %s" % (code, text) if code else text
        full = code in (452, 552) or "no space" in text.lower()  # 452, 552: RFC 959 for "full"
        if what == "connect":
            why = ("login refused: " if code == 530 else "cannot log in: " if code else
                   "" if text.startswith("TLS") else "server unreachable: ") + reply  # TLS: it says why
        else:
            why = "%s%s %s failed: %s" % ("server disk full: " if full else "", what, self._name, reply)
        if what == "put" and code in (550, 553):  # no such folder, no permission, a bad name
            why += " (remote path %s)" % (self._prefix + self._name)
        else:
            self._refused = False
        self.failures += 1
        self.reason = why
        if c.connected and not full and not (code and code < 500):
            self._failed = True  # this scan only: it stays, the others go on
            self._say(why)
            return self._next()
        self._retry(why, code == 530)

    def _delivered(self):
        name = self._name
        path = self._dir + name
        try:
            if self.keep:
                _mkdir(self._dir + SENT)
                _replace(path, self._dir + SENT + "/" + name)
            else:
                os.remove(path)
        except OSError as exc:
            # on the server already; the journal makes the next pass check SIZE, not resend
            self.failures += 1
            return self._retry("cannot move %s: %s" % (name, errno_text(exc)))
        self._note(None)
        self._forget(name)
        self.sent += 1
        self.bytes += self._size
        self._moved = True
        self._delay = self.backoff_ms
        self.permanent = False
        self._say("sent " + name)
        self._next()

    def _note(self, name):
        """Name the scan in flight in the journal (None: remove it); errors are harmless (see
        the rules)."""
        self._named = name
        path = self._dir + JOURNAL
        try:
            if name is None:
                os.remove(path)
            else:
                with open(path + ".tmp", "w") as f:
                    f.write("%d %s" % (self._size, name))
                _replace(path + ".tmp", path)
        except OSError:
            pass

    def _say(self, text):
        self.status = text
        if self.on_status is not None:
            self.on_status(text)


def check_config(cfg):
    """The values of a device config (the JSON object of /ulnet.json), checked, in Spool's
    argument order: (url, folder, device_id, keep, deadline_ms, cafile, fingerprint). Keys:
    "url" (ftp://user:password@host/dir, or ftpes://, ftps://) and "device_id", optional "spool"
    (default "/spool"), "keep" (false), "deadline_s" (600), "cafile" (a CA file on flash, PEM or
    DER) and "fingerprint" (the server certificate's SHA-256, hex), for FTPS. Raises ValueError
    naming the first bad, missing or unknown key (a typo'd "keep" must not delete the scans);
    its text never quotes the password."""
    if not isinstance(cfg, dict):
        raise ValueError("not a JSON object")
    for key in sorted(cfg):  # sorted: the same first bad key on both runtimes (dict order differs)
        if key not in ("url", "spool", "device_id", "keep", "deadline_s", "cafile", "fingerprint"):
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
    return url, folder, device_id, keep, int(s * 1000), cafile, fingerprint


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
        job = Spool(ev, *args)
        job.on_status = on_status
        job.start()
        # the job's own deadline ends it first; this bound only guards against a stuck loop
        ev.run_until(lambda: job.done, job.deadline_ms + 10000)
    finally:
        ev.close()
    return job
