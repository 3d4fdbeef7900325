"""`ulnet upload SPOOL_DIR URL`: run the store-and-forward upload job (ulnet.spool) on this host.

On a terminal a progress bar shows files and bytes; otherwise each status line of the job is
printed as it comes. A summary table ends the run. Exit code: 0 only when the spool is empty
and no scan was set aside; 1 when scans are left (the last line says why) or some were set
aside in SPOOL_DIR/bad/; 2 for bad arguments; 130 after Ctrl-C. The URL is only ever shown through redact(): the
password never reaches the output.
"""

import socket
import sys

from ulnet.errors import errno_text
from ulnet.eventer import Eventer
from ulnet.ftp.url import redact
from ulnet.spool import Spool, pending

BAR = 24  # characters of the progress bar
REDRAW_MS = 100  # at most ten redraws a second: a terminal is slower than a loopback upload


def add_parser(sub):
    p = sub.add_parser("upload", help="upload every scan in SPOOL_DIR to an FTP server, store-and-forward",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("spool", metavar="SPOOL_DIR", help="folder of scan files (bad/ and sent/ inside)")
    p.add_argument("url", metavar="URL", help="ftp://user:password@host:port/dir")
    p.add_argument("--device-id", help="prefix of the remote names, DEVICE-NAME (default: this host's name)")
    p.add_argument("--keep", action="store_true", help="move uploaded scans to SPOOL_DIR/sent/, not delete them")
    p.add_argument("--deadline", type=float, default=600, metavar="S", help="stop after S seconds (default 600)")
    p.set_defaults(run=run)


class Progress:
    """Shows the job: a redrawn bar on a terminal, plain status lines elsewhere."""

    def __init__(self, out, job, files, total):
        self.out, self.job, self.files, self.total = out, job, files, total
        self.tty = out.isatty()
        self.current = 0  # bytes of the scan in flight sent so far
        self.drawn = -REDRAW_MS

    def status(self, text):
        self.current = 0
        if self.tty:
            self.draw(text, True)
        else:
            print(text, file=self.out, flush=True)

    def sending(self, op, done, total):
        self.current = done
        if self.tty:
            self.draw("uploading " + op.args[0].rsplit("/", 1)[-1], False)

    def draw(self, text, force):
        port = self.job.eventer.port
        now = port.ticks_ms()
        if not force and port.ticks_diff(now, self.drawn) < REDRAW_MS:
            return
        self.drawn = now
        job = self.job
        files = job.sent + job.bad
        done = job.bytes + self.current
        fill = BAR * min(done, self.total) // self.total if self.total else BAR * (files >= self.files)
        line = "[%s%s] %d/%d files  %s/%s  %s" % ("#" * fill, "." * (BAR - fill), files, self.files,
                                                  human(done), human(self.total), text)
        self.out.write("\r\x1b[K" + line[:150])
        self.out.flush()

    def end(self):
        if self.tty:
            self.out.write("\n")  # the last bar stays above the summary


def human(n):
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024


def summary(job, seconds):
    """The table printed at the end."""
    try:
        left_files, left_bytes = pending(job.folder)
    except OSError:
        left_files, left_bytes = "?", "?"  # the job's status line says why
    rows = [("", "files", "bytes"), ("uploaded", job.sent, job.bytes), ("set aside", job.bad, "-"),
            ("left", left_files, left_bytes), ("failed attempts", job.failures, ""),
            ("time", "%.2f s" % seconds, "")]
    lines = ["%-16s %8s %12s" % row for row in rows]
    lines.append(job.status)
    if job.bad:
        lines.append("set aside in %s/bad/ (NAME.why says why)" % job.folder.rstrip("/"))
    return "\n".join(lines)


def run(args):
    ev = Eventer()
    try:
        job = Spool(ev, args.url, args.spool, args.device_id or socket.gethostname(), args.keep,
                    int(args.deadline * 1000))
        files, total = pending(args.spool)
    except (ValueError, OSError) as exc:  # ValueError texts never quote the password
        ev.close()
        why = "%s: %s" % (args.spool, errno_text(exc)) if isinstance(exc, OSError) else exc
        print("ulnet upload: %s" % why, file=sys.stderr)
        return 2
    out = sys.stdout
    bar = Progress(out, job, files, total)
    job.on_status = bar.status
    job.on_progress = bar.sending
    print("uploading %d scans (%s) from %s to %s" % (files, human(total), args.spool, redact(args.url)),
          file=out, flush=True)
    start = ev.port.ticks_ms()
    code = None
    try:
        job.start()
        ev.run_until(lambda: job.done, job.deadline_ms + 10000)
    except KeyboardInterrupt:
        job.stop("interrupted")  # the scan in flight stays, its .part is resumed next time
        code = 130
    finally:
        ev.close()
        bar.end()
    print(summary(job, ev.port.ticks_diff(ev.port.ticks_ms(), start) / 1000), file=out, flush=True)
    return code or (0 if job.left == 0 and job.bad == 0 else 1)
