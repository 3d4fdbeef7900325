"""Shared pytest fixtures: loopback helpers and the MicroPython runner."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import upy  # noqa: E402  (tests/upy.py)


@pytest.fixture
def micropython():
    """Run a snippet under the real MicroPython unix port; fails the test on a non-zero exit."""

    def runner(code, heap="2M", timeout=60):
        done = upy.run(code, heap=heap, timeout=timeout)
        assert done.returncode == 0, "micropython failed:\n" + done.stdout + done.stderr
        return done.stdout

    return runner
