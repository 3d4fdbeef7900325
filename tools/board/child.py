"""The MicroPython unix port process inside an emulated board, as the supervisor sees it.

One Child object lives as long as the board; each start() spawns a fresh unix port running
tools/board/boot/board_boot.py and then its REPL. The child boots in three phases:
BOOTING (boot.py/main.py output, passed through) -> BANNER (the unix port's REPL banner, held
back) -> RUNNING (everything passed through). In a raw-mode reboot the banner is dropped and the
child is put into the raw REPL, as a board stays in it across a soft reset.

Rules: every fd is non-blocking and driven by the supervisor's selector; the BANNER phase has a
deadline; the child dies with the supervisor (PR_SET_PDEATHSIG), so a killed supervisor leaves
no busy interpreter behind.
"""

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time

from ulnet.tools.board.image import BOOT_CACHE, boot_image, preload_library

# machine.reset() exits with this code; any other exit is a soft reset (sys.exit(), Ctrl-D)
RESET_CODE = 117
# printed by board_boot.py right before the unix port's REPL banner; never printed by a board
# (control characters, but no NUL: it travels in argv)
MARKER = "\x1b\x1bulnet-repl\x1b\x1b"
BANNER_END = b'Type "help()" for more information.\r\n>>> '
# the banner follows the marker at once: if it does not, the child is stuck and gets killed
BANNER_DEADLINE_S = 10
# a child that exits at once (boot.py calling sys.exit()) would otherwise restart in a busy loop
RESTART_MIN_INTERVAL_S = 0.2
EXIT_DEADLINE_S = 5
CTRL_C = 0x03
ENTER_RAW = b"\x01"
# run in the REPL's globals (see board_boot.py), with the boot image and the empty working
# directory (BOOT_CACHE) the only places on the path: mount the image, then boot from it
BOOT = ("__import__('vfs').mount(__import__('vfs').VfsRom(__import__('uctypes').bytearray_at("
        "*map(int, __import__('os').getenv('ULNET_FW').split(':')))), '/.fw');"
        "__import__('board_boot').boot(globals())")
# run the PyPI unix port through its CPython extension, keeping its exit code. Two ROMFS images
# are first loaded into memory outside MicroPython's heap, as a board's flash is: the boot image
# (ULNET_BOOT_IMAGE, tools/board/image.py, mounted at /.fw while the board boots: a board's own
# code is frozen into its firmware and takes no heap) and the ROMFS partition in the flash
# folder (FLASH/.romfs, what `ulnet deploy --romfs` writes; board_boot.py mounts it at /rom).
# .mpy files in both run in place, without being copied into the heap. A firmware binary
# (`--firmware`) gets the same from tools/board/images.c, preloaded.
LAUNCH = """
import ctypes, os, sys, micropython_unix
images = []
for name, path in (('ULNET_FW', os.environ['ULNET_BOOT_IMAGE']),
                   ('ULNET_ROMFS', os.path.join(os.environ['ULNET_FLASH'], '.romfs'))):
    try:
        with open(path, 'rb') as f:
            image = f.read()
    except OSError as e:
        if name == 'ULNET_FW':  # no board without it: exit, the supervisor boots it again
            sys.exit('ulnet board: no boot image: %s' % e)
        continue
    if image:
        images.append(ctypes.create_string_buffer(image, len(image)))
        os.environ[name] = '%d:%d' % (ctypes.addressof(images[-1]), len(image))
sys.exit(micropython_unix.run_main(['micropython'] + sys.argv[1:]))
"""
PR_SET_PDEATHSIG = 1
# heaps up to 16 MB (glibc's largest threshold on 32 bits) come from brk; see _spawn
MMAP_THRESHOLD = "glibc.malloc.mmap_threshold=16777216"

BOOTING, BANNER, RUNNING, STOPPED = "booting", "banner", "running", "stopped"


def _child_setup():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # ignored SIGINT keeps CPython from installing its handler while it starts the unix port,
    # so a caught SIGINT always means MicroPython's (see sigint_caught)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sigint_caught(pid):
    """True while the process has a SIGINT handler, i.e. MicroPython runs code with Ctrl-C on."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


class Child:
    """A restartable unix port process; output goes to on_output, its end to on_exit(hard)."""

    def __init__(self, sel, heap, flash, flash_size, on_output, on_exit, firmware=None):
        self.sel, self.heap, self.flash, self.flash_size = sel, heap, flash, flash_size
        self.firmware = firmware  # a unix port binary; None: the PyPI unix port
        self.on_output, self.on_exit = on_output, on_exit
        self.proc = None
        self.phase = STOPPED
        self.raw = False
        self.held = b""  # output not yet passed on: a possible marker start, or the banner
        self.to_child = bytearray()  # input the pipe did not take yet
        self.queued = bytearray()  # input that arrived while the REPL was not there
        self.deadline = None
        self.started_at = 0.0
        # made before the supervisor reports it is up: a failure fails Board.start
        boot_image()
        if firmware is not None:
            preload_library(firmware)

    def start(self, raw):
        """Boot a fresh child; in raw mode it will be put in the raw REPL after booting."""
        self.raw = raw
        wait = self.started_at + RESTART_MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            self.phase, self.deadline = STOPPED, time.monotonic() + wait
            return
        self._spawn()

    def _spawn(self):
        # the boot's settings travel in the environment, not in argv: the unix port interns
        # every argument. HOME=/dev/null: the REPL history file stays out of the flash.
        env = dict(os.environ, HOME=os.devnull, ULNET_FLASH=self.flash, ULNET_MARKER=MARKER,
                   ULNET_BOOT="%s %d %d" % ("raw" if self.raw else "friendly", self.flash_size, RESET_CODE))
        env["ULNET_BOOT_IMAGE"] = boot_image()  # at every boot: a cleaned /tmp, a new mpy-cross
        env["MICROPYPATH"] = "/.fw"  # the path while it boots, after "" (the cwd below)
        run = [sys.executable, "-c", LAUNCH]
        if self.firmware is not None:
            env["LD_PRELOAD"] = preload_library(self.firmware)
            # the GC heap from brk, not mmap: in a 32-bit process glibc maps a heap of 128 KB or
            # more above 0x80000000, where MicroPython's poll allocates 32 bytes at every
            # register or modify (mp_obj_id of an object there is a long int); a board's RAM lies
            # below (ESP32 0x3FFxxxxx, RP2 and Cortex-M 0x20000000)
            tunables = [t for t in (env.get("GLIBC_TUNABLES") or "").split(":") if t]
            env["GLIBC_TUNABLES"] = ":".join(tunables + [MMAP_THRESHOLD])
            run = [self.firmware]
        self.proc = subprocess.Popen(
            run + ["-X", "heapsize=" + self.heap, "-i", "-c", BOOT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_child_setup, env=env, cwd=BOOT_CACHE,  # "" on the path: nothing to import
        )
        self.started_at = time.monotonic()
        for pipe in (self.proc.stdin, self.proc.stdout):
            os.set_blocking(pipe.fileno(), False)
        self.sel.register(self.proc.stdout, selectors.EVENT_READ, self._on_readable)
        self.phase, self.held, self.deadline = BOOTING, b"", None
        self.to_child.clear()

    def next_deadline_s(self):
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def check_deadline(self):
        if self.deadline is None or time.monotonic() < self.deadline:
            return
        self.deadline = None
        if self.phase == STOPPED:
            self._spawn()  # a delayed restart is due
        else:
            self.kill()  # the banner never came: reboot it hard

    def send(self, data):
        """Client input: queued while the REPL is not up, Ctrl-C becomes SIGINT when enabled."""
        if self.phase in (BANNER, STOPPED):
            self.queued += data
            return
        start = 0
        for i, byte in enumerate(data):
            if byte == CTRL_C and sigint_caught(self.proc.pid):
                self._write(data[start:i])
                os.kill(self.proc.pid, signal.SIGINT)
                start = i + 1
        self._write(data[start:])

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.phase = STOPPED  # input from now on is for the next child

    def stop(self):
        """End the child for good, without a reboot."""
        self.on_exit = None
        if self.proc is not None:
            self.kill()
            self._reap()

    def _write(self, data):
        if not data:
            return
        was_empty = not self.to_child
        self.to_child += data
        if was_empty:
            self._on_writable()

    def _on_writable(self):
        try:
            sent = os.write(self.proc.stdin.fileno(), self.to_child)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(self.to_child)  # the child is gone; its exit is handled on EOF
        del self.to_child[:sent]
        registered = self.sel.get_map().get(self.proc.stdin.fileno()) is not None
        if self.to_child and not registered:
            self.sel.register(self.proc.stdin, selectors.EVENT_WRITE, self._on_writable)
        elif not self.to_child and registered:
            self.sel.unregister(self.proc.stdin)

    def _on_readable(self):
        try:
            data = os.read(self.proc.stdout.fileno(), 4096)
        except BlockingIOError:
            return
        if not data:
            self._on_eof()
        elif self.phase == BOOTING:
            self._booting(self.held + data)
        elif self.phase == BANNER:
            self._banner(self.held + data)
        else:
            self.on_output(data)

    def _booting(self, data):
        marker = MARKER.encode()
        at = data.find(marker)
        if at < 0:
            # hold back a tail that could be the start of a marker split across reads
            keep = next((n for n in range(len(marker) - 1, 0, -1) if data.endswith(marker[:n])), 0)
            self.held = data[len(data) - keep:]
            self._output(data[:len(data) - keep])
            return
        self._output(data[:at])
        self.phase, self.deadline = BANNER, time.monotonic() + BANNER_DEADLINE_S
        self._banner(data[at + len(marker):])

    def _banner(self, data):
        end = data.find(BANNER_END)
        if end < 0:
            self.held = data
            return
        end += len(BANNER_END)
        self.phase, self.held, self.deadline = RUNNING, b"", None
        if self.raw:
            self._write(ENTER_RAW)
        else:
            self._output(data[:end])
        rest, self.queued = bytes(self.queued), bytearray()
        self._output(data[end:])
        self.send(rest)

    def _output(self, data):
        if data:
            self.on_output(data)

    def _on_eof(self):
        code = self._reap()
        on_exit = self.on_exit
        if on_exit is not None:
            on_exit(code == RESET_CODE or code < 0)

    def _reap(self):
        """Unregister and wait for the child (bounded); returns its exit code."""
        for pipe in (self.proc.stdout, self.proc.stdin):
            if self.sel.get_map().get(pipe.fileno()) is not None:
                self.sel.unregister(pipe)
        try:
            code = self.proc.wait(EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(EXIT_DEADLINE_S)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.phase, self.deadline = STOPPED, None
        return code
