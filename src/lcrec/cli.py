"""The `lcrec` command: one subcommand per pipeline stage, each defined in `lcrec.commands.<name>`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

# Order is the order shown in `lcrec --help`: the pipeline's order.
COMMANDS = (
    "prepare",
    "index",
    "augment",
    "tasks",
    "train",
    "evaluate",
    "baseline",
    "recommend",
    "push",
    "serve",
    "demo",
    "quickstart",
)


def build_parser() -> argparse.ArgumentParser:
    """Collect every available subcommand; each module's `register(subparsers)` adds its own parser."""
    parser = argparse.ArgumentParser(prog="lcrec", description="LC-Rec: generative recommendation with semantic item IDs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"lcrec.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as error:
        # Our own errors name the file, line or item; show them without a traceback.
        if args.verbose:
            raise
        print(f"lcrec {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
