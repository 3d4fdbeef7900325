"""Telnet peers on loopback for the tests: busybox telnetd, inetutils telnetd under inetd, a
scripted peer, and a recording proxy. Reusable by any test (board tests too).

Rules: loopback only; every server is a context manager that always stops what it started, by
process id (the server and every process below it, shells included); every wait has a deadline.
Ports are probed free and a server counts as up only once its own process holds the listening
socket, so two pytest workers racing for a port retry instead of talking to each other's server.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from servers.ftp import free_port

HOST = "127.0.0.1"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
INETD = "/usr/sbin/inetutils-inetd"
TELNETD = "/usr/sbin/telnetd"  # inetutils-telnetd


def _listening_inodes(port):
    """Inodes of IPv4 sockets listening on 127.0.0.1:port (from /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # 0A: TCP_LISTEN
                inodes.add(fields[9])
    return inodes


def _holds(pid, inodes):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def _stat(pid):
    """(parent pid, start time, state) of a process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[19], fields[0]


def _tree(root):
    """[(pid, start time)] of root and every process below it, found through /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat(int(name))
            if info is not None:
                children.setdefault(info[0], []).append((int(name), info[1]))
    found = [(root, (_stat(root) or (0, None))[1])]
    for pid, _ in found:  # grows while it is walked: breadth first
        found.extend(children.get(pid, ()))
    return found


def stop_tree(proc, grace_s=2):
    """Kill proc and every process below it, by pid, deepest first and each reaped by its
    parent before the next: an orphan killed later would stay a zombie under a container's
    init, which reaps nothing."""
    for pid, start in reversed(_tree(proc.pid)[1:]):
        end = time.monotonic() + grace_s
        info = _stat(pid)
        if info is not None and info[1] == start and info[2] != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while info is not None and info[1] == start and time.monotonic() < end:
            time.sleep(0.005)
            info = _stat(pid)
    proc.kill()
    proc.wait(grace_s)


class ServerProcess:
    """A server process on 127.0.0.1:self.port; subclasses give command(port)."""

    name = "server"
    start_tries = 5

    def __init__(self):
        self.port = None
        self.proc = None

    def command(self, port):
        raise NotImplementedError

    def start(self, deadline_s=10):
        for _ in range(self.start_tries):
            port = free_port()
            self.proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            end = time.monotonic() + deadline_s
            while time.monotonic() < end and self.proc.poll() is None:
                if _holds(self.proc.pid, _listening_inodes(port)):
                    self.port = port
                    return self
                time.sleep(0.02)
            self.stop()  # the port was taken meanwhile, or the server failed: try another
        raise RuntimeError("%s did not start listening on %s" % (self.name, HOST))

    def stop(self):
        if self.proc is not None:
            stop_tree(self.proc)
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class BusyboxTelnetd(ServerProcess):
    """busybox telnetd in the foreground, a root shell per connection (no login)."""

    name = "busybox telnetd"

    def command(self, port):
        return [BUSYBOX, "telnetd", "-F", "-p", str(port), "-b", HOST, "-l", "/bin/sh"]


class InetutilsTelnetd(ServerProcess):
    """inetutils telnetd started per connection by inetutils-inetd, running /bin/sh.

    inetd accepts "address:port" as the service field, so it listens on loopback only.
    """

    name = "inetutils telnetd"

    def __init__(self):
        super().__init__()
        self._tmp = tempfile.mkdtemp(prefix="ulnet-inetd-")

    def command(self, port):
        conf = os.path.join(self._tmp, "inetd.conf")
        with open(conf, "w") as f:
            # nowait.1000: inetd's default of 40 starts a minute would stop a busy test run
            f.write("%s:%d stream tcp nowait.1000 root %s telnetd -E /bin/sh\n"
                    % (HOST, port, TELNETD))
        pidfile = os.path.join(self._tmp, "inetd.pid")
        # -d keeps it in the foreground; the pidfile goes to our folder, not /run
        return [INETD, "-d", "--pidfile=" + pidfile, conf]

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


class Peer:
    """The server side of one scripted connection: raw bytes, with deadlines."""

    def __init__(self, conn):
        self.conn = conn
        self.received = bytearray()  # every byte the client sent, in order

    def send(self, data):
        self.conn.sendall(data)

    def read_until(self, expected, timeout_s=10):
        """Read until `expected` is in what the client sent; returns all of it so far."""
        end = time.monotonic() + timeout_s
        while expected not in self.received:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError("client never sent %r; got %r"
                                     % (expected, bytes(self.received)))
        return bytes(self.received)

    def read_quiet(self, quiet_s=0.2, timeout_s=10):
        """Read until the client has been silent for quiet_s (or closed); returns all so far."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self._read(quiet_s):
            pass
        return bytes(self.received)

    def finish(self, timeout_s=10):
        """Close our sending side, then read until the client closes; returns all it sent."""
        try:
            self.conn.shutdown(socket.SHUT_WR)
        except OSError:  # the client closed first (it gave up on us)
            pass
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self._read(end - time.monotonic()):
            pass
        return bytes(self.received)

    def _read(self, timeout_s):
        """One read into self.received; False on silence, end of stream or a reset."""
        self.conn.settimeout(timeout_s)
        try:
            data = self.conn.recv(65536)
        except OSError:  # socket.timeout is one
            return False
        self.received.extend(data)
        return bool(data)

    def close(self):
        self.conn.close()


class ScriptedServer:
    """Accepts one client on 127.0.0.1 and plays script(peer) in a thread, then closes.

    `error` holds what the script raised (check it in the test); stop() waits for the script
    at most join_s seconds, after closing the connection so that blocked reads end.
    """

    def __init__(self, script, join_s=20, rcvbuf=None):
        self.script = script
        self.join_s = join_s
        self.error = None
        self.peer = None
        self._listener = socket.socket()
        if rcvbuf:  # a small receive buffer (inherited by the accepted socket) pushes back soon
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind((HOST, 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self._listener.settimeout(self.join_s)
            conn, _ = self._listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.peer = Peer(conn)
            self.script(self.peer)
        except Exception as exc:  # handed to the test through self.error
            self.error = exc
        finally:
            if self.peer is not None:
                self.peer.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(self.join_s)
        self._listener.close()
        if self.peer is not None:
            self.peer.close()
        assert not self._thread.is_alive(), "scripted server still running"


class RecordingProxy:
    """Forwards one connection from 127.0.0.1:self.port to a server, recording both ways:
    `to_server` (what the client sent) and `to_client` (what the server sent)."""

    def __init__(self, port, timeout_s=30):
        self.to_server = bytearray()
        self.to_client = bytearray()
        self._target = port
        self._timeout_s = timeout_s
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._threads = []
        self._socks = []

    def __enter__(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self):
        self._listener.settimeout(self._timeout_s)
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        server = socket.create_connection((HOST, self._target), timeout=self._timeout_s)
        self._socks += [client, server]
        t = threading.Thread(target=self._pump, args=(server, client, self.to_client), daemon=True)
        t.start()
        self._threads.append(t)
        self._pump(client, server, self.to_server)

    def _pump(self, src, dst, record):
        src.settimeout(self._timeout_s)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def __exit__(self, *exc):
        self._listener.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        for s in self._socks:
            s.close()
