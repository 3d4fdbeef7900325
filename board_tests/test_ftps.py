"""FTPS on the board: a 1 MB upload by explicit FTPS (AUTH TLS, PROT P) with the server's
certificate verified against a CA file on the board's flash, to the host's pyftpdlib TLS
handler; the host then checks the bytes (board_tests/conftest.py: ftps_server, ftps_upload).

The CA certificate (DER, as a board keeps it) and the file are written into the runner's folder
(/ulnet-tmp/files, as literals: a path built here costs heap). This file runs on a board of its
own (HEAP, DEPLOY, BITS): a 32-bit board with ulnet frozen into the firmware, as small boards
carry it (tools/firmware.py builds it; the test skips, saying why, where MicroPython's source or
gcc-multilib is missing), 2 KB over the smallest heap where the whole test passes, the board's
own 2.0 KB and the harness included: 28 KB (at 27 KB the control connection's handshake runs
out of memory), measured 2026-12-07. mbedtls allocates its sessions with the system allocator
on this firmware (the unix port's default), outside this heap: what counts here is
MicroPython's side of two TLS sockets, the TLS code's objects and the CA file read
(benchmarks/board_ftps.py has the figures of every board, and of boards where mbedtls takes its
memory from the heap)."""

HEAP = "30K"
DEPLOY = "frozen"
BITS = 32
DEADLINE_S = 120
FREE_HEAP = "88K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "25K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def test_ftps_upload_1mb_with_a_verified_certificate(ftps_server, ftps_upload):
    host, port, user, password, ca = ftps_server
    name, size = ftps_upload
    buf = bytearray(1024)  # first, while the heap is in one piece (see test_ftp.py)
    with open("/ulnet-tmp/files/ca.der", "wb") as f:
        f.write(ca)
    ca = None
    with open("/ulnet-tmp/files/upload.bin", "wb") as f:
        for k in range(size // 1024):
            for j in range(1024):
                buf[j] = (k * 131 + j * 7 + (j >> 8)) & 255
            f.write(buf)
    from ulnet.eventer import Eventer
    from ulnet.ftp.session import FTPSession

    ev = Eventer()
    ftp = FTPSession(ev, buf)
    login = ftp.connect(host, port, user, password, "explicit", "/ulnet-tmp/files/ca.der")
    op = ftp.put("/ulnet-tmp/files/upload.bin", name)
    ev.run_until(lambda: op.done, 60000)
    assert login.error is None and "tls verified" in repr(ftp), (login.error, repr(ftp))
    assert op.error is None and op.result == size, op.error
    bye = ftp.quit()
    ev.run_until(lambda: bye.done, 10000)
