"""A device's raw REPL through mpremote's transport, with deadlines and one-line errors.

DEVICE is what mpremote accepts: a serial path (/dev/ttyACM0, a pty such as QEMU's or an
emulated board's), `socket://HOST:PORT` or `rfc2217://HOST:PORT`, and mpremote's shortcuts
(a0, u0, c0, auto, id:SERIAL, port:PATH). Shared by `ulnet deploy` and
`ulnet hil`. Rules: no raw-REPL client of our own (mpremote's SerialTransport does the protocol),
every read has a timeout (the serial timeout bounds mpremote's blocking reads), and every failure
is a DeviceError whose message is one line naming the device.

WORK_DIR is the host tools' own folder on a device: `ulnet hil`, the board tests and `ulnet demo`
write only inside it (their copy of ulnet, test modules, config, spool, test files) and remove it
when they end; a run that was cut short leaves it for the next run to remove at its start. A
device's own /ulnet.json, /spool, /lib and every other file stay as they were.
"""

import contextlib
import io
import os
import re
import socket
import time

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

# a board that has not shown its raw REPL prompt by then is not answering
ANSWER_DEADLINE_S = 5
# bounds each blocking serial read inside mpremote (raw-paste headers, "OK")
READ_TIMEOUT_S = 5
# a command run() sends ends by then, however much it prints
RUN_DEADLINE_S = 120
# of each frame of a board's answer, the bytes kept: a board that prints without end cannot
# fill the host's memory
OUTPUT_KEEP = 1 << 16
URL_SCHEMES = ("socket://", "rfc2217://", "loop://")
# a pty (QEMU's emulated UART) has no baud rate: writes are paced to a 115200 baud line, and
# in small pieces, as firmware without raw-paste flow control drops what it cannot take in time
# (not an emulated board's pty: its supervisor reads as fast as it is written to)
PTY_BYTES_PER_S = 11520
PTY_CHUNK = 16
WORK_DIR = "/ulnet-tmp"
# removes a folder and all it holds on the board; nothing when it is missing. A few names at a
# time: the list of a spool's hundreds of entries does not fit a small heap
REMOVE_TREE = """
import os
def _rm(p):
 try:
  d = os.stat(p)[0] & 0x4000
 except OSError:
  return
 if d:
  while True:
   n = []
   for e in os.ilistdir(p):
    n.append(e[0])
    if len(n) == 8:
     break
   if not n:
    break
   for x in n:
    _rm(p + "/" + x)
  os.rmdir(p)
 else:
  os.remove(p)
_rm(%r)
del _rm
"""


class DeviceError(Exception):
    """The device could not be opened, did not answer, or code on it failed (one-line message)."""


def resolve(device):
    """The serial path or URL for mpremote's device shortcuts: aN, uN, cN (/dev/ttyACMN,
    /dev/ttyUSBN, COMN), `auto` (the first USB serial device), `id:SERIAL`, `port:PATH`."""
    match = re.match(r"^([auc])([0-9]+)$", device)
    if match:
        return {"a": "/dev/ttyACM", "u": "/dev/ttyUSB", "c": "COM"}[match.group(1)] + match.group(2)
    if device.startswith("port:"):
        return device[5:]
    if device == "auto" or device.startswith("id:"):
        from serial.tools.list_ports import comports

        for port in sorted(comports()):
            if (device == "auto" and port.vid is not None and port.pid is not None) or \
                    port.serial_number == device[3:]:
                return port.device
        raise DeviceError("auto: no USB serial device found" if device == "auto" else
                          "no serial device with serial number " + device[3:])
    if re.match(r"^[\w.-]+:[0-9]+$", device):
        raise DeviceError("unknown device %s: did you mean socket://%s?" % (device, device))
    return device


def open_device(device, soft_reset=False):
    """A SerialTransport in the raw REPL; soft_reset=True reboots the board first. device is
    a serial path, a URL or one of mpremote's shortcuts (see resolve)."""
    device = resolve(device)
    if "://" in device:
        if not device.startswith(URL_SCHEMES):
            raise DeviceError("unknown device %s: use a serial path, socket:// or rfc2217://" % device)
    elif not os.path.exists(device):
        raise DeviceError("unknown device %s: no such serial port" % device)
    # mpremote prints what it read when it gives up; our callers print one line instead
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            transport = SerialTransport(device, timeout=READ_TIMEOUT_S)
            if transport.is_pty and not _emulated(device):  # an emulated board's reads keep up
                transport.serial = PacedSerial(transport.serial)
        except TransportError:
            raise DeviceError("cannot open %s: is the board connected and the port free?" % device) from None
        try:
            transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=ANSWER_DEADLINE_S)
        except (TransportError, OSError) as e:
            transport.close()
            raise DeviceError("%s is not answering (no raw REPL within %d s)"
                              % (device, ANSWER_DEADLINE_S)) from e
    return transport


def _emulated(device):
    from ulnet.tools.board import find_board

    return find_board(device) is not None


class PacedSerial:
    """A serial port object whose writes go no faster than PTY_BYTES_PER_S."""

    def __init__(self, port):
        object.__setattr__(self, "_port", port)

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        setattr(self._port, name, value)  # mpremote sets timeout, rts, dtr on the port

    def write(self, data):
        for start in range(0, len(data), PTY_CHUNK):
            self._port.write(data[start:start + PTY_CHUNK])
            self._port.flush()
            time.sleep(PTY_CHUNK / PTY_BYTES_PER_S)
        return len(data)


@contextlib.contextmanager
def session(device, soft_reset=False):
    """The device in the raw REPL for the block; left in the friendly REPL and closed after."""
    transport = open_device(device, soft_reset)
    try:
        yield transport
    finally:
        with contextlib.suppress(OSError, TransportError):
            transport.exit_raw_repl()
        transport.close()


def run(transport, code, timeout_s=10, deadline_s=RUN_DEADLINE_S):
    """Execute code on the board; returns its output, raises DeviceError with the error's last line.

    timeout_s bounds the silence between two output bytes, deadline_s the whole run.
    """
    started = time.monotonic()
    try:
        transport.exec_raw_no_follow(code)
        out, err, complete = read_answer(transport, timeout_s, deadline_s)
    except (TransportError, OSError) as e:
        raise DeviceError("device stopped answering: %s" % e) from None
    if not complete:
        # interrupted, so the board takes the next command (code that printed without end
        # would otherwise hold that one too)
        with contextlib.suppress(TransportError, OSError):
            interrupt(transport, ANSWER_DEADLINE_S)
        if time.monotonic() - started < deadline_s:
            raise DeviceError("device stopped answering: silent for %s s" % timeout_s)
        raise DeviceError("device did not finish within %s s" % deadline_s)
    if err:
        raise DeviceError(error_line(err.decode(errors="replace")))
    return out


def interrupt(transport, deadline_s):
    """Ctrl-C to the code running on the board; True when it ended (its answer read to the
    end) within deadline_s."""
    transport.serial.write(b"\x03")
    return read_answer(transport, None, deadline_s)[2]


def read_answer(transport, silence_s=None, deadline_s=None, consume=None):
    """The board's answer to code sent with exec_raw_no_follow: its output and its error text,
    each ended by 0x04; (out, err, complete). Bounded both ways: silence_s between two bytes and
    deadline_s in all (mpremote's follow checks its deadline only in silence, so a board that
    never stopped printing held it for ever). Of each the first OUTPUT_KEEP bytes are kept;
    consume, if given, hears all of the output."""
    serial = transport.serial
    start = last = time.monotonic()
    frames = (bytearray(), bytearray())
    at = 0
    while at < 2:
        now = time.monotonic()
        if deadline_s is not None and now - start >= deadline_s or silence_s is not None and now - last >= silence_s:
            break
        # a pty tells nothing waiting (mpremote reads it a byte at a time too); the last two
        # bytes waiting are read one by one: what follows the answer's end (the raw REPL's next
        # prompt) stays for the next command
        waiting = 1 if transport.is_pty else _waiting(serial)
        if not waiting:
            time.sleep(0.01)
            continue
        chunk = serial.read(waiting - 2 if waiting > 2 else 1)
        if chunk:
            last = time.monotonic()
        while chunk and at < 2:
            end = chunk.find(b"\x04")
            piece = chunk if end < 0 else chunk[:end]
            if consume is not None and at == 0 and piece:
                consume(piece)
            frames[at].extend(piece[:OUTPUT_KEEP - len(frames[at])])
            if end < 0:
                break
            at += 1
            chunk = chunk[end + 1:]
    return bytes(frames[0]), bytes(frames[1]), at == 2


def _waiting(serial):
    """How many bytes wait to be read. pyserial's socket:// port answers only 0 or 1 (a select),
    which makes a board's output arrive a byte per system call, slower than an emulated board
    writes it: its socket is asked instead (a peek); an ended connection counts 1, so that the
    read reports it."""
    waiting = serial.in_waiting
    sock = getattr(serial, "_socket", None)
    if waiting and sock is not None:
        waiting = len(sock.recv(1 << 16, socket.MSG_PEEK)) or 1
    return waiting


def error_line(error_output):
    """The last line of a MicroPython traceback, e.g. 'OSError: [Errno 28] ENOSPC'."""
    lines = [line.strip() for line in error_output.splitlines() if line.strip()]
    return lines[-1] if lines else "error on the board"


def remove_tree(transport, path):
    """Remove `path` (a folder inside WORK_DIR, or WORK_DIR itself) and everything in it."""
    if path != WORK_DIR and not path.startswith(WORK_DIR + "/"):
        raise ValueError("remove_tree only removes the tools' own folder %s, not %s" % (WORK_DIR, path))
    run(transport, REMOVE_TREE % path, timeout_s=30)


def make_work_dir(transport, *subfolders):
    """A fresh, empty WORK_DIR (what an earlier run left is removed first), with subfolders."""
    remove_tree(transport, WORK_DIR)
    run(transport, "import os\nfor d in %r:\n os.mkdir(d)"
        % ([WORK_DIR] + [WORK_DIR + "/" + s for s in subfolders],))
