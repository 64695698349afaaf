"""`lcrec serve --model DIR`: the HTTP API (POST /recommend, GET /items, GET /health), micro-batched.

Concurrent requests share one decoder call (one prefill, one decoding loop). With an API key (`--api_key`, or
better the LCREC_API_KEY environment variable, which `ps` does not show) every route but /health and the docs needs
`Authorization: Bearer KEY`; binding beyond loopback without a key logs a warning.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import command_parser

if TYPE_CHECKING:
    from ..serving.config import ServeConfig

HELP = "serve recommendations over HTTP (FastAPI + uvicorn, micro-batched, optional API key)"
API_KEY_HELP = (
    "secret callers must present (serve: `Authorization: Bearer KEY`; demo: the login password, any user name). "
    "None: $LCREC_API_KEY when set, else no authentication. Prefer the variable: options show in `ps`"
)


@dataclass
class ModelServingArguments:
    """The model `lcrec serve` and `lcrec demo` load, the process settings, and the key callers must present."""

    model: str = field(metadata={"help": "a saved LC-Rec model folder or a Hub repo id"})
    device: str | None = field(default=None, metadata={"help": "torch device (None: cuda when available, else cpu)"})
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads (0: torch's default; 1 is often faster on a busy machine)"}
    )
    api_key: str | None = field(default=None, metadata={"help": API_KEY_HELP})

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"--threads must be an integer >= 0, got {self.threads!r}")


@dataclass
class ServeArguments:
    """Where `lcrec serve` listens, and whether it batches."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (0.0.0.0: accept remote clients)"})
    port: int = field(default=8000, metadata={"help": "TCP port"})
    batching: bool = field(
        default=True,
        metadata={"help": "share decoder calls between concurrent requests (--no_batching: one request per call)"},
    )

    def __post_init__(self) -> None:
        check_address(self.host, self.port)


def check_address(host: str, port: int) -> None:
    """A non-empty host and a TCP port number (0 lets the system pick one)."""
    if not host.strip():
        raise ValueError("--host must not be empty (e.g. 127.0.0.1, or 0.0.0.0 for remote clients)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {port!r}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..serving.config import ServeConfig

    return command_parser(
        subparsers, "serve", HELP, __doc__, (ModelServingArguments, ServeConfig, ServeArguments), prog=prog
    )


def prepare_process(threads: int) -> None:
    """Apply --threads (0 keeps torch's default) and keep freed tensors in the heap (faster CPU decoding)."""
    from ..serving.allocator import keep_freed_memory_in_heap

    if threads:
        import torch

        torch.set_num_threads(threads)
    keep_freed_memory_in_heap()


def check_model_and_device(arguments: ModelServingArguments) -> None:
    """Refuse a model path or device that cannot work before anything loads (one-line errors)."""
    from .checks import require_device, require_pretrained

    require_pretrained(arguments.model)
    require_device(arguments.device)


def run(arguments: ModelServingArguments, config: ServeConfig, options: ServeArguments) -> int:
    from ..serving.auth import resolve_api_key, warn_if_open

    check_model_and_device(arguments)
    api_key = resolve_api_key(arguments.api_key)
    # The web stack is the `serve` extra: import it before the model loads, so a missing one fails at once.
    from ..serving.api import create_app
    from ..serving.recommender import Recommender
    from ..serving.server import serve

    if not options.batching:
        config = replace(config, max_batch=1, max_wait_ms=0.0)
    prepare_process(arguments.threads)
    recommender = Recommender.from_pretrained(arguments.model, config=config, device=arguments.device)
    warn_if_open(
        options.host, api_key is not None, "lcrec serve", "set LCREC_API_KEY or --api_key, or bind to 127.0.0.1"
    )
    auth = "API key required" if api_key else "no authentication"
    where = f"http://{options.host}:{options.port}" if options.port else f"{options.host} (a free port: see below)"
    print(f"serving {arguments.model} ({recommender.num_items} items, {auth}) on {where}", flush=True)
    serve(create_app(recommender, api_key=api_key), host=options.host, port=options.port)
    return 0
