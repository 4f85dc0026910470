"""Command-line tools (``csfair-data``, ``csfair-lexicon``, ``csfair-prep``): thin argparse front ends.

Top layer: may import every other csfair package; nothing in csfair imports it.
"""
import argparse
import sys

from csfair.io import DiskFullError, InputFormatError

#: Errors a user can fix (bad or missing input, a full disk): printed as one line, exit status 2.
USER_ERRORS = (InputFormatError, FileNotFoundError, KeyError, ValueError, DiskFullError)


def run_cli(parser: argparse.ArgumentParser, argv=None) -> None:
    """Parse ``argv`` and run the chosen subcommand; user errors become ``prog cmd: error: ...`` and exit 2."""
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as e:
        print(f"{parser.prog} {args.cmd}: error: {e}", file=sys.stderr)
        sys.exit(2)
