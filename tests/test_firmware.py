"""`ulnet firmware`: ulnet's manifest for any port's build, and a real unix port build with
ulnet frozen in (from MicroPython's source: the tests that need it skip, with the reason,
where it or a 32-bit toolchain is absent)."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from ulnet.tools import firmware

BIN = os.path.dirname(sys.executable)
ULNET = shutil.which("ulnet", path=BIN) or shutil.which("ulnet")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the first test to ask builds the firmware (about a minute; once per machine, then cached)
pytestmark = pytest.mark.timeout(firmware.BUILD_DEADLINE_S)


def ulnet(*args, timeout=firmware.BUILD_DEADLINE_S):
    return subprocess.run([ULNET, *args], capture_output=True, text=True, timeout=timeout)


def package_json_files():
    """{device path under ulnet/: checkout path} from package.json, what mip installs."""
    with open(os.path.join(ROOT, "package.json")) as f:
        return dict(json.load(f)["urls"])


def source_tree():
    source, why = firmware.find_source()
    if why:
        pytest.skip(why)
    return firmware.source_tree(source)


def test_manifest_only_lays_ulnet_out_as_package_json_does(tmp_path):
    done = ulnet("firmware", "--manifest-only", "-o", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    manifest = done.stdout.strip()
    assert manifest == str(tmp_path / "m" / "manifest.py")
    laid_out = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "m")
                      for d, _, fs in os.walk(tmp_path / "m" / "ulnet") for f in fs)
    expected = package_json_files()
    assert laid_out == sorted(expected)
    for target, local in expected.items():
        with open(os.path.join(ROOT, local), "rb") as want:
            assert (tmp_path / "m" / target).read_bytes() == want.read(), target
    # written again, a module that is gone from the checkout is gone from the layout
    (tmp_path / "m" / "ulnet" / "stale.py").write_text("x = 1\n")
    assert ulnet("firmware", "--manifest-only", "-o", str(tmp_path / "m")).returncode == 0
    assert not (tmp_path / "m" / "ulnet" / "stale.py").exists()


def test_a_board_manifest_includes_it_with_micropythons_own_manifest_tool(tmp_path):
    # what any port's build does with a board manifest that include()s ulnet's
    tree = source_tree()
    ours = firmware.write_manifest(str(tmp_path / "ulnet-manifest"))
    board = tmp_path / "board" / "manifest.py"
    board.parent.mkdir()
    board.write_text('include(%r)\nmodule("main.py", base_path=%r)\n' % (ours, str(tmp_path / "board")))
    (tmp_path / "board" / "main.py").write_text("import ulnet\n")
    sys.path.insert(0, os.path.join(tree, "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    manifest = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {"MPY_DIR": tree})
    manifest.execute(str(board))
    frozen = sorted(f.target_path for f in manifest.files())
    assert frozen == sorted(list(package_json_files()) + ["main.py"])


def test_builds_a_32_bit_unix_port_with_ulnet_frozen_in(firmware32, tmp_path):
    source, _ = firmware.find_source()
    done = ulnet("firmware", "--micropython", source, "--bits", "32", "-o", str(tmp_path / "fw"))
    assert done.returncode == 0, done.stderr
    assert "building" not in done.stderr  # the fixture built it: this run is served from the cache
    path, summary = done.stdout.strip().splitlines()
    assert path == str(tmp_path / "fw")
    assert summary == "32-bit unix port, %.0f KB (text + data); ulnet frozen in: %.1f KB" % (
        firmware32.size / 1024, firmware32.ulnet_size / 1024)
    assert 20 * 1024 < firmware32.ulnet_size < firmware32.size / 4
    # with nothing on the path but the frozen modules: 4-byte words, ulnet and its upload path
    probe = ("import sys\nsys.path[:] = ['.frozen']\nimport ulnet\nfrom ulnet.ftp.session import FTPSession\n"
             "from ulnet.ports import upy\nprint(sys.maxsize, ulnet.__file__, ulnet.__version__)\n"
             "try:\n import ulnet.ports.desktop\nexcept ImportError:\n print('no desktop port')\n")
    ran = subprocess.run([path, "-c", probe], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[:2] == ["%d ulnet/__init__.py %s" % (2 ** 31 - 1, json.load(
        open(os.path.join(ROOT, "package.json")))["version"]), "no desktop port"]


def test_each_checkout_gets_a_firmware_of_its_own_ulnet(firmware32, tmp_path):
    # two checkouts (worktrees, a newer ulnet) build in the same build folder, the second one's
    # changed file older than what the first compiled: its firmware must still freeze its own
    # files (MicroPython's build goes by modification times), each under its own cache key
    token = os.urandom(4).hex()  # new content each run: both are built, not taken from the cache
    source, _ = firmware.find_source()
    built = {}
    for name, mtime in (("first", None), ("second", 1e9)):
        checkout = tmp_path / name
        shutil.copytree(os.path.join(ROOT, "core"), checkout / "core")
        shutil.copytree(os.path.join(ROOT, "ports"), checkout / "ports")
        with open(checkout / "core" / "errors.py", "a") as f:
            f.write("\nMARK = '%s %s'\n" % (name, token))
        if mtime:
            os.utime(checkout / "core" / "errors.py", (mtime, mtime))  # 2001
        built[name] = firmware.build(source, 32, root=str(checkout))
    assert len({built["first"].path, built["second"].path, firmware32.path}) == 3
    probe = "import sys\nsys.path[:] = ['.frozen']\nimport ulnet.errors\nprint(ulnet.errors.MARK)\n"
    for name, fw in built.items():
        ran = subprocess.run([fw.path, "-c", probe], capture_output=True, text=True, timeout=30)
        assert ran.stdout.strip() == "%s %s" % (name, token), ran.stderr


def test_the_layout_is_newer_than_any_earlier_build_of_it(tmp_path):
    # build folders are shared by checkouts, and a build compiles a file only when it is newer
    # than its .mpy there: a checkout's file laid out with its own (older) time was taken for
    # compiled, and the firmware froze another checkout's version of it
    other = tmp_path / "checkout"
    shutil.copytree(os.path.join(ROOT, "core"), other / "core")
    shutil.copytree(os.path.join(ROOT, "ports"), other / "ports")
    os.utime(other / "core" / "errors.py", (1e9, 1e9))  # older than anything compiled
    folder = str(tmp_path / "build")
    firmware.write_manifest(folder, str(other))
    assert abs(os.stat(os.path.join(folder, "ulnet", "errors.py")).st_mtime - time.time()) < 60


def test_a_folder_without_source_is_one_clear_error(tmp_path):
    done = ulnet("firmware", "--micropython", str(tmp_path), timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == ("ulnet firmware: %s is neither a MicroPython source tree (py/mpconfig.h) "
                                   "nor a folder with one micropython-*.tar.gz" % tmp_path)
    assert ulnet("firmware", timeout=60).returncode == 2
