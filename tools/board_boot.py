"""Boot of the emulated board: runs under the MicroPython unix port at every (re)start.

The supervisor (tools/board_supervisor.py) starts `micropython -i board_boot.py MODE FLASH
RESET_CODE MARKER`; this script makes the unix port look like a board and then falls into the
unix port's own REPL (the `-i`). Rules: MicroPython code only (it never runs on CPython), no
names left in the REPL's globals, and MARKER is the last thing it prints, so the supervisor
knows that what follows is the REPL banner.

- `/` is the board's flash folder (a VfsPosix remounted over the host root the unix port
  mounts), `os.ilistdir` yields sizes as a board's FAT/littlefs does (mpremote `fs ls` shows
  them), `sys.path` is a board's.
- `machine.reset()` exists (the unix port lacks it) and exits with RESET_CODE, which the
  supervisor treats as a hard reset.
- boot.py runs always, main.py only when MODE is "friendly", as on a board after a soft reset.
"""


def _board():
    import sys
    import os
    import vfs
    import umachine

    mode, flash, reset_code = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Flash(vfs.VfsPosix):
        def ilistdir(self, path):
            base = path.rstrip("/") + "/"
            for entry in super().ilistdir(path):
                size = 0 if entry[1] == 0x4000 else self.stat(base + entry[0])[6]
                yield (entry[0], entry[1], entry[2], size)

    vfs.umount("/")
    vfs.mount(Flash(flash), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]

    # builtin modules are read-only, so `import machine` is served from sys.modules instead
    class Machine:
        pass

    machine = Machine()
    for name in dir(umachine):
        if not name.startswith("__"):
            setattr(machine, name, getattr(umachine, name))
    machine.reset = lambda: sys.exit(reset_code)
    sys.modules["machine"] = machine
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
__import__("sys").stdout.write(__import__("sys").argv[4])
del _board, _run, _script
globals().pop("__file__", None)
