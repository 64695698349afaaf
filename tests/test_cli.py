"""The `lcrec` command dispatches to subcommands and turns our errors into one clean line."""

from lcrec.cli import build_parser


def test_help_lists_available_commands():
    help_text = build_parser().format_help()
    assert "COMMAND" in help_text
