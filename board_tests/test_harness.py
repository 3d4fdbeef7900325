"""Board self-tests: the board the HIL runner prepared looks like a board with ulnet on it."""
import gc
import sys


def test_lib_is_on_the_import_path():
    assert "/lib" in sys.path


def test_ulnet_is_the_runs_own_compiled_copy_or_the_frozen_one(board_ulnet):
    import ulnet

    # the run's copy, in its work folder (the device's own /lib/ulnet is neither used nor
    # changed); on a board with ulnet frozen into its firmware, that one (no file: its
    # __file__ is a name without a folder)
    found = ulnet.__file__ if ulnet.__file__[:1] == "/" else "frozen"
    assert found == board_ulnet, "ulnet is imported from %s, not %s" % (ulnet.__file__, board_ulnet)
    assert ulnet.__version__


def test_ulnet_errors_on_the_board():
    from ulnet.errors import NetError, errno_of, net_error
    import errno

    err = net_error(errno.ECONNREFUSED, "connect to", "127.0.0.1", 9)
    assert isinstance(err, OSError) and isinstance(err, NetError)
    assert str(err) == "connect to 127.0.0.1:9: connection refused"
    assert errno_of(err) == errno.ECONNREFUSED


def test_gc_reports_heap():
    gc.collect()
    before = gc.mem_alloc()
    keep = bytearray(2048)
    assert gc.mem_alloc() - before >= 2048
    assert len(keep) == 2048
