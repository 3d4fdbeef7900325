"""The MicroPython code benchmarks/board_heap.py and board_ftps.py run on their boards:
measurements and the applications whose smallest heap they find. Names in UPPER case (HOST, PORT, NAME...) are bound
by code_for() as literals first: a board receives source.

The applications (APP, RAW, TELNET, JOB) are what a device runs: board_heap.py compiles them
with mpy-cross into the board's ROMFS image, as a device's own code is frozen or in ROMFS, so
a smallest heap is what ulnet and the board need, not the benchmark's source compiled on the
board. Each prints one line, "@ figure figure ...".
"""

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
# scanner uploads), REPEAT uploads in all (0: the login alone). TLS: connect's TLS arguments,
# e.g. ("explicit", "/ca.der"), () for plain FTP. MEASURE adds the live-heap and per-chunk
# figures; the last figure is the live heap of the logged-in session above the imports
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
    # progress is reported once the server took the STOR; data sent before its 150 (early_data)
    # is reported in one step, and on loopback that can be most of the file: the measured run
    # sends after the 150, so every chunk is seen (the pump is the same)
    ftp.early_data = False
    ftp.on_progress = progress
def upload():
    op = ftp.put("/up.bin", NAME, not PLAIN, not PLAIN)
    ev.run_until(lambda: op.done, 60000)
    if op.error:
        raise op.error
    return op.result
t = time.ticks_us()
login = ftp.connect(HOST, PORT, USER, PASSWORD, *TLS)
ev.run_until(lambda: login.done, 60000)
if login.error:
    raise login.error
u = time.ticks_us()
gc.collect()
session = gc.mem_alloc() - base
sent = upload() if REPEAT else 0
first = time.ticks_diff(time.ticks_us(), t)
for k in range(REPEAT - 1):
    sent += upload()
end = time.ticks_us()
print("@", sent, first, m[0], m[4], m[5], time.ticks_diff(end, u) // max(REPEAT, 1), session)
"""

# the same upload by hand: blocking sockets, plain FTP commands, 1 KB chunks. CAFILE (a DER
# file; None: plain FTP) makes it explicit FTPS: AUTH TLS, the server's certificate verified,
# PBSZ 0, PROT P, each data connection's handshake right after STOR (vsftpd and pure-ftpd start
# theirs then): two TLS sessions at once
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
    c.write(b"STOR " + NAME + b"\\r\\n")
    if CAFILE:
        d = ctx.wrap_socket(d, server_hostname=HOST)
    if reply(c)[0] // 100 != 1:
        raise OSError("STOR refused")
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
if CAFILE:
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    f = open(CAFILE, "rb")
    ctx.load_verify_locations(f.read())
    f.close()
    command(c, b"AUTH TLS", 234)
    c = ctx.wrap_socket(c, server_hostname=HOST)
command(c, b"USER " + USER, 331)
command(c, b"PASS " + PASSWORD, 230)
if CAFILE:
    command(c, b"PBSZ 0", 200)
    command(c, b"PROT P", 200)
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

# a Telnet session (as board_tests/test_telnet.py runs it): negotiate with busybox telnetd, run
# a command in its shell, see the shell end the session
TELNET = """
from ulnet.eventer import Eventer
from ulnet.telnet.client import TelnetClient
ev = Eventer()
client = TelnetClient(ev)
seen = bytearray()
got = [0, 0, False]
def on_receive(c, data):
    seen.extend(data)
    if len(seen) > 512:
        del seen[:256]
    if not got[2] and (b"#" in seen or b"$" in seen):
        got[2] = True
        c.send(b"echo TN_$((6*7))\\r\\n")
def on_error(c, e):
    raise e
def on_disconnect(c):
    got[1] += 1
client.on_receive = on_receive
client.on_error = on_error
client.on_disconnect = on_disconnect
client.connect(HOST, PORT)
ev.run_until(lambda: b"TN_42" in seen, 20000)
client.send(b"exit\\r\\n")
ev.run_until(lambda: got[1], 10000)
print("@", got[1])
"""

# the upload job as a device starts it: the config and the spool are on flash already
JOB = """
import ulnet.spool
job = ulnet.spool.run_from_config("/ulnet.json", None)
print("@", job.sent, job.left, job.bad)
"""


def code_for(template, **values):
    """The template with VALUE names bound first (as literals: the board receives source)."""
    return "".join("%s = %r\n" % item for item in sorted(values.items())) + template
