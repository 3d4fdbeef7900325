"""Host-side test helpers: run code under the real MicroPython unix port with ulnet importable,
and count this process's open files.

The package is laid out as on a device (/lib/ulnet = core/, /lib/ulnet/ports = ports/) with
symlinks into this checkout, so tests always run the working tree's sources.
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def micropython_exe():
    """The `micropython` console script next to this Python, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def make_lib(dest):
    """Build dest/ulnet as a device would hold it; returns dest."""
    pkg = os.path.join(dest, "ulnet")
    os.makedirs(pkg, exist_ok=True)
    core = os.path.join(ROOT, "core")
    for name in os.listdir(core):
        if name.endswith(".py") or os.path.isdir(os.path.join(core, name, "")) and name != "__pycache__":
            os.symlink(os.path.join(core, name), os.path.join(pkg, name))
    os.symlink(os.path.join(ROOT, "ports"), os.path.join(pkg, "ports"))
    return dest


def run(code, heap="2M", timeout=60, lib=None):
    """Run `code` under MicroPython with ulnet on sys.path; returns CompletedProcess (text)."""
    with tempfile.TemporaryDirectory(prefix="ulnet-upy-") as tmp:
        lib = lib or make_lib(tmp)
        script = os.path.join(tmp, "main_test.py")
        with open(script, "w") as f:
            f.write("import sys\nsys.path.insert(0, %r)\n" % lib)
            f.write(code)
        return subprocess.run(
            [micropython_exe(), "-X", "heapsize=" + heap, script],
            capture_output=True, text=True, timeout=timeout, cwd=tmp,
        )


def open_fds():
    """How many file descriptors this process holds (for leak checks)."""
    return len(os.listdir("/proc/self/fd"))
