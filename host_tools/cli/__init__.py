"""`host_tools` command line: main.py builds the parser, one module per subcommand."""
import sys


def write_now(text: str) -> None:
    """A board's output as it comes (run, deploy --run)."""
    sys.stdout.write(text)
    sys.stdout.flush()
