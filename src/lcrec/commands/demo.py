"""`lcrec demo`: a Gradio app to search items, build a history and see the model's recommendations."""

from __future__ import annotations

import argparse

from .serve import add_serving_limits, prepare_process


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="Gradio demo: search items, build a history, see recommendations", description=__doc__)
    add_serving_limits(parser)
    parser.add_argument("--metrics", default=None, help="metrics.json to show (default: the model folder's or repo's own)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to accept remote clients)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--screenshot", default=None, metavar="PNG", help="instead of serving: open the demo in headless Chromium, search --query, add the first --picks hits, recommend, save a screenshot, exit")
    parser.add_argument("--query", default="", help="title search used by --screenshot")
    parser.add_argument("--picks", type=int, default=3, help="items --screenshot adds to the history")
    parser.add_argument("--space-dir", default=None, help="instead of launching, write a Hub Space (app.py, requirements.txt, README.md) for --model here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.serving.config import ServeConfig

    if args.space_dir:
        from lcrec.serving.space import write_space_files

        for path in write_space_files(args.space_dir, args.model):
            print(f"wrote {path}")
        return 0
    from lcrec.serving.demo import demo_from_pretrained

    config = ServeConfig(max_top_k=args.max_top_k, max_num_beams=max(50, args.max_top_k), default_top_k=min(10, args.max_top_k), max_history=args.max_history)
    prepare_process(args.threads)
    demo = demo_from_pretrained(args.model, config=config, metrics_path=args.metrics, device=args.device)
    if args.screenshot:
        return screenshot(demo, args)
    demo.launch(server_name=args.host, server_port=args.port)
    return 0


def screenshot(demo, args: argparse.Namespace) -> int:
    """Launch on loopback, drive the page in headless Chromium, save a full-page PNG (for READMEs and cards)."""
    from lcrec.io_utils import save_with
    from lcrec.serving.browser import chromium_page, recommend_in_page

    demo.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    try:
        with chromium_page() as page:
            added = recommend_in_page(page, demo.local_url, args.query, picks=args.picks)
            save_with(args.screenshot, lambda tmp: page.screenshot(path=str(tmp), full_page=True, type="png"))
    finally:
        demo.close()
    print(f"history: {'; '.join(added)}")
    print(f"wrote {args.screenshot}")
    return 0
