"""FTP on the board: a 1 MB upload from a small heap with ulnet in ROMFS (issue 4), to the
host's pyftpdlib; the host then checks the bytes (board_tests/conftest.py: ftp_upload).

The file is written here first, in 1 KB blocks of a pattern the host recomputes (the same
formula as conftest.upload_block). This file runs on a board of its own (HEAP, DEPLOY): 1 KB
over the smallest heap where the whole test passes (37 KB) on the 64-bit unix port (32-byte GC
blocks, 8-byte pointers), so that a few bytes more elsewhere do not turn it into an out-of-memory
failure; the board's own 2.9 KB and the test harness are part of it. Issue 4 asks for 32 KB, see
benchmarks/board_heap.py for where the heap goes."""

HEAP = "38K"
DEPLOY = "romfs"
DEADLINE_S = 120


def test_upload_1mb_from_a_small_heap(ftp_server, ftp_upload):
    name, size = ftp_upload
    # the chunk buffer comes first, while the heap is in one piece (as a board's application
    # allocates it at boot); it writes the file, then the session uploads through it
    buf = bytearray(1024)
    with open("/upload.bin", "wb") as f:
        for k in range(size // 1024):
            for j in range(1024):
                buf[j] = (k * 131 + j * 7 + (j >> 8)) & 255
            f.write(buf)
    from ulnet.eventer import Eventer
    from ulnet.ftp.session import FTPSession

    ev = Eventer()
    ftp = FTPSession(ev, buf)
    ftp.connect(*ftp_server)
    op = ftp.put("/upload.bin", name)
    ev.run_until(lambda: op.done, 60000)
    assert op.error is None and op.result == size, op.error
    bye = ftp.quit()
    ev.run_until(lambda: bye.done, 10000)
