"""`ulnet demo`: the main job on embedded defaults, nothing to configure.

Starts pyftpdlib on 127.0.0.1 and an emulated board (64 KB heap), deploys ulnet onto the board
with a config naming that server, has the board write a batch of scan files into its spool, runs
the store-and-forward upload job on the board (the same `ulnet.spool.run_from_config` a device's
main.py calls), checks every file on the server against the board's copy (sha256 computed on the
board, the server's copy downloaded), prints a summary and stops what it started.
`--board DEVICE` and `--server URL` use a real board or server instead.

Rules: every step has a deadline; the password is never printed (URLs go through redact()).
A board is the user's: everything the demo writes (its ulnet, config and spool) is inside the
tools' work folder (dev.WORK_DIR), which is removed at the end, also after a failure or Ctrl-C;
the board's own /ulnet.json, /spool, /lib and scans are never read or changed.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

from mpremote.transport import TransportError

from ulnet.ftp.url import redact
from ulnet.tools import deploy
from ulnet.tools import device as dev

SCANS = 40  # CSV batches the board writes
IMAGE_BYTES = 96 * 1024  # plus one binary "image" scan
DEVICE_ID = "DEMO01"
# the smallest emulated board the demo completes on, ulnet in ROMFS (64-bit unix port; 48K fails)
NEEDS_HEAP = "52K"
# the job retries failures until its deadline; the demo's batch takes a second on loopback
JOB_DEADLINE_S = 30

WRITE_SCANS = """
import os
spool = %r
os.mkdir(spool)
for i in range(%d):
    name = "scan%%04d.csv" %% i
    with open(spool + "/." + name, "w") as f:
        f.write("barcode,count,station\\n")
        for j in range(20 + i %% 30):
            f.write("%%013d,%%d,DOCK-%%d\\n" %% (4006381333931 + i * 1000 + j, j %% 7 + 1, i %% 4))
    os.rename(spool + "/." + name, spool + "/" + name)
with open(spool + "/.photo0001.jpg", "wb") as f:
    chunk = bytearray(1024)
    for k in range(%d):
        for i in range(1024):
            chunk[i] = (i * 31 + k * 7) & 255
        f.write(chunk)
os.rename(spool + "/.photo0001.jpg", spool + "/photo0001.jpg")
print("@scans", len(os.listdir(spool)))
"""

# the live heap is sampled at every status line (after a collection: garbage is not use)
RUN_JOB = """
import gc, sys
sys.path.insert(0, %r)
import ulnet.spool
peak = [0]
def status(text):
    print(text)
    gc.collect()
    peak[0] = max(peak[0], gc.mem_alloc())
job = ulnet.spool.run_from_config(%r, status)
print("@job %%d %%d %%d %%d %%d" %% (job.sent, job.bytes, job.left, job.bad, peak[0]))
"""

HASH_SENT = """
import os, hashlib, binascii
buf = bytearray(512)
sent = %r
try:
    os.stat(sent)
    entries = os.ilistdir(sent)  # streamed: a list of every entry costs heap
except OSError:
    entries = []  # nothing was sent
for entry in entries:
    h = hashlib.sha256()
    size = 0
    with open(sent + "/" + entry[0], "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
            size += n
    print("@file", entry[0], size, binascii.hexlify(h.digest()).decode())
"""


class LocalServer:
    """pyftpdlib on 127.0.0.1 in a thread, with a fresh home and a random password."""

    def __init__(self):
        import logging

        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

        from pyftpdlib.log import config_logging

        config_logging(level=logging.WARNING)  # the demo prints its own lines
        self.home = tempfile.mkdtemp(prefix="ulnet-demo-ftp-")
        password = hashlib.sha256(os.urandom(16)).hexdigest()[:16]
        authorizer = DummyAuthorizer()
        authorizer.add_user("scanner", password, self.home, perm="elradfmw")
        handler = type("DemoHandler", (FTPHandler,), {"authorizer": authorizer, "banner": "ulnet demo"})
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self.url = "ftp://scanner:%s@127.0.0.1:%d/scans" % (password, self.server.address[1])
        os.mkdir(os.path.join(self.home, "scans"))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"timeout": 0.2},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.close_all()
        self.thread.join(10)
        shutil.rmtree(self.home, ignore_errors=True)


def board_run(transport, code, timeout_s, echo=False):
    """Run code on the board; returns its output lines (echoing them when asked)."""
    lines = []
    pending = bytearray()

    def consume(data):
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            text = line.decode(errors="replace").rstrip("\r")
            lines.append(text)
            if echo and text and not text.startswith("@"):
                print("  board: " + text, flush=True)

    transport.exec_raw_no_follow(code)
    out, err, complete = dev.read_answer(transport, timeout_s, timeout_s, consume)
    if not complete:
        raise dev.DeviceError("the board did not finish within %d s" % timeout_s)
    if err:
        raise dev.DeviceError(dev.error_line(err.decode(errors="replace")))
    consume(b"\n")
    return [line for line in lines if line]


def tagged(lines, tag):
    return [line.split()[1:] for line in lines if line.startswith(tag + " ")]


def mismatches(url, files, tmp):
    """Names whose copy on the server (downloaded with ulnet's own facade) differs from the
    board's (name, size, sha256) or is missing."""
    import ulnet

    wrong = []
    local = os.path.join(tmp, "check.bin")
    with ulnet.FTP(url, timeout_s=20) as ftp:
        for name, size, digest in files:
            try:
                ftp.get(DEVICE_ID + "-" + name, local)
            except ulnet.FTPError:
                wrong.append(name)
                continue
            with open(local, "rb") as f:
                data = f.read()
            if (hashlib.sha256(data).hexdigest(), len(data)) != (digest, int(size)):
                wrong.append(name)
    return wrong


@contextlib.contextmanager
def _work_dir(transport):
    """The tools' work folder on the board for the block (an earlier run's is removed first);
    removed after it, also on a failure or Ctrl-C: the board is interrupted and soft-reset first
    (the job may be running), and a board that does not answer keeps it until the next run."""
    dev.make_work_dir(transport)
    try:
        yield
    finally:
        with contextlib.suppress(TransportError, OSError, dev.DeviceError), \
                contextlib.redirect_stdout(io.StringIO()):
            transport.enter_raw_repl(soft_reset=True, timeout_overall=dev.ANSWER_DEADLINE_S)
            dev.remove_tree(transport, dev.WORK_DIR)


def demo(board_url=None, server_url=None, heap="64K", firmware=None):
    """Run the demo; returns 0 when every scan is on the server, byte-identical."""
    from ulnet.tools.board import Board

    started = time.monotonic()
    server = None if server_url else LocalServer()
    url = server_url or server.url
    board = None if board_url else Board(heap=heap, firmware=firmware).start()
    device = board_url or board.url
    tmp = tempfile.mkdtemp(prefix="ulnet-demo-")
    try:
        print("server  %s" % redact(url))
        kind = "emulated, %s heap%s" % (heap, ", firmware %s" % firmware if firmware else "")
        print("board   %s (%s)" % (device, kind if board else "real"))
        spool, config_path = dev.WORK_DIR + "/spool", dev.WORK_DIR + "/ulnet.json"
        # on the demo's own board, ulnet goes into its ROMFS; on a given board, into the work folder
        lib = "/rom/lib" if board else dev.WORK_DIR + "/lib"
        config = json.dumps({"url": url, "device_id": DEVICE_ID, "spool": spool, "keep": True,
                             "deadline_s": JOB_DEADLINE_S}).encode()
        with dev.session(device) as transport, _work_dir(transport):
            results = deploy.deploy_to(transport, romfs=board is not None, device=device,
                                       lib=deploy.DEVICE_LIB if board else lib + "/ulnet")
            deploy.sync(transport, {config_path: config}, lambda *_: None)
            if any(action == deploy.FROZEN for _, action in results.values()):
                print("deploy  nothing: ulnet is frozen into the board's firmware")
            else:
                size = sum(s for s, action in results.values() if action != "removed")
                print("deploy  %d files, %d B%s" % (len(results), size, " (ROMFS)" if board else " (in %s)" % lib))
            scans = tagged(board_run(transport, WRITE_SCANS % (spool, SCANS, IMAGE_BYTES // 1024), 60), "@scans")
            print("scans   %s files written into %s on the board" % (scans[0][0], spool))
            print("upload  running the job on the board ...", flush=True)
            t0 = time.monotonic()
            job_lines = board_run(transport, RUN_JOB % (lib, config_path), JOB_DEADLINE_S + 30, echo=True)
            job_s = time.monotonic() - t0
            sent, sent_bytes, left, bad, peak = (int(x) for x in tagged(job_lines, "@job")[0])
            status = [line for line in job_lines if not line.startswith("@")][-1:] or [""]
            # the job's modules and garbage go first: the hashing gets the whole heap
            with contextlib.redirect_stdout(io.StringIO()):
                transport.enter_raw_repl(soft_reset=True, timeout_overall=dev.ANSWER_DEADLINE_S)
            files = tagged(board_run(transport, HASH_SENT % (spool + "/sent"), 120), "@file")
        wrong = mismatches(url, files, tmp) if files else []
        print()
        print("%-28s %s" % ("files uploaded", sent))
        print("%-28s %s" % ("bytes uploaded", sent_bytes))
        rate = sent_bytes / 1024 / max(job_s, 1e-3)
        print("%-28s %.1f s (%.0f KB/s)" % ("job time on the board", job_s, rate))
        print("%-28s %s" % ("left in spool / set aside", "%d / %d" % (left, bad)))
        print("%-28s %d B of %s" % ("peak live heap on the board", peak, heap if board else "its heap"))
        if files:
            print("%-28s %d of %d identical" % ("checked on the server", len(files) - len(wrong), len(files)))
        print("%-28s %.1f s" % ("demo time", time.monotonic() - started))
        print("%-28s %s" % ("job status", status[0]))
        ok = not wrong and left == 0 and bad == 0 and len(files) == sent == SCANS + 1
        why = ("differ on the server: " + ", ".join(wrong) if wrong else
               "%d scans left on the board; %s" % (left, status[0].split("; last failure: ")[-1]))
        print("demo %s" % ("OK: every scan reached the server once, byte-identical" if ok else "FAILED: " + why))
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if board is not None:
            board.stop()
        if server is not None:
            server.stop()


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo", help="scan upload from an emulated board to a local FTP server",
        description="The main job end to end: an FTP server (pyftpdlib on 127.0.0.1, or --server), an "
        "emulated board with a 64 KB heap (or --board), ulnet deployed onto it, 41 scans written into "
        "its spool and uploaded by the job on the board, every file checked on the server. On a given "
        "board everything happens in /ulnet-tmp, removed at the end: its own files stay as they were.")
    parser.add_argument("--board", metavar="DEVICE", help="use this board (serial path, socket:// URL, "
                        "a0, u0, auto) instead of an emulated one")
    parser.add_argument("--server", metavar="URL", help="use this FTP server (ftp://user:pw@host:port/dir)")
    parser.add_argument("--heap", default="64K", help="heap of the emulated board, e.g. 64K (default; at least %s)"
                        % NEEDS_HEAP)
    parser.add_argument("--firmware", metavar="PATH", help="the emulated board runs this unix port binary, "
                        "e.g. the 32-bit one with ulnet frozen in that `ulnet firmware` builds")
    parser.set_defaults(run=run)


def run(args):
    import ulnet
    from ulnet.tools.board import BoardError

    try:
        return demo(args.board, args.server, args.heap, args.firmware)
    except (dev.DeviceError, deploy.DeployError, BoardError, OSError, socket.error, ulnet.FTPError) as e:
        if "MemoryError" in str(e):
            e = "the board ran out of heap (%s): the demo needs a board with %s of heap or more%s" % (
                e, NEEDS_HEAP, "" if args.board else "; try --heap 64K")
        print("ulnet demo: %s" % e, file=sys.stderr)
        return 1
