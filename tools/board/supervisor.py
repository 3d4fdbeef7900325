"""The emulated board's supervisor: a real MicroPython unix port made to look like a board.

Run as `python -m ulnet.tools.board.supervisor --heap 64K --flash DIR [--flash-size BYTES]
--state FILE [--pty] [--firmware PATH]`
(tools/board/__init__.py does that). It serves the REPL of one MicroPython unix port process (the
"child", started with tools/board/boot/board_boot.py) on 127.0.0.1:PORT for one client at a time, and
optionally on a pty, and restarts the child whenever it exits, as a board reboots:

- exit code 0 or any other code: soft reset: prints "MPY: soft reboot" and, if the child was
  in the raw REPL, enters the raw REPL again, so mpremote's automatic soft reset works;
- RESET_CODE (machine.reset()), death by a signal or the reset button (SIGUSR1): hard reset,
  no soft-reboot line, friendly REPL, main.py runs.

The child talks over pipes, not a tty: the unix port flushes tty input when it enters raw mode
and turns 0x03 into SIGINT even while mpremote's `mount` sends binary data. Instead a 0x03 from a
client becomes SIGINT only while the child has its SIGINT handler installed (it runs code with
Ctrl-C enabled, seen in /proc/PID/status); otherwise it is data, as micropython.kbd_intr(-1)
makes it on a board.

Rules: single-threaded, event driven, never blocks on a peer (client sends have a timeout,
child input is buffered); SIGTERM stops it cleanly: child killed, state file removed.
"""

import argparse
import json
import os
import select
import selectors
import signal
import socket
import sys

from ulnet.tools.board.child import Child

# a client that does not take output for this long is dropped rather than stall the board
CLIENT_SEND_TIMEOUT_S = 5
# bytes kept from the previous output chunk so REPL mode texts split across reads are seen
MODE_TAIL = 64
RAW_TEXT = b"raw REPL; CTRL-B to exit"
FRIENDLY_TEXT = b'Type "help()" for more information.'
SOFT_REBOOT = b"MPY: soft reboot\r\n"
READ_SIZE = 4096


class Supervisor:
    """One emulated board: a child MicroPython, a listening socket, an optional pty."""

    def __init__(self, heap, flash, flash_size=0, use_pty=False, firmware=None):
        self.sel = selectors.DefaultSelector()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, self._on_accept)
        self.url = "socket://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.client = None
        self.pty_master = self.pty_path = None
        if use_pty:
            self._open_pty()
        self.child = Child(self.sel, heap, flash, flash_size, self._on_output, self._on_exit, firmware)
        self.raw = False
        self.tail = b""
        self.running = True
        self._install_signals()

    def _open_pty(self):
        import pty
        import tty

        self.pty_master, slave = pty.openpty()
        # raw line discipline: no newline translation (mpremote needs exact "\r\n>"), no echo
        tty.setraw(slave)
        self.pty_path = os.ttyname(slave)
        # keeping the slave open keeps the pty alive between clients
        self._pty_slave = slave
        os.set_blocking(self.pty_master, False)
        self.sel.register(self.pty_master, selectors.EVENT_READ, self._on_pty_input)

    def _install_signals(self):
        self._wake_r, wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        self._wake_w = wake_w
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, lambda *_: None)  # a handler must exist for the wakeup fd to fire
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_signal)

    def serve(self):
        """Run until SIGTERM/SIGINT; always leaves no child and no sockets behind."""
        try:
            self.child.start(raw=False)
            while self.running:
                timeout = self.child.next_deadline_s()
                events = self.sel.select(timeout)
                # a signal sent before a client's bytes is handled before them (the reset
                # button, then the client's Ctrl-C for the rebooted board)
                self._on_signal()
                for key, _ in events:
                    # a handler may unregister another's file (a client that went away while
                    # output was sent to it): that file's event from this select is stale
                    if self.sel.get_map().get(key.fd) is key:
                        key.data()
                self.child.check_deadline()
        finally:
            self.close()

    def close(self):
        self.child.stop()
        self._drop_client()
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()
        if self.pty_master is not None:
            os.close(self.pty_master)
            os.close(self._pty_slave)
        self.sel.close()

    def _on_signal(self):
        try:
            signums = self._wake_r.recv(64)
        except BlockingIOError:
            return
        for signum in signums:
            if signum == signal.SIGUSR1:
                self.child.kill()  # the reset button: _on_exit sees a signal death
            else:
                self.running = False

    def _on_accept(self):
        conn, _ = self.listener.accept()
        # a client that closed may still have input queued before its EOF (mpremote's last
        # Ctrl-B), not yet handled when a new client comes at once: take it as the loop would
        while self.client is not None and select.select([self.client], [], [], 0)[0]:
            self._on_client_input()
        if self.client is not None:
            conn.close()  # a serial line has one owner
            return
        conn.settimeout(CLIENT_SEND_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = conn
        self.sel.register(conn, selectors.EVENT_READ, self._on_client_input)

    def _drop_client(self):
        if self.client is not None:
            self.sel.unregister(self.client)
            self.client.close()
            self.client = None

    def _on_client_input(self):
        try:
            data = self.client.recv(READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self._drop_client()
            return
        self.child.send(data)

    def _on_pty_input(self):
        try:
            data = os.read(self.pty_master, READ_SIZE)
        except OSError:
            return  # EIO: no client has the pty open
        self.child.send(data)

    def _on_output(self, data):
        """Output of the child for the clients; also tracks which REPL the child is in."""
        window = self.tail + data
        raw_at, friendly_at = window.rfind(RAW_TEXT), window.rfind(FRIENDLY_TEXT)
        if raw_at != friendly_at:
            self.raw = raw_at > friendly_at
        self.tail = window[-MODE_TAIL:]
        self._emit(data)

    def _emit(self, data):
        if self.client is not None:
            try:
                self.client.sendall(data)
            except OSError:
                self._drop_client()
        if self.pty_master is not None:
            try:
                os.write(self.pty_master, data)
            except OSError:
                pass  # nobody reads the pty: output is lost, as on an unattended UART

    def _on_exit(self, hard):
        """The child ended: reboot it the way a board would."""
        raw = self.raw and not hard
        if not hard:
            self._emit(SOFT_REBOOT)
        self.raw, self.tail = raw, b""
        self.child.start(raw=raw)


def write_state(path, supervisor, flash, temporary_flash):
    """Record the board for `ulnet board stop`: written last, so its presence means ready."""
    state = {
        "pid": os.getpid(),
        "url": supervisor.url,
        "pty": supervisor.pty_path,
        "flash": flash,
        "temporary_flash": temporary_flash,
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="emulated board supervisor (see tools/board/__init__.py)")
    parser.add_argument("--heap", required=True)
    parser.add_argument("--flash", required=True)
    parser.add_argument("--flash-size", type=int, default=0, help="bytes; 0: the host disk's")
    parser.add_argument("--temporary-flash", action="store_true")
    parser.add_argument("--state", required=True)
    parser.add_argument("--pty", action="store_true")
    parser.add_argument("--firmware", help="a unix port binary (default: the PyPI unix port)")
    args = parser.parse_args(argv)
    supervisor = Supervisor(args.heap, args.flash, args.flash_size, use_pty=args.pty, firmware=args.firmware)
    write_state(args.state, supervisor, args.flash, args.temporary_flash)
    try:
        supervisor.serve()
    finally:
        _remove_quietly(args.state)
        if args.temporary_flash:
            import shutil

            shutil.rmtree(args.flash, ignore_errors=True)
    return 0


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
