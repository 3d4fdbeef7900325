"""TLS peers on loopback for the tests: a Python ssl server in a thread, socat as a TLS
terminator in front of a plain server (Telnet over TLS), and a relay that holds back the end of
a server's handshake (RecordRelay).

TLSServer plays one of these per connection (`mode`):
- "echo": handshake, then echo every application byte until the client ends (close_notify back);
- "greet": as echo, but say `greeting` first (as an implicit-TLS FTP or Telnet server does);
- "bye": say `greeting`, then close_notify and close at once, without waiting for the
  client's close_notify (as FTP servers do);
- "close_mid": read the ClientHello, then close (a peer that quits during the handshake);
- "silent": read the ClientHello and never answer (a handshake that never completes);
- "garbage": after the handshake, put a forged application-data record on the wire (an
  attacker's bytes: the client must refuse them).
With upgrade=True it first speaks in clear, as AUTH TLS and STARTTLS do: says "220 ready",
waits for "STARTTLS\\r\\n", says "220 go", then plays the mode; with `inject` it also says
those bytes in clear, a moment after "220 go" (a man in the middle's: by then the client
is in its handshake, and must not take them for TLS).
With context=None it is a plain TCP echo (a benchmark's yardstick). It records what a test
checks: `received` (every application byte, decrypted), `handshakes`
(completed), `failures` (the server's errors: a failed handshake, e.g. the client's alert, or
a connection cut without close_notify), `reused`
(per completed handshake: was a TLS session resumed), `clear` (bytes read in clear).

Rules: loopback only; every socket has a timeout; stop() closes everything and joins the threads,
so a test never leaves a thread or a port behind.
"""

import os
import select
import shutil
import socket
import threading
import time

from servers.telnet import ServerProcess

HOST = "127.0.0.1"
SOCAT = shutil.which("socat") or "/usr/bin/socat"


class TLSServer:
    def __init__(self, context, mode="echo", upgrade=False, greeting=b"hello\r\n", timeout_s=10,
                 inject=b""):
        self.context = context
        self.mode = mode
        self.upgrade = upgrade
        self.inject = inject
        self.greeting = greeting
        self.timeout_s = timeout_s
        self.received = bytearray()
        self.clear = bytearray()
        self.handshakes = 0
        self.failures = []
        self.reused = []
        self.connections = 0
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = []
        self._conns = []
        self._lock = threading.Lock()

    def __enter__(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
                except OSError:
                    pass
        for t in list(self._threads):
            t.join(self.timeout_s)
        self._listener.close()
        assert not any(t.is_alive() for t in self._threads), "TLS server thread still running"

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(self.timeout_s)
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        try:
            if self.upgrade and not self._starttls(conn):
                return
            if self.context is None:  # a plain echo, to compare against (benchmarks)
                self._echo(conn)
                return
            if self.mode in ("close_mid", "silent"):
                conn.recv(65536)  # the ClientHello
                if self.mode == "silent":
                    self._stop.wait(self.timeout_s)
                return
            try:
                # a cut without close_notify raises, so a test sees an unclean end in failures
                tls = self.context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
            except OSError as exc:
                self.failures.append(exc)
                return
            with self._lock:
                self._conns.append(tls)
                self.handshakes += 1
                self.reused.append(tls.session_reused)
            self._echo(tls)
        except OSError as exc:
            if not self._stop.is_set():
                self.failures.append(exc)
        finally:
            conn.close()

    def _starttls(self, conn):
        conn.sendall(b"220 ready\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            data = conn.recv(1)
            if not data:
                return False
            line += data
        self.clear.extend(line)
        if line != b"STARTTLS\r\n":
            conn.sendall(b"500 what\r\n")
            return False
        conn.sendall(b"220 go\r\n")
        if self.inject:
            time.sleep(0.2)
            conn.sendall(self.inject)
        return True

    def _echo(self, tls):
        if self.mode in ("greet", "bye"):
            tls.sendall(self.greeting)
        if self.mode == "bye":
            self._stop.set()  # straight to close_notify
        if self.mode == "garbage":
            os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + os.urandom(32))
        while not self._stop.is_set():
            tls.settimeout(0.1)  # short reads, so stop() is seen soon
            try:
                data = tls.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            self.received.extend(data)
            tls.settimeout(self.timeout_s)
            tls.sendall(data)
        if self.context is not None:
            if self.mode == "bye":
                tls.setblocking(False)  # unwrap sends close_notify, then does not wait
            try:
                tls.unwrap()  # close_notify: a clean TLS close
            except (OSError, ValueError):
                pass
        tls.close()


class SocatTLS(ServerProcess):
    """socat terminating TLS on 127.0.0.1:self.port in front of a plain server on `target`
    (certificate and key files given), a fork per connection."""

    name = "socat TLS terminator"

    def __init__(self, target_port, cert, key):
        super().__init__()
        self.target_port = target_port
        self.cert = cert
        self.key = key

    def command(self, port):
        return [SOCAT, "OPENSSL-LISTEN:%d,bind=%s,reuseaddr,fork,cert=%s,key=%s,verify=0"
                % (port, HOST, self.cert, self.key), "TCP:%s:%d" % (HOST, self.target_port)]


class RecordRelay:
    """A relay in front of a TLS server on `target_port` that reads TLS records (TLS 1.2: their
    types are in clear) and holds back the server's from its first ChangeCipherSpec on, that is
    the end of its handshake (ChangeCipherSpec, Finished), until release(). `from_client` lists
    the type of every record the client sent (23: application data); `holding` is set once the
    relay holds records back. One connection."""

    CHANGE_CIPHER_SPEC = 20
    APPLICATION_DATA = 23

    def __init__(self, target_port, timeout_s=10):
        self.target_port = target_port
        self.timeout_s = timeout_s
        self.from_client = []
        self._held = None  # the server's records from its ChangeCipherSpec on
        self.holding = threading.Event()
        self._release = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(timeout_s)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(self.timeout_s)
        self._listener.close()
        assert not self._thread.is_alive(), "relay thread still running"

    def release(self):
        self._release.set()

    def _run(self):
        try:
            client = self._listener.accept()[0]
        except OSError:
            return
        server = socket.create_connection((HOST, self.target_port), self.timeout_s)
        bufs = {client: bytearray(), server: bytearray()}
        try:
            while not self._stop.is_set():
                if self._held is not None and self._release.is_set():
                    client.sendall(self._held)
                    self._held = bytearray()
                ready = select.select([client, server], [], [], 0.05)[0]
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    bufs[sock].extend(data)
                    for record in _records(bufs[sock]):
                        self._forward(sock is client, record, client, server)
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    def _forward(self, from_client, record, client, server):
        if from_client:
            self.from_client.append(record[0])
            server.sendall(record)
        elif self._held is not None or record[0] == self.CHANGE_CIPHER_SPEC:
            if self._held is None:
                self._held = bytearray()
                self.holding.set()
            self._held.extend(record)
        else:
            client.sendall(record)


def _records(buf):
    """Take the whole TLS records (5-byte header: type, version, length) off the front of buf."""
    while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
        end = 5 + int.from_bytes(buf[3:5], "big")
        yield bytes(buf[:end])
        del buf[:end]
