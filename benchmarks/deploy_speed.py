"""Deploy benchmark: `ulnet deploy` against `mpremote fs cp` of the same bytes, on one board.

Each round starts a fresh emulated board (the MicroPython unix port run by `ulnet board`, reached
at socket://127.0.0.1:PORT, or at its pty with --pty, as a USB serial board is), then times, as a
user would run them (each a fresh process, from its start to its end):
- a full `ulnet deploy` onto the empty flash (compile with mpy-cross, write, verify);
- the same deploy again, nothing changed (every file's sha256 checked on the board);
- `mpremote connect DEVICE fs cp FILE :FILE` of one file as big as all the deployed .mpy files
  together (the issue's yardstick: a full deploy within 2x of it, an unchanged one under 1 s).
Printed: medians of ROUNDS, and the ratios full/cp and unchanged/cp. Nothing here asserts a speed.

    python benchmarks/deploy_speed.py [--rounds 5] [--pty]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
ULNET = shutil.which("ulnet", path=BIN) or "ulnet"
MPREMOTE = shutil.which("mpremote", path=BIN) or "mpremote"


def timed(command):
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(command[:3]), (done.stderr or done.stdout)[-500:]))
    return took, done.stdout


def one_round(pty, tmp):
    from ulnet.tools.board import Board

    with Board(heap="256K", flash=os.path.join(tmp, "flash"), pty=pty) as board:
        device = board.pty if pty else board.url
        full, out = timed([ULNET, "deploy", device])
        total = int(out.splitlines()[-1].split(",")[1].split()[0])  # "total N files, B B (...)"
        unchanged, _ = timed([ULNET, "deploy", device])
        blob = os.path.join(tmp, "blob.bin")
        with open(blob, "wb") as f:
            f.write(os.urandom(total))
        cp, _ = timed([MPREMOTE, "connect", device, "fs", "cp", blob, ":blob.bin"])
    shutil.rmtree(os.path.join(tmp, "flash"), ignore_errors=True)
    return full, unchanged, cp, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pty", action="store_true", help="reach the board at its pty, not socket://")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ulnet-deploy-bench-") as tmp:
        for _ in range(args.rounds):
            runs.append(one_round(args.pty, tmp))
    full, unchanged, cp = (statistics.median(r[i] for r in runs) for i in range(3))
    print("emulated board (unix port 1.29, 64-bit) at %s; %d B of .mpy; medians of %d rounds"
          % ("its pty" if args.pty else "socket://", runs[0][3], args.rounds))
    print("%-34s %7s %10s" % ("", "seconds", "x fs cp"))
    for label, value in (("ulnet deploy, full", full), ("ulnet deploy, nothing changed", unchanged),
                         ("mpremote fs cp, same bytes, 1 file", cp)):
        print("%-34s %7.2f %10.2f" % (label, value, value / cp))


if __name__ == "__main__":
    main()
