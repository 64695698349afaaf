"""The `lcrec` subcommands, one module each, built the way TRL's scripts build theirs.

Every module defines `HELP` (one line for `lcrec --help`), `make_parser(subparsers=None, prog=None)` returning an
`HfArgumentParser` (a `TrlParser` where TRL's options join) over the command's option dataclasses, and
`run(*options) -> int` taking the parsed dataclass instances in the same order. Heavy imports stay inside
`make_parser` and `run`, so `lcrec --help` imports no model code.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shlex
from collections.abc import Callable, Sequence
from typing import Any

_command_line: str | None = None


def set_command_line(argv: Sequence[str]) -> None:
    """Record the command being run (`lcrec.cli.main` calls this with the arguments it received)."""
    global _command_line
    _command_line = shlex.join(["lcrec", *argv])


def command_line() -> str | None:
    """The `lcrec ...` command line being run, as a shell would take it; None outside the `lcrec` command.

    Commands record it next to what they write (stats.json, index_stats.json, mix_info.json), so a dataset card
    lists the commands that were actually run.
    """
    return _command_line


class CommandHelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help with its default. Required options say so, `--no_X` switches name the option they undo,
    and a None default already explained in the help ("None: ...") is not repeated."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return f"{text} (required)".strip()
        if action.nargs == 0 and action.const is False:
            # HfArgumentParser's `--no_X` complement of a boolean field that defaults to True.
            return f"set --{action.dest} to False"
        if action.default is None and "None:" in text:
            return text
        return super()._get_help_string(action)


def command_parser(
    subparsers: argparse._SubParsersAction | None,
    name: str,
    help: str,
    description: str | None,
    dataclass_types: Sequence[type],
    prog: str | None = None,
    parser_class: type | None = None,
) -> argparse.ArgumentParser:
    """TRL's `make_parser`: a subparser of `lcrec` when `subparsers` is given, else a standalone parser.

    `parser_class` defaults to transformers' `HfArgumentParser`; a subparser takes the class `subparsers` was
    made with (`lcrec.cli` uses `HfArgumentParser`).
    """
    from transformers import HfArgumentParser

    kwargs = dict(
        description=description, dataclass_types=tuple(dataclass_types), formatter_class=CommandHelpFormatter
    )
    if subparsers is not None:
        return subparsers.add_parser(name, help=help, **kwargs)
    return (parser_class or HfArgumentParser)(prog=prog or f"lcrec {name}", **kwargs)


def library_default(module: str, name: str, parameter: str | None = None) -> Callable[[], Any]:
    """A `default_factory` reading a default where the library defines it: the constant `module.name`, or the default
    of `parameter` of the function `module.name` (dotted for a method: `TaskMix.build`). Imported only when the
    default is needed (building the parser, or an instance made without the field)."""

    def factory() -> Any:
        value = importlib.import_module(module)
        for attribute in name.split("."):
            value = getattr(value, attribute)
        if parameter is not None:
            value = inspect.signature(value).parameters[parameter].default
        return list(value) if isinstance(value, tuple) else value

    return factory
