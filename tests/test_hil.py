"""The HIL runner: results, heap, deadlines, resets, host fixtures, CLI and pytest --board,
on emulated boards and on the real micro:bit firmware under QEMU."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from ulnet.tools import deploy, hil
from ulnet.tools import device as dev
from ulnet.tools.board import Board

BIN = os.path.dirname(sys.executable)
ULNET = shutil.which("ulnet", path=BIN) or shutil.which("ulnet")
FIRMWARE = "/usr/share/firmware-microbit-micropython/firmware.hex"
QEMU = shutil.which("qemu-system-arm")

pytestmark = pytest.mark.timeout(240)

SAMPLE = '''
DEADLINE_S = 3
_kept = []


def test_passes():
    pass


def test_keeps_heap():
    _kept.append(bytearray(4000))


def test_fails():
    assert 1 + 1 == 3, "arithmetic"


def test_hangs():
    while True:
        pass


def test_chatters():
    while True:
        print("a board test that never stops printing")


def test_wedges():
    import micropython

    micropython.kbd_intr(-1)  # Ctrl-C is data now: only a reset gets the board back
    while True:
        pass


def test_after_the_reset():
    assert not _kept


def test_gets_a_host_value(greeting):
    assert greeting == "hi from the host", greeting
'''

CONFTEST = '''
import pytest

from ulnet.tools.hil_pytest import *  # noqa


@pytest.fixture
def greeting():
    return "hi from the host"
'''


@pytest.fixture
def sample_dir(tmp_path):
    return make_tests_folder(tmp_path / "sample_board_tests", {"test_sample.py": SAMPLE, "conftest.py": CONFTEST})


def make_tests_folder(folder, files):
    """A board tests folder: the harness and these {name: source} files."""
    folder.mkdir(exist_ok=True)
    shutil.copy(os.path.join(hil.TESTS_DIR, hil.HARNESS), folder)
    for name, source in files.items():
        (folder / name).write_text(source)
    return folder


def test_session_reports_pass_fail_heap_deadline_and_reset(sample_dir):
    sample = hil.BoardTestFile(str(sample_dir / "test_sample.py"))
    assert sample.deadline_s == 3
    assert [t.name for t in sample.tests][-1] == "test_gets_a_host_value"
    assert sample.tests[-1].params == ["greeting"]
    with Board(heap="64K") as board:
        session = hil.HILSession(board.url).open()
        try:
            results = {}
            for test in sample.tests:
                started = time.monotonic()
                params = {"greeting": "hi from the host"} if test.params else {}
                results[test.name] = (session.run(sample, test.name, params), time.monotonic() - started)
        finally:
            session.close()
    passed = {name for name, (result, _) in results.items() if result.passed}
    assert passed == {"test_passes", "test_keeps_heap", "test_after_the_reset", "test_gets_a_host_value"}
    assert results["test_keeps_heap"][0].heap >= 4000 > results["test_passes"][0].heap
    assert results["test_fails"][0].detail == "AssertionError('arithmetic',)"
    assert 'line 15, in test_fails' in results["test_fails"][0].output
    hung, hung_s = results["test_hangs"]
    assert hung.detail == "deadline of 3 s passed; interrupted" and hung_s < 3 + hil.RECOVER_DEADLINE_S
    # its output never pauses: the deadline holds all the same (it did only in silence)
    chatty, chatty_s = results["test_chatters"]
    assert chatty.detail == "deadline of 3 s passed; interrupted" and chatty_s < 3 + hil.RECOVER_DEADLINE_S
    assert chatty.output.startswith("a board test that never stops printing\n")
    assert len(chatty.output) <= dev.OUTPUT_KEEP
    wedged, wedged_s = results["test_wedges"]
    assert wedged.detail == "deadline of 3 s passed; board reset"
    assert wedged_s < 3 + 3 * hil.RECOVER_DEADLINE_S


def test_a_board_command_that_prints_without_end_ends_at_its_deadline():
    """Every board command has a deadline: mpremote's follow checked its own only while the
    board was silent, so code that printed without end held `ulnet deploy`, the demo and the
    runner for ever (a hil run at 11 KB: a MemoryError traceback every eventer round)."""
    with Board(heap="64K") as board:
        transport = dev.open_device(board.url)
        try:
            started = time.monotonic()
            with pytest.raises(dev.DeviceError, match=r"^device did not finish within 3 s$"):
                dev.run(transport, "while True:\n print('chatter')", timeout_s=2, deadline_s=3)
            assert time.monotonic() - started < 5
            with pytest.raises(dev.DeviceError, match=r"^device stopped answering: silent for 1 s$"):
                dev.run(transport, "import time\nprint(1)\ntime.sleep(30)", timeout_s=1, deadline_s=60)
        finally:
            transport.close()


def test_a_board_that_dies_fails_its_tests_quickly(sample_dir):
    sample = hil.BoardTestFile(str(sample_dir / "test_sample.py"))
    board = Board(heap="64K").start()
    session = hil.HILSession(board.url).open()
    try:
        assert session.run(sample, "test_passes").passed
        board.stop()  # the board is gone for good: no reset brings it back
        started = time.monotonic()
        first = session.run(sample, "test_passes")
        assert not first.passed
        assert time.monotonic() - started < 3 + 3 * hil.RECOVER_DEADLINE_S + 10
        started = time.monotonic()
        later = session.run(sample, "test_passes")
        assert later.detail.startswith("board not answering: ")
        assert time.monotonic() - started < 1
    finally:
        session.close()
        board.stop()


def test_cli_prints_one_line_per_test_and_the_totals(sample_dir):
    done = subprocess.run([ULNET, "hil", "emu", "--tests", str(sample_dir)], capture_output=True,
                          text=True, timeout=200, cwd=str(sample_dir.parent))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    verdicts = dict(re.findall(r"^\S+::(test_\w+) (pass|fail) heap \d+ B$", done.stdout, re.M))
    assert verdicts == {"test_passes": "pass", "test_keeps_heap": "pass", "test_fails": "fail",
                        "test_hangs": "fail", "test_chatters": "fail", "test_wedges": "fail",
                        "test_after_the_reset": "pass", "test_gets_a_host_value": "pass"}
    assert lines[-1] == "4 passed, 4 failed, 0 skipped"


def ulnet_hil(*args, cwd=None):
    return subprocess.run([ULNET, "hil", *args], capture_output=True, text=True, timeout=200, cwd=cwd)


def test_cli_k_and_x_select_and_stop_as_pytest_does(sample_dir):
    """Issue 12 item 6: `ulnet hil emu -k udp` was a usage error."""
    chosen = ulnet_hil("emu", "--tests", str(sample_dir), "-k", "passes or fails or host")
    assert chosen.returncode == 1 and chosen.stdout.splitlines()[-1] == "2 passed, 1 failed, 0 skipped"
    first = ulnet_hil("emu", "--tests", str(sample_dir), "-k", "passes or fails or host", "-x")
    assert first.returncode == 1, first.stderr
    assert [line.split()[1] for line in first.stdout.splitlines() if "::" in line] == ["pass", "fail"]
    assert first.stdout.splitlines()[-1] == "1 passed, 1 failed, 0 skipped"
    none = ulnet_hil("emu", "--tests", str(sample_dir), "-k", "no_such_test")
    assert none.returncode == 5 and none.stdout.splitlines()[-1] == "0 passed, 0 failed, 0 skipped"


def test_no_board_is_one_line_and_pytests_could_not_run_code(sample_dir, tmp_path):
    """Issue 12 items 5 and 6: no board gave 944 lines of fixture tracebacks and `0 passed, 17
    failed`; an empty tests folder exited 2, where pytest says 5 (no tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    done = ulnet_hil("socket://127.0.0.1:%d" % port, "--tests", str(sample_dir))
    assert time.monotonic() - started < 30
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr == ("ulnet hil: could not run the board tests: cannot open socket://127.0.0.1:%d: "
                           "is the board connected and the port free?\n" % port)
    (tmp_path / "empty").mkdir()
    empty = ulnet_hil("emu", "--tests", str(tmp_path / "empty"))
    assert empty.returncode == 5 and empty.stderr == "ulnet hil: no tests in %s (test_*.py files)\n" % (
        tmp_path / "empty")


HEAP_NEEDS = '''
FREE_HEAP = "%s"


def test_needs_heap():
    pass
'''


def test_a_file_that_needs_more_free_heap_than_the_board_has_is_skipped_saying_so(tmp_path):
    """Issue 12 item 4: on a board smaller than a test needs, `hil` failed with bare
    MemoryErrors. Each file states the free heap it needs (FREE_HEAP); the runner compares it
    with what the board has after a soft reset and skips the file's tests, saying both."""
    folder = make_tests_folder(tmp_path / "heap_tests", {
        "test_big.py": HEAP_NEEDS % "1M", "test_small.py": HEAP_NEEDS % "8K", "conftest.py": CONFTEST})
    assert hil.BoardTestFile(str(folder / "test_big.py")).free_heap == 1 << 20
    with Board(heap="64K") as board:
        done = ulnet_hil(board.url, "--tests", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = re.search(r"^test_big.py::test_needs_heap skipped \(needs 1024 KB free, board has (\d+) KB\)$",
                        done.stdout, re.M)
    assert skipped and 50 < int(skipped.group(1)) < 64, done.stdout
    assert re.search(r"^test_small.py::test_needs_heap pass heap \d+ B$", done.stdout, re.M)
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed, 1 skipped"


def test_pytest_board_option_runs_a_given_device(sample_dir):
    command = [sys.executable, "-m", "pytest", str(sample_dir), "-p", "no:cacheprovider", "-q"]
    with Board(heap="64K") as board:
        done = subprocess.run(command + ["--board", board.url, "-k", "passes or fails or host"],
                              capture_output=True, text=True, timeout=200, cwd=str(sample_dir))
        refused = subprocess.run(command + ["--board", board.url, "-n", "2"], capture_output=True,
                                 text=True, timeout=200, cwd=str(sample_dir))
    assert "1 failed, 2 passed" in done.stdout, done.stdout + done.stderr
    assert refused.returncode == 4
    assert "has one owner: run it without -n (xdist), or use --board emu" in refused.stderr


OWN_BOARD_SAMPLE = '''
HEAP = "48K"
DEPLOY = "romfs"


def test_runs_on_a_board_of_its_own(checked):
    import gc
    import ulnet

    gc.collect()
    total = gc.mem_alloc() + gc.mem_free()
    assert 47 * 1024 < total <= 48 * 1024, total
    assert ulnet.__file__ == "/rom/lib/ulnet/__init__.mpy", ulnet.__file__
    assert "HEAP" not in globals() and "DEPLOY" not in globals()  # read on the host only
    assert checked == 7


def test_a_failing_host_check_fails_the_test(failing_check):
    assert failing_check == 1
'''

DEFAULT_BOARD_SAMPLE = '''
def test_runs_on_the_board_of_the_session():
    import gc
    import ulnet

    gc.collect()
    total = gc.mem_alloc() + gc.mem_free()
    assert 63 * 1024 < total <= 64 * 1024, total
    assert ulnet.__file__ == "/ulnet-tmp/lib/ulnet/__init__.mpy", ulnet.__file__
'''

HOST_CHECK_CONFTEST = '''
import pytest

from ulnet.tools.hil_pytest import *  # noqa
from ulnet.tools.hil_pytest import HostCheck


@pytest.fixture
def checked():
    return HostCheck(7, lambda: None)


@pytest.fixture
def failing_check():
    def check():
        assert False, "checked on the host after the board test"

    return HostCheck(1, check)
'''


def test_a_file_asks_for_its_own_heap_and_deploy_mode(tmp_path):
    folder = make_tests_folder(tmp_path / "own_board_tests", {
        "test_own.py": OWN_BOARD_SAMPLE, "test_default.py": DEFAULT_BOARD_SAMPLE, "conftest.py": HOST_CHECK_CONFTEST})
    own = hil.BoardTestFile(str(folder / "test_own.py"))
    assert (own.heap, own.deploy, own.own_board) == ("48K", "romfs", True)
    assert not hil.BoardTestFile(str(folder / "test_default.py")).own_board
    done = subprocess.run([sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "-q",
                           "--board", "emu"], capture_output=True, text=True, timeout=200, cwd=str(folder))
    assert "1 failed, 2 passed" in done.stdout, done.stdout + done.stderr
    assert "test_a_failing_host_check_fails_the_test" in done.stdout
    assert "checked on the host after the board test" in done.stdout


FROZEN_BOARD_SAMPLE = '''
HEAP = "24K"
DEPLOY = "frozen"
BITS = 32


def test_runs_on_a_32_bit_board_with_ulnet_frozen_in():
    import gc
    import sys
    import ulnet

    gc.collect()
    total = gc.mem_alloc() + gc.mem_free()
    assert 23 * 1024 < total <= 24 * 1024, total
    assert (sys.maxsize, ulnet.__file__) == (2 ** 31 - 1, "ulnet/__init__.py")
'''


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_a_file_asks_for_a_32_bit_board_with_ulnet_frozen_in(tmp_path, firmware32):
    folder = make_tests_folder(tmp_path / "frozen_board_tests", {"test_frozen.py": FROZEN_BOARD_SAMPLE,
                                                                "conftest.py": HOST_CHECK_CONFTEST})
    frozen = hil.BoardTestFile(str(folder / "test_frozen.py"))
    assert (frozen.heap, frozen.deploy, frozen.bits, frozen.own_board) == ("24K", "frozen", 32, True)
    done = subprocess.run([sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "-q",
                           "--board", "emu"], capture_output=True, text=True, timeout=200, cwd=str(folder))
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    # a board without it: the runner says so instead of testing some other ulnet
    with Board(heap="64K") as board:
        session = hil.HILSession(board.url, romfs=True, test_files=[frozen], frozen=True)
        try:
            with pytest.raises(deploy.DeployError, match="has no ulnet frozen into its firmware"):
                session.open()
        finally:
            session.close()


FROZEN_HEAP_NEEDS = '''
FREE_HEAP = "%s"
FREE_HEAP_FROZEN = "%s"


def test_needs_heap():
    pass
'''


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_hil_on_a_board_with_ulnet_frozen_in_runs_that_ulnet_and_goes_by_its_frozen_heap_figure(tmp_path, firmware32):
    """`ulnet hil` on a 32-bit board with ulnet frozen into its firmware (issue 15: the board a
    small device really is) failed the harness's own check (the tests ran the frozen ulnet, the
    check wanted the run's copy) and skipped test_ftp.py, which passes there from 24 KB, for
    needing 71 KB free: the figure of a board where ulnet's bytecode is in the heap. A file
    states both; the runner says which ulnet runs and goes by the one that applies."""
    folder = make_tests_folder(tmp_path / "frozen_heap_tests", {
        "test_fits_frozen.py": FROZEN_HEAP_NEEDS % ("1M", "8K"), "test_fits_files.py": FROZEN_HEAP_NEEDS % ("8K", "1M"),
        "test_harness.py": open(os.path.join(hil.TESTS_DIR, "test_harness.py")).read(), "conftest.py": CONFTEST})
    assert hil.BoardTestFile(str(folder / "test_fits_frozen.py")).free_heap_frozen == 8 << 10
    skip = r"^test_fits_%s.py::test_needs_heap skipped \(needs 1024 KB free%s, board has (\d+) KB\)$"
    with Board(heap="32K", firmware=firmware32.path) as board:
        frozen = ulnet_hil(board.url, "--tests", str(folder))
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    assert frozen.stdout.splitlines()[0] == (
        "the board has ulnet frozen into its firmware: the tests run that one, not this checkout's")
    assert re.search(r"^test_fits_frozen.py::test_needs_heap pass heap \d+ B$", frozen.stdout, re.M)
    skipped = re.search(skip % ("files", " with ulnet frozen in"), frozen.stdout, re.M)
    assert skipped and 20 < int(skipped.group(1)) < 32, frozen.stdout
    assert "test_ulnet_is_the_runs_own_compiled_copy_or_the_frozen_one pass" in frozen.stdout
    assert frozen.stdout.splitlines()[-1] == "5 passed, 0 failed, 1 skipped"
    # a board that loads ulnet from files: FREE_HEAP decides, the run's copy is tested
    with Board(heap="64K") as board:
        files = ulnet_hil(board.url, "--tests", str(folder))
    assert files.returncode == 0, files.stdout + files.stderr
    assert "frozen into its firmware" not in files.stdout
    assert re.search(skip % ("frozen", ""), files.stdout, re.M), files.stdout
    assert re.search(r"^test_fits_files.py::test_needs_heap pass heap \d+ B$", files.stdout, re.M)
    assert "test_ulnet_is_the_runs_own_compiled_copy_or_the_frozen_one pass" in files.stdout
    assert files.stdout.splitlines()[-1] == "5 passed, 0 failed, 1 skipped"


def test_a_bad_deploy_mode_is_refused_on_the_host(tmp_path):
    (tmp_path / "test_bad.py").write_text('DEPLOY = "flash"\n\ndef test_x():\n    pass\n')
    with pytest.raises(ValueError, match="DEPLOY must be one of"):
        hil.BoardTestFile(str(tmp_path / "test_bad.py"))
    (tmp_path / "test_bad.py").write_text('BITS = 16\n\ndef test_x():\n    pass\n')
    with pytest.raises(ValueError, match="BITS must be one of"):
        hil.BoardTestFile(str(tmp_path / "test_bad.py"))


@pytest.fixture
def microbit():
    """The real MicroPython 1.9.2 micro:bit firmware under QEMU; yields its serial pty."""
    if not QEMU or not os.path.exists(FIRMWARE):
        pytest.skip("needs qemu-system-arm and firmware-microbit-micropython (./ulnet test installs them)")
    qemu = subprocess.Popen([QEMU, "-M", "microbit", "-device", "loader,file=" + FIRMWARE, "-serial", "pty",
                             "-display", "none", "-monitor", "none"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        line = ""
        deadline = time.monotonic() + 20
        while "/dev/pts/" not in line and time.monotonic() < deadline and qemu.poll() is None:
            line = qemu.stdout.readline()  # QEMU names the pty at once, then prints nothing
        match = re.search(r"/dev/pts/\d+", line)
        assert match, "QEMU did not name its pty: %r" % line
        yield match.group(0)
    finally:
        qemu.kill()
        qemu.wait(10)


MICROBIT_SAMPLE = '''
DEADLINE_S = 3
import sys


def test_runs_on_the_firmware():
    assert sys.implementation.version[:2] == (1, 9), sys.implementation.version


def test_fails_on_the_firmware():
    assert sys.platform == "unix", sys.platform


def test_hangs_on_the_firmware():
    while True:
        pass
'''


def test_runner_transport_on_real_microbit_firmware(microbit, tmp_path):
    make_tests_folder(tmp_path, {"test_microbit.py": MICROBIT_SAMPLE})
    sample = hil.BoardTestFile(str(tmp_path / "test_microbit.py"))
    session = hil.HILSession(microbit).open()
    try:
        assert session.compiler is None  # no .mpy version, no filesystem: tests go as source
        results = {t.name: session.run(sample, t.name) for t in sample.tests}
        assert results["test_runs_on_the_firmware"].passed, results["test_runs_on_the_firmware"]
        assert results["test_fails_on_the_firmware"].detail == "AssertionError('microbit',)"
        assert results["test_hangs_on_the_firmware"].detail == "deadline of 3 s passed; interrupted"
        # a fresh load soft-resets the real firmware: globals from before are gone
        session.transport.exec("leftover = 1")
        session.loaded = None
        assert session.run(sample, "test_runs_on_the_firmware").passed
        assert session.transport.eval("'leftover' in globals()") is False
    finally:
        session.close()
