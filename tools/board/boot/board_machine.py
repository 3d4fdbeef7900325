"""`machine` on the emulated board: the unix port's umachine, and reset(), which it lacks.
MicroPython code only, part of the board's boot image (tools/board/image.py); board_boot.py
serves it as `machine` from sys.modules (builtin modules are read-only).

reset() exits with the code the supervisor treats as a hard reset (RESET_CODE in
tools/board/child.py, passed in ULNET_BOOT); it reads it when called, so nothing is kept.
"""

from umachine import *  # noqa: F401,F403


def reset():
    import os
    import sys

    sys.exit(int(os.getenv("ULNET_BOOT").split()[2]))
