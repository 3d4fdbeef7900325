"""Echo benchmark: 1,000 TCP connections ping-ponging 64-byte messages against one server process.

Servers, measured in the same run with interleaved rounds (medians reported):
- ulnet (the default desktop port, epoll on Linux),
- asyncio streams and asyncio protocol,
- a plain hand-written `selectors` loop: the limit for pure Python.
The load is a C program (echo_load.c, built with the system's cc) pinned to another core than
the server, so the load is never the bottleneck; the check is that it drives the plain loop
faster than every other server. Prints round trips per second and ratios.

    python benchmarks/echo.py [--conns 1000] [--seconds 3] [--rounds 3]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from servers.ftp import free_port  # noqa: E402

BACKLOG = 2048

SERVERS = {
    "ulnet": """
import ulnet
ev = ulnet.Eventer()
srv = ulnet.TCP(ev)
srv.backlog = BACKLOG
def on_receive(sock):
    data = sock.get()
    if data:
        sock.send(data)
srv.on_receive = on_receive
srv.listen(PORT)
ready()
while True:
    ev.call_action(-1)
""",
    "asyncio-streams": """
import asyncio
async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=BACKLOG)
    ready()
    await server.serve_forever()
asyncio.run(main())
""",
    "asyncio-protocol": """
import asyncio
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", PORT, backlog=BACKLOG)
    ready()
    await server.serve_forever()
asyncio.run(main())
""",
    "selectors-loop": """
import selectors, socket
sel = selectors.DefaultSelector()
def echo(conn):
    try:
        data = conn.recv(65536)
    except BlockingIOError:
        return
    except ConnectionResetError:
        data = b""
    if data:
        conn.send(data)
    else:
        sel.unregister(conn)
        conn.close()
def accept(listener):
    conn, _ = listener.accept()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, echo)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", PORT))
listener.listen(BACKLOG)
listener.setblocking(False)
sel.register(listener, selectors.EVENT_READ, accept)
ready()
while True:
    for key, mask in sel.select():
        key.data(key.fileobj)
""",
}

PRELUDE = """
import os, sys
os.sched_setaffinity(0, {SERVER_CPU})
PORT = {PORT}
BACKLOG = {BACKLOG}
def ready():
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
"""


def build_load(tmp):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("echo.py needs a C compiler (cc or gcc) for its load generator")
    exe = os.path.join(tmp, "echo_load")
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "echo_load.c")], check=True)
    return exe


def measure(name, load, conns, seconds, cpus):
    port = free_port()
    code = PRELUDE.format(SERVER_CPU={cpus[0]}, PORT=port, BACKLOG=BACKLOG) + SERVERS[name]
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("%s server did not start" % name)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        done = subprocess.run(
            ["taskset", "-c", str(cpus[1]), load, str(port), str(conns), str(seconds)],
            capture_output=True, text=True, timeout=seconds + 60,
        )
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError("load against %s failed: %s" % (name, done.stderr))
        # share of its core the load used: well below 1.0 means the server was the bottleneck
        busy = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
        return float(done.stdout), busy
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("echo.py needs two CPUs: one for the server, one for the load")
    cpus = (cpus[0], cpus[1])
    results = {name: [] for name in SERVERS}
    busy = {name: [] for name in SERVERS}
    with tempfile.TemporaryDirectory() as tmp:
        load = build_load(tmp)
        for _ in range(args.rounds):
            for name in SERVERS:
                rate, load_busy = measure(name, load, args.conns, args.seconds, cpus)
                results[name].append(rate)
                busy[name].append(load_busy)
                time.sleep(0.5)
    median = {name: statistics.median(v) for name, v in results.items()}
    limit = median["selectors-loop"]
    print("%d connections, 64-byte ping-pong, %d rounds of %.0f s, server on CPU %d, load on CPU %d"
          % (args.conns, args.rounds, args.seconds, cpus[0], cpus[1]))
    print("%-18s %14s %14s %12s" % ("server", "round trips/s", "x plain loop", "load CPU"))
    for name in SERVERS:
        print("%-18s %14.0f %14.2f %11.0f%%"
              % (name, median[name], median[name] / limit, 100 * statistics.median(busy[name])))
    fastest_other = max(v for k, v in median.items() if k != "selectors-loop")
    if fastest_other > limit:
        print("note: a server beat the plain loop, so the load may not be saturating it")


if __name__ == "__main__":
    main()
