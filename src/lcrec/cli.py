"""The `lcrec` command: one subcommand per pipeline stage, each defined in `lcrec.commands.<name>`.

As in TRL's CLI, the top-level parser only picks the command; the command's own parser (its option dataclasses,
`make_parser`) then parses everything after the command name into dataclass instances for its `run`. Expected
failures (bad input, missing files, unavailable devices or extras) print one line `lcrec CMD: error: ...` and
exit with code 2; `-v` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from .commands import set_command_line

# Order is the order shown in `lcrec --help`: the pipeline's order.
COMMANDS = (
    "prepare",
    "index",
    "preset",
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

# Optional dependencies a command may need: the module that failed to import -> the pip extra that provides it.
EXTRAS = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "gradio": "serve",
    "gguf": "gguf",
    "deepspeed": "deepspeed",
    "playwright": "dev",
}

# Failures a user can cause and fix (bad input, missing or unreadable files, unavailable devices, Hub ids that do not
# resolve: all OSError or ValueError); anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (ValueError, KeyError, OSError, ImportError)

VERBOSE_FLAGS = {"-v", "--verbose"}
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def lcrec_version() -> str:
    """The installed distribution's version (pyproject.toml is the one source)."""
    try:
        return version("lcrec")
    except PackageNotFoundError:
        return "unknown (not installed)"


def command_module(name: str):
    """The module `lcrec.commands.<name>`."""
    return importlib.import_module(f"lcrec.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: global options and one entry per command (its options are the command's own parser)."""
    parser = argparse.ArgumentParser(
        prog="lcrec",
        description="LC-Rec: generative recommendation with semantic item IDs. "
        "`lcrec COMMAND --help` lists a command's options with their defaults.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks instead of one-line errors"
    )
    parser.add_argument("--version", action="version", version=f"lcrec {lcrec_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        subparsers.add_parser(name, help=command_module(name).HELP, add_help=False)
    return parser


def configure_logging(verbose: bool) -> None:
    """lcrec's own INFO lines by default, other libraries' from WARNING (no httpx request lines); -v: all INFO and
    lcrec's DEBUG. A host that configured logging already keeps its handlers."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("lcrec").setLevel(logging.DEBUG if verbose else logging.INFO)


def parse_command(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list, argparse.Namespace]:
    """The command's dataclass instances and the namespace of the options that are not dataclass fields.

    A TrlParser (`lcrec train`) also reads `--config YAML` (the command's parser resolves preset names).
    """
    from trl import TrlParser

    if isinstance(parser, TrlParser):
        outputs = parser.parse_args_and_config(argv, return_remaining_strings=True)
    else:
        outputs = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True, look_for_args_file=False)
    *options, remaining = outputs
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    extra = options.pop() if options and isinstance(options[-1], argparse.Namespace) else argparse.Namespace()
    return options, extra


def one_line(error: BaseException) -> str:
    """The error's message on one line; a missing optional dependency names the pip extra that installs it."""
    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in EXTRAS:
        extra = EXTRAS[error.name.split(".")[0]]
        return f'this needs the optional dependency {error.name!r}: pip install "lcrec[{extra}]"'
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split()) or type(error).__name__


def _is_own_import_bug(error: BaseException) -> bool:
    """An import failing inside lcrec itself is a bug, never a user's mistake."""
    return isinstance(error, ImportError) and (error.name or "").split(".")[0] == "lcrec"


def close_process_group() -> None:
    """Tear down a torch.distributed process group a multi-process command started (accelerate launch), so the
    processes leave together; a gloo group left to interpreter shutdown can abort a process that already finished."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.barrier()
        distributed.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command_argv = argv[argv.index(args.command) + 1 :]
    if len(unknown) > len(command_argv):  # options before the command that lcrec does not know
        parser.error(f"unrecognized arguments: {' '.join(unknown[: len(unknown) - len(command_argv)])}")
    # `-v` is accepted after the command too (`lcrec evaluate ... -v`); the command's own parser never sees it.
    verbose = args.verbose or bool(VERBOSE_FLAGS & set(command_argv))
    command_argv = [arg for arg in command_argv if arg not in VERBOSE_FLAGS]
    configure_logging(verbose)
    try:
        module = command_module(args.command)
        set_command_line(argv)
        command_parser = module.make_parser(prog=f"lcrec {args.command}")
        options, _ = parse_command(command_parser, command_argv)
        code = int(module.run(*options) or 0)
        close_process_group()
        return code
    except KeyboardInterrupt:
        if verbose:
            raise
        print(f"lcrec {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED_ERRORS as error:
        if verbose or _is_own_import_bug(error):
            raise
        print(f"lcrec {args.command}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
