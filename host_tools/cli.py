"""`host_tools` command line: one subcommand per module, each adding its own parser."""
import argparse
import sys

from host_tools.errors import UserError

# Each command module has add_parser(subparsers) that sets `func` on its parser.
COMMANDS = ("convert", "run", "check", "export", "deploy", "plan", "repl")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="host_tools",
        description="mcutrain host tools: prepare models for on-device training and drive the boards.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = __import__(f"host_tools.cmd_{name}", fromlist=["add_parser"])
        module.add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"host_tools {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
