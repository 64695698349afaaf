"""Loopback load test of `lcrec serve`: throughput and p50/p99 latency, batched vs unbatched, 1/8/32 clients.

Each setting gets the same fixed list of requests (one user each) and a time limit; the server runs as a
`lcrec serve` subprocess on 127.0.0.1. The table ends with the batched/unbatched throughput ratio and
whether both servers returned the same ranked items for every request both completed.

    .venv/bin/python bench/serve_load.py                        # runs/quickstart/model, else a tiny model
    .venv/bin/python bench/serve_load.py --model DIR --requests 512 --time-limit 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART_MODEL = ROOT / "runs" / "quickstart" / "model"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=f"model folder (default: {QUICKSTART_MODEL} if it exists, else a tiny random model)")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma separated")
    parser.add_argument("--requests", type=int, default=128, help="requests per setting (each one user)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per setting; unfinished requests are not counted")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--history-length", type=int, default=10, help="items per history")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1, as the CPU quickstart; 0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_tiny_model(folder: Path, num_items: int = 1000, seed: int = 0) -> Path:
    """A randomly initialised CPU-preset-sized model over a synthetic catalogue (timing only: its ranking is noise)."""
    import torch

    from lcrec.indexing.item_index import ItemIndex
    from lcrec.modeling_lcrec import LCRecForCausalLM
    from lcrec.training.scratch import scratch_llama_config, train_scratch_tokenizer

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sizes = [32, 32, 32]
    codes = np.stack(np.unravel_index(rng.choice(int(np.prod(sizes)), size=num_items, replace=False), sizes), axis=1)
    index = ItemIndex(range(num_items), codes, sizes)
    words = ["lab", "glass", "beaker", "pipette", "microscope", "slide", "tube", "rack", "scale", "filter", "gloves", "clamp"]
    titles = {item: " ".join(rng.choice(words, size=3)) + f" {item}" for item in range(num_items)}
    tokenizer = train_scratch_tokenizer(list(titles.values()) * 3, index, vocab_size=1024, titles=titles)
    model = LCRecForCausalLM.from_base(scratch_llama_config(len(tokenizer)), tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, batched: bool, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "lcrec.cli", "serve", "--model", model, "--port", str(port), "--max-queue", "1024", "--threads", str(args.threads)]
    command += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)] if batched else ["--no-batching"]
    log = tempfile.NamedTemporaryFile("w+", prefix="lcrec-serve-", suffix=".log", delete=False)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lcrec serve exited with {process.returncode}; see {log.name}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"lcrec serve did not become healthy within 180 s; see {log.name}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def wait_until_idle(url: str, timeout: float = 300.0) -> None:
    """Let requests left over from a timed-out setting drain, so they do not slow the next one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = httpx.get(f"{url}/health", timeout=10).json()["queue"]
        if queue["waiting"] == 0 and queue["in_flight"] == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"server still busy after {timeout:.0f} s")


async def load(url: str, histories: list[list[int]], clients: int, top_k: int, time_limit: float) -> dict:
    """`clients` workers send the requests one after another each; returns latencies and results by request."""
    next_request = iter(range(len(histories)))
    latencies: list[float] = []
    results: dict[int, list[int]] = {}
    errors = 0
    deadline = time.monotonic() + time_limit

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for position in next_request:
            if time.monotonic() > deadline:
                return
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/recommend", json={"history": histories[position], "top_k": top_k}, timeout=max(1.0, deadline - time.monotonic()))
            except httpx.TimeoutException:
                return
            if response.status_code != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            results[position] = [item["item_id"] for item in response.json()["items"]]

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "results": results, "errors": errors, "elapsed": elapsed}


def recommend_alone(recommender, histories: list[list[int]], top_k: int, threads: int) -> tuple[float, float]:
    """Seconds per user of recommend() without HTTP: one user per call, then all users in one call."""
    import torch

    from lcrec.serving.allocator import keep_freed_memory_in_heap

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory_in_heap()
    recommender.recommend(histories[:2], top_k=top_k)  # warm-up
    start = time.perf_counter()
    for history in histories:
        recommender.recommend([history], top_k=top_k)
    single = (time.perf_counter() - start) / len(histories)
    start = time.perf_counter()
    recommender.recommend(histories, top_k=top_k)
    return single, (time.perf_counter() - start) / len(histories)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    clients_levels = [int(value) for value in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="lcrec-serve-bench-") as scratch:
        model = args.model or (str(QUICKSTART_MODEL) if QUICKSTART_MODEL.is_dir() else None)
        if model is None:
            print(f"{QUICKSTART_MODEL} not found: building a tiny random model (timing only)", file=sys.stderr)
            model = str(build_tiny_model(Path(scratch) / "model", seed=args.seed))
        from lcrec.serving.recommender import Recommender

        recommender = Recommender.from_pretrained(model)
        item_ids = recommender.item_ids
        rng = random.Random(args.seed)
        histories = [rng.sample(item_ids, min(args.history_length, len(item_ids))) for _ in range(args.requests)]
        print(f"model: {model} ({len(item_ids)} items); {args.requests} requests per setting, top_k={args.top_k}, history length {args.history_length}, {args.threads} torch thread(s), time limit {args.time_limit:.0f} s")

        runs: dict[tuple[str, int], dict] = {}
        for mode in ("unbatched", "batched"):
            process, url = start_server(model, batched=mode == "batched", args=args)
            try:
                asyncio.run(load(url, histories[:4], 1, args.top_k, args.time_limit))  # warm-up
                for clients in clients_levels:
                    wait_until_idle(url)
                    runs[mode, clients] = run = asyncio.run(load(url, histories, clients, args.top_k, args.time_limit))
                    print(f"{mode:>9} x{clients:<3} {len(run['latencies'])} requests in {run['elapsed']:.1f} s", file=sys.stderr)
            finally:
                stop_server(process)
        single, batched = recommend_alone(recommender, histories[: args.max_batch], args.top_k, args.threads)

    print()
    print(f"recommend() alone, in process: {single * 1000:.0f} ms per user one at a time, {batched * 1000:.0f} ms per user in one batch of "
          f"{min(args.max_batch, len(histories))}: the most batching can gain here is {single / batched:.2f}x")
    print("| clients | mode | done | req/s | p50 ms | p99 ms | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for clients in clients_levels:
        for mode in ("unbatched", "batched"):
            run = runs[mode, clients]
            latencies = np.asarray(run["latencies"]) * 1000
            throughput = len(latencies) / run["elapsed"]
            p50, p99 = (np.percentile(latencies, 50), np.percentile(latencies, 99)) if len(latencies) else (float("nan"), float("nan"))
            print(f"| {clients} | {mode} | {len(latencies)}/{args.requests} | {throughput:.1f} | {p50:.0f} | {p99:.0f} | {run['errors']} |")
    print()
    print("| clients | batched / unbatched throughput | same ranked items |")
    print("|---:|---:|---:|")
    for clients in clients_levels:
        batched, unbatched = runs["batched", clients], runs["unbatched", clients]
        ratio = (len(batched["latencies"]) / batched["elapsed"]) / max(len(unbatched["latencies"]) / unbatched["elapsed"], 1e-9)
        common = sorted(set(batched["results"]) & set(unbatched["results"]))
        same = sum(batched["results"][position] == unbatched["results"][position] for position in common)
        print(f"| {clients} | {ratio:.2f}x | {same}/{len(common)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
