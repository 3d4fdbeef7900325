"""Boot of the emulated board: runs under the MicroPython unix port at every (re)start.

The supervisor (tools/board_supervisor.py) starts
`micropython -i board_boot.py MODE FLASH FLASH_SIZE RESET_CODE MARKER`; this script makes the
unix port look like a board and then falls into the unix port's own REPL (the `-i`).
Rules: MicroPython code only (it never runs on CPython), no names left in the REPL's globals,
and MARKER is the last thing it prints, so the supervisor knows that the REPL banner follows.

- `/` is the board's flash folder (a VfsPosix remounted over the host root the unix port
  mounts), `os.ilistdir` yields sizes as a board's FAT/littlefs does (mpremote `fs ls` shows
  them), `sys.path` is a board's. With FLASH_SIZE > 0, `os.statvfs` reports a flash of that
  many bytes, less what the folder holds (what `ulnet deploy` checks before writing).
- `machine.reset()` exists (the unix port lacks it) and exits with RESET_CODE, which the
  supervisor treats as a hard reset.
- boot.py runs always, main.py only when MODE is "friendly", as on a board after a soft reset.
- A ROMFS partition (ULNET_ROMFS="address:size", set by the launcher from FLASH/.romfs) is
  mounted at /rom with /rom and /rom/lib ahead of /lib on sys.path, as MicroPython 1.25+
  boards with a ROMFS partition do; its .mpy files execute in place, outside the heap.
"""

import vfs


# a wrapper, not a VfsPosix subclass: the VFS layer hands a subclass instance to VfsPosix's
# C import_stat as if it were the native object, and imports from /lib fail
class _Flash:
    def __init__(self, root, size):
        self.fs = vfs.VfsPosix(root)
        self.root = root.rstrip("/")
        self.host = vfs.VfsPosix()  # no root: takes host paths as they are
        self.size = size  # bytes statvfs reports; 0: the host disk's

    def rename(self, old, new):
        # VfsPosix(root).rename joins both paths to the root in one buffer, so the first is
        # overwritten and every rename fails with ENOENT (unix port 1.29): rename host paths
        # through a root-less VfsPosix instead
        # (a relative path is relative to the process's cwd, which VfsPosix.chdir keeps inside
        # the flash folder, so it passes as it is)
        fix = lambda path: self.root + path if path[:1] == "/" else path
        self.host.rename(fix(old), fix(new))

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def ilistdir(self, path):
        base = path.rstrip("/") + "/"
        for entry in self.fs.ilistdir(path):
            size = 0 if entry[1] == 0x4000 else self.fs.stat(base + entry[0])[6]
            yield (entry[0], entry[1], entry[2], size)

    def used(self, path):
        return sum(e[3] if e[1] != 0x4000 else self.used(path + e[0] + "/") for e in self.ilistdir(path))

    def statvfs(self, path):
        st = self.fs.statvfs(path)
        if not self.size:
            return st
        bsize = st[0]
        blocks, used = self.size // bsize, (self.used("/") + bsize - 1) // bsize
        free = max(0, blocks - used)
        return (bsize, bsize, blocks, free, free) + tuple(st[5:])


def _machine(reset_code):
    """machine with reset(); builtin modules are read-only, so it is served from sys.modules."""
    import sys
    import umachine

    class Machine:
        pass

    machine = Machine()
    for name in dir(umachine):
        if not name.startswith("__"):
            setattr(machine, name, getattr(umachine, name))
    machine.reset = lambda: sys.exit(reset_code)
    sys.modules["machine"] = machine


def _board():
    """Make the unix port a board; returns the scripts to run, as a board's boot does."""
    import os
    import sys

    mode, flash, flash_size, reset_code = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    vfs.umount("/")
    vfs.mount(_Flash(flash, flash_size), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    rom = os.getenv("ULNET_ROMFS")
    if rom:
        import uctypes

        address, size = rom.split(":")
        try:
            vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(address), int(size))), "/rom")
            sys.path[2:2] = ["/rom", "/rom/lib"]
        except Exception as e:  # a broken image: boot without it, as a board would
            sys.print_exception(e)
    _machine(reset_code)
    return ("boot.py", "main.py") if mode == "friendly" else ("boot.py",)


def _run(script):
    import os
    import sys

    try:
        os.stat(script)
    except OSError:
        return
    try:
        with open(script) as f:
            source = f.read()
        exec(source, globals())
    except (Exception, KeyboardInterrupt) as e:
        # a board prints the traceback and goes on to the REPL; SystemExit soft-resets
        sys.print_exception(e)


for _script in _board():
    _run(_script)
__import__("sys").stdout.write(__import__("sys").argv[5])
del vfs, _Flash, _machine, _board, _run, _script
globals().pop("__file__", None)
