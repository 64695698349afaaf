"""CLI subcommands. Each module defines `register(subparsers)`; heavy imports stay inside its `run`."""
