"""The emulated board, driven by the real mpremote (CLI and library) as a user would drive a board."""

import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest
from mpremote.transport_serial import SerialTransport

from ulnet.tools.board import Board, BoardError, find_board

BIN = os.path.dirname(sys.executable)
MPREMOTE = shutil.which("mpremote", path=BIN) or shutil.which("mpremote")
ULNET = shutil.which("ulnet", path=BIN) or shutil.which("ulnet")

pytestmark = pytest.mark.timeout(120)


def mpremote(device, *args, timeout=60):
    return subprocess.run([MPREMOTE, "connect", device, *args], capture_output=True, text=True,
                          timeout=timeout)


def ok(done):
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def flash(tmp_path):
    path = tmp_path / "flash"
    path.mkdir()
    return path


@pytest.fixture
def board(flash):
    with Board(heap="64K", flash=str(flash)) as b:
        yield b


def child_pids(supervisor_pid):
    with open("/proc/%d/task/%d/children" % (supervisor_pid, supervisor_pid)) as f:
        return [int(pid) for pid in f.read().split()]


def running(pid):
    """A process that still runs (an orphan's zombie waits for init and does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_exec_and_run(board, tmp_path):
    assert ok(mpremote(board.url, "exec", "print(6 * 7)")).strip() == "42"
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.implementation.name, sys.path)\n")
    assert ok(mpremote(board.url, "run", str(script))).strip() == "micropython ['', '.frozen', '/lib']"


def test_fs_cp_both_ways_keeps_bytes(board, flash, tmp_path):
    data = bytes(range(256)) * 80 + os.urandom(3000)  # every byte value, Ctrl-C and Ctrl-D too
    local, back = tmp_path / "blob.bin", tmp_path / "back.bin"
    local.write_bytes(data)
    ok(mpremote(board.url, "fs", "cp", str(local), ":blob.bin"))
    assert hashlib.sha256((flash / "blob.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    ok(mpremote(board.url, "fs", "cp", ":blob.bin", str(back)))
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_fs_ls_shows_real_sizes(board, flash):
    (flash / "a.txt").write_bytes(b"x" * 1234)
    (flash / "lib").mkdir()
    (flash / "lib" / "m.py").write_bytes(b"y" * 77)
    listing = ok(mpremote(board.url, "fs", "ls", ":", "+", "fs", "ls", ":lib"))
    rows = {line.split()[-1]: int(line.split()[0]) for line in listing.splitlines() if line.startswith(" ")}
    assert rows == {"a.txt": 1234, "lib/": 0, "m.py": 77}


def test_df_shows_a_boards_flash_in_its_columns(board, flash):
    # mpremote df formats sizes in 9 columns with nothing between them: the host disk's figures
    # ran together, and the flash object's repr filled the name column
    (flash / "scan.csv").write_bytes(b"z" * 5000)
    rows = ok(mpremote(board.url, "df")).splitlines()
    assert rows[0].split() == ["filesystem", "size", "used", "avail", "use%", "mounted", "on"]
    name, size, used, avail, percent, mount = rows[1].split()
    assert (name, size, mount) == ("<VfsPosix>", str(4 * 1024 * 1024), "/")
    assert int(used) >= 5000 and int(used) + int(avail) == int(size)
    assert percent == str(100 * int(used) // int(size))


def test_flash_size_none_is_the_default_and_0_the_host_disk():
    # Board(flash_size=None) was the documented default; it must not become a bad size
    assert [Board(flash_size=size).flash_size for size in (None, "4M", "0", "1M")] == [4 << 20, 4 << 20, 0, 1 << 20]


def test_mkdir_touch_rm_rmdir_change_the_flash(board, flash):
    ok(mpremote(board.url, "mkdir", ":d", "+", "touch", ":d/f"))
    assert (flash / "d" / "f").is_file()
    ok(mpremote(board.url, "rm", ":d/f", "+", "rmdir", ":d"))
    assert not (flash / "d").exists()


def test_rename_works_as_on_a_board(board, flash):
    # the unix port's VfsPosix(root).rename fails with ENOENT; a board's flash renames (the
    # spool job and the journal rely on it), absolute and relative to the current folder
    code = ("import os\nos.mkdir('/r')\nf = open('/r/.a', 'w')\nf.write('x')\nf.close()\n"
            "os.rename('/r/.a', '/r/a')\nos.chdir('/r')\nos.rename('a', 'b')\nprint(os.listdir('/r'))")
    done = mpremote(board.url, "exec", code)
    assert done.stdout.strip() == "['b']", done.stderr
    assert (flash / "r" / "b").read_text() == "x"


def test_soft_reset_clears_state_and_runs_boot_py(board, flash):
    (flash / "boot.py").write_text("booted = 'yes'\n")
    out = ok(mpremote(board.url, "exec", "x = 1", "exec", "print(x, booted)"))
    assert out.strip() == "1 yes"
    out = ok(mpremote(board.url, "exec", "x = 1", "soft-reset", "exec", "print('x' in globals(), booted)"))
    assert out.strip() == "False yes"


def test_reset_reboots_hard_and_runs_main_py(flash):
    (flash / "main.py").write_text("open('runs.txt', 'a').write('main\\n')\n")

    def main_runs(expected):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            runs = (flash / "runs.txt").read_text().count("main") if (flash / "runs.txt").exists() else 0
            if runs >= expected:
                return runs
            time.sleep(0.05)
        return runs

    with Board(heap="64K", flash=str(flash)) as board:
        assert main_runs(1) == 1  # power-on
        ok(mpremote(board.url, "soft-reset"))  # a raw REPL soft reset runs boot.py only, as on a board
        assert main_runs(1) == 1
        ok(mpremote(board.url, "exec", "x = 1", "reset"))
        assert main_runs(2) == 2
        assert ok(mpremote(board.url, "exec", "print('x' in globals())")).strip() == "False"


def test_mount_serves_a_host_folder(board, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "greet.py").write_text("print('hello from', __file__)\n")
    out = ok(mpremote(board.url, "mount", str(host), "exec", "import greet"))
    assert "hello from greet.py" in out.splitlines()


def test_ctrl_c_stops_a_busy_loop(board):
    transport = SerialTransport(board.url, timeout=5)
    try:
        transport.enter_raw_repl(soft_reset=False)
        transport.exec_raw_no_follow("while True:\n pass")
        time.sleep(0.5)
        transport.serial.write(b"\x03")
        out, err = transport.follow(timeout=10)
        assert b"KeyboardInterrupt" in err
        assert transport.exec("print('alive')") == b"alive\n"
    finally:
        transport.close()


def test_heap_size_is_the_board_heap(flash):
    big = "b = bytearray(100 * 1024); print(len(b))"
    with Board(heap="64K", flash=str(flash)) as small:
        done = mpremote(small.url, "exec", big)
        assert done.returncode != 0 and "MemoryError" in done.stdout
    with Board(heap="512K", flash=str(flash)) as large:
        assert ok(mpremote(large.url, "exec", big)).strip() == "102400"


def test_the_board_own_code_runs_in_place_and_costs_little_heap(board):
    # a board's firmware (its VFS, machine) takes no Python heap; the emulated board's code runs
    # in place from its firmware image, so a fresh board holds about what the unix port's REPL
    # and the mounts need: 2.9 KB measured on the 64-bit port, where loading that code from
    # files (its bytecode in the heap) held 4.3 KB
    probe = "import gc; gc.collect(); print(gc.mem_alloc())"
    assert int(ok(mpremote(board.url, "exec", probe)).split()[-1]) < 3584
    # and it leaves nothing mounted that a board would not have
    assert ok(mpremote(board.url, "exec", "import vfs; print([m[1] for m in vfs.mount()])")).split() == ["['/']"]


def test_a_firmware_cache_another_user_could_write_is_refused(tmp_path, monkeypatch):
    # the board's firmware image is cached in the temporary folder: one others may write to
    # could hold a firmware of theirs, so the board does not start from it
    cache = tmp_path / ("ulnet-boot-%d" % os.getuid())
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the supervisor's temporary folder
    with pytest.raises(BoardError, match="writable by another user"):
        Board(heap="64K").start()


def test_two_boards_are_independent(tmp_path):
    with Board(flash=str(tmp_path / "one")) as one, Board(flash=str(tmp_path / "two")) as two:
        assert one.url != two.url
        ok(mpremote(one.url, "exec", "open('mine.txt', 'w').write('one')"))
        assert ok(mpremote(two.url, "exec", "import os; print(os.listdir())")).strip() == "[]"
        assert (tmp_path / "one" / "mine.txt").read_text() == "one"
        assert not (tmp_path / "two" / "mine.txt").exists()
        transport = SerialTransport(one.url, timeout=5)
        try:  # one busy board does not stall the other
            transport.enter_raw_repl(soft_reset=False)
            transport.exec_raw_no_follow("while True:\n pass")
            assert ok(mpremote(two.url, "exec", "print('free')")).strip() == "free"
        finally:
            transport.close()


def test_pty_serves_the_same_repl(flash):
    with Board(flash=str(flash), pty=True) as board:
        assert board.pty.startswith("/dev/pts/")
        assert ok(mpremote(board.pty, "exec", "print(1 + 1)")).strip() == "2"


def test_cli_start_and_stop(tmp_path):
    flash = tmp_path / "flash"
    started = subprocess.run([ULNET, "board", "start", "--flash", str(flash)], capture_output=True,
                             text=True, timeout=60)
    url = started.stdout.strip()
    try:
        assert started.returncode == 0 and url.startswith("socket://127.0.0.1:"), started.stderr
        state = find_board(url)
        ok(mpremote(url, "exec", "open('f', 'w').write('kept')"))
        children = child_pids(state["pid"])
        stopped = subprocess.run([ULNET, "board", "stop", url], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert find_board(url) is None
        assert not any(running(pid) for pid in children + [state["pid"]])
        assert (flash / "f").read_text() == "kept"  # a given flash folder outlives the board
    finally:
        if find_board(url):
            subprocess.run([ULNET, "board", "stop", url], timeout=60)
    again = subprocess.run([ULNET, "board", "stop", url], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert again.stderr.strip() == "ulnet board: no emulated board at %s" % url


def test_stop_ends_a_busy_board_and_removes_its_temporary_flash():
    board = Board().start()
    try:
        flash, pid = board.flash, board.proc.pid
        done = mpremote(board.url, "exec", "--no-follow", "while True:\n pass")
        assert done.returncode == 0
        children = child_pids(pid)
    finally:
        started = time.monotonic()
        board.stop()
    assert time.monotonic() - started < 10
    assert children and not any(running(pid) for pid in children)
    assert not os.path.exists(flash)


def test_bad_heap_size_is_one_clear_error():
    with pytest.raises(BoardError, match="bad heap size '64q'"):
        Board(heap="64q")


def test_a_heap_without_its_unit_is_refused_not_rebooted_for_ever():
    """Issue 12 item 11: `--heap 64` (64 bytes) printed a URL, exited 0, and the board rebooted
    for ever ("Invalid command line arguments")."""
    done = subprocess.run([ULNET, "board", "start", "--heap", "64"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("ulnet board: heap size 64 is 64 bytes: a 64-bit board needs at least 8K to boot "
                           "(did you mean 64K?)\n")


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_a_32_bit_board_boots_from_4k(firmware32, flash):
    # a 32-bit board's REPL and boot take about half of a 64-bit one's: 4K is enough, 3K is not
    with pytest.raises(BoardError, match="^heap size 3K is 3072 bytes: a 32-bit board needs at least 4K to boot"):
        Board(heap="3K", firmware=firmware32.path)
    with Board(heap="4K", flash=str(flash), firmware=firmware32.path) as board:
        assert ok(mpremote(board.url, "exec", "print(6 * 7)")).strip() == "42"


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_a_32_bit_firmware_with_ulnet_frozen_in_is_a_board(firmware32, tmp_path):
    flash = tmp_path / "flash"
    started = subprocess.run([ULNET, "board", "start", "--firmware", firmware32.path, "--heap", "24K",
                              "--flash", str(flash)], capture_output=True, text=True, timeout=60)
    url = started.stdout.strip()
    assert started.returncode == 0 and url.startswith("socket://127.0.0.1:"), started.stderr
    try:
        # 4-byte words, a board's path with the frozen modules ahead of /lib, ulnet among them
        probe = ("import sys, ulnet; print(sys.maxsize, sys.path, ulnet.__file__)")
        assert ok(mpremote(url, "exec", probe)).split("\n")[0] == (
            "%d ['', '.frozen', '/lib'] ulnet/__init__.py" % (2 ** 31 - 1))
        # its heap is the one asked for, and its own code runs in place: on 32 bits a fresh
        # board holds about 2.0 KB (2.9 KB on the 64-bit port), nothing mounted but /
        sizes = ok(mpremote(url, "exec", "import gc, vfs; gc.collect(); print(gc.mem_alloc(), gc.mem_free(), "
                            "[m[1] for m in vfs.mount()])")).split()
        assert int(sizes[0]) < 2560 and 23 * 1024 < int(sizes[0]) + int(sizes[1]) <= 24 * 1024  # GC tables
        assert sizes[2] == "['/']"
        done = mpremote(url, "exec", "b = bytearray(24 * 1024)")
        assert done.returncode != 0 and "MemoryError" in done.stdout
        # its flash folder, a soft reset that runs boot.py, and a ROMFS partition run in place
        (flash / "boot.py").write_text("booted = 'yes'\n")
        ok(mpremote(url, "fs", "cp", str(flash / "boot.py"), ":copy.py"))
        assert (flash / "copy.py").read_text() == "booted = 'yes'\n"
        out = ok(mpremote(url, "exec", "x = 1", "soft-reset", "exec", "print('x' in globals(), booted)"))
        assert out.strip() == "False yes"
        romfs_from(tmp_path / "rom", {"lib/inrom.py": "where = __file__\n"}, flash / ".romfs")
        assert ok(mpremote(url, "soft-reset", "exec", "import inrom; print(inrom.where)")).strip() == "/rom/lib/inrom.py"
    finally:
        subprocess.run([ULNET, "board", "stop", url], timeout=60)


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_a_32_bit_board_polls_without_allocating_whatever_its_heap(firmware32, flash):
    # a board's RAM lies in the low half of the address space; a 32-bit process's large heap
    # would not, and there MicroPython's poll allocates at every modify (what the upload does
    # at every full socket buffer): 0 bytes per modify, as on a board, also on a 512 KB heap
    code = ("import gc, select, socket\ns = socket.socket()\np = select.poll()\np.register(s, 1)\n"
            "i = a = 0\ngc.collect()\ngc.disable()\na = gc.mem_alloc()\nwhile i < 100:\n p.modify(s, 5)\n i += 1\n"
            "print(gc.mem_alloc() - a)")
    with Board(heap="512K", flash=str(flash), firmware=firmware32.path) as board:
        assert ok(mpremote(board.url, "exec", code)).strip() == "0"


def romfs_from(tree, files, image):
    """Write a ROMFS image (mpremote's own builder) holding files {path: source}."""
    from mpremote.romfs import make_romfs

    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    image.write_bytes(bytes(make_romfs(str(tree), mpy_cross=False)))


def test_a_firmware_that_is_not_a_unix_port_binary_is_one_clear_error(tmp_path):
    with pytest.raises(BoardError, match="^firmware %s: No such file or directory$" % (tmp_path / "none")):
        Board(firmware=str(tmp_path / "none")).start()
    (tmp_path / "script").write_text("#!/bin/sh\n")
    with pytest.raises(BoardError, match="is not an executable ELF binary"):
        Board(firmware=str(tmp_path / "script")).start()
