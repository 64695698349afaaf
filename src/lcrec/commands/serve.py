"""`lcrec serve`: the HTTP API (POST /recommend, GET /items, GET /health) with micro-batching."""

from __future__ import annotations

import argparse


def add_serving_limits(parser: argparse.ArgumentParser) -> None:
    """The request limits shared by `lcrec serve` and `lcrec demo` (see ServeConfig)."""
    parser.add_argument("--model", required=True, help="a saved LC-Rec model folder or a Hub repo id")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--max-top-k", type=int, default=50, help="largest top_k a request may ask for")
    parser.add_argument("--max-history", type=int, default=100, help="longest history accepted (longer: 422)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 is often faster on a busy machine)")


def prepare_process(threads: int) -> None:
    """Apply --threads (0 keeps torch's default) and keep freed tensors in the heap (faster CPU beam search)."""
    from lcrec.serving.allocator import keep_freed_memory_in_heap

    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    keep_freed_memory_in_heap()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve recommendations over HTTP (FastAPI + uvicorn, micro-batched)", description=__doc__)
    add_serving_limits(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to accept remote clients)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch", type=int, default=32, help="most histories per beam search")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a request waits for others to join its batch")
    parser.add_argument("--max-queue", type=int, default=256, help="most requests waiting; beyond it the API answers 503")
    parser.add_argument("--max-users-per-request", type=int, default=64, help="most histories in one request")
    parser.add_argument("--no-batching", action="store_true", help="one request per beam search (the unbatched baseline)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.serving.api import create_app
    from lcrec.serving.config import ServeConfig
    from lcrec.serving.recommender import Recommender
    from lcrec.serving.server import serve

    limits = dict(max_queue=args.max_queue, max_top_k=args.max_top_k, max_num_beams=max(50, args.max_top_k), default_top_k=min(10, args.max_top_k), max_history=args.max_history, max_users_per_request=args.max_users_per_request)
    config = ServeConfig.unbatched(**limits) if args.no_batching else ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, **limits)
    prepare_process(args.threads)
    recommender = Recommender.from_pretrained(args.model, config=config, device=args.device)
    print(f"serving {args.model} ({recommender.num_items} items) on http://{args.host}:{args.port}  (docs: /docs)")
    serve(create_app(recommender), host=args.host, port=args.port)
    return 0
