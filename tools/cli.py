"""The `ulnet` command line: one subcommand per host tool.

Each subcommand lives in its own module and registers itself through `add_parser(subparsers)`;
this file only wires them together.
"""

import argparse
import sys

# subcommand modules, in help order; each provides add_parser(subparsers) and run(args)
_COMMANDS = ("demo", "upload", "board", "deploy", "hil", "firmware")


def build_parser():
    parser = argparse.ArgumentParser(prog="ulnet", description=__doc__.splitlines()[0])
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
