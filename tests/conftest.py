"""Shared pytest fixtures: eventers per desktop backend and the MicroPython runner."""

import os
import re
import selectors
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import upy  # noqa: E402  (tests/upy.py)

import ulnet  # noqa: E402

# the fuzz suite (tests/fuzz): a short run in every test run, a long one with --fuzz


def pytest_addoption(parser):
    parser.addoption("--fuzz", action="store_true",
                     help="run only the fuzz suite, each property with --fuzz-scale times its "
                          "examples of a normal run, and print each one's examples and time")
    parser.addoption("--fuzz-scale", type=int, default=50, metavar="N",
                     help="examples of a --fuzz run per property, as a multiple of a normal run's")


def pytest_configure(config):
    # read by tests/fuzz/fuzzing.py, in this process and in every xdist worker
    os.environ["ULNET_FUZZ_SCALE"] = str(config.getoption("fuzz_scale") if config.getoption("fuzz") else 1)


def pytest_collection_modifyitems(config, items):
    if config.getoption("fuzz"):
        fuzz = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "")
        other = [item for item in items if not str(item.path).startswith(fuzz)]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if str(item.path).startswith(fuzz)]
        for item in items:
            item.add_marker(pytest.mark.timeout(0))  # a long run takes what it takes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Hypothesis's statistics of a property go with its report (also from an xdist worker)."""
    report = (yield).get_result()
    stats = getattr(item, "hypothesis_statistics", None)
    if stats and report.when == "call":
        report.fuzz_stats = stats


def pytest_terminal_summary(terminalreporter, config):
    """With --fuzz: each property's examples and time, and the totals."""
    if not config.getoption("fuzz"):
        return
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            stats = getattr(report, "fuzz_stats", None)
            if stats:
                examples = sum(int(n) for n in re.findall(r"(\d+) passing", stats))
                seconds = sum(float(s) for s in re.findall(r"phase \(([\d.]+) seconds\)", stats))
                rows.append((report.nodeid.split("::")[-1], examples, seconds))
    terminalreporter.section("fuzz")
    for name, examples, seconds in sorted(rows):
        terminalreporter.write_line("%-72s %10d examples %8.1f s" % (name, examples, seconds))
    terminalreporter.write_line("%-72s %10d examples %8.1f s" % (
        "total (%d properties)" % len(rows), sum(r[1] for r in rows), sum(r[2] for r in rows)))


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
