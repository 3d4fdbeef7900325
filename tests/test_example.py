"""The README's event-driven example (docs/echo_example.py, `./ulnet example`) runs as a user
runs it: from the checkout, and from the folder that holds the checkout, where a folder named
like the package is in the current folder (issue 12 item 16: Python took the clone folder for an
empty namespace package `ulnet`; the ./ulnet bootstrap puts the editable install's finder first)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "docs", "echo_example.py")


def run(cwd, *args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, cwd=str(cwd))


def test_the_example_echoes():
    done = run(ROOT, EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "echoed: b'hello, ulnet'"


def test_a_script_beside_a_folder_named_ulnet_imports_the_package(tmp_path):
    (tmp_path / "ulnet").mkdir()  # the clone, seen from its parent folder
    with open(EXAMPLE) as f:
        (tmp_path / "echo.py").write_text(f.read())  # the README's example saved by a user
    done = run(tmp_path, "echo.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "echoed: b'hello, ulnet'"
    done = run(tmp_path, "-c", "import ulnet; print(ulnet.__file__)")
    assert done.stdout.strip() == os.path.join(ROOT, "core", "__init__.py"), done.stdout + done.stderr
