"""`ulnet board start|stop|reset`: emulated boards, and the Board API behind them.

An emulated board is a supervisor process (tools/board/supervisor.py) around the real
MicroPython unix port (PyPI's, 64-bit, or a `--firmware` binary such as a 32-bit build with
ulnet frozen in, from `ulnet firmware`); its device URL is `socket://127.0.0.1:PORT` (plus a pty path with
`--pty`), which mpremote and `ulnet deploy|hil` accept as they accept a serial port.

Python API, for tests and other tools:

    with Board(heap="64K", flash=None, pty=False, flash_size="4M", firmware=None) as board:  # or .start()/.stop()
        board.url, board.pty, board.flash
        board.reset()                     # the reset button: a hard reset
    stop_board(url), reset_board(url), find_board(url)   # boards started by another process

Rules: every wait has a deadline; a Board started through the API dies with the process that
started it (PR_SET_PDEATHSIG); `ulnet board start` boards live until `ulnet board stop`. Each
running board has a state file in STATE_DIR (written by the supervisor once it listens).
"""

import ctypes
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from ulnet.tools.board.image import firmware_bits

STATE_DIR = os.path.join(tempfile.gettempdir(), "ulnet-boards-%d" % os.getuid())
START_DEADLINE_S = 20
STOP_DEADLINE_S = 10
POLL_S = 0.02
SIZE_PATTERN = re.compile(r"^(0|[1-9][0-9]*)([KM]?)$")  # 0: a flash size of the host disk
PR_SET_PDEATHSIG = 1
# below this, per word size, the unix port's REPL and mpremote's raw REPL do not come up (64-bit:
# 6K fails at boot; 32-bit: 3K)
MIN_HEAP = {32: 4 << 10, 64: 8 << 10}


class BoardError(Exception):
    """A board could not be started, found or stopped; the message is one line for the user."""


def _die_with_parent():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Board:
    """One emulated board; start() returns it running, stop() ends it (both bounded in time)."""

    def __init__(self, heap="64K", flash=None, pty=False, flash_size="4M", owned=True, firmware=None):
        bits = 64
        if firmware:
            try:
                bits = firmware_bits(firmware)
            except RuntimeError:
                pass  # start() says what is wrong with it
        self.heap = str(parse_heap(heap, bits))
        # None was the default before 4M (the host disk's figures): callers passing it get 4M
        self.flash_size = parse_size("4M" if flash_size is None else flash_size, "flash size")
        self.firmware = os.path.abspath(firmware) if firmware else None
        self.flash, self.use_pty, self.owned = flash, pty, owned
        self.url = self.pty = self.proc = self._name = None

    def start(self):
        if self.firmware:
            try:
                firmware_bits(self.firmware)
            except RuntimeError as e:
                raise BoardError(str(e)) from None
        os.makedirs(STATE_DIR, exist_ok=True)
        temporary = self._temporary = self.flash is None
        self.flash = tempfile.mkdtemp(prefix="ulnet-flash-") if temporary else os.path.abspath(self.flash)
        os.makedirs(self.flash, exist_ok=True)
        name = self._name = os.path.join(STATE_DIR, uuid.uuid4().hex)
        command = [sys.executable, "-m", "ulnet.tools.board.supervisor", "--heap", self.heap,
                   "--flash", self.flash, "--flash-size", str(self.flash_size), "--state", name + ".json"]
        command += ["--temporary-flash"] if temporary else []
        command += ["--pty"] if self.use_pty else []
        command += ["--firmware", self.firmware] if self.firmware else []
        with open(name + ".log", "wb") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent if self.owned else None,
            )
        try:
            state = self._wait_ready(name)
        except BoardError:
            _clean_up(name, self.flash if temporary else None)
            raise
        self.url, self.pty = state["url"], state["pty"]
        return self

    def _wait_ready(self, name):
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if os.path.exists(name + ".json"):
                with open(name + ".json") as f:
                    return json.load(f)
            if self.proc.poll() is not None:
                raise BoardError("board supervisor failed: " + _last_line(name + ".log"))
            time.sleep(POLL_S)
        self.proc.kill()
        self.proc.wait(STOP_DEADLINE_S)
        raise BoardError("board did not start within %d s" % START_DEADLINE_S)

    def stop(self):
        if self.proc is not None:
            _terminate(self.proc.pid, self.proc.wait)
            self.proc = None
            _clean_up(self._name, self.flash if self._temporary else None)

    def reset(self):
        """Press the reset button: the board reboots hard, whatever it was running."""
        os.kill(self.proc.pid, signal.SIGUSR1)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


def parse_size(text, what):
    """Bytes from '65536', '64K' or '2M' (any case)."""
    match = SIZE_PATTERN.match(str(text).upper())
    if not match:
        raise BoardError("bad %s %r: use bytes, or K or M, e.g. 64K" % (what, text))
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20}[match.group(2)]


def parse_heap(text, bits=64):
    """A board's heap in bytes; refuses one too small for a board of this word size to boot (a
    bare 64 is 64 bytes, and a board given that rebooted for ever)."""
    heap = parse_size(text, "heap size")
    if heap < MIN_HEAP[bits]:
        raise BoardError("heap size %s is %d bytes: a %d-bit board needs at least %dK to boot (did you mean %sK?)"
                         % (text, heap, bits, MIN_HEAP[bits] >> 10, text))
    return heap


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def _clean_up(name, temporary_flash):
    """Remove what a stopped board leaves: its log, and what a killed supervisor could not."""
    for leftover in (name + ".json", name + ".log"):
        if os.path.exists(leftover):
            os.remove(leftover)
    if temporary_flash:
        shutil.rmtree(temporary_flash, ignore_errors=True)


def _terminate(pid, wait):
    """SIGTERM, wait up to STOP_DEADLINE_S, then SIGKILL; wait(timeout) raises on expiry."""
    try:
        os.kill(pid, signal.SIGTERM)
        wait(STOP_DEADLINE_S)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        wait(STOP_DEADLINE_S)


def _wait_gone(pid):
    """wait() for a process that is not our child (started by another `ulnet board start`)."""

    def wait(timeout):
        deadline = time.monotonic() + timeout
        while os.path.exists("/proc/%d" % pid) and not _is_zombie(pid):
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("board supervisor", timeout)
            time.sleep(POLL_S)

    return wait


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def find_board(device):
    """The state of the running emulated board with this URL or pty path, else None."""
    for path in glob.glob(os.path.join(STATE_DIR, "*.json")):
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if device in (state["url"], state["pty"]) and os.path.exists("/proc/%d" % state["pid"]):
            state["file"] = path
            return state
    return None


def stop_board(device):
    state = find_board(device)
    if state is None:
        raise BoardError("no emulated board at %s" % device)
    _terminate(state["pid"], _wait_gone(state["pid"]))
    _clean_up(state["file"][:-len(".json")], state["flash"] if state["temporary_flash"] else None)


def reset_board(device):
    state = find_board(device)
    if state is None:
        raise BoardError("no emulated board at %s" % device)
    os.kill(state["pid"], signal.SIGUSR1)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "board", help="start, stop or reset an emulated board",
        description="An emulated board: the real MicroPython unix port behind a socket:// URL (and a pty "
        "with --pty) that mpremote and ulnet deploy/hil drive as a serial board.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = sub.add_parser("start", help="start a board; prints its URL (and pty path)")
    start.add_argument("--heap", default="64K", help="MicroPython heap size, with K or M (default 64K, at least 8K)")
    start.add_argument("--flash", help="folder that is the board's / (default: a new temp folder)")
    start.add_argument("--flash-size", default="4M", help="flash size that os.statvfs reports "
                       "(default 4M, as many boards' flash: a board's figures, not the host disk's)")
    start.add_argument("--pty", action="store_true", help="also serve the REPL on a pty")
    start.add_argument("--firmware", metavar="PATH", help="run this MicroPython unix port binary, e.g. "
                       "one `ulnet firmware` built (default: the PyPI unix port, 64-bit)")
    for action, text in (("stop", "stop a board"), ("reset", "press a board's reset button")):
        cmd = sub.add_parser(action, help=text)
        cmd.add_argument("device", metavar="URL", help="the board's socket:// URL or pty path")
    parser.set_defaults(run=run)


def run(args):
    try:
        if args.action == "start":
            board = Board(args.heap, args.flash, args.pty, args.flash_size, owned=False, firmware=args.firmware).start()
            print(board.url)
            if board.pty:
                print(board.pty)
        elif args.action == "stop":
            stop_board(args.device)
        else:
            reset_board(args.device)
    except BoardError as e:
        print("ulnet board: %s" % e, file=sys.stderr)
        return 1
    return 0
