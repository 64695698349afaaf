"""Loopback load test of `lcrec serve`: throughput and p50/p99 latency, batched vs unbatched, 1/8/32 clients.

Each setting sends the same fixed list of requests (one user each, closed loop: every client sends its next request
when the previous one is answered) to a `lcrec serve` subprocess on 127.0.0.1, with one torch thread by default.
The tables end with the batched/unbatched throughput ratio and whether both servers returned the same ranked items
for every request both completed. The machine's load average is printed before and after: on a shared machine
compare the ratios of one run, not absolute numbers across runs.

    .venv/bin/python bench/serve_load.py                 # runs/quickstart/model, else a quickstart-shaped model
    .venv/bin/python bench/serve_load.py --model DIR --requests 512 --time-limit 120 --top-k 5,10,20

Without a trained quickstart model the benchmark builds one of the same shape with random weights (0.7M-parameter
Llama: hidden 128, 2 layers, 4 heads; 1,349 items with a 4 x 256 index; 10-item histories): decoding costs the same,
only the rankings are noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
# The CPU quickstart preset's model and catalogue (src/lcrec/presets/ml-100k-cpu.yaml, MovieLens-100K's 1,349 items).
QUICKSTART_SHAPE = dict(
    num_items=1349, levels=4, codebook=256, vocab=1024, hidden=128, layers=2, heads=4, ffn=384, positions=128
)
QUICKSTART_MAX_HISTORY = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default=None,
        help=f"model folder (default: {QUICKSTART_MODEL} if it exists, else a random model of its shape)",
    )
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma separated")
    parser.add_argument("--requests", type=int, default=256, help="requests per setting (each one user)")
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds per setting; unfinished requests are not counted"
    )
    parser.add_argument(
        "--top-k", default="10", help="top_k of the requests, comma separated: request i asks for the i-th (cycling)"
    )
    parser.add_argument("--history-length", type=int, default=10, help="items per history")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in the server (default 1; 0: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_quickstart_shaped_model(folder: Path, seed: int = 0) -> Path:
    """A random-weight model with the CPU quickstart's shape over a synthetic catalogue (timing only)."""
    import torch

    from lcrec.indexing.item_index import ItemIndex
    from lcrec.modeling_lcrec import LCRecForCausalLM
    from lcrec.prompts import default_seqrec_instructions
    from lcrec.training.scratch import scratch_llama_config, train_scratch_tokenizer

    shape = QUICKSTART_SHAPE
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sizes = [shape["codebook"]] * shape["levels"]
    flat = rng.choice(int(np.prod(sizes)), size=shape["num_items"], replace=False)
    codes = np.stack(np.unravel_index(flat, sizes), axis=1)
    index = ItemIndex(list(range(shape["num_items"])), codes, sizes)
    words = ["night", "love", "story", "war", "king", "dark", "blue", "city", "man", "game", "river", "star"]
    titles = {
        item: f"{' '.join(rng.choice(words, size=3))} ({1950 + item % 50})" for item in range(shape["num_items"])
    }
    texts = list(titles.values()) * 3 + default_seqrec_instructions() * 20
    tokenizer = train_scratch_tokenizer(texts, index, vocab_size=shape["vocab"], titles=titles)
    config = scratch_llama_config(
        len(tokenizer),
        hidden_size=shape["hidden"],
        num_layers=shape["layers"],
        num_heads=shape["heads"],
        intermediate_size=shape["ffn"],
        max_position_embeddings=shape["positions"],
    )
    model = LCRecForCausalLM.from_base(config, tokenizer, seed=seed)
    model.config.max_history = QUICKSTART_MAX_HISTORY
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(
        f"built a quickstart-shaped random model: {parameters / 1e6:.2f}M parameters, {len(index.item_ids)} items",
        file=sys.stderr,
    )
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, batched: bool, args: argparse.Namespace) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "lcrec.cli",
        "serve",
        "--model",
        model,
        "--port",
        str(port),
        "--max_queue",
        "1024",
    ]
    largest = str(max(50, *args.top_k))
    command += ["--threads", str(args.threads), "--max_top_k", largest, "--max_num_beams", largest]
    command += (
        ["--max_batch", str(args.max_batch), "--max_wait_ms", str(args.max_wait_ms)] if batched else ["--no_batching"]
    )
    log = Path(tempfile.mkstemp(prefix="lcrec-serve-", suffix=".log")[1])
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"} | (
        {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
    )
    environment.pop("LCREC_API_KEY", None)
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, text=True, env=environment)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lcrec serve exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"lcrec serve did not become healthy within 180 s; see {log}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def queue_state(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()["queue"]


def wait_until_idle(url: str, timeout: float = 300.0) -> None:
    """Let requests left over from a timed-out setting drain, so they do not slow the next one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = queue_state(url)
        if queue["waiting"] == 0 and queue["in_flight"] == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"server still busy after {timeout:.0f} s")


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a load generator much lighter than httpx, so on a small
    machine the clients take less of the CPU the server is measured on."""

    def __init__(self, url: str):
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        answer = json.loads(await self.reader.readexactly(int(headers["content-length"])))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
            self.reader = self.writer = None


async def load(url: str, histories: list[list[int]], top_ks: list[int], clients: int, time_limit: float) -> dict:
    """`clients` workers send the requests one after another each; returns latencies and results by request."""
    next_request = iter(range(len(histories)))
    latencies: list[float] = []
    results: dict[int, list[tuple[int, float]]] = {}
    errors = 0
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        nonlocal errors
        connection = Connection(url)
        try:
            for position in next_request:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                body = {"history": histories[position], "top_k": top_ks[position % len(top_ks)]}
                start = time.perf_counter()
                try:
                    status, answer = await asyncio.wait_for(connection.post("/recommend", body), remaining)
                except TimeoutError:
                    return
                if status != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)
                results[position] = [(item["item_id"], item["score"]) for item in answer["items"]]
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {"latencies": latencies, "results": results, "errors": errors, "elapsed": elapsed}


def recommend_alone(
    model: str, histories: list[list[int]], top_k: int, threads: int, batch: int
) -> tuple[float, float]:
    """Seconds per user of recommend() in this process without HTTP: every user alone, then in calls of `batch`
    users (the server's largest batch). Their ratio bounds what batching can gain on this machine."""
    import torch

    from lcrec.serving.allocator import keep_freed_memory_in_heap
    from lcrec.serving.recommender import Recommender

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory_in_heap()
    recommender = Recommender.from_pretrained(model, device="cpu")
    recommender.recommend(histories[:2], top_k=top_k)  # warm-up
    start = time.perf_counter()
    for history in histories:
        recommender.recommend([history], top_k=top_k)
    single = (time.perf_counter() - start) / len(histories)
    start = time.perf_counter()
    for first in range(0, len(histories), batch):
        recommender.recommend(histories[first : first + batch], top_k=top_k)
    return single, (time.perf_counter() - start) / len(histories)


def catalogue_of(model: str) -> list[int]:
    from lcrec.tokenization_lcrec import LCRecTokenizer

    return [int(item) for item in LCRecTokenizer.from_pretrained(model).item_index.item_ids]


def main() -> int:
    args = parse_args()
    args.top_k = [int(value) for value in args.top_k.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    clients_levels = [int(value) for value in args.clients.split(",")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lcrec-serve-bench-") as scratch:
        model = args.model or (str(QUICKSTART_MODEL) if QUICKSTART_MODEL.is_dir() else None)
        if model is None:
            print(
                f"{QUICKSTART_MODEL} not found: building a quickstart-shaped random model (timing only)",
                file=sys.stderr,
            )
            model = str(build_quickstart_shaped_model(Path(scratch) / "model", seed=args.seed))
        item_ids = catalogue_of(model)
        rng = random.Random(args.seed)
        histories = [rng.sample(item_ids, min(args.history_length, len(item_ids))) for _ in range(args.requests)]
        print(
            f"model: {model} ({len(item_ids)} items); {args.requests} requests per setting, top_k {args.top_k}, the "
            f"model's default beams, history length {args.history_length}, {args.threads} torch thread(s) in the "
            f"server, time limit {args.time_limit:.0f} s; load average before: {load_before[0]:.2f} (1 min), "
            f"{os.cpu_count()} CPUs"
        )

        runs: dict[tuple[str, int], dict] = {}
        for mode in ("unbatched", "batched"):
            process, url, log = start_server(model, batched=mode == "batched", args=args)
            try:
                asyncio.run(load(url, histories[:4], args.top_k, 1, args.time_limit))  # warm-up
                for clients in clients_levels:
                    wait_until_idle(url)
                    batches_before = queue_state(url)["batches"]
                    run = asyncio.run(load(url, histories, args.top_k, clients, args.time_limit))
                    wait_until_idle(url)
                    run["batches"] = queue_state(url)["batches"] - batches_before
                    runs[mode, clients] = run
                    print(
                        f"{mode:>9} x{clients:<3} {len(run['latencies'])} requests in {run['elapsed']:.1f} s",
                        file=sys.stderr,
                    )
            finally:
                stop_server(process)
                log.unlink(missing_ok=True)
        single, batched = recommend_alone(model, histories, args.top_k[0], args.threads, args.max_batch)
    load_after = os.getloadavg()

    print()
    print(
        f"recommend() alone, in process: {single * 1000:.1f} ms per user one at a time, {batched * 1000:.1f} ms per "
        f"user in calls of {args.max_batch}: the most batching can gain here is "
        f"{single / batched:.2f}x"
    )
    print("| clients | mode | done | req/s | p50 ms | p99 ms | users per decoder call | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for clients in clients_levels:
        for mode in ("unbatched", "batched"):
            run = runs[mode, clients]
            latencies = np.asarray(run["latencies"]) * 1000
            throughput = len(latencies) / run["elapsed"]
            p50, p99 = (
                (np.percentile(latencies, 50), np.percentile(latencies, 99)) if len(latencies) else (float("nan"),) * 2
            )
            per_call = len(latencies) / max(run["batches"], 1)
            print(
                f"| {clients} | {mode} | {len(latencies)}/{args.requests} | {throughput:.1f} | {p50:.0f} | "
                f"{p99:.0f} | {per_call:.1f} | {run['errors']} |"
            )
    print()
    print("| clients | batched / unbatched throughput | same ranked items | largest score difference |")
    print("|---:|---:|---:|---:|")
    for clients in clients_levels:
        batched_run, unbatched_run = runs["batched", clients], runs["unbatched", clients]
        ratio = (len(batched_run["latencies"]) / batched_run["elapsed"]) / max(
            len(unbatched_run["latencies"]) / unbatched_run["elapsed"], 1e-9
        )
        common = sorted(set(batched_run["results"]) & set(unbatched_run["results"]))
        same = sum(
            [item for item, _ in batched_run["results"][position]]
            == [item for item, _ in unbatched_run["results"][position]]
            for position in common
        )
        difference = max(
            (
                abs(a - b)
                for position in common
                for (_, a), (_, b) in zip(
                    batched_run["results"][position], unbatched_run["results"][position], strict=False
                )
            ),
            default=0.0,
        )
        print(f"| {clients} | {ratio:.2f}x | {same}/{len(common)} | {difference:.1e} |")
    print(f"\nload average after: {load_after[0]:.2f} (1 min); before: {load_before[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
