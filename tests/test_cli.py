"""The `ulnet` command line's own help: what a new user reads first (issue 12 item 16: no
--version, `test` and `example` missing from the help, commands without a description)."""

import subprocess
import sys

import ulnet

ULNET = [sys.executable, "-m", "ulnet.tools"]


def run(*args):
    return subprocess.run(ULNET + list(args), capture_output=True, text=True, timeout=60)


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout == "ulnet %s\n" % ulnet.__version__


def test_help_names_every_command_and_the_checkout_script_ones():
    out = run("--help").stdout
    for command in ("demo", "upload", "board", "deploy", "hil", "firmware"):
        assert "\n    %s " % command in out, command
    assert "./ulnet test" in out and "./ulnet example" in out


def test_every_command_describes_itself_and_its_units():
    for command in ("demo", "upload", "board", "deploy", "hil"):
        out = run(command, "--help").stdout
        lines = out.split("\n\n")
        assert len(lines) > 2 and not lines[1].startswith(("positional", "options")), (command, out)
    assert "SECONDS" in run("hil", "--help").stdout and "SECONDS" in run("upload", "--help").stdout
