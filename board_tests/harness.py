"""On-board test harness: runs one board test function and prints its result line.

The host (tools/hil.py) soft-resets the board, sends this file as code (or imports it with the
test file from ROMFS), brings a test file's names into the REPL's globals (import of its
deployed .mpy, or its source sent as code), then calls `_ulnet_run("test_x", test_x, {params})`
once per test and reads the line
`@ulnet-test NAME pass|fail HEAP DETAIL`: HEAP is gc.mem_alloc() after the test minus before
(bytes the test left allocated), DETAIL the repr of a failed test's exception.
Rules: MicroPython 1.9 compatible (no __name__ on types, no f-strings), tiny (a micro:bit has
10 KB of heap), catches Exception only, so the host's Ctrl-C at a deadline still stops a test.
"""
import gc
import sys


def _ulnet_run(name, test, params):
    gc.collect()
    before = gc.mem_alloc()
    status, detail = "pass", ""
    try:
        test(**params)
    except Exception as e:
        sys.print_exception(e)
        status, detail = "fail", repr(e)
    used = gc.mem_alloc() - before
    print("@ulnet-test %s %s %d %s" % (name, status, used, detail.replace("\n", " ")))
