"""Boot of the emulated board: runs under the MicroPython unix port at every (re)start.

The supervisor (tools/board/supervisor.py, tools/board/child.py) starts the unix port with
`-i -c BOOT`: BOOT mounts the board's firmware image (this file, board_hw.py and
board_machine.py compiled to .mpy, in a ROMFS image outside the heap) at /.fw, the only folder
on the path, and calls boot(globals()); ULNET_BOOT="MODE FLASH_SIZE RESET_CODE",
ULNET_FLASH=FLASH and ULNET_MARKER=MARKER are in the environment. boot() makes the unix port
look like a board, runs boot.py (and main.py) in the REPL's globals, and returns; the unix
port's own REPL follows (the `-i`). The firmware's code runs in place from the image, as a
board's frozen code does; /.fw is unmounted before boot.py runs.
Rules: MicroPython code only (it never runs on CPython); no names left in the REPL's globals and
the module itself leaves sys.modules; as few names as possible at all, settings in the
environment rather than argv (the unix port interns every name it compiles and every argument,
and the qstr pool that grows is heap never freed: a board's firmware leaves none); MARKER is the
last thing it prints, so the supervisor knows that the REPL banner follows.

- `/` is the board's flash folder (board_hw.Flash, a VfsPosix remounted over the host root
  the unix port mounts), `os.ilistdir` yields sizes as a board's FAT/littlefs does (mpremote `fs ls` shows
  them), `sys.path` is a board's. With FLASH_SIZE > 0, `os.statvfs` reports a flash of that
  many bytes, less what the folder holds (what `ulnet deploy` checks before writing).
- `machine` is board_machine.py: umachine plus reset() (the unix port lacks it), which exits
  with RESET_CODE, what the supervisor treats as a hard reset.
- boot.py runs always, main.py only when MODE is "friendly", as on a board after a soft reset.
- A ROMFS partition (ULNET_ROMFS="address:size", set by the launcher from FLASH/.romfs) is
  mounted at /rom with /rom and /rom/lib ahead of /lib on sys.path, as MicroPython 1.25+
  boards with a ROMFS partition do; its .mpy files execute in place, outside the heap.
"""

import vfs

from board_hw import Flash


def _board():
    """Make the unix port a board; returns the scripts to run, as a board's boot does."""
    import os
    import sys

    sys.modules["machine"] = __import__("board_machine")  # while /.fw is on the path
    sys.modules.pop("board_machine")
    mode, flash_size = os.getenv("ULNET_BOOT").split()[:2]
    flash, flash_size = os.getenv("ULNET_FLASH"), int(flash_size)
    vfs.umount("/")
    vfs.mount(Flash(flash, flash_size), "/")
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
    vfs.umount("/.fw")  # what the firmware runs stays mapped; nothing more is loaded from it
    return ("boot.py", "main.py") if mode == "friendly" else ("boot.py",)


def _run(script, g):
    import os
    import sys

    try:
        os.stat(script)
    except OSError:
        return
    try:
        with open(script) as f:
            source = f.read()
        exec(source, g)
    except (Exception, KeyboardInterrupt) as e:
        # a board prints the traceback and goes on to the REPL; SystemExit soft-resets
        sys.print_exception(e)


def boot(g):
    """Make the unix port a board, then run boot.py (and main.py) in g, the REPL's globals."""
    import os
    import sys

    for script in _board():
        _run(script, g)
    g.pop("__file__", None)
    # what stays is the mounts and machine, as on a board (they live in board_hw: their
    # functions keep their module alive, constants and all, and this one can go)
    sys.modules.pop("board_boot", None)
    sys.modules.pop("board_hw", None)
    sys.stdout.write(os.getenv("ULNET_MARKER"))
