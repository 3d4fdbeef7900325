"""Hardware-in-loop runner: board_tests/ files run on a device, one test at a time, with deadlines.

`ulnet hil DEVICE` runs a board tests folder through pytest (tools/hil_pytest.py, so host
fixtures work the same) and prints one line per test (node, pass|fail, heap) and
`N passed, N failed`; DEVICE `emu` starts an emulated board for the run.

A board tests folder holds harness.py (the on-board harness) and test_*.py files of plain
MicroPython functions `def test_x(param, ...)`. Parameters name host-side pytest fixtures (see
tools/hil_pytest.py); their values (literals: ints, strings, bytes, tuples) are passed in
when the test runs on the board. A file may set, as module-level literals read on the host:
`DEADLINE_S = 120` (its tests' deadline), and the board it needs: `HEAP = "32K"` (the heap of
an emulated board), `DEPLOY = "romfs"` (ulnet in the board's ROMFS, run in place, instead of
"lib", .mpy files under /lib; "frozen": ulnet frozen into the board's firmware, built by
tools/firmware.py) and `BITS = 32` (a 32-bit board, on a firmware built likewise; 64 is PyPI's
unix port); a file that sets any of them runs on an emulated board of its own. On a given
device (or the shared board) a file's tests are skipped, saying why, where the board has less
free heap than the file states: `FREE_HEAP` where ulnet loads from files, `FREE_HEAP_FROZEN`
where a 32-bit board has ulnet frozen into its firmware (its bytecode is not in the heap).

A device is the user's: the runner writes only inside the tools' work folder (dev.WORK_DIR,
/ulnet-tmp): WORK/lib/ulnet (the run's ulnet, first on sys.path, so the device's own /lib/ulnet
is neither used nor changed; on a board with ulnet frozen into its firmware none is copied, and
the tests run the frozen one: the device's own, as it ships), WORK/tests (test modules) and
WORK/files, the tests' current folder, emptied before each file (what a test writes goes there:
relative paths). The work folder is
removed at close(), and at open() when a run that was cut short left it.

HILSession is the transport layer, on mpremote's raw REPL (tools/device.py):
- per file: soft reset, harness sent as code, the test file brought in: on a board with a
  filesystem and .mpy support ulnet is deployed first and the file copied to
  WORK/tests/NAME.mpy and imported (a file on an emulated board of its own with
  DEPLOY = "romfs" goes into the ROMFS image with ulnet instead, with the harness, and both are
  imported from /rom/board_tests; with DEPLOY = "frozen" the image holds them alone), on others
  (a micro:bit) its source is sent as code and nothing is written;
- per test: `_ulnet_run(name, test, params)`, its result line read within the deadline; at the
  deadline Ctrl-C, and a board that does not come back is reset once (the reset button of an
  emulated board, a soft reset otherwise) and the test reported failed. A board that does not
  come back from that either fails every later test at once: never a hang.
"""

import ast
import collections
import contextlib
import io
import os
import sys
import tempfile
import time

from mpremote.transport import TransportError

from ulnet.tools import board as boards
from ulnet.tools import deploy
from ulnet.tools import device as dev

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.join(ROOT, "board_tests")
HARNESS = "harness.py"
RESULT_PREFIX = "@ulnet-test "
DEFAULT_DEADLINE_S = 60
# after a Ctrl-C or a reset, how long the board has to show its raw REPL again
RECOVER_DEADLINE_S = 5
ROM_TESTS = "/board_tests"  # the test modules' folder in a ROMFS image (mounted at /rom)
WORK_LIB = dev.WORK_DIR + "/lib"
WORK_TESTS = dev.WORK_DIR + "/tests"
WORK_FILES = dev.WORK_DIR + "/files"

DEPLOY_MODES = ("lib", "romfs", "frozen")
BITS = (32, 64)

# skipped: the test did not run (its file needs more free heap than the board has; detail says)
Result = collections.namedtuple("Result", "name passed heap detail output skipped", defaults=(False,))
BoardTest = collections.namedtuple("BoardTest", "name params")


class BoardTestFile:
    """A board test file read on the host (never imported here): its tests, deadline, and the
    board it asks for (`heap`, `deploy`, `bits`: None when it does not say)."""

    def __init__(self, path, default_deadline_s=DEFAULT_DEADLINE_S):
        self.path = os.path.abspath(path)
        self.module = os.path.basename(path)[:-3]
        self.harness = os.path.join(os.path.dirname(self.path), HARNESS)
        self.deadline_s = default_deadline_s
        self.heap = self.deploy = self.bits = self.free_heap = self.free_heap_frozen = None
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        self.tests = []
        settings = {}
        self.host_lines = set()  # lines of the settings: the board's copy leaves them out
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                self.tests.append(BoardTest(node.name, [a.arg for a in node.args.args]))
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in (
                    "DEADLINE_S", "HEAP", "DEPLOY", "BITS", "FREE_HEAP", "FREE_HEAP_FROZEN"):
                settings[node.targets[0].id] = ast.literal_eval(node.value)
                self.host_lines.update(range(node.lineno, node.end_lineno + 1))
        self.deadline_s = settings.get("DEADLINE_S", self.deadline_s)
        self.heap, self.deploy, self.bits = settings.get("HEAP"), settings.get("DEPLOY"), settings.get("BITS")
        if self.heap is not None:
            boards.parse_heap(self.heap, self.bits or 64)  # a bad size fails here, on the host
        for key in ("FREE_HEAP", "FREE_HEAP_FROZEN"):
            if key in settings:
                setattr(self, key.lower(), boards.parse_size(settings[key], key))
        if self.deploy not in (None,) + DEPLOY_MODES:
            raise ValueError("%s: DEPLOY must be one of %s, not %r" % (path, DEPLOY_MODES, self.deploy))
        if self.bits not in (None,) + BITS:
            raise ValueError("%s: BITS must be one of %s, not %r" % (path, BITS, self.bits))

    def board_source(self):
        """The source that goes to the board: the settings are read here, on the host, so the
        board's copy has empty lines instead (line numbers stay; every name costs board heap)."""
        with open(self.path) as f:
            lines = f.read().splitlines(True)
        return "".join("\n" if i + 1 in self.host_lines else line for i, line in enumerate(lines))

    @property
    def own_board(self):
        """True when the file asks for a board of its own (HEAP, DEPLOY or BITS set)."""
        return self.heap is not None or self.deploy is not None or self.bits is not None


class HILSession:
    """One device's raw REPL for running board tests; open() it, run() tests, close() it.
    With romfs=True, ulnet is deployed into the board's ROMFS (`ulnet deploy --romfs`), and so
    are the BoardTestFiles in `test_files` and their harness: they run from /rom/board_tests in
    place, so their bytecode is not in the heap either (about 1 KB for test_ftp.py's, and the
    harness is not compiled on the board), and are never copied. frozen=True: the board must
    have ulnet frozen into its firmware (open() fails otherwise), and its image holds the test
    files alone."""

    def __init__(self, device, romfs=False, test_files=(), check_heap=False, frozen=False):
        self.device = device
        self.check_heap = check_heap  # skip a file whose FREE_HEAP the board does not have
        self.short = None  # why the loaded file's tests are skipped
        self.romfs = romfs
        self.frozen = frozen
        self.test_files = test_files
        self.in_rom = set()  # paths of the test files in the board's ROMFS image
        self.transport = None
        self.compiler = None  # set when the board takes .mpy files: deploy mode
        self.loaded = None  # path of the test file whose names are in the REPL's globals
        self.dead = None  # why the board is given up on
        self.ulnet_frozen = False  # the board has ulnet frozen into its firmware: the tests run it
        self.frozen_32 = False  # ... and is a 32-bit board: FREE_HEAP_FROZEN applies

    def open(self):
        self.transport = dev.open_device(self.device)
        try:
            self.compiler = deploy.compiler_for(deploy.board_mpy_major(self.transport))
        except deploy.DeployError:
            self.compiler = None  # no .mpy version: an old firmware, tests go as source
        if self.compiler:
            dev.make_work_dir(self.transport, "tests", "files")
            extra = {}
            if self.romfs:
                for test_file in self.test_files:
                    for module, source in ((test_file.module, test_file.board_source()),
                                           (HARNESS[:-3], _code_of(test_file.harness))):
                        path = "%s/%s.mpy" % (ROM_TESTS, module)
                        extra[path] = self._compile(module, source, "/rom" + path)
                done = deploy.deploy_to(self.transport, romfs=True, device=self.device, extra=extra)
            else:
                done = deploy.deploy_to(self.transport, device=self.device, lib=WORK_LIB + "/ulnet")
            self.ulnet_frozen = deploy.FROZEN in (action for _, action in done.values())
            if self.frozen and not self.ulnet_frozen:
                raise deploy.DeployError("%s has no ulnet frozen into its firmware" % self.device)
            # FREE_HEAP_FROZEN is measured on a 32-bit board (every real one is); a 64-bit one
            # (the emulated board of `ulnet firmware --bits 64`) goes by FREE_HEAP instead
            self.frozen_32 = self.ulnet_frozen and dev.run(
                self.transport, "import sys\nprint(sys.maxsize >> 31)").strip() == b"0"
            self.in_rom = {test_file.path for test_file in self.test_files} if extra else set()
        return self

    @property
    def ulnet_file(self):
        """The __file__ of the ulnet the tests import (after open()), or "frozen"."""
        if self.ulnet_frozen:
            return "frozen"
        return "%s/ulnet/__init__.mpy" % ("/rom" + deploy.DEVICE_LIB if self.romfs else WORK_LIB)

    def close(self):
        """Leaves the device as it was: what runs is stopped, the work folder removed."""
        if self.transport is not None:
            if self.compiler is not None and not self.dead:
                with _quiet(), contextlib.suppress(TransportError, OSError, dev.DeviceError):
                    # interrupts a test still running (the run itself was interrupted), and the
                    # soft reset drops the run's path and modules; a board that does not answer
                    # keeps the folder until the next run's open()
                    self.transport.enter_raw_repl(soft_reset=True, timeout_overall=RECOVER_DEADLINE_S)
                    dev.remove_tree(self.transport, dev.WORK_DIR)
            with contextlib.suppress(TransportError, OSError):
                self.transport.exit_raw_repl()
            self.transport.close()
            self.transport = None

    def run(self, test_file, name, params=None, deadline_s=None):
        """Run one test of a BoardTestFile; always returns a Result within the deadline (+ recovery)."""
        if self.dead:
            return Result(name, False, 0, "board not answering: " + self.dead, "")
        try:
            if self.loaded != test_file.path:
                self._load(test_file)
        except (dev.DeviceError, deploy.DeployError, TransportError, OSError) as e:
            self.loaded = None
            return Result(name, False, 0, "loading %s failed: %s" % (test_file.module, e), "")
        if self.short:
            return Result(name, False, 0, self.short, "", True)
        params = params or {}
        _check_literals(name, params)
        deadline_s = test_file.deadline_s if deadline_s is None else deadline_s
        return self._run_one(name, "_ulnet_run(%r, %s, %r)" % (name, name, params), deadline_s)

    def _load(self, test_file):
        """Bring a test file in: copied first (the copy's helper code runs in the REPL), then a
        soft reset, so the file's tests start from a heap that holds only the harness and them."""
        self.loaded = None
        in_rom = test_file.path in self.in_rom
        if self.compiler is not None:
            try:
                self._prepare(test_file, in_rom)
            except (dev.DeviceError, deploy.DeployError) as e:
                if "MemoryError" not in str(e):
                    raise
                # the last file's tests left the heap full: start from a fresh one
                with _quiet():
                    self.transport.enter_raw_repl(soft_reset=True, timeout_overall=dev.ANSWER_DEADLINE_S)
                self._prepare(test_file, in_rom)
        with _quiet():
            self.transport.enter_raw_repl(soft_reset=True, timeout_overall=dev.ANSWER_DEADLINE_S)
        if not in_rom:
            dev.run(self.transport, _code_of(test_file.harness))
        self.short = self._short_of_heap(test_file)
        if self.short:
            self.loaded = test_file.path  # its tests are skipped: nothing more to bring in
            return
        if self.compiler is None:
            dev.run(self.transport, _code_of(test_file.path, test_file.board_source()))
        elif in_rom:
            # the folder's name as bytes: a str literal would be interned, and one name more
            # can double the qstr pool (3.5 KB) of a board whose heap is cut to fit its test
            dev.run(self.transport, "import os, sys\nos.chdir(%r.decode())\nsys.path.insert(0, %r)\n"
                    "from harness import _ulnet_run\nfrom %s import *"
                    % (WORK_FILES.encode(), "/rom" + ROM_TESTS, test_file.module))
        else:
            # the run's ulnet and tests come first; a ulnet the device's boot.py imported goes
            dev.run(self.transport, "import os, sys\nos.chdir(%r)\nsys.path[:0] = %r\n"
                    "for m in [m for m in sys.modules if m.split('.')[0] == 'ulnet']:\n del sys.modules[m]\n"
                    "from %s import *" % (WORK_FILES, [WORK_TESTS, WORK_LIB], test_file.module))
        self.loaded = test_file.path

    def _prepare(self, test_file, in_rom):
        """Before the soft reset that loads a file: its tests' folder emptied (what the last
        file's tests wrote goes), the file's .mpy copied."""
        dev.remove_tree(self.transport, WORK_FILES)
        dev.run(self.transport, "import os\nos.mkdir(%r)" % WORK_FILES)
        if not in_rom:
            target = "%s/%s.mpy" % (WORK_TESTS, test_file.module)
            deploy.sync(self.transport, {target: self._compile(test_file.module, test_file.board_source(), target)},
                        lambda *_: None)

    def _short_of_heap(self, test_file):
        """Why the file cannot run here (None when it can): the free heap it states (FREE_HEAP,
        or FREE_HEAP_FROZEN on a 32-bit board with ulnet frozen in), against what the board has
        after the soft reset and the harness."""
        need, where = test_file.free_heap, ""
        if self.frozen_32 and test_file.free_heap_frozen:
            need, where = test_file.free_heap_frozen, " with ulnet frozen in"
        if not (self.check_heap and need):
            return None
        free = int(dev.run(self.transport, "import gc\ngc.collect()\nprint(gc.mem_free())"))
        if free >= need:
            return None
        return "needs %d KB free%s, board has %d KB" % (need >> 10, where, free >> 10)

    def _compile(self, module, source, source_name):
        """The .mpy bytes of a module's board source; source_name is the device path it is
        imported from: one name with __file__, as deploy does."""
        with tempfile.TemporaryDirectory(prefix="ulnet-hil-") as tmp:
            path = os.path.join(tmp, module + ".py")
            with open(path, "w") as f:
                f.write(source)
            return deploy.compile_file(self.compiler, path, source_name, tmp)

    def _run_one(self, name, code, deadline_s):
        try:
            self.transport.exec_raw_no_follow(code)
            out, err, complete = dev.read_answer(self.transport, None, deadline_s)
        except (TransportError, OSError) as e:
            out, err, complete = b"", str(e).encode(), False
        output = (out + err).decode(errors="replace")
        if not complete:
            how = self._recover()
            return Result(name, False, 0, "deadline of %s s passed; %s" % (deadline_s, how), output)
        for line in out.decode(errors="replace").splitlines():
            if line.startswith(RESULT_PREFIX):
                _, status, heap, detail = (line[len(RESULT_PREFIX):] + " ").split(" ", 3)
                return Result(name, status == "pass", int(heap), detail.strip(), output)
        return Result(name, False, 0, dev.error_line(err.decode(errors="replace")) if err else
                      "no result line", output)

    def _recover(self):
        """After a deadline: Ctrl-C, else one reset; says what it did, marks a dead board."""
        self.loaded = None
        try:
            if dev.interrupt(self.transport, RECOVER_DEADLINE_S):
                return "interrupted"
        except (TransportError, OSError):
            pass  # the link itself is gone: only a reset can help
        emulated = boards.find_board(self.device)
        try:
            if emulated:
                boards.reset_board(self.device)
            with _quiet():
                self.transport.enter_raw_repl(soft_reset=not emulated, timeout_overall=RECOVER_DEADLINE_S)
        except (TransportError, OSError) as e:
            self.dead = "no raw REPL after a reset (%s)" % (e or type(e).__name__)
            return "board reset, and it did not come back"
        return "board reset"


def _code_of(path, source=None):
    """A file's source (or `source`, read from it) without its module docstring: less to send
    and to compile on the board."""
    if source is None:
        with open(path) as f:
            source = f.read()
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        lines = source.splitlines(True)
        return "\n" * body[0].end_lineno + "".join(lines[body[0].end_lineno:])  # keeps line numbers
    return source


def _check_literals(name, params):
    for key, value in params.items():
        try:
            literal = ast.literal_eval(repr(value)) == value
        except (ValueError, SyntaxError):
            literal = False
        if not literal:
            raise ValueError("%s: parameter %s=%r is not a literal a board can take" % (name, key, value))


def _quiet():
    """mpremote prints what it read when it gives up; the runner reports instead."""
    return contextlib.redirect_stdout(io.StringIO())


class _Tally:
    """pytest plugin object for `ulnet hil` (pytest's terminal output is off): one line per
    board test, a failure's detail indented under it, then the totals; a run that could not
    start is one line."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.could_not_run = self.stash = self.frozen = None
        self.told_frozen = False

    def pytest_configure(self, config):
        from ulnet.tools.hil_pytest import ULNET_FROZEN  # pytest is there now

        self.stash, self.frozen = config.stash, ULNET_FROZEN

    def pytest_runtest_logreport(self, report):
        if not self.told_frozen and self.stash.get(self.frozen, False):
            self.told_frozen = True
            print("the board has ulnet frozen into its firmware: the tests run that one, not this checkout's")
        if report.skipped:
            self.skipped += 1
            print("%s skipped (%s)" % (report.nodeid, report.longrepr[2].replace("Skipped: ", "", 1)))
            return
        if report.when != "call" and not report.failed:
            return
        heap = dict(report.user_properties).get("heap", 0)
        self._line(report, "%s %s heap %d B" % (report.nodeid, "pass" if report.passed else "fail", heap))

    def pytest_collectreport(self, report):
        if report.failed:
            self._line(report, "%s could not be collected" % report.nodeid)

    def pytest_keyboard_interrupt(self, excinfo):
        if excinfo.typename == "Exit":  # pytest.exit(): hil_pytest's "could not run"
            self.could_not_run = excinfo.value.msg

    def _line(self, report, text):
        if report.passed:
            self.passed += 1
        else:
            self.failed += 1
        print(text)
        if report.failed:
            print("    " + report.longreprtext.strip().replace("\n", "\n    "))


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "hil", help="run board_tests on a device; prints N passed, N failed, N skipped",
        description="Run the board tests (board_tests/, or --tests DIR) on a device through pytest, "
        "in a work folder of their own on it (/ulnet-tmp, removed at the end): the device's files "
        "stay as they were. Exit codes are pytest's: 0 all passed, 1 some failed, 2 interrupted, "
        "4 could not run (no board, no answer, no room for ulnet), 5 no tests.")
    parser.add_argument("device", help="serial path, socket:// or rfc2217:// URL, an mpremote shortcut "
                        "(a0, u0, auto), or emu (start an emulated board)")
    parser.add_argument("--tests", default=TESTS_DIR, help="board tests folder (default: the checkout's)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, metavar="SECONDS",
                        help="seconds each test may take (default %d; a file's DEADLINE_S wins)"
                        % DEFAULT_DEADLINE_S)
    parser.add_argument("--heap", default="64K", help="heap of the emulated board with DEVICE emu (default 64K)")
    parser.add_argument("-k", metavar="EXPRESSION", help="only tests whose names match (as pytest -k)")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure (as pytest -x)")
    parser.set_defaults(run=run)


def run(args):
    try:
        import pytest
    except ImportError:
        print("ulnet hil: needs pytest (pip install 'ulnet[dev]')", file=sys.stderr)
        return 4
    if not os.path.isdir(args.tests):
        print("ulnet hil: no board tests folder %s" % args.tests, file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    if not any(n.startswith("test_") and n.endswith(".py") for n in os.listdir(args.tests)):
        print("ulnet hil: no tests in %s (test_*.py files)" % args.tests, file=sys.stderr)
        return int(pytest.ExitCode.NO_TESTS_COLLECTED)
    if not os.path.exists(os.path.join(args.tests, HARNESS)):
        print("ulnet hil: %s is not a board tests folder (no %s)" % (args.tests, HARNESS), file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    tally = _Tally()
    options = (["-k", args.k] if args.k else []) + (["-x"] if args.exitfirst else [])
    code = pytest.main([args.tests, "--board", args.device, "--board-heap", args.heap,
                        "--board-deadline", str(args.deadline), "-p", "no:terminal",
                        "-p", "no:cacheprovider", "-p", "no:xdist"] + options, plugins=[tally])
    if tally.could_not_run:
        print("ulnet hil: %s" % tally.could_not_run, file=sys.stderr)
    else:
        print("%d passed, %d failed, %d skipped" % (tally.passed, tally.failed, tally.skipped))
    return int(code)
