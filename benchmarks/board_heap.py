"""Board heap benchmark: what ulnet costs on an emulated board, printed as one table.

The board is the MicroPython unix port run by `ulnet board` (tools/board.py): 64-bit, so every
pointer is 8 bytes and the GC allocates in 32-byte blocks (a 32-bit board uses 4 and 16, and
needs roughly half of each figure). Every board and the FTP server (pyftpdlib in its own
process, as tests/servers/ftp.py runs it) are started here and stopped at the end.

Rows:
- .mpy sizes: core/ and the upy port compiled with mpy-cross, and the part an upload loads;
- import heap of the upload path (ulnet, errors, eventer, the upy port, socket, tcp, ftp.parse,
  ftp.protocol, ftp.ops, ftp.session), module by module and in total, with ulnet deployed as
  .mpy under /lib (bytecode in the heap) and in ROMFS (bytecode runs in place). Per module the
  qstr pool has been grown first, so each row is the module's own cost; the totals are on a
  fresh board, pool growth included, with the qstrs the upload path interns (every distinct
  name and short string: the pool doubles at 20/60/140/300/620 entries, about 11 bytes each);
- heap per event: bytes allocated by 1,000 receive, can-send and timer events (0 expected);
- a 1 MB upload with FTPSession (ROMFS): live heap above the imported modules (gc.mem_alloc()
  after gc.collect(), sampled every 64 KB: micropython.mem_peak() never decreases), the bytes
  allocated per 1 KB chunk over 512 KB with the GC off, the smallest heap (-X heapsize, in 1 KB
  steps, found by bisection over fresh boards) that completes it with each deploy mode, and the
  throughput against a raw hand-written socket loop (blocking sockets, plain FTP commands,
  1 KB chunks) in the same run, interleaved rounds, medians: per round one login and 8 uploads
  of the 1 MB file, the first timed from connect to its 226, and all 8 from the end of the
  login (one upload takes a few ms here, so a single one is mostly scheduling noise).
Each upload is checked: its bytes add up on the board, and the file on the server byte for byte
(the last of a round's uploads, which share its name). Nothing here asserts a speed.

    python benchmarks/board_heap.py [--rounds 9]
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from servers.ftp import PyFTPD  # noqa: E402
from ulnet.tools import deploy  # noqa: E402
from ulnet.tools import device as dev  # noqa: E402
from ulnet.tools.board import Board  # noqa: E402

UPLOAD_PATH = ("ulnet", "ulnet.errors", "ulnet.eventer", "ulnet.ports.upy", "ulnet.socket", "ulnet.tcp",
               "ulnet.ftp.parse", "ulnet.ftp.protocol", "ulnet.ftp.ops", "ulnet.ftp.session")
SIZE = 1 << 20
REPEAT = 8  # uploads per login in the throughput rounds: one takes a few ms here
RUN_DEADLINE_S = 120  # silence on the board's output, per piece of code run there
OPEN_TRIES = 6
MEASURE_HEAP = "512K"

# the imports of the upload path, module by module (GROW: first grow the qstr pool past 620)
IMPORTS = """
import gc, micropython
for i in range(GROW):
    getattr(gc, "q%d" % i, None)
gc.collect()
a = gc.mem_alloc()
micropython.qstr_info()
for m in MODULES:
    __import__(m)
    gc.collect()
    print("@", m, gc.mem_alloc() - a)
    a = gc.mem_alloc()
micropython.qstr_info()
"""

# 1,000 events of each kind allocate nothing (as board_tests/test_eventer.py checks)
EVENTS = """
import gc
from ulnet.eventer import Eventer
from ulnet.tcp import TCP
ev = Eventer()
srv = TCP(ev)
port = srv.listen(0).local_port
buf = bytearray(2048)
n = [0, 0, 0]
def echo(s):
    k = s.recv_into(buf)
    if k:
        s.send(buf, 0, k)
def back(s):
    if s.recv_into(buf):
        n[0] += 1
        s.send(buf, 0, 16)
srv.on_receive = echo
cli = TCP(ev)
cli.on_receive = back
cli.on_can_send = lambda s: s.send(buf, 0, 16) if not n[0] else None
sock = cli.connect("127.0.0.1", port)
ev.run_until(lambda: n[0] > 10, 5000)
def measure(i):
    gc.collect()
    gc.disable()
    start, before = n[i], gc.mem_alloc()
    while n[i] < start + 1000:
        ev.call_action(1000)
    used = gc.mem_alloc() - before
    gc.enable()
    return used
got = [measure(0)]
def fill(s):
    n[1] += 1
    while s.send(buf):
        pass
def drain(s):
    while s.recv_into(buf):
        pass
srv.on_receive, cli.on_receive, cli.on_can_send = drain, None, fill
fill(sock)
got.append(measure(1))
cli.on_can_send = None
def tick():
    n[2] += 1
    t.restart(0)
t = ev.call_later(0, tick)
got.append(measure(2))
print("@", *got)
"""

# the application: a 1 KB chunk buffer first (while the heap is in one piece), the imports,
# a login and one upload (PLAIN: one STOR, as the raw loop does; else atomic and resumable, as a
# scanner uploads). MEASURE adds the live-heap and per-chunk figures
APP = """
import gc, time
buf = bytearray(1024)
from ulnet.eventer import Eventer
from ulnet.ftp.session import FTPSession
import ulnet.ports.upy  # what Eventer() loads: counted with the imports, not the upload
gc.collect()
base = gc.mem_alloc()
ev = Eventer()
ftp = FTPSession(ev, buf)
m = [0, -1, 0, 0, 0, 0]
def progress(op, done, total):
    if done >> 16 != m[1]:
        m[1] = done >> 16
        if not m[2] or m[4]:
            gc.collect()
            m[0] = max(m[0], gc.mem_alloc() - base)
    if done >= 1 << 18 and not m[2]:
        gc.collect()
        gc.disable()
        m[2], m[3] = gc.mem_alloc(), done
    elif done >= 3 << 18 and m[2] and not m[4]:
        m[4], m[5] = gc.mem_alloc() - m[2], done - m[3]
        gc.enable()
if MEASURE:
    ftp.on_progress = progress
def upload():
    op = ftp.put("/up.bin", NAME, not PLAIN, not PLAIN)
    ev.run_until(lambda: op.done, 60000)
    if op.error:
        raise op.error
    return op.result
t = time.ticks_us()
login = ftp.connect(HOST, PORT, USER, PASSWORD)
ev.run_until(lambda: login.done, 60000)
u = time.ticks_us()
sent = upload()
first = time.ticks_diff(time.ticks_us(), t)
for k in range(REPEAT - 1):
    sent += upload()
end = time.ticks_us()
print("@", sent, first, m[0], m[4], m[5], time.ticks_diff(end, u) // REPEAT)
"""

# the same upload by hand: blocking sockets, plain FTP commands, 1 KB chunks
RAW = """
import socket, time
buf = bytearray(1024)
def reply(s):
    line = s.readline()
    code = line[:3]
    while line[3:4] != b" " or line[:3] != code:
        line = s.readline()
        if not line:
            raise OSError("connection closed")
    return int(code), line
def command(s, text, want):
    s.write(text + b"\\r\\n")
    code, line = reply(s)
    if code // 100 != want // 100:  # the class: a STOR may get 125 or 150
        raise OSError(code)
    return line
def upload(c):
    line = command(c, b"PASV", 227)
    h = line[line.index(b"(") + 1:line.index(b")")].split(b",")
    d = socket.socket()
    d.connect(socket.getaddrinfo(HOST, int(h[4]) * 256 + int(h[5]))[0][-1])
    command(c, b"STOR " + NAME, 150)
    f = open("/up.bin", "rb")
    sent = 0
    while True:
        n = f.readinto(buf)
        if not n:
            break
        d.write(buf, 0, n)
        sent += n
    f.close()
    d.close()
    if reply(c)[0] != 226:
        raise OSError("no 226")
    return sent
t = time.ticks_us()
c = socket.socket()
c.connect(socket.getaddrinfo(HOST, PORT)[0][-1])
reply(c)
command(c, b"USER " + USER, 331)
command(c, b"PASS " + PASSWORD, 230)
u = time.ticks_us()
command(c, b"TYPE I", 200)  # once, as ulnet sends it before its first upload
sent = upload(c)
first = time.ticks_diff(time.ticks_us(), t)
for k in range(REPEAT - 1):
    sent += upload(c)
end = time.ticks_us()
c.close()
print("@", sent, first, time.ticks_diff(end, u) // REPEAT)
"""


def code_for(template, **values):
    """The template with VALUE names bound first (as literals: the board receives source)."""
    return "".join("%s = %r\n" % item for item in sorted(values.items())) + template


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
    """A started board with ulnet deployed and data in its flash as /up.bin."""
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


def mpy_sizes():
    """{path under ulnet/: .mpy bytes} for everything `ulnet deploy` puts on a board."""
    with tempfile.TemporaryDirectory(prefix="ulnet-bench-") as tmp:
        compiled = deploy.compile_all(deploy.sources(), deploy.compiler_for(6), tmp)
    return {path[len(deploy.DEVICE_LIB) + 1:]: len(data) for path, data in compiled.items()}


def imports(romfs, data):
    """(per-module bytes, fresh-board total, qstrs interned by the upload path)."""
    board = board_with_ulnet(MEASURE_HEAP, romfs, data)
    try:
        per = {}
        for line in output(board, code_for(IMPORTS, GROW=640, MODULES=UPLOAD_PATH)).splitlines():
            if line.startswith("@ "):
                per[line.split()[1]] = int(line.split()[2])
        out = output(board, code_for(IMPORTS, GROW=0, MODULES=UPLOAD_PATH))
        total = sum(int(line.split()[2]) for line in out.splitlines() if line.startswith("@ "))
        qstrs = [int(n) for n in re.findall(r"n_qstr=(\d+)", out)]
        return per, total, qstrs[1] - qstrs[0]
    finally:
        board.stop()


def upload_ok(server, name):
    path = os.path.join(server.home, name)
    ok = os.path.exists(path) and open(path, "rb").read() == DATA[0]
    if os.path.exists(path):
        os.remove(path)
    return ok


def app_code(server, name, measure, plain, raw=False, repeat=1):
    if raw:
        return code_for(RAW, HOST="127.0.0.1", PORT=server.port, USER=server.user.encode(),
                        PASSWORD=server.password.encode(), NAME=name.encode(), REPEAT=repeat)
    return code_for(APP, MEASURE=measure, PLAIN=plain, HOST="127.0.0.1", PORT=server.port,
                    USER=server.user, PASSWORD=server.password, NAME=name, REPEAT=repeat)


def completes(heap, mode, server):
    """True when a fresh board of this heap uploads the 1 MB byte-identical (mode: romfs, lib, raw)."""
    try:
        board = board_with_ulnet("%dK" % heap, mode == "romfs", DATA[0], mode != "raw")
    except Exception:  # too small to boot, or to take the deploy
        return False
    try:
        got = run_on(board, app_code(server, "bisect.bin", False, False, mode == "raw"))
        return int(got[0]) == SIZE and upload_ok(server, "bisect.bin")
    except Exception:  # MemoryError on the board (DeviceError), no result line, a bad result
        upload_ok(server, "bisect.bin")
        return False
    finally:
        board.stop()


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


def throughput(server, rounds):
    """Interleaved rounds of ulnet and the raw loop on one board (medians, KB/s): per round one
    login, then REPEAT uploads of the 1 MB file; the first timed from connect to its 226, the
    mean of all from the end of the login. Then one measured ulnet run: (speeds, live heap above
    the imports, bytes allocated per 1 KB chunk)."""
    board = board_with_ulnet(MEASURE_HEAP, True, DATA[0])
    speeds = {"ulnet": [], "raw": [], "ulnet after login": [], "raw after login": []}
    try:
        for i in range(rounds):
            for who in ("ulnet", "raw"):
                got = upload(board, server, "%s%d.bin" % (who, i), False, who == "raw", REPEAT)
                speeds[who].append(SIZE / 1024 / (int(got[1]) / 1e6))
                speeds[who + " after login"].append(SIZE / 1024 / (int(got[5 if who == "ulnet" else 2]) / 1e6))
        got = upload(board, server, "measured.bin", True, False)
        return ({k: statistics.median(v) for k, v in speeds.items()}, int(got[2]),
                int(got[3]) / (int(got[4]) / 1024))
    finally:
        board.stop()


def upload(board, server, name, measure, raw, repeat=1):
    """Plain 1 MB uploads from the board after one login (all of them complete: the bytes add
    up, no error), the last one checked byte for byte on the server; the board's '@' line."""
    got = run_on(board, app_code(server, name, measure, True, raw, repeat))
    if int(got[0]) != SIZE * repeat or not upload_ok(server, name):
        raise RuntimeError("%s failed: %s" % (name, got))
    return got


def events():
    board = board_with_ulnet(MEASURE_HEAP, True, b"")
    try:
        return [int(x) for x in run_on(board, EVENTS)]
    finally:
        board.stop()


DATA = [b""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="throughput rounds per client")
    args = parser.parse_args()
    DATA[0] = os.urandom(SIZE)
    sizes = mpy_sizes()
    modes = {mode: imports(mode == "romfs", b"") for mode in ("romfs", "lib")}
    per_event = events()
    with PyFTPD() as server:
        speeds, live, per_chunk = throughput(server, args.rounds)
        smallest = {mode: smallest_heap(lambda kb: completes(kb, mode, server), lo, hi)
                    for mode, lo, hi in (("romfs", 16, 64), ("lib", 24, 96), ("raw", 4, 32))}
    print_table(sizes, modes, per_event, speeds, live, per_chunk, smallest, args.rounds)


def kb(n):
    return "%.1f KB" % (n / 1024)


def print_table(sizes, modes, per_event, speeds, live, per_chunk, smallest, rounds):
    on_path = {m[len("ulnet."):].replace(".", "/") + ".mpy" if m != "ulnet" else "__init__.mpy" for m in UPLOAD_PATH}
    on_path |= {"ports/__init__.mpy", "ftp/__init__.mpy"}
    rows = [("", "ROMFS", "/lib")]
    for m in UPLOAD_PATH:
        rows.append(("import " + m, kb(modes["romfs"][0][m]), kb(modes["lib"][0][m])))
    rows.append(("import heap of the upload path (fresh board)", kb(modes["romfs"][1]), kb(modes["lib"][1])))
    rows.append(("qstrs the upload path interns", str(modes["romfs"][2]), str(modes["lib"][2])))
    rows.append(("smallest heap for the 1 MB upload", "%sK" % smallest["romfs"], "%sK" % smallest["lib"]))
    rows += [
        (".mpy size: core + upy port", kb(sum(sizes.values())), "%d files" % len(sizes)),
        (".mpy size: the upload path", kb(sum(v for k, v in sizes.items() if k in on_path)), ""),
        ("heap per 1,000 events: receive / can-send / timer", "%d / %d / %d B" % tuple(per_event), ""),
        ("1 MB upload: live heap above the imports", kb(live), ""),
        ("1 MB upload: bytes allocated per 1 KB chunk", "%.2f" % per_chunk, ""),
        ("1 MB upload: ulnet, median of %d, first / after the login" % rounds,
         "%.0f / %.0f KB/s" % (speeds["ulnet"], speeds["ulnet after login"]), ""),
        ("1 MB upload: raw socket loop, median of %d, first / after the login" % rounds,
         "%.0f / %.0f KB/s" % (speeds["raw"], speeds["raw after login"]), "smallest heap %sK" % smallest["raw"]),
        ("ulnet / raw loop, first upload, connect to 226", "%.2fx" % (speeds["ulnet"] / speeds["raw"]), ""),
        ("ulnet / raw loop, %d uploads after the login" % REPEAT,
         "%.2fx" % (speeds["ulnet after login"] / speeds["raw after login"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    print("ulnet on an emulated board (MicroPython unix port, 64-bit: 8-byte pointers, 32-byte GC blocks)")
    for label, a, b in rows:
        print("%-*s  %12s  %s" % (width, label, a, b))


if __name__ == "__main__":
    main()
