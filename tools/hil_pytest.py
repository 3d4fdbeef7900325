"""pytest plugin that runs board test files on a board: `pytest board_tests --board emu|DEVICE`.

A board tests folder (one that holds harness.py) brings it in from its conftest.py with
`from ulnet.tools.hil_pytest import *` and defines its host-side fixtures there. Its test_*.py
files are never imported on the host: each `def test_x(a, b)` becomes a pytest item whose
parameters are resolved as pytest fixtures on the host (an echo server's port, a path...) and
passed to the function on the board (literal values only). Host fixtures start their servers on
127.0.0.1, which the board reaches (an emulated board shares the host's loopback). A fixture
that must check something on the host once the board test passed (the bytes a board uploaded)
returns `HostCheck(value, check)`: the board gets `value`, then `check()` runs on the host and
its failure fails the test. A board test writes only in its current folder (WORK/files, see
tools/hil.py): the device's own files stay as they were.

Options: `--board` (default `emu`: an emulated board per pytest process, so each xdist worker
owns its own; a DEVICE has one owner, so it refuses xdist), `--board-heap` for emu (64K),
`--board-deadline` seconds per test (a file's DEADLINE_S wins). The heap a test left
allocated is recorded as the item's user property "heap". A file's FREE_HEAP (see tools/hil.py)
is checked on the shared board or DEVICE: when the board has less free heap after a soft reset,
its tests are skipped, saying `needs 48 KB free, board has 41 KB`. A DEVICE that cannot be
opened, does not answer or takes no deploy ends the session at once with one line and exit
code 4 (pytest's usage error: nothing could run).

A file that asks for its own board (`HEAP = "32K"`, `DEPLOY = "romfs"` or "frozen", `BITS = 32`,
see tools/hil.py) runs, with `--board emu`, on an emulated board started for that file alone
(with the file's heap, or --board-heap, its deploy mode and word size) and stopped after its
tests. On a given DEVICE the
file runs on that device as it is: a real board's heap is what it has, and its ROMFS partition
is written by mpremote, not by the runner.
"""

import inspect
import types

import pytest

from mpremote.transport import TransportError

from ulnet.tools import deploy
from ulnet.tools import device as dev
from ulnet.tools import firmware, hil
from ulnet.tools.board import Board

# the exit code when the device cannot be opened, does not answer or takes no deploy: pytest's
# "usage error", so a CI tells "could not run" (4) from "tests failed" (1)
COULD_NOT_RUN = pytest.ExitCode.USAGE_ERROR
# True once the shared board (or DEVICE) is open and has ulnet frozen into its firmware
ULNET_FROZEN = pytest.StashKey()

__all__ = ["HostCheck", "pytest_addoption", "pytest_configure", "pytest_pycollect_makemodule", "hil_session",
           "hil_board", "hil_file_board", "board_work_dir", "board_ulnet"]


def pytest_addoption(parser):
    group = parser.getgroup("ulnet board tests")
    group.addoption("--board", default="emu", help="device to run board tests on (default: emu)")
    group.addoption("--board-heap", default="64K", help="heap of the emulated board (default 64K)")
    group.addoption("--board-deadline", type=float, default=hil.DEFAULT_DEADLINE_S,
                    help="seconds each board test may take (default %d)" % hil.DEFAULT_DEADLINE_S)


def pytest_configure(config):
    # the xdist controller knows -n; a worker knows the count through its workerinput
    workers = (getattr(config.option, "numprocesses", None)
               or getattr(config, "workerinput", {}).get("workercount"))
    if config.getoption("board") != "emu" and workers not in (None, 0, 1):
        raise pytest.UsageError("--board %s has one owner: run it without -n (xdist), or use --board emu"
                                % config.getoption("board"))


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name.startswith("test_") and (module_path.parent / hil.HARNESS).exists():
        return BoardModule.from_parent(parent, path=module_path)
    return None


class BoardModule(pytest.Module):
    """A board test file: its tests are host functions that run the real ones on the board."""

    def _getobj(self):
        test_file = hil.BoardTestFile(str(self.path), self.config.getoption("board_deadline"))
        module = types.ModuleType(test_file.module)
        module.__file__ = str(self.path)
        module.board_test_file = test_file  # what the hil_session fixture reads
        if test_file.deploy == "frozen" or test_file.bits == 32:
            # its board's firmware may have to be built first (a few minutes at most, once)
            module.pytestmark = [pytest.mark.timeout(firmware.BUILD_DEADLINE_S + test_file.deadline_s)]
        for test in test_file.tests:
            setattr(module, test.name, _host_test(test_file, test))
        return module


class HostCheck:
    """A board test parameter with a host-side check: `value` (a literal) goes to the board,
    `check()` runs on the host after the board test passed (an AssertionError fails the test)."""

    def __init__(self, value, check):
        self.value = value
        self.check = check


def _host_test(test_file, test):
    def board_test(hil_session, request, **params):
        checks = [p.check for p in params.values() if isinstance(p, HostCheck)]
        params = {k: p.value if isinstance(p, HostCheck) else p for k, p in params.items()}
        result = hil_session.run(test_file, test.name, params)
        request.node.user_properties.append(("heap", result.heap))
        if result.skipped:
            pytest.skip(result.detail)
        if not result.passed:
            pytest.fail("%s\n%s" % (result.detail, result.output.strip()), pytrace=False)
        for check in checks:
            check()

    names = ["hil_session", "request"] + test.params
    board_test.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in names])
    board_test.__name__ = board_test.__qualname__ = test.name
    return board_test


@pytest.fixture
def board_work_dir():
    """The runner's work folder on the board (tools/device.py WORK_DIR): a board test writes
    only inside it; its tests' current folder is WORK/files, emptied before each file."""
    return dev.WORK_DIR


@pytest.fixture
def board_ulnet(hil_session):
    """Where a board test's `import ulnet` finds it: the __file__ of the run's compiled copy, or
    "frozen" on a board with ulnet frozen into its firmware (the tests run the device's own)."""
    return hil_session.ulnet_file


@pytest.fixture
def hil_session(request):
    """The HILSession a board test runs in: its file's own emulated board when the file asks
    for one (HEAP, DEPLOY, BITS) and the board is `emu`, else the board of this pytest process."""
    if request.module.board_test_file.own_board and request.config.getoption("board") == "emu":
        return request.getfixturevalue("hil_file_board")
    return request.getfixturevalue("hil_board")


@pytest.fixture(scope="session")
def hil_board(request):
    """The board of this pytest process, with ulnet deployed, for the whole session."""
    device, board = request.config.getoption("board"), None
    if device == "emu":
        board = Board(heap=request.config.getoption("board_heap")).start()
        device = board.url
    session = hil.HILSession(device, check_heap=True)
    try:
        try:
            session.open()
        except (dev.DeviceError, deploy.DeployError, TransportError, OSError) as e:
            # no test can run: one line and pytest's usage-error code, not a failure per test
            pytest.exit("could not run the board tests: %s" % e, returncode=COULD_NOT_RUN)
        request.config.stash[ULNET_FROZEN] = session.ulnet_frozen  # `ulnet hil` says so
        yield session
    finally:
        session.close()
        if board is not None:
            board.stop()


@pytest.fixture(scope="module")
def hil_file_board(request):
    """An emulated board for one test file that asks for its own (HEAP, DEPLOY, BITS): started
    for the file's tests with ulnet deployed as the file says, stopped after them. A 32-bit
    board or one with ulnet frozen in runs a firmware tools/firmware.py builds (once, then
    cached); where it cannot be built here, the file's tests skip and say why."""
    test_file = request.module.board_test_file
    frozen, path = test_file.deploy == "frozen", None
    if frozen or test_file.bits == 32:
        try:
            path = firmware.default_firmware(test_file.bits or 64, frozen=frozen).path
        except firmware.FirmwareUnavailable as e:
            pytest.skip(str(e))
    board = Board(heap=test_file.heap or request.config.getoption("board_heap"), firmware=path).start()
    session = hil.HILSession(board.url, romfs=test_file.deploy in ("romfs", "frozen"), test_files=[test_file],
                             frozen=frozen)
    try:
        yield session.open()
    finally:
        session.close()
        board.stop()
