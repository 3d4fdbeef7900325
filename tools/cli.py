"""The `ulnet` command line: one subcommand per host tool.

Each subcommand lives in its own module and registers itself through `add_parser(subparsers)`;
this file only wires them together.
"""

import argparse
import sys

# subcommand modules, in help order; each provides add_parser(subparsers) and run(args)
_COMMANDS = ("demo", "upload", "board", "deploy", "hil", "firmware")


def build_parser():
    from ulnet import __version__

    parser = argparse.ArgumentParser(
        prog="ulnet", description="ulnet's host tools: scan upload, emulated boards, deploy, board tests.",
        epilog="In a checkout, ./ulnet also runs `./ulnet test [pytest args]` (the test suite) and "
        "`./ulnet example` (the README's event-driven example). Each COMMAND has its own --help.")
    parser.add_argument("--version", action="version", version="ulnet " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        module = __import__("ulnet.tools." + name, None, None, ["add_parser"])
        module.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
