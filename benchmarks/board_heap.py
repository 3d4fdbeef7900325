"""Board heap benchmark: what ulnet costs on emulated boards, one column per kind of board.

The boards are the MicroPython unix port run by `ulnet board` (tools/board/):
- 32-bit, ulnet frozen: the firmware `ulnet firmware --bits 32` builds (4-byte pointers,
  16-byte GC blocks, as on Cortex-M, ESP32 and ESP8266 boards), ulnet's bytecode in it;
- 64-bit, ulnet frozen: the same built 64-bit (8-byte pointers, 32-byte GC blocks);
- 64-bit ROMFS: PyPI's unix port, ulnet's .mpy files in the board's ROMFS partition (run in
  place, outside the heap, as `ulnet deploy --romfs` puts them);
- 64-bit /lib: PyPI's unix port, ulnet's .mpy files under /lib (their bytecode is loaded into
  the heap, as `ulnet deploy` puts them).
The firmwares are built from MicroPython's source (--micropython, else as the tests find it,
tools/firmware.py); without it the frozen columns are left out, and the reason printed. Every
board and server (pyftpdlib and busybox telnetd in processes of their own, as tests/servers
runs them) is started here and stopped at the end.

Rows:
- import heap of the upload path (ulnet, errors, eventer, the upy port, socket, tcp, ftp.parse,
  ftp.protocol, ftp.ops, ftp.session), module by module (the qstr pool grown first, so each row
  is the module's own cost) and in total on a fresh board, pool growth included, with the qstrs
  the upload path interns (the pool doubles at 20/60/140/300/620 entries, 11 bytes or so each);
- smallest heap (-X heapsize in 1 KB steps, bisection over fresh boards) that completes: the
  1 MB upload with FTPSession, the same upload by a hand-written blocking socket loop, a Telnet
  session (negotiation, a shell command, the end), and the upload job (run_from_config, JOBS
  scans, one FTP session). These applications run from the board's ROMFS as compiled code (a
  device's own code is frozen or in ROMFS too): the heap is what ulnet and the board need;
- heap per event: bytes allocated by 1,000 receive, can-send and timer events (0 expected);
- the 1 MB upload: live heap above the imports (gc.mem_alloc() after gc.collect(), sampled
  every 64 KB), the bytes allocated per 1 KB chunk over 512 KB with the GC off, and the
  throughput against the raw loop in the same run, interleaved rounds, medians: per round one
  login and 8 uploads, the first timed from connect to its 226, all 8 from the end of the login.
Each upload is checked on the server byte for byte, each job file by file. Nothing here asserts
a speed.

    python benchmarks/board_heap.py [--rounds 9] [--boards 32-frozen,64-romfs] [--micropython DIR]
"""

import argparse
import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from board_code import APP, EVENTS, IMPORTS, JOB, RAW, TELNET, code_for  # noqa: E402
from servers.ftp import PyFTPD  # noqa: E402
from servers.telnet import BusyboxTelnetd  # noqa: E402
from ulnet.tools import deploy  # noqa: E402
from ulnet.tools import device as dev  # noqa: E402
from ulnet.tools import firmware  # noqa: E402
from ulnet.tools.board import Board  # noqa: E402

UPLOAD_PATH = ("ulnet", "ulnet.errors", "ulnet.eventer", "ulnet.ports.upy", "ulnet.socket", "ulnet.tcp",
               "ulnet.ftp.parse", "ulnet.ftp.protocol", "ulnet.ftp.ops", "ulnet.ftp.session")
SIZE = 1 << 20
REPEAT = 8  # uploads per login in the throughput rounds: one takes a few ms here
JOBS = 100  # scans the upload job sends
RUN_DEADLINE_S = 120  # silence on the board's output, per piece of code run there
OPEN_TRIES = 6
MEASURE_HEAP = "512K"
# (name, word size, where ulnet is): the table's columns
KINDS = (("32-frozen", 32, "frozen"), ("64-frozen", 64, "frozen"), ("64-romfs", 64, "romfs"), ("64-lib", 64, "lib"))
TITLES = {"32-frozen": "32-bit frozen", "64-frozen": "64-bit frozen", "64-romfs": "64-bit ROMFS", "64-lib": "64-bit /lib"}
# bisection bounds in KB per application: (lowest, highest) for 32-bit; 64-bit doubles them
BOUNDS = {"upload": (6, 40), "raw": (3, 24), "telnet": (6, 48), "job": (8, 64)}


class Kind:
    """One kind of board: its firmware (None: PyPI's unix port) and where ulnet is."""

    def __init__(self, name, bits, where, firmware_path=None):
        self.name, self.bits, self.where, self.firmware = name, bits, where, firmware_path

    @contextlib.contextmanager
    def board(self, heap, files=None, app=None):
        """A started board of this kind with ulnet; `files` ({name: bytes}) in its flash, and
        `app` (source) compiled in its ROMFS image as the module app. Stopped at the end."""
        flash = tempfile.mkdtemp(prefix="ulnet-bench-flash-")
        try:
            for name, data in (files or {}).items():
                os.makedirs(os.path.dirname(os.path.join(flash, name)), exist_ok=True)
                with open(os.path.join(flash, name), "wb") as f:
                    f.write(data)
            image = rom_image(self.where == "romfs", app)
            if image:
                with open(os.path.join(flash, deploy.EMULATED_ROMFS.lstrip("/")), "wb") as f:
                    f.write(image)
            with Board(heap=heap, flash=flash, firmware=self.firmware) as board:
                if self.where == "lib":
                    deploy.deploy(board.url)
                yield board
        finally:
            shutil.rmtree(flash, ignore_errors=True)


def rom_image(with_ulnet, app):
    """A ROMFS image with ulnet under lib/ (with_ulnet) and the app module, or None (neither)."""
    if not with_ulnet and app is None:
        return None
    with tempfile.TemporaryDirectory(prefix="ulnet-bench-") as tmp:
        compiler = deploy.compiler_for(6)
        compiled = deploy.compile_all(deploy.sources(), compiler, tmp, "/rom") if with_ulnet else {}
        if app is not None:
            with open(os.path.join(tmp, "app.py"), "w") as f:
                f.write(app)
            compiled["/lib/app.mpy"] = deploy.compile_file(compiler, os.path.join(tmp, "app.py"), "/rom/lib/app.mpy", tmp)
        return deploy.romfs_image(compiled, tmp)


def output(board, code):
    """Run code on a board, soft reset first (nothing of the last run is left); its output.
    Opening is tried again for a few seconds: an emulated board serves one client at a time."""
    for attempt in range(OPEN_TRIES):
        try:
            transport = dev.open_device(board.url, soft_reset=True)
            break
        except dev.DeviceError:
            if attempt == OPEN_TRIES - 1:
                raise
            time.sleep(0.5)
    try:
        return dev.run(transport, code, RUN_DEADLINE_S).decode()
    finally:
        try:
            transport.exit_raw_repl()
        except Exception:
            pass  # the board may be gone: closing is all that is left
        transport.close()


def run_on(board, code):
    """The '@' line of code run on a board, split."""
    return next(line.split()[1:] for line in output(board, code).splitlines() if line.startswith("@ "))


def board_with_ulnet(heap, romfs, data, with_ulnet=True):
    """A started 64-bit board (PyPI's unix port) with ulnet deployed and data as /up.bin; the
    caller stops it (benchmarks/board_spool.py)."""
    board = Board(heap=heap).start()
    try:
        if with_ulnet:
            deploy.deploy(board.url, romfs=romfs)
        with open(os.path.join(board.flash, "up.bin"), "wb") as f:
            f.write(data)
    except BaseException:
        board.stop()
        raise
    return board


def smallest_heap(completes_at, lo, hi):
    """The smallest heap in KB where completes_at(kb) is true, by bisection (lo fails, hi
    completes); None when hi does not."""
    if not completes_at(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if completes_at(mid):
            hi = mid
        else:
            lo = mid
    return hi


def imports(kind):
    """(per-module bytes, fresh-board total, qstrs interned by the upload path)."""
    with kind.board(MEASURE_HEAP) as board:
        per = {}
        for line in output(board, code_for(IMPORTS, GROW=640, MODULES=UPLOAD_PATH)).splitlines():
            if line.startswith("@ "):
                per[line.split()[1]] = int(line.split()[2])
        out = output(board, code_for(IMPORTS, GROW=0, MODULES=UPLOAD_PATH))
    total = sum(int(line.split()[2]) for line in out.splitlines() if line.startswith("@ "))
    qstrs = [int(n) for n in re.findall(r"n_qstr=(\d+)", out)]
    return per, total, qstrs[1] - qstrs[0]


def events(kind):
    with kind.board(MEASURE_HEAP) as board:
        return [int(x) for x in run_on(board, EVENTS)]


class Apps:
    """The applications whose smallest heap is measured, with the servers they talk to; each
    run is checked (the upload byte for byte, the job file by file)."""

    def __init__(self, ftp, telnetd):
        self.ftp, self.telnetd = ftp, telnetd
        self.data = os.urandom(SIZE)
        self.scans = {"spool/scan%04d.csv" % i: b"".join(b"%013d,%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1)
                                                          for j in range(5 + i % 20)) for i in range(JOBS)}

    def completes(self, kind, what, kb):
        files, app = self._setup(what)
        got = None
        try:
            with kind.board("%dK" % kb, files, app) as board:
                got = run_on(board, "import app")
        except Exception:  # too small to boot, a MemoryError on the board, no result line
            pass
        return self._check(what, got)

    def _setup(self, what):
        ftp = self.ftp
        if what in ("upload", "raw"):
            return {"up.bin": self.data}, app_code(ftp, "bisect.bin", False, False, what == "raw")
        if what == "telnet":
            return {}, code_for(TELNET, HOST="127.0.0.1", PORT=self.telnetd.port)
        os.makedirs(os.path.join(ftp.home, "in"), exist_ok=True)
        config = b'{"url": "%s", "device_id": "B", "deadline_s": 30}' % (ftp.url + "in").encode()
        return dict(self.scans, **{"ulnet.json": config}), JOB

    def _check(self, what, got):
        """True when the run `got` its result (None: it failed), and the server holds what it
        should; the server is cleaned up for the next run."""
        if what in ("upload", "raw"):
            return upload_ok(self.ftp, "bisect.bin", self.data) and got is not None and int(got[0]) == SIZE
        if what == "telnet":
            return got is not None and got[0] == "1"
        folder = os.path.join(self.ftp.home, "in")
        held = {name: open(os.path.join(folder, name), "rb").read() for name in os.listdir(folder)}
        shutil.rmtree(folder)  # made again by the next run's _setup
        return got is not None and got == [str(JOBS), "0", "0"] and held == {
            "B-" + name[len("spool/"):]: data for name, data in self.scans.items()}


def upload_ok(server, name, data):
    path = os.path.join(server.home, name)
    ok = os.path.exists(path) and open(path, "rb").read() == data
    if os.path.exists(path):
        os.remove(path)
    return ok


def app_code(server, name, measure, plain, raw=False, repeat=1):
    if raw:
        return code_for(RAW, HOST="127.0.0.1", PORT=server.port, USER=server.user.encode(),
                        PASSWORD=server.password.encode(), NAME=name.encode(), REPEAT=repeat, CAFILE=None)
    return code_for(APP, MEASURE=measure, PLAIN=plain, HOST="127.0.0.1", PORT=server.port,
                    USER=server.user, PASSWORD=server.password, NAME=name, REPEAT=repeat, TLS=())


def throughput(kind, apps, rounds):
    """Interleaved rounds of ulnet and the raw loop on one board (medians, KB/s), then one
    measured ulnet run: (speeds, live heap above the imports, bytes allocated per 1 KB chunk)."""
    speeds = {"ulnet": [], "raw": [], "ulnet after login": [], "raw after login": []}
    with kind.board(MEASURE_HEAP, {"up.bin": apps.data}) as board:
        for i in range(rounds):
            for who in ("ulnet", "raw"):
                got = upload(board, apps, "%s%d.bin" % (who, i), False, who == "raw", REPEAT)
                speeds[who].append(SIZE / 1024 / (int(got[1]) / 1e6))
                speeds[who + " after login"].append(SIZE / 1024 / (int(got[5 if who == "ulnet" else 2]) / 1e6))
        got = upload(board, apps, "measured.bin", True, False)
    return ({k: statistics.median(v) for k, v in speeds.items()}, int(got[2]), int(got[3]) / (int(got[4]) / 1024))


def upload(board, apps, name, measure, raw, repeat=1):
    """Plain 1 MB uploads from the board after one login (all of them complete: the bytes add
    up, no error), the last one checked byte for byte on the server; the board's '@' line."""
    got = run_on(board, app_code(apps.ftp, name, measure, True, raw, repeat))
    if int(got[0]) != SIZE * repeat or not upload_ok(apps.ftp, name, apps.data):
        raise RuntimeError("%s failed: %s" % (name, got))
    return got


def measure(kind, apps, rounds):
    """Every figure of one column."""
    per, total, qstrs = imports(kind)
    speeds, live, per_chunk = throughput(kind, apps, rounds)
    scale = 1 if kind.bits == 32 else 2
    smallest = {what: smallest_heap(lambda kb: apps.completes(kind, what, kb), lo * scale, hi * scale)
                for what, (lo, hi) in BOUNDS.items()}
    return {"per": per, "total": total, "qstrs": qstrs, "events": events(kind), "speeds": speeds,
            "live": live, "per_chunk": per_chunk, "smallest": smallest}


def kinds(names, source, table=KINDS, titles=TITLES):
    """The Kinds asked for, from table: (name, bits, where[, C flags of its firmware]); a frozen
    one whose firmware cannot be built is left out (and why)."""
    chosen = []
    for name, bits, where, *cflags in table:
        if name not in names:
            continue
        path = None
        if where == "frozen":
            try:
                if cflags:
                    found, why = (source, None) if source else firmware.find_source()
                    if found is None:
                        raise firmware.FirmwareError(why)
                    path = firmware.build(found, bits, cflags[0]).path
                else:
                    path = (firmware.build(source, bits) if source else firmware.default_firmware(bits)).path
            except firmware.FirmwareError as e:
                print("%s left out: %s" % (titles[name], e))
                continue
        chosen.append(Kind(name, bits, where, path))
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="throughput rounds per client")
    parser.add_argument("--boards", default=",".join(k[0] for k in KINDS), help="columns, comma-separated")
    parser.add_argument("--micropython", metavar="DIR", help="MicroPython source for the frozen columns")
    args = parser.parse_args()
    columns = kinds(args.boards.split(","), args.micropython)
    with PyFTPD() as ftp, BusyboxTelnetd() as telnetd:
        apps = Apps(ftp, telnetd)
        figures = {kind.name: measure(kind, apps, args.rounds) for kind in columns}
    print_table(columns, figures, args.rounds)


def kb(n):
    return "%.1f KB" % (n / 1024)


def print_table(columns, figures, rounds):
    def row(label, show):
        rows.append([label] + [show(figures[k.name]) for k in columns])

    rows = [[""] + [TITLES[k.name] for k in columns]]
    for m in UPLOAD_PATH:
        row("import " + m, lambda f: kb(f["per"][m]))
    row("import heap of the upload path (fresh board)", lambda f: kb(f["total"]))
    row("qstrs the upload path interns", lambda f: str(f["qstrs"]))
    for what, label in (("upload", "1 MB upload with FTPSession"), ("raw", "1 MB upload, raw socket loop"),
                        ("telnet", "Telnet session"), ("job", "upload job, %d scans" % JOBS)):
        row("smallest heap: " + label, lambda f: "%sK" % f["smallest"][what])
    row("heap per 1,000 events: receive / can-send / timer", lambda f: "%d / %d / %d B" % tuple(f["events"]))
    row("1 MB upload: live heap above the imports", lambda f: kb(f["live"]))
    row("1 MB upload: bytes allocated per 1 KB chunk", lambda f: "%.2f" % f["per_chunk"])
    row("ulnet, median of %d, first / after the login" % rounds,
        lambda f: "%.0f / %.0f KB/s" % (f["speeds"]["ulnet"], f["speeds"]["ulnet after login"]))
    row("raw loop, median of %d, first / after the login" % rounds,
        lambda f: "%.0f / %.0f KB/s" % (f["speeds"]["raw"], f["speeds"]["raw after login"]))
    row("ulnet / raw loop: first upload / %d after the login" % REPEAT, lambda f: "%.2fx / %.2fx" % (
        f["speeds"]["ulnet"] / f["speeds"]["raw"], f["speeds"]["ulnet after login"] / f["speeds"]["raw after login"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("ulnet on emulated boards (MicroPython unix port; 32-bit: 4-byte pointers, 16-byte GC blocks; "
          "64-bit: 8 and 32)")
    for r in rows:
        print("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]))
    sizes = mpy_sizes()
    print(".mpy files: %d, %s (what `ulnet deploy` copies)" % (len(sizes), kb(sum(sizes.values()))))


def mpy_sizes():
    """{path under ulnet/: .mpy bytes} for everything `ulnet deploy` puts on a board."""
    with tempfile.TemporaryDirectory(prefix="ulnet-bench-") as tmp:
        compiled = deploy.compile_all(deploy.sources(), deploy.compiler_for(6), tmp)
    return {path[len(deploy.DEVICE_LIB) + 1:]: len(data) for path, data in compiled.items()}


if __name__ == "__main__":
    main()
