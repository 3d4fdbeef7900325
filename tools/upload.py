"""`ulnet upload SPOOL_DIR URL`: run the store-and-forward upload job (ulnet.spool) on this host.

Every scan file in SPOOL_DIR goes to URL's folder as DEVICEID-NAME (--device-id, default this
host's name), oldest first, each exactly once; a scan leaves SPOOL_DIR (deleted, or moved to
SPOOL_DIR/sent/ with --keep) only once the server holds all of it, over --sessions FTP
sessions at once (default 4). On a terminal a progress bar shows files, bytes and scans per
second; otherwise each status line of the job is printed as it comes. A summary table (with the
sessions used) ends the run. Failures that pass (a server down, a lost link) are retried until
--deadline; failures that stay (the login refused, the remote folder refused) end the run at
once, naming the cause and the remote path.

Exit codes (curl's where curl has one): 0 the spool is empty and nothing was set aside; 7 could
not connect (refused, unreachable, no answer); 67 login denied; 9 the server refused the remote
path (no such folder, no permission); 70 the server's disk is full; 18 a transfer was cut and
not completed by the deadline; FTPS: 60 the server's certificate is not trusted (or not the
pinned one), 64 the server refused TLS (AUTH TLS, PBSZ or PROT P), 35 another TLS handshake
failure (these two and 67, 9 end the run at once); 1 scans left for another reason, or set aside in
SPOOL_DIR/bad/; 2 bad arguments; 130 Ctrl-C. The password is never printed (URLs go through
redact()); give it in ~/.netrc, --netrc-file or ULNET_PASSWORD instead of the URL (see
tools/password.py), or be asked on a terminal.
"""

import os
import socket
import sys

from ulnet.errors import errno_text
from ulnet.eventer import Eventer
from ulnet.ftp.url import redact
from ulnet.spool import Spool, pending
from ulnet.tools.password import ENV, complete_url

BAR = 24  # characters of the progress bar
REDRAW_MS = 100  # at most ten redraws a second: a terminal is slower than a loopback upload
# the start of the job's last failure reason (ulnet.spool's texts) -> exit code, curl's numbers
EXIT_CODES = (("server unreachable", 7), ("login refused", 67), ("server disk full", 70), ("TLS handshake", 35))
# FTPS failures that stay (curl: 60 the certificate is not trusted, 64 the server refused TLS)
TLS_REFUSALS = (("certificate verify failed", 60), ("fingerprint mismatch", 60), ("refused AUTH TLS", 64),
                ("refused PBSZ", 64), ("refused PROT", 64))


def add_parser(sub):
    p = sub.add_parser("upload", help="upload every scan in SPOOL_DIR to an FTP server, store-and-forward",
                       description="\n\n".join(__doc__.split("\n\n")[1:3]))
    p.add_argument("spool", metavar="SPOOL_DIR", help="folder of scan files (bad/ and sent/ inside)")
    p.add_argument("url", metavar="URL", help="ftp://user[:password]@host[:port]/dir; ftpes:// for explicit FTPS "
                   "(AUTH TLS, required), ftps:// for implicit FTPS (port 990)")
    p.add_argument("--device-id", help="prefix of the remote names, DEVICEID-NAME (default: this host's name)")
    p.add_argument("--keep", action="store_true",
                   help="move uploaded scans to SPOOL_DIR/sent/ (default: delete them once the server has them)")
    p.add_argument("--deadline", type=float, default=600, metavar="SECONDS",
                   help="stop retrying after this many seconds (default 600)")
    p.add_argument("--netrc-file", metavar="FILE", help="password from this netrc file (default ~/.netrc; "
                   "also %s, or a prompt on a terminal)" % ENV)
    p.add_argument("--cafile", metavar="FILE", help="FTPS: verify the server against these CA certificates "
                   "(PEM or DER; default: the system's CA store)")
    p.add_argument("--fingerprint", metavar="SHA256", help="FTPS: accept only the server certificate with this "
                   "SHA-256 (hex)")
    p.add_argument("--insecure", action="store_true", help="FTPS: do not verify the server certificate at all")
    p.add_argument("--sessions", type=int, default=4, choices=range(1, 9), metavar="N",
                   help="FTP sessions at once, 1 to 8 (default 4)")
    p.set_defaults(run=run)


class Progress:
    """Shows the job: a redrawn bar on a terminal, plain status lines elsewhere."""

    def __init__(self, out, job, files, total):
        self.out, self.job, self.files, self.total = out, job, files, total
        self.tty = out.isatty()
        self.flying = {}  # the put of each scan in flight: the bytes it sent so far
        self.drawn = -REDRAW_MS
        self.start = job.eventer.port.ticks_ms()

    def status(self, text):
        if self.job.done:  # the job's last line: the summary ends with it, said once
            if self.tty:
                self.draw("", True)  # the bar's final counts
            return
        if self.tty:
            self.draw(text, True)
        else:
            print(text, file=self.out, flush=True)

    def sending(self, op, done, total):
        self.flying[op] = done
        if self.tty:
            self.draw("uploading " + op.args[0].rsplit("/", 1)[-1], False)

    def draw(self, text, force):
        port = self.job.eventer.port
        now = port.ticks_ms()
        if not force and port.ticks_diff(now, self.drawn) < REDRAW_MS:
            return
        self.drawn = now
        job = self.job
        for op in [op for op in self.flying if op.done]:
            del self.flying[op]  # delivered (counted in job.bytes) or failed
        files = job.sent + job.bad
        done = job.bytes + sum(self.flying.values())
        fill = BAR * min(done, self.total) // self.total if self.total else BAR * (files >= self.files)
        rate = job.sent * 1000 / max(1, port.ticks_diff(now, self.start))
        line = "[%s%s] %d/%d files  %s/%s  %.1f scans/s  %s" % (
            "#" * fill, "." * (BAR - fill), files, self.files, human(done), human(self.total), rate, text)
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
    rows = [("", "files", "size"), ("uploaded", job.sent, human(job.bytes)), ("set aside", job.bad, "-"),
            ("left", left_files, left_bytes if left_bytes == "?" else human(left_bytes)),
            ("failed attempts", job.failures, ""), ("sessions", "%d of %d" % (job.used, job.sessions), ""),
            ("time", "%.2f s" % seconds, "")]
    lines = ["%-16s %8s %12s" % row for row in rows]
    lines.append(job.status)
    if job.bad:
        lines.append("set aside in %s/bad/ (NAME.why says why)" % job.folder.rstrip("/"))
    return "\n".join(lines)


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def run(args):
    ev = Eventer()
    try:
        url = complete_url(args.url, args.netrc_file)
        device_id = args.device_id or socket.gethostname()
        job = Spool(ev, url, args.spool, device_id, args.keep, int(args.deadline * 1000),
                    args.cafile, args.fingerprint, not args.insecure, args.sessions)
        files, total = pending(args.spool)
    except (ValueError, OSError) as exc:  # ValueError texts never quote the password
        ev.close()
        why = "%s: %s" % (args.spool, errno_text(exc)) if isinstance(exc, OSError) else exc
        print("ulnet upload: %s" % why, file=sys.stderr)
        return 2
    out = sys.stdout
    bar = Progress(out, job, files, total)
    def status(text):
        bar.status(text)
        # it would only wait for the same refusal again: a login or folder refused, or a server
        # whose certificate is not trusted or that refuses TLS (a device keeps trying: the job)
        stays = job.permanent or any(part in (job.reason or "") for part, _ in TLS_REFUSALS)
        if stays and not job.done and text.startswith("retry"):
            job.stop("gave up")

    job.on_status = status
    job.on_progress = bar.sending
    print("uploading %s (%s) from %s to %s as %s-NAME, %s" % (
        plural(files, "scan"), human(total), args.spool, redact(url), device_id,
        "moving each to %s once the server has it" % os.path.join(args.spool, "sent") if args.keep else
        "deleting each once the server has it"), file=out, flush=True)
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
    return exit_code(job) if code is None else code


def exit_code(job):
    """0 when everything went; else which failure it was, as curl would say (see the module)."""
    if not job.left:
        return 0 if not job.bad else 1
    why = job.reason or ""
    for part, code in TLS_REFUSALS:
        if part in why:
            return code
    for start, code in EXIT_CODES:
        if why.startswith(start):
            return code
    if "(remote path " in why:  # a put refused with 550/553
        return 9
    return 18 if why.startswith("put ") else 1  # a transfer cut and not resumed in time
