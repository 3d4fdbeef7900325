"""`ulnet deploy` against emulated boards: what lands on the device, skipping, errors, mip."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from ulnet.tools import deploy
from ulnet.tools.board import Board
from ulnet.tools.device import ANSWER_DEADLINE_S

BIN = os.path.dirname(sys.executable)
MPREMOTE = shutil.which("mpremote", path=BIN) or shutil.which("mpremote")
ULNET = shutil.which("ulnet", path=BIN) or shutil.which("ulnet")

pytestmark = pytest.mark.timeout(180)


def ulnet(*args, timeout=120):
    return subprocess.run([ULNET, *args], capture_output=True, text=True, timeout=timeout)


def mpremote(device, *args):
    return subprocess.run([MPREMOTE, "connect", device, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def flash(tmp_path):
    return tmp_path / "flash"


@pytest.fixture
def board(flash):
    with Board(heap="64K", flash=str(flash)) as b:
        yield b


def expected_targets():
    return sorted("/lib/ulnet/" + rel[:-3] + ".mpy" for _, rel in deploy.sources())


def device_files(flash):
    return sorted("/" + os.path.relpath(os.path.join(d, f), flash) for d, _, fs in os.walk(flash) for f in fs)


def test_sources_are_core_and_the_upy_port_never_tools():
    rels = [rel for _, rel in deploy.sources()]
    core = [os.path.relpath(os.path.join(d, f), os.path.join(deploy.ROOT, "core"))
            for d, _, fs in os.walk(os.path.join(deploy.ROOT, "core")) for f in fs if f.endswith(".py")]
    assert sorted(r for r in rels if not r.startswith("ports/")) == sorted(core)
    assert set(r for r in rels if r.startswith("ports/")) <= {"ports/__init__.py", "ports/upy.py",
                                                               "ports/upy_tls.py"}
    assert "ports/__init__.py" in rels and "errors.py" in rels and "ftp/__init__.py" in rels
    assert not any(r.startswith("tools/") or r.split("/")[-1] == "cli.py" for r in rels)


def test_deploy_compiles_for_the_board_and_imports(board, flash):
    done = ulnet("deploy", board.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:-1]) == expected_targets()
    assert all(line.split()[-1] == "written" for line in lines[:-1])
    sizes = {t: (flash / t[1:]).stat().st_size for t in expected_targets()}
    assert lines[-1] == "total %d files, %d B (%d written, 0 unchanged, 0 removed)" % (
        len(sizes), sum(sizes.values()), len(sizes))
    assert device_files(flash) == expected_targets()  # .mpy only: nothing else, no tools
    got = mpremote(board.url, "exec", "import sys; print(sys.implementation._mpy & 255)")
    assert got.returncode == 0 and got.stdout.strip().isdigit(), (got.stdout, got.stderr)
    mpy_version = int(got.stdout)
    for target in expected_targets():
        header = (flash / target[1:]).read_bytes()[:2]
        assert header == b"M" + bytes([mpy_version])
    out = mpremote(board.url, "exec", "import ulnet\nprint(ulnet.__file__, ulnet.NetError(111, 'x'))")
    assert out.stdout.strip() == "/lib/ulnet/__init__.mpy x", out.stderr


def test_redeploy_skips_unchanged_rewrites_damaged_and_removes_stale(board, flash):
    assert ulnet("deploy", board.url).returncode == 0
    damaged = flash / "lib" / "ulnet" / "errors.mpy"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    (flash / "lib" / "ulnet" / "errors.py").write_text("raise ImportError('stale source shadows the .mpy')\n")
    done = ulnet("deploy", board.url)
    assert done.returncode == 0, done.stderr
    actions = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines()[:-1]}
    assert actions.pop("/lib/ulnet/errors.mpy") == "written"
    assert actions.pop("/lib/ulnet/errors.py") == "removed"
    assert set(actions.values()) == {"unchanged"}
    assert "(1 written, %d unchanged, 1 removed)" % len(actions) in done.stdout
    out = mpremote(board.url, "exec", "import ulnet.errors\nprint(ulnet.errors.errno_text(111))")
    assert out.stdout.strip() == "connection refused", out.stderr


def test_config_is_copied_and_never_printed(board, flash, tmp_path):
    config = tmp_path / "device.json"
    config.write_text(json.dumps({"url": "ftp://scanner:hunter2-secret@127.0.0.1/in", "device_id": "SCANNER7"}))
    done = ulnet("deploy", board.url, "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (flash / "ulnet.json").read_bytes() == config.read_bytes()
    assert "hunter2" not in done.stdout + done.stderr
    assert "/ulnet.json" in done.stdout
    config.write_text('{"password": "hunter2-secret",')
    broken = ulnet("deploy", board.url, "--config", str(config))
    assert broken.returncode == 1
    assert broken.stderr == "ulnet deploy: config %s is not valid JSON\n" % config
    assert "hunter2" not in broken.stdout + broken.stderr


@pytest.mark.parametrize("cfg, why", [
    ({"device_id": "SCANNER7", "spool": "/spool"}, "missing url"),
    ({"url": "ftp://scanner:hunter2-secret@127.0.0.1/in", "device_id": "S7", "keep": "no"},
     "keep must be true or false"),
    ({"url": "ftp://scanner:hunter2-secret@127.0.0.1:port/in", "device_id": "S7"}, "bad port"),
])
def test_a_config_the_device_would_refuse_is_refused_at_deploy(board, flash, tmp_path, cfg, why):
    """Issue 12 item 10: a config without "url" was written, and failed later on the board.
    deploy checks it with the device's own code (ulnet.spool.check_config) and writes nothing."""
    config = tmp_path / "device.json"
    config.write_text(json.dumps(cfg))
    done = ulnet("deploy", board.url, "--config", str(config))
    assert done.returncode == 1 and done.stderr.startswith("ulnet deploy: config %s: " % config)
    assert why in done.stderr and "hunter2" not in done.stdout + done.stderr
    assert not os.path.exists(flash / "ulnet.json") and not os.path.exists(flash / "lib")


def test_out_of_flash_is_one_line(tmp_path):
    with Board(flash=str(tmp_path / "flash"), flash_size="2K") as small:
        done = ulnet("deploy", small.url)
    assert done.returncode == 1
    assert done.stderr.startswith("ulnet deploy: out of flash: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "flash" / "lib").exists()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_device():
    """A TCP 'board' that takes the connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    conns, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conns.append(server.accept()[0])
            except socket.timeout:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    yield "socket://127.0.0.1:%d" % server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in conns:
        conn.close()
    server.close()


@pytest.mark.parametrize("device, message", [
    ("/dev/ttyULNET-NOPE", "unknown device /dev/ttyULNET-NOPE: no such serial port"),
    ("bogus://x", "unknown device bogus://x: use a serial path, socket:// or rfc2217://"),
    ("refused", "cannot open socket://127.0.0.1:{port}: is the board connected and the port free?"),
    ("silent", "{device} is not answering (no raw REPL within %d s)" % ANSWER_DEADLINE_S),
    # mpremote's shortcuts (issue 12 item 13): a0 is /dev/ttyACM0, which this machine lacks
    ("a0", "unknown device /dev/ttyACM0: no such serial port"),
    ("u12", "unknown device /dev/ttyUSB12: no such serial port"),
    ("auto", "auto: no USB serial device found"),
    ("id:NO-SUCH-SERIAL", "no serial device with serial number NO-SUCH-SERIAL"),
    ("127.0.0.1:40185", "unknown device 127.0.0.1:40185: did you mean socket://127.0.0.1:40185?"),
])
def test_bad_device_is_one_line_and_quick(device, message, request):
    port = free_port()
    if device == "refused":
        device = "socket://127.0.0.1:%d" % port
    elif device == "silent":
        device = request.getfixturevalue("silent_device")
    started = time.monotonic()
    done = ulnet("deploy", device)
    assert time.monotonic() - started < ANSWER_DEADLINE_S + 10
    assert done.returncode == 1
    assert done.stderr == "ulnet deploy: " + message.format(port=port, device=device) + "\n"


def test_package_json_is_current_and_mip_installs_it(board, flash):
    with open(os.path.join(deploy.ROOT, "package.json")) as f:
        assert json.load(f) == deploy.package_json(), "stale package.json: run `ulnet deploy --package-json`"
    done = mpremote(board.url, "mip", "install", os.path.join(deploy.ROOT, "package.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert device_files(flash) == sorted("/lib/" + dest for dest, _ in deploy.package_json()["urls"])
    out = mpremote(board.url, "exec", "import ulnet\nprint(ulnet.__file__, ulnet.__version__)")
    assert out.stdout.strip() == "/lib/ulnet/__init__.py " + deploy.package_json()["version"]


def test_a_plain_deploy_after_a_romfs_one_is_what_the_board_imports(board, flash):
    """Issue 12 item 3: after `deploy --romfs` a plain deploy reported success while the board
    went on importing the ROMFS copy (first on sys.path), and --romfs left empty folders."""
    assert ulnet("deploy", board.url).returncode == 0
    done = ulnet("deploy", board.url, "--romfs")
    assert done.returncode == 0, done.stderr
    assert not (flash / "lib" / "ulnet").exists()  # files and folders: nothing left behind
    out = mpremote(board.url, "exec", "import ulnet\nprint(ulnet.__file__)")
    assert out.stdout.strip() == "/rom/lib/ulnet/__init__.mpy", out.stderr
    done = ulnet("deploy", board.url)
    assert done.returncode == 0, done.stderr
    assert "/.romfs" in done.stdout and "removed" in done.stdout
    out = mpremote(board.url, "exec", "import ulnet\nprint(ulnet.__file__)")
    assert out.stdout.strip() == "/lib/ulnet/__init__.mpy", out.stderr
    assert device_files(flash) == expected_targets()


def test_a_copy_first_on_the_path_that_deploy_cannot_remove_is_one_line(board, flash):
    """A ulnet ahead of /lib that is not the emulated board's ROMFS (here one in /, which ''
    on sys.path finds first): the deploy would not be used, and says so instead of writing."""
    (flash / "ulnet").mkdir()
    (flash / "ulnet" / "__init__.py").write_text("OLD = 1\n")
    done = ulnet("deploy", board.url)
    assert done.returncode == 1
    assert done.stderr.startswith("ulnet deploy: the board imports ulnet from /ulnet, which comes before "
                                  "/lib on its sys.path: a copy in /lib/ulnet would never be used; remove that copy first\n"), done.stderr
    assert done.stderr.count("\n") == 1
    assert not (flash / "lib").exists()


@pytest.mark.timeout(1200)  # the first test to ask for the firmware may have to build it
def test_a_board_with_ulnet_frozen_in_gets_nothing_copied(firmware32, flash, tmp_path):
    # frozen modules come first on a board's path: a copy in /lib would never be imported, so
    # the deploy copies none, says why, and removes one an earlier deploy left; the config goes
    (flash / "lib" / "ulnet").mkdir(parents=True)
    (flash / "lib" / "ulnet" / "__init__.mpy").write_bytes(b"an earlier deploy's copy")
    config = tmp_path / "device.json"
    config.write_text(json.dumps({"url": "ftp://scanner:secret@127.0.0.1/in", "device_id": "D1"}))
    with Board(heap="32K", flash=str(flash), firmware=firmware32.path) as board:
        done = ulnet("deploy", board.url, "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert [line.split(None, 3) for line in done.stdout.splitlines()] == [
            ["/lib/ulnet", "0", "B", deploy.FROZEN],
            ["/lib/ulnet/__init__.mpy", "0", "B", "removed"],
            ["/ulnet.json", str(config.stat().st_size), "B", "written"],
            ["total", "1", "files,", "%d B (1 written, 0 unchanged, 1 removed)" % config.stat().st_size]]
        assert device_files(flash) == ["/ulnet.json"]
        out = mpremote(board.url, "exec", "import ulnet.ftp.session, ulnet\nprint(ulnet.__file__)")
        assert out.stdout.strip() == "ulnet/__init__.py", out.stderr
