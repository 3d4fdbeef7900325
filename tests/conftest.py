"""Shared pytest fixtures: eventers per desktop backend and the MicroPython runner."""

import os
import selectors
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import upy  # noqa: E402  (tests/upy.py)

import ulnet  # noqa: E402

# every desktop backend the port can run on here (epoll is the default on Linux), and the CE port
BACKENDS = {
    "epoll": lambda: ulnet.Eventer(),
    "poll": lambda: ulnet.Eventer(selector=selectors.PollSelector()),
    "select": lambda: ulnet.Eventer(selector=selectors.SelectSelector()),
    # the CE message pump with Winsock's one-shot rules and no probe: strict as a device
    "ce": lambda: ulnet.Eventer(port="ce", probe_ms=None),
}


@pytest.fixture(params=sorted(BACKENDS))
def eventer(request):
    """An eventer on each backend in turn; closes every socket it still holds."""
    ev = BACKENDS[request.param]()
    yield ev
    ev.close()


@pytest.fixture
def ev():
    """An eventer on the default port only, for tests that are not about the backend."""
    e = ulnet.Eventer()
    yield e
    e.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The test CA and server certificates (tests/servers/certs.py), made once per worker."""
    from servers.certs import Certs

    return Certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="session")
def firmware32():
    """The 32-bit unix port with ulnet frozen in (tools/firmware.py: built once, then cached);
    skips, with the reason, where MicroPython's source or a 32-bit toolchain is missing."""
    from ulnet.tools import firmware

    try:
        return firmware.default_firmware(32)
    except firmware.FirmwareUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture
def micropython():
    """Run a snippet under the real MicroPython unix port; fails the test on a non-zero exit."""

    def runner(code, heap="2M", timeout=60):
        done = upy.run(code, heap=heap, timeout=timeout)
        assert done.returncode == 0, "micropython failed:\n" + done.stdout + done.stderr
        return done.stdout

    return runner
