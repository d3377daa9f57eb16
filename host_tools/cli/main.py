"""`host_tools` command line: one subcommand per module of host_tools.cli."""
import argparse
import importlib
import sys

from host_tools.errors import UserError

# Each command module has HELP, DESCRIPTION, optionally EPILOG (examples, printed as written),
# add_arguments(parser) and command(args) -> exit status.
COMMANDS = ("convert", "run", "check", "export", "deploy", "plan", "repl")


def add_command(subparsers, name):
    module = importlib.import_module(f"host_tools.cli.{name}")
    epilog = getattr(module, "EPILOG", None)
    p = subparsers.add_parser(name, help=module.HELP, description=module.DESCRIPTION, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter)
    module.add_arguments(p)
    p.set_defaults(func=module.command)
    return p


def build_parser():
    parser = argparse.ArgumentParser(
        prog="host_tools",
        description="mcutrain host tools: prepare models for on-device training and drive the boards.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        add_command(sub, name)
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
