"""The store-and-forward job on the board (issue 7): 200 scans and a 1 MB file go from the
spool on the board's flash to the host's pyftpdlib, each exactly once; the host then checks the
server (board_tests/conftest.py: spool_upload). The job starts as a device starts it, from a
config file on flash (ulnet.spool.run_from_config). A 32-bit board with ulnet frozen into its
firmware (skipped, saying why, where it cannot be built); HEAP is 2 KB over the smallest that
passes, 22 KB with the harness. benchmarks/board_heap.py and board_spool.py give the figures of
the other boards (49 KB on the 64-bit one with ulnet in ROMFS)."""

HEAP = "24K"
DEPLOY = "frozen"
BITS = 32
DEADLINE_S = 300
FREE_HEAP = "91K"  # on a board where ulnet loads from files (64-bit port; measured, +2 KB)
FREE_HEAP_FROZEN = "24K"  # on a 32-bit board with ulnet frozen into its firmware (measured, +2 KB)


def test_job_uploads_200_scans_and_a_1mb_file(spool_upload):
    import json
    import os

    url, device_id, scans, big_kb = spool_upload
    # config and spool in the test's own folder (its current one): the device's stay as they were
    spool = os.getcwd() + "/spool"
    os.mkdir(spool)
    for i in range(scans):
        name = "scan%04d.csv" % i
        with open(spool + "/." + name, "w") as f:  # complete before the job may see it
            for j in range(5 + i % 20):  # conftest.scan_lines
                f.write("%013d,%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1))
        os.rename(spool + "/." + name, spool + "/" + name)
    buf = bytearray(1024)
    with open(spool + "/.big.bin", "wb") as f:
        for k in range(big_kb):  # conftest.upload_block
            for j in range(1024):
                buf[j] = (k * 131 + j * 7 + (j >> 8)) & 255
            f.write(buf)
    del buf
    os.rename(spool + "/.big.bin", spool + "/big.bin")
    with open("ulnet.json", "w") as f:
        # one session (test_spool_sessions.py runs two)
        f.write(json.dumps({"url": url, "device_id": device_id, "spool": spool, "deadline_s": 200, "sessions": 1}))
    import ulnet.spool

    statuses = []

    def on_status(text):
        if len(statuses) < 4 or "retry" in text:
            statuses.append(text)  # the first few, and any failure: what a failure report needs

    job = ulnet.spool.run_from_config("ulnet.json", on_status)
    assert (job.sent, job.left, job.bad, job.failures) == (scans + 1, 0, 0, 0), (job.summary(), statuses)
    assert job.bytes == big_kb * 1024 + sum(
        sum(len("%013d,%d\n" % (4006381333931 + i * 1000 + j, j % 7 + 1)) for j in range(5 + i % 20))
        for i in range(scans))
    assert sorted(e[0] for e in os.ilistdir(spool)) == []  # delivered scans are deleted
