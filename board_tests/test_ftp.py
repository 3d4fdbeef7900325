"""FTP on the board: a 1 MB upload from a small heap (issue 4), to the host's pyftpdlib; the
host then checks the bytes (board_tests/conftest.py: ftp_upload).

The file is written here first, in 1 KB blocks of a pattern the host recomputes (the same
formula as conftest.upload_block), into the runner's folder (board_work_dir + "/files", as a
literal: a path built here costs heap), so the device's own files stay as they were. This file
runs on a board of its own (HEAP, DEPLOY, BITS): the 32-bit boards the issue's 32 KB goal was
set for (4-byte pointers, 16-byte GC blocks), with ulnet frozen into the firmware as small
boards carry it (tools/firmware.py builds it; the test skips, saying why, where MicroPython's
source or gcc-multilib is missing). 24 KB: the goal with room; the smallest heap where the whole
test passes is 17 KB (2026-12-07; at 16 KB a MemoryError), the board's own 2.0 KB and the
harness included. On the 64-bit unix port with ulnet in ROMFS it was 44 KB
(benchmarks/board_heap.py has every board's figures)."""

HEAP = "24K"
DEPLOY = "frozen"
BITS = 32
DEADLINE_S = 120
FREE_HEAP = "71K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "16K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def test_upload_1mb_from_a_small_heap(ftp_server, ftp_upload):
    name, size = ftp_upload
    # the chunk buffer comes first, while the heap is in one piece (as a board's application
    # allocates it at boot); it writes the file, then the session uploads through it
    buf = bytearray(1024)
    with open("/ulnet-tmp/files/upload.bin", "wb") as f:
        for k in range(size // 1024):
            for j in range(1024):
                buf[j] = (k * 131 + j * 7 + (j >> 8)) & 255
            f.write(buf)
    from ulnet.eventer import Eventer
    from ulnet.ftp.session import FTPSession

    ev = Eventer()
    ftp = FTPSession(ev, buf)
    ftp.connect(*ftp_server)
    op = ftp.put("/ulnet-tmp/files/upload.bin", name)
    ev.run_until(lambda: op.done, 60000)
    assert op.error is None and op.result == size, op.error
    bye = ftp.quit()
    ev.run_until(lambda: bye.done, 10000)
