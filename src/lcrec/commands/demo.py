"""`lcrec demo --model DIR`: a Gradio app to search items, build a history and see the model's recommendations.

With an API key (`--api_key` / LCREC_API_KEY: the login password, any user name) or `--auth USER:PASSWORD`
(LCREC_DEMO_AUTH) the page asks for a login; binding beyond loopback without either logs a warning.
`--space_dir DIR` writes a Hugging Face Space (app.py, requirements.txt, README.md) instead of launching;
`--screenshot PNG` drives the page in headless Chromium and saves what it shows.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import command_parser
from .serve import ModelServingArguments, check_address, check_model_and_device, prepare_process

if TYPE_CHECKING:
    from ..serving.config import RequestLimits

HELP = "Gradio demo: search items, build a history, see recommendations (optional login)"
SPACE_FILES = ("app.py", "requirements.txt", "README.md")


@dataclass
class DemoArguments:
    """Where the demo listens, who may log in, and its two non-interactive modes (screenshot, Space files)."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (0.0.0.0: accept remote clients)"})
    port: int = field(default=7860, metadata={"help": "TCP port"})
    auth: str | None = field(
        default=None,
        metadata={
            "help": "USER:PASSWORD the login page asks for (None: $LCREC_DEMO_AUTH when set); not with an API key"
        },
    )
    metrics: str | None = field(
        default=None, metadata={"help": "metrics.json to show (None: the model folder's or repo's own)"}
    )
    screenshot: str | None = field(
        default=None,
        metadata={
            "help": "instead of serving: open the demo in headless Chromium on loopback, search --query, add "
            "the first --picks hits, recommend, save a full-page PNG here, exit"
        },
    )
    query: str = field(default="", metadata={"help": "title search used by --screenshot"})
    picks: int = field(default=3, metadata={"help": "items --screenshot adds to the history"})
    space_dir: str | None = field(
        default=None,
        metadata={"help": "instead of launching: write a Hub Space (app.py, requirements.txt, README.md) for --model"},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "let --space_dir write its three files into a non-empty folder lcrec did not write "
            "(nothing else there is touched), or --screenshot replace an existing file"
        },
    )

    def __post_init__(self) -> None:
        check_address(self.host, self.port)
        if isinstance(self.picks, bool) or not isinstance(self.picks, int) or self.picks < 1:
            raise ValueError(f"--picks must be an integer >= 1, got {self.picks!r}")
        if self.screenshot is not None and self.space_dir is not None:
            raise ValueError("give --screenshot or --space_dir, not both")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..serving.config import RequestLimits

    return command_parser(
        subparsers, "demo", HELP, __doc__, (ModelServingArguments, RequestLimits, DemoArguments), prog=prog
    )


def run(arguments: ModelServingArguments, limits: RequestLimits, options: DemoArguments) -> int:
    if options.space_dir is not None:
        return write_space(arguments.model, options)
    from ..serving.auth import gradio_login, resolve_api_key, resolve_demo_login, warn_if_open

    check_model_and_device(arguments)
    if options.screenshot is not None:
        from ..io_utils import check_output_file

        # A PNG carries no mark of who wrote it: any existing file is kept unless --overwrite.
        check_output_file(
            options.screenshot,
            inputs=[arguments.model, options.metrics],
            command="demo --screenshot",
            is_ours=lambda path: False,
            overwrite=options.overwrite,
        )
    login = gradio_login(resolve_api_key(arguments.api_key), resolve_demo_login(options.auth))
    from ..serving.demo import demo_from_pretrained  # the `serve` extra (gradio), before the model loads

    prepare_process(arguments.threads)
    demo = demo_from_pretrained(arguments.model, config=limits, metrics_path=options.metrics, device=arguments.device)
    if options.screenshot:
        return screenshot(demo, options)
    warn_if_open(
        options.host,
        login is not None,
        "lcrec demo",
        "set LCREC_API_KEY / --api_key or LCREC_DEMO_AUTH / --auth, or bind to 127.0.0.1",
    )
    demo.launch(server_name=options.host, server_port=options.port, auth=login)
    return 0


def write_space(model_id: str, options: DemoArguments) -> int:
    """Write the Space files; refuses a non-empty folder it did not write unless --overwrite (never deletes)."""
    from ..io_utils import check_output_dir
    from ..serving.space import write_space_files

    check_output_dir(options.space_dir, "demo", overwrite=options.overwrite, signature=SPACE_FILES)
    for path in write_space_files(options.space_dir, model_id):
        print(f"wrote {path}")
    return 0


def screenshot(demo, options: DemoArguments) -> int:
    """Launch on loopback (no login), drive the page in headless Chromium, save a full-page PNG, close."""
    from ..io_utils import save_with
    from ..serving.browser import chromium_page, recommend_in_page

    demo.launch(server_name="127.0.0.1", server_port=options.port, prevent_thread_lock=True, quiet=True)
    try:
        with chromium_page() as page:
            added = recommend_in_page(page, demo.local_url, options.query, picks=options.picks)
            save_with(options.screenshot, lambda tmp: page.screenshot(path=str(tmp), full_page=True, type="png"))
    finally:
        demo.close()
    print(f"history: {'; '.join(added)}")
    print(f"wrote {options.screenshot}")
    return 0
