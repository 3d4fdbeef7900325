"""One FTP session of the upload job (ulnet.spool) and the scan it carries: the scan's put, or
the check of a scan the journal names, and what the session reports back.

Rules (the job's, see ulnet.spool): a put is atomic and verified; the job journals a scan at
the first progress report of its put (the server took its STOR: from there its .part holds its
own bytes, see ulnet.ftp.ops.Transfer.accept); a journaled scan is first asked SIZE (on the
server already: it only moves) or, when gone or changed, its .part is deleted first. Every
report goes back to the job, which counts, journals and hands out the next scan.
"""

import ulnet.spooldir as sd
from ulnet.ftp.ops import temp_name


class Lane:
    """One FTP session of the job and the scan it carries (`name`, None when it carries none);
    `stale`, (size, name) of a journaled scan whose .part is being deleted."""

    def __init__(self, job, session):
        self.job, self.session = job, session
        self.name = self.stale = None
        self.size = 0
        self.connecting = self.down = False  # down: failed, waits for the next pass
        session.on_success = session.on_failure = self._done

    def ready(self):
        return self.name is None and self.stale is None and self.session.connected and not self.down

    def carry(self, name, size, resume):
        """Upload scan `name` (resume: its own bytes are in its .part)."""
        job = self.job
        self.name, self.size = name, size
        job._say("%s %s (%d bytes)" % ("resuming" if resume else "uploading", name, size))
        if resume:
            job._begin(size, name)  # in flight again, with its own bytes in its .part
        c = self.session
        c.on_progress = self._started  # until its first bytes are sent
        try:
            c.put(job._dir + name, job._prefix + name, True, resume, True)
        except MemoryError:
            self.abort("put")

    def recover(self, size, name):
        """A scan the journal names (a crash may have cut it anywhere): on the server already,
        or its .part to resume; gone or changed: its .part is an orphan, deleted first."""
        job = self.job
        remote = job._prefix + name
        try:
            if sd.size(job._dir + name) == size:
                self.name, self.size = name, size
                job._begin(size, name)
                self.session.size(remote)  # it may be on the server already: then it only moves
            else:
                self.stale = (size, name)  # the journal keeps the old size until the DELE is over
                self.session.delete(temp_name(remote))
        except MemoryError:
            self.abort("size")

    def abort(self, what):
        """No heap for the operation `what` just asked of the session: the session closes (what
        it queued fails and reports as usual), and the job hears of the failure once."""
        self.session.close("out of memory")
        if self.name is not None or self.stale is not None or self.connecting:
            self.connecting = False
            self.job._failure(self, what, None, "out of memory")

    def _started(self, op, done, total):
        """The first progress of a put: bytes of this scan went out after its STOR (or REST)
        was accepted, so its .part holds its own bytes from here, and the journal may name it.
        The later chunks go to the job's on_progress alone: this costs one call per put."""
        c = self.session
        c.on_progress = self.job.on_progress
        self.job._begin(self.size, self.name)
        if c.on_progress is not None:
            c.on_progress(op, done, total)

    def _done(self, op, code=None, text=None):
        """The session's on_success(op) and on_failure(op, code, text) alike."""
        job = self.job
        if job.done:
            return
        what = op.name
        c = self.session
        if what == "connect":
            self.connecting = False
        if text is None:
            if what == "connect":
                job.used = max(job.used, sum(1 for lane in job._lanes if lane.session.connected))
                return job._feed()
            if what == "put":
                return job._delivered(self)
            if what == "size" and op.result == self.size == sd.size(job._dir + self.name):
                return job._delivered(self)
        if c.connected and what == "delete":  # deleted, or no orphan .part: the usual case
            return job._unstale(self)
        if c.connected and what == "size":
            # the journaled scan is not (all) under its final name: resume
            return self.carry(self.name, self.size, True)
        job._failure(self, what, code, text)
