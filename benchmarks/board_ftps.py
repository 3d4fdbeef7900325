"""Board FTPS benchmark: what an explicit FTPS upload (AUTH TLS, PROT P, the server's
certificate verified against a CA file on the board's flash) costs on emulated boards, one
column per kind of board, against a hand-written blocking FTPS upload in the same run.

Where mbedtls takes its memory decides the figures (issue 11), so the columns say it:
- 64-bit ROMFS, system allocator: PyPI's unix port (the emulated board `ulnet board` runs),
  ulnet's .mpy files in its ROMFS; mbedtls allocates with malloc, so the heap figures are
  MicroPython's own objects only (as on ESP32, whose mbedtls uses the system heap too);
- 32-bit / 64-bit frozen, system allocator: `ulnet firmware --bits N`, ulnet frozen in;
- 32-bit / 64-bit frozen, mbedtls in the heap: the same built with
  CFLAGS "-DMICROPY_MBEDTLS_CONFIG_BARE_METAL=1 -DMICROPY_TRACKED_ALLOC=1", mbedtls allocating
  from MicroPython's GC heap as on bare-metal ports (rp2, stm32, mimxrt): the heap holds both
  TLS sessions (control and data connection), and -X heapsize is what such a board needs.
The firmwares are built by tools/firmware.py from MicroPython's source (--micropython, else as
the tests find it); without it those columns are left out, and the reason printed.

Rows, per column (the applications run from the board's ROMFS as compiled code, as a device's
own code is frozen or in ROMFS; board_code.py holds them):
- smallest heap (bisection over fresh boards, 1 KB steps) for the login alone (greeting, AUTH
  TLS, the control connection's handshake with the certificate verified, USER, PASS, PBSZ,
  PROT): what the handshake needs; for a 1 MB FTPS upload with FTPSession (two TLS sessions:
  control and data); for the same upload written by hand (blocking sockets and tls);
- the live heap above the imports (gc.mem_alloc() after gc.collect()) of the logged-in session,
  and during the upload (sampled every 64 KB);
- on the 64-bit ROMFS board, throughput: FTPS against plain FTP uploads by ulnet, and against
  the hand-written FTPS upload, on the same board in the same run, interleaved rounds, medians,
  1 MB per upload, 4 uploads per login (1 KB chunks: 1 KB TLS records).
Each upload is checked on the server byte for byte. The server is pyftpdlib's TLS handler
(tests/servers/ftp.py), the certificates tests/servers/certs.py's (EC P-256). Nothing here
asserts a figure.

    python benchmarks/board_ftps.py [--rounds 5] [--boards 64-romfs,32-bare] [--micropython DIR]
"""

import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from board_code import APP, RAW, code_for  # noqa: E402
from board_heap import MEASURE_HEAP, kb, kinds, run_on, smallest_heap, upload_ok  # noqa: E402
from servers.certs import Certs  # noqa: E402
from servers.ftp import PyFTPD  # noqa: E402

SIZE = 1 << 20
REPEAT = 4  # uploads per login in the throughput rounds
BARE = "-DMICROPY_MBEDTLS_CONFIG_BARE_METAL=1 -DMICROPY_TRACKED_ALLOC=1"
# the columns: (name, word size, where ulnet is[, C flags of its firmware]), as board_heap.py's
KINDS = (("64-romfs", 64, "romfs"), ("32-frozen", 32, "frozen"), ("64-frozen", 64, "frozen"),
         ("32-bare", 32, "frozen", BARE), ("64-bare", 64, "frozen", BARE))
TITLES = {"64-romfs": "64-bit ROMFS, system alloc", "32-frozen": "32-bit frozen, system alloc",
          "64-frozen": "64-bit frozen, system alloc", "32-bare": "32-bit frozen, mbedtls in heap",
          "64-bare": "64-bit frozen, mbedtls in heap"}
# bisection bounds in KB for 32-bit boards with the system allocator; 64-bit doubles them, and
# mbedtls in the heap adds its sessions (about 20 KB each at 32-bit, more at 64-bit)
BOUNDS = {"login": (4, 48), "upload": (4, 64), "raw": (2, 48)}
BARE_EXTRA = {"login": 20, "upload": 40, "raw": 40}


class Apps:
    """The FTPS applications, against one TLS server; each run checked on the server."""

    def __init__(self, server, certs):
        self.server, self.certs = server, certs
        self.data = os.urandom(SIZE)
        with open(certs.ca_der, "rb") as f:
            self.files = {"up.bin": self.data, "ca.der": f.read()}

    def code(self, what, name="bisect.bin", repeat=1, measure=False, tls=True):
        s = self.server
        if what == "raw":
            return code_for(RAW, HOST="127.0.0.1", PORT=s.port, USER=s.user.encode(),
                            PASSWORD=s.password.encode(), NAME=name.encode(), REPEAT=repeat, CAFILE="/ca.der")
        return code_for(APP, MEASURE=measure, PLAIN=True, HOST="127.0.0.1", PORT=s.port, USER=s.user,
                        PASSWORD=s.password, NAME=name, REPEAT=0 if what == "login" else repeat,
                        TLS=("explicit", "/ca.der") if tls else ())

    def completes(self, kind, what, heap_kb):
        got = None
        try:
            with kind.board("%dK" % heap_kb, self.files, self.code(what)) as board:
                got = run_on(board, "import app")
        except Exception:  # too small to boot, a MemoryError on the board, no result line
            pass
        if what == "login":
            return got is not None and got[0] == "0"
        return upload_ok(self.server, "bisect.bin", self.data) and got is not None and int(got[0]) == SIZE


def measured(kind, apps):
    """(live heap of the logged-in session, live heap during the upload), above the imports."""
    with kind.board(MEASURE_HEAP, apps.files, apps.code("upload", "measured.bin", measure=True)) as board:
        got = run_on(board, "import app")
    if int(got[0]) != SIZE or not upload_ok(apps.server, "measured.bin", apps.data):
        raise RuntimeError("the measured upload failed: %s" % got)
    return int(got[6]), int(got[2])


def throughput(kind, apps, plain, rounds):
    """Median KB/s of REPEAT uploads after one login, interleaved rounds: ulnet over FTPS and
    plain FTP, and the hand-written FTPS upload (what TLS itself costs on this board)."""
    speeds = {"ftps": [], "plain": [], "raw": []}
    for i in range(rounds):
        for who, server in (("ftps", apps.server), ("plain", plain), ("raw", apps.server)):
            name = "%s%d.bin" % (who, i)
            if who == "raw":
                code = apps.code("raw", name, REPEAT)
            else:
                code = code_for(APP, MEASURE=False, PLAIN=True, HOST="127.0.0.1", PORT=server.port, USER=server.user,
                                PASSWORD=server.password, NAME=name, REPEAT=REPEAT,
                                TLS=("explicit", "/ca.der") if who == "ftps" else ())
            with kind.board(MEASURE_HEAP, apps.files, code) as board:
                got = run_on(board, "import app")
            if int(got[0]) != SIZE * REPEAT or not upload_ok(server, name, apps.data):
                raise RuntimeError("%s failed: %s" % (name, got))
            speeds[who].append(SIZE / 1024 / (int(got[2 if who == "raw" else 5]) / 1e6))
    return {who: statistics.median(v) for who, v in speeds.items()}


def measure(kind, apps, plain, rounds):
    scale = 1 if kind.bits == 32 else 2
    bare = kind.name.endswith("bare")
    figures = {"smallest": {}}
    for what, (lo, hi) in BOUNDS.items():
        extra = BARE_EXTRA[what] * scale if bare else 0
        figures["smallest"][what] = smallest_heap(lambda heap: apps.completes(kind, what, heap),
                                                  lo * scale + extra, hi * scale + extra)
    figures["session"], figures["live"] = measured(kind, apps)
    if kind.name == "64-romfs":
        figures["speeds"] = throughput(kind, apps, plain, rounds)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--boards", default=",".join(k[0] for k in KINDS), help="columns, comma-separated")
    parser.add_argument("--micropython", metavar="DIR", help="MicroPython source for the frozen columns")
    args = parser.parse_args()
    columns = kinds(args.boards.split(","), args.micropython, KINDS, TITLES)
    with tempfile.TemporaryDirectory(prefix="ulnet-certs-") as folder:
        certs = Certs(folder)
        with PyFTPD(tls="explicit", cert=certs["good"]) as server, PyFTPD() as plain:
            apps = Apps(server, certs)
            figures = {kind.name: measure(kind, apps, plain, args.rounds) for kind in columns}
    print_table(columns, figures, args.rounds)


def print_table(columns, figures, rounds):
    def row(label, show):
        rows.append([label] + [show(figures[k.name]) for k in columns])

    def heap(k):
        return lambda f: "%sK" % f["smallest"][k] if f["smallest"][k] else "-"

    rows = [[""] + [TITLES[k.name] for k in columns]]
    row("smallest heap: FTPS login (the handshake)", heap("login"))
    row("smallest heap: 1 MB FTPS upload, ulnet FTPSession", heap("upload"))
    row("smallest heap: 1 MB FTPS upload, hand-written", heap("raw"))
    row("ulnet / hand-written", lambda f: "%.2fx" % (f["smallest"]["upload"] / f["smallest"]["raw"])
        if f["smallest"]["upload"] and f["smallest"]["raw"] else "-")
    row("live heap of a logged-in FTPS session", lambda f: kb(f["session"]))
    row("live heap during the upload (two TLS sessions)", lambda f: kb(f["live"]))
    row("throughput FTPS / plain FTP, median of %d" % rounds, lambda f: "%.0f / %.0f KB/s (%.2fx)" % (
        f["speeds"]["ftps"], f["speeds"]["plain"], f["speeds"]["ftps"] / f["speeds"]["plain"]) if "speeds" in f else "")
    row("throughput FTPS: ulnet / hand-written", lambda f: "%.0f / %.0f KB/s (%.2fx)" % (
        f["speeds"]["ftps"], f["speeds"]["raw"], f["speeds"]["ftps"] / f["speeds"]["raw"]) if "speeds" in f else "")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("explicit FTPS (PROT P, certificate verified) on emulated boards (MicroPython unix port)")
    for r in rows:
        print("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]))


if __name__ == "__main__":
    main()
