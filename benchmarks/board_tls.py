"""Board TLS benchmark: what a TLS session costs on an emulated board, printed as one table.

The board is the MicroPython unix port run by `ulnet board` (64-bit, ulnet in ROMFS: code runs in
place, as `ulnet deploy --romfs` leaves it). Its mbedtls allocates from the system allocator, not
from MicroPython's heap (as on ESP32; bare-metal ports such as rp2 and stm32 allocate it from the
heap, see the README): so every figure here is ulnet's own objects and what the tls module's
Python objects take, the TLS library's buffers excluded. The host runs a TLS echo server (Python's
ssl in a thread, tests/servers/tls.py) with the test CA's certificate; the board verifies it
against the CA in DER on its flash.

Rows:
- import heap of ulnet.tls and the port's TLS part (ports/upy_tls.py), with the TCP path loaded;
- the handshake: bytes allocated from connect() to on_connect with the GC off (an upper bound of
  what it adds to the heap at its peak), and the live heap of one open TLS connection after it
  (gc.collect()), both above the imports;
- bytes allocated per 1 KB chunk in the steady state (200 echo round trips, GC off);
- the smallest heap (-X heapsize, by bisection over fresh boards) where the board connects,
  verifies and echoes 64 KB through TLS (the board's code is its app in ROMFS, run in place);
- throughput: 1 MB through the echo in 1 KB chunks (sent and received back), TLS against plain
  TCP to the same kind of server in the same run, interleaved rounds, medians.
Nothing here asserts a figure.

    python benchmarks/board_tls.py [--rounds 5]
"""

import argparse
import os
import ssl
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from board_code import code_for  # noqa: E402
from board_heap import KINDS, Kind, run_on, smallest_heap  # noqa: E402
from servers.certs import Certs  # noqa: E402
from servers.tls import TLSServer  # noqa: E402

MEASURE_HEAP = "512K"

# connect (TLS when TLS), echo TOTAL bytes in 1 KB chunks, print the figures (see the docstring)
ECHO = """
import gc, time
chunk = bytearray(1024)  # the buffers first, while the heap is in one piece (as a device's app)
buf = bytearray(1024)
gc.collect()
base = gc.mem_alloc()
from ulnet.eventer import Eventer
from ulnet.tcp import TCP
if TLS:
    from ulnet.tls import TLSSession
    import ulnet.ports.upy_tls
gc.collect()
imported = gc.mem_alloc() - base
ev = Eventer()
tcp = TCP(ev)
if TLS:
    tcp.session = TLSSession(cafile="/ca.der")
state = [0, 0, 0, 0]  # bytes sent, bytes back, connected, bytes back when measuring began
errors = []
def pump(sock):
    while state[0] < TOTAL:
        if not sock.send(chunk):
            return
        state[0] += 1024
def back(sock):
    n = sock.recv_into(buf)
    state[1] += n
    if ROUND_TRIP and n and state[1] % 1024 == 0 and state[0] < TOTAL:
        sock.send(chunk)
        state[0] += 1024
def up(sock):
    state[2] = 1
def first(sock):
    if not state[0] and sock.send(chunk):
        state[0] = 1024
tcp.on_connect = up
tcp.on_can_send = first if ROUND_TRIP else pump
tcp.on_receive = back
tcp.on_error = lambda s, e: errors.append(e)
gc.collect()
before = gc.mem_alloc()
if MEASURE:  # the GC off: what is allocated is counted, garbage included
    gc.disable()
t0 = time.ticks_us()
sock = tcp.connect("127.0.0.1", PORT, 10000)
ev.run_until(lambda: state[2] or errors, 30000)
handshake = gc.mem_alloc() - before
gc.enable()
gc.collect()
live = gc.mem_alloc() - before
ev.run_until(lambda: state[1] >= WARM or errors, 60000)
gc.collect()
if MEASURE:
    gc.disable()
start, used = state[1], gc.mem_alloc()
ev.run_until(lambda: state[1] >= min(TOTAL, start + 200 * 1024) or errors, 60000)
per_chunk = (gc.mem_alloc() - used) * 1024 // max(1, state[1] - start)
gc.enable()
ev.run_until(lambda: state[1] >= TOTAL or errors, 120000)
us = time.ticks_diff(time.ticks_us(), t0)
sock.disconnect()
print("@", imported, handshake, live, per_chunk, us, state[1], len(errors))
"""


class Servers:
    """A TLS echo server and a plain one (the same code without TLS), on 127.0.0.1."""

    def __init__(self, certs):
        self.certs = certs
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["good"].cert, certs["good"].key)
        self.tls = TLSServer(ctx, timeout_s=60)
        self.plain = TLSServer(None, timeout_s=60)

    def __enter__(self):
        self.tls.__enter__()
        self.plain.__enter__()
        return self

    def __exit__(self, *exc):
        self.tls.stop()
        self.plain.stop()


def echo(kind, heap, files, servers, tls, total, round_trip=False, measure=True):
    """The figures of one run on a fresh board, or None when it failed there."""
    port = (servers.tls if tls else servers.plain).port
    code = code_for(ECHO, TLS=tls, PORT=port, TOTAL=total, WARM=min(total, 64 * 1024),
                    ROUND_TRIP=round_trip, MEASURE=measure)
    try:
        # the code is the board's app, compiled into its ROMFS: it runs in place, as a device's
        # own code would, so its bytecode is not in the heap measured
        with kind.board(heap, files, code) as board:
            got = [int(x) for x in run_on(board, "import app")]
    except Exception:  # too small to boot or to finish: no result line
        return None
    return got if got[5] >= total and not got[6] else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds per transport")
    args = parser.parse_args()
    kind = Kind(*[k for k in KINDS if k[0] == "64-romfs"][0])
    with tempfile.TemporaryDirectory(prefix="ulnet-bench-certs-") as tmp, \
            Servers(Certs(tmp)) as servers:
        certs = servers.certs
        files = {"ca.der": open(certs.ca_der, "rb").read()}
        figures = echo(kind, MEASURE_HEAP, files, servers, True, 256 * 1024, round_trip=True)
        plain = echo(kind, MEASURE_HEAP, files, servers, False, 256 * 1024, round_trip=True)
        smallest = smallest_heap(lambda kb: echo(kind, "%dK" % kb, files, servers, True, 64 * 1024,
                                                 measure=False) is not None, 8, 128)
        times = {True: [], False: []}
        for _ in range(args.rounds):
            for tls in (True, False):
                got = echo(kind, MEASURE_HEAP, files, servers, tls, 1 << 20)
                if got:
                    times[tls].append(got[4] / 1e6)
    print_table(figures, plain, smallest, times)


def print_table(figures, plain, smallest, times):
    kb = lambda n: "%.1f KB" % (n / 1024)  # noqa: E731
    print("TLS on an emulated board (MicroPython unix port, 64-bit, ulnet in ROMFS; mbedtls")
    print("allocates outside MicroPython's heap here: ulnet's and the tls module's objects only)")
    print()
    if figures is None:
        print("the TLS echo failed on the board")
        return
    imported, handshake, live, per_chunk = figures[:4]
    rows = [
        ("import heap: TCP path, ulnet.tls, ports/upy_tls", kb(imported)),
        ("  the same without TLS (TCP path only)", kb(plain[0]) if plain else "?"),
        ("handshake: allocated from connect to on_connect (GC off)", kb(handshake)),
        ("live heap of one open TLS connection (session, context, socket)", kb(live)),
        ("  a plain TCP connection, same run", kb(plain[2]) if plain else "?"),
        ("bytes allocated per 1 KB chunk, steady state", str(per_chunk)),
        ("smallest heap: connect, verify, echo 64 KB", "%d KB" % smallest if smallest else "> 128 KB"),
    ]
    for name, value in rows:
        print("%-66s %s" % (name, value))
    for tls in (True, False):
        if times[tls]:
            median = statistics.median(times[tls])
            print("%-66s %.2f s (%.0f KB/s)" % ("1 MB echo in 1 KB chunks, %s, median of %d"
                                                 % ("TLS" if tls else "plain TCP", len(times[tls])),
                                                 median, 1024 / median))
    if times[True] and times[False]:
        print("%-66s %.2fx" % ("TLS / plain TCP, wall time", statistics.median(times[True])
                               / statistics.median(times[False])))


if __name__ == "__main__":
    main()
