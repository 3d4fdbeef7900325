"""`ulnet firmware`: MicroPython firmware with ulnet frozen in, built from MicroPython's source.

    ulnet firmware --micropython DIR [--bits 32|64] [--cflags FLAGS] [-o PATH]
    ulnet firmware --manifest-only [-o DIR]

ulnet is laid out as package.json lays it out (ulnet/..., ulnet/ports/{__init__,upy}.py) beside a
manifest.py that freezes it. A board's own manifest takes it with `include("DIR/manifest.py")`,
for any port (--manifest-only writes just that). Otherwise the unix port is built with it,
32-bit (gcc -m32: 4-byte pointers, 16-byte GC blocks, as on Cortex-M, ESP32 and ESP8266) or
64-bit, with MICROPY_PY_BTREE=0 MICROPY_PY_FFI=0 and MPY_LIB_DIR a folder that holds only a
README (ulnet needs nothing from micropython-lib); it prints the firmware's path and how much of
it is ulnet. `--cflags` adds C flags, e.g. "-DMICROPY_MBEDTLS_CONFIG_BARE_METAL=1
-DMICROPY_TRACKED_ALLOC=1" for TLS allocated from MicroPython's heap as on bare-metal ports.

DIR is a MicroPython source tree (a user's checkout) or a folder holding its source tarball
(micropython-*.tar.gz, as ../shared/micropython does), unpacked once into the cache. Nothing is
ever written into DIR: mpy-cross and the port are built out of tree, in CACHE. A build folder
per (source tree, bits, cflags) is kept, so a new ulnet rebuilds only the frozen part; a finished
firmware per (source, ulnet, bits, cflags) digest is returned at once, so tests and CI build it
once. Each build folder is locked while it builds (two test processes: one build).

Rules: every build step has a deadline; failures are a FirmwareError, one line naming the log.
"""

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

from ulnet.tools import deploy

ROOT = deploy.ROOT
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ulnet", "firmware")
# where the MicroPython source is when --micropython is not given (tests, CI): this variable,
# else shared/micropython beside the checkout or beside one of its parent folders (a worktree)
SOURCE_ENV = "ULNET_MICROPYTHON_SRC"
TARBALL = "micropython-*.tar.gz"
BITS = (32, 64)
MAKE_FLAGS = ("MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0")
# a 32-bit unix port with mbedtls builds in about 35 s on 2 idle cores; a loaded machine is slower
BUILD_DEADLINE_S = 1200
TOOL_DEADLINE_S = 60
# a finished firmware (about 1 MB) unused for this long leaves the cache; never sooner, as boards
# of other processes may run it (a board restarts its binary at every reset)
KEEP_UNUSED_S = 7 * 24 * 3600
# in the cache's folder names: 2 since a build folder recompiles what it freezes when that changes
# (version 1's code removed all but the 6 newest "fw-*" folders, boards still running them too)
CACHE_VERSION = 2
# the source folders the unix port and mpy-cross are built from: what the source digest covers
SOURCE_DIRS = ("py", "extmod", "shared", "ports/unix", "mpy-cross", "lib")
MANIFEST = """# Freezes ulnet (the layout beside this file, as package.json lays it out) into MicroPython
# firmware. From a board's own manifest: include("%s")
package("ulnet")
"""
NO_LIB_README = "ulnet's firmware freezes nothing from micropython-lib; the build only checks for this file.\n"


class FirmwareError(Exception):
    """A firmware could not be built; the message is one line for the user."""


class FirmwareUnavailable(FirmwareError):
    """No source or no toolchain here to build a firmware: tests skip with this reason."""


class Firmware:
    """A built firmware: `path` (the unix port binary), `bits`, `size` (text + data bytes) and
    `ulnet_size` (the frozen part: ulnet's bytecode, constants and names)."""

    def __init__(self, path, bits, size, ulnet_size, built):
        self.path, self.bits, self.size, self.ulnet_size, self.built = path, bits, size, ulnet_size, built

    def summary(self):
        frozen = "ulnet frozen in: %.1f KB" % (self.ulnet_size / 1024) if self.ulnet_size else "no ulnet"
        return "%d-bit unix port, %.0f KB (text + data); %s" % (self.bits, self.size / 1024, frozen)


def find_source(root=ROOT):
    """(path, None) of the MicroPython source for tests and CI, or (None, why not)."""
    given = os.environ.get(SOURCE_ENV)
    if given:
        return (given, None) if os.path.isdir(given) else (None, "%s=%s is not a folder" % (SOURCE_ENV, given))
    folder = os.path.dirname(os.path.abspath(root))
    while True:
        candidate = os.path.join(folder, "shared", "micropython")
        if os.path.isdir(candidate):
            return candidate, None
        if os.path.dirname(folder) == folder:
            return None, "no MicroPython source: set %s, or put it in shared/micropython beside the checkout" % SOURCE_ENV
        folder = os.path.dirname(folder)


def default_firmware(bits=32, frozen=True):
    """The firmware the tests and the HIL runner use, built from find_source(); raises
    FirmwareUnavailable (the reason) where the source or the toolchain is missing."""
    source, why = find_source()
    why = why or toolchain_problem(bits)
    if why:
        raise FirmwareUnavailable("no %d-bit firmware: %s" % (bits, why))
    return build(source, bits, frozen=frozen)


def toolchain_problem(bits):
    """None when make and a C compiler that builds `bits`-bit programs are here, else why not."""
    for tool in ("make", "cc", "size"):
        if shutil.which(tool) is None:
            return "no %s on PATH (Debian: apt-get install build-essential)" % tool
    if bits == 32:
        with tempfile.TemporaryDirectory(prefix="ulnet-cc-") as tmp:
            with open(os.path.join(tmp, "t.c"), "w") as f:
                f.write("#include <stdio.h>\nint main(void) { return puts(\"\") < 0; }\n")
            done = subprocess.run(["cc", "-m32", "-o", os.path.join(tmp, "t"), os.path.join(tmp, "t.c")],
                                  capture_output=True, timeout=TOOL_DEADLINE_S)
        if done.returncode != 0:
            return "cc -m32 cannot build 32-bit programs (Debian: apt-get install gcc-multilib)"
    return None


def source_tree(source):
    """The MicroPython source tree of DIR: DIR itself, or its tarball unpacked into the cache."""
    source = os.path.abspath(source)
    if os.path.exists(os.path.join(source, "py", "mpconfig.h")):
        return source
    tarballs = [source] if source.endswith(".tar.gz") else sorted(glob.glob(os.path.join(source, TARBALL)))
    if len(tarballs) != 1 or not os.path.isfile(tarballs[0]):
        raise FirmwareError("%s is neither a MicroPython source tree (py/mpconfig.h) nor a folder with one %s"
                            % (source, TARBALL))
    digest = _file_digest(tarballs[0])
    folder = os.path.join(CACHE, "src-" + digest[:16])
    tree = os.path.join(folder, "micropython")
    with _locked(folder):
        if not os.path.exists(os.path.join(tree, "py", "mpconfig.h")):
            shutil.rmtree(tree, ignore_errors=True)
            with tarfile.open(tarballs[0]) as archive:
                archive.extractall(folder, filter="data")
    if not os.path.exists(os.path.join(tree, "py", "mpconfig.h")):
        raise FirmwareError("%s does not unpack to micropython/ with py/mpconfig.h" % tarballs[0])
    return tree


def write_manifest(folder, root=ROOT):
    """Lay ulnet out in folder (as package.json does) beside manifest.py; returns its path.
    The folder holds exactly that afterwards (a removed module does not linger). Every file is
    written now, so it is newer than any .mpy the build keeps in its folder: a build folder is
    shared by checkouts, and a build compiles a file only when it is newer than its .mpy (with
    the checkout's own times kept, a file older than the last one compiled there was taken for
    compiled, and the firmware froze that other checkout's version)."""
    layout = os.path.join(folder, "ulnet")
    shutil.rmtree(layout, ignore_errors=True)
    for local, rel in deploy.sources(root):
        os.makedirs(os.path.dirname(os.path.join(layout, rel)), exist_ok=True)
        shutil.copyfile(local, os.path.join(layout, rel))
    path = os.path.join(folder, "manifest.py")
    with open(path, "w") as f:
        f.write(MANIFEST % path)
    return path


def build(source, bits=32, cflags="", frozen=True, report=None, root=ROOT):
    """The unix port firmware (a Firmware) for this source, with ulnet frozen in unless
    frozen=False; built, or taken from the cache. report(line) hears the steps."""
    report = report or (lambda line: None)
    if bits not in BITS:
        raise FirmwareError("--bits must be 32 or 64, not %r" % bits)
    tree = source_tree(source)
    problem = toolchain_problem(bits)
    if problem:
        raise FirmwareError(problem)
    flags = " ".join((["-m32"] if bits == 32 else []) + cflags.split())
    folder = os.path.join(CACHE, "build%d-%s" % (CACHE_VERSION, _digest(tree, bits, flags, frozen)[:16]))
    with _locked(folder):
        what = ulnet_digest(root) if frozen else ""
        done = os.path.join(CACHE, "fw%d-%s" % (CACHE_VERSION, _digest(_tree_digest(tree), what, bits, flags)[:16]))
        if not os.path.exists(os.path.join(done, "micropython")):
            report("building the %d-bit unix port in %s (a few minutes at most)" % (bits, folder))
            started = time.monotonic()
            _make(tree, folder, bits, flags, _frozen_layout(folder, root, what) if frozen else "")
            _keep(folder, done, frozen)
            report("built in %.0f s" % (time.monotonic() - started))
            _prune()
        os.utime(done)  # in use: it stays in the cache
    with open(os.path.join(done, "sizes")) as f:
        size, ulnet_size = (int(n) for n in f.read().split())
    return Firmware(os.path.join(done, "micropython"), bits, size, ulnet_size, done)


def _frozen_layout(folder, root, digest):
    """Lay ulnet (whose ulnet_digest is `digest`) out in the build folder; returns the path of
    its manifest. The build folder serves every checkout, and MicroPython's makemanifest.py goes
    by modification times: a file of this checkout older than another's already compiled one
    would count as built. So whenever what is frozen changes, its compiled form goes."""
    manifest = write_manifest(os.path.join(folder, "manifest"), root)
    stamp = os.path.join(folder, "frozen.digest")
    try:
        with open(stamp) as f:
            built = f.read()
    except FileNotFoundError:
        built = None
    if built != digest:
        shutil.rmtree(os.path.join(folder, "port", "frozen_mpy"), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, "port", "frozen_content.c"))
        with open(stamp, "w") as f:
            f.write(digest)
    return manifest


def _make(tree, folder, bits, flags, manifest):
    mpy_cross = os.path.join(folder, "mpy-cross")
    lib = os.path.join(folder, "no-micropython-lib")
    os.makedirs(lib, exist_ok=True)
    with open(os.path.join(lib, "README.md"), "w") as f:
        f.write(NO_LIB_README)
    jobs = "-j%d" % (os.cpu_count() or 1)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    log = os.path.join(folder, "build.log")
    with open(log, "wb") as out:
        for command in (
            ["make", jobs, "-C", os.path.join(tree, "mpy-cross"), "BUILD=" + mpy_cross],
            ["make", jobs, "-C", os.path.join(tree, "ports", "unix"), "BUILD=" + os.path.join(folder, "port"),
             "CFLAGS_EXTRA=" + flags, "LDFLAGS_EXTRA=" + ("-m32" if bits == 32 else ""),
             "FROZEN_MANIFEST=" + manifest, "MPY_LIB_DIR=" + lib,
             "MICROPY_MPYCROSS=" + os.path.join(mpy_cross, "mpy-cross"), *MAKE_FLAGS],
        ):
            out.write(("$ %s\n" % " ".join(command)).encode())
            out.flush()
            try:
                code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      timeout=BUILD_DEADLINE_S).returncode
            except subprocess.TimeoutExpired:
                raise FirmwareError("the build took over %d s; see %s" % (BUILD_DEADLINE_S, log)) from None
            if code != 0:
                raise FirmwareError("the build failed (%s); see %s" % (_last_error(log), log))


def _keep(folder, done, frozen):
    """Copy the firmware and its sizes out of the build folder, atomically."""
    port = os.path.join(folder, "port")
    size = _text_and_data(os.path.join(port, "micropython"))
    ulnet_size = _text_and_data(os.path.join(port, "frozen_content.o")) if frozen else 0
    partial = done + ".%d" % os.getpid()
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    shutil.copy2(os.path.join(port, "micropython"), os.path.join(partial, "micropython"))
    with open(os.path.join(partial, "sizes"), "w") as f:
        f.write("%d %d\n" % (size, ulnet_size))
    shutil.rmtree(done, ignore_errors=True)
    os.replace(partial, done)


def _text_and_data(path):
    out = subprocess.run(["size", path], capture_output=True, text=True, timeout=TOOL_DEADLINE_S).stdout
    text, data = out.splitlines()[1].split()[:2]
    return int(text) + int(data)


def _prune():
    for old in glob.glob(os.path.join(CACHE, "fw*-*")):  # this version's, and older ones
        if os.path.getmtime(old) < time.time() - KEEP_UNUSED_S:
            shutil.rmtree(old, ignore_errors=True)


def _last_error(log):
    with open(log, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:200]


@contextlib.contextmanager
def _locked(folder):
    """folder, created, held by this process alone (builds of one folder wait for each other)."""
    os.makedirs(folder, exist_ok=True)
    with open(folder + ".lock", "w") as lock:
        deadline = time.monotonic() + BUILD_DEADLINE_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FirmwareError("%s stayed locked by another build for %d s" % (folder, BUILD_DEADLINE_S))
                time.sleep(0.5)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(*parts):
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ulnet_digest(root=ROOT):
    """What is frozen: every file that goes on a device, and the manifest that freezes them."""
    digest = hashlib.sha256(MANIFEST.encode())
    for local, rel in deploy.sources(root):
        with open(local, "rb") as f:
            digest.update(("%s %s\n" % (rel, hashlib.sha256(f.read()).hexdigest())).encode())
    return digest.hexdigest()


def _tree_digest(tree):
    """Every file's path, size and modification time under the folders a build reads (a
    changed file changes it; reading them all would take longer than the check is worth)."""
    digest = hashlib.sha256()
    for top in SOURCE_DIRS:
        for folder, dirs, files in os.walk(os.path.join(tree, top)):
            dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
            for name in sorted(files):
                st = os.stat(os.path.join(folder, name))
                digest.update(("%s %d %d\n" % (os.path.join(folder, name), st.st_size, st.st_mtime_ns)).encode())
    return digest.hexdigest()


def add_parser(subparsers):
    parser = subparsers.add_parser("firmware", help="build MicroPython firmware with ulnet frozen in")
    parser.add_argument("--micropython", metavar="DIR",
                        help="MicroPython source tree, or a folder holding its source tarball")
    parser.add_argument("--bits", type=int, choices=BITS, default=32, help="unix port word size (default 32)")
    parser.add_argument("--cflags", default="", help="extra C flags for the port, e.g. -DMICROPY_TRACKED_ALLOC=1")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="copy the firmware here (with --manifest-only: the folder to write)")
    parser.add_argument("--manifest-only", action="store_true",
                        help="write ulnet's layout and manifest.py (for any port's build) and exit")
    parser.set_defaults(run=run)


def run(args):
    try:
        if args.manifest_only:
            print(write_manifest(os.path.abspath(args.output or "ulnet-manifest")))
            return 0
        if not args.micropython:
            print("ulnet firmware: --micropython DIR is required (or --manifest-only)", file=sys.stderr)
            return 2
        firmware = build(args.micropython, args.bits, args.cflags, report=lambda line: print(line, file=sys.stderr))
        path = firmware.path
        if args.output:
            path = os.path.abspath(args.output)
            shutil.copy2(firmware.path, path)
    except FirmwareError as e:
        print("ulnet firmware: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("ulnet firmware: %s" % e, file=sys.stderr)
        return 1
    print(path)
    print(firmware.summary())
    return 0
