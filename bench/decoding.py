"""Decoding benchmark: lcrec's tree-attention decoder against generate(), side by side in one run.

Methods, for each model:
  research   LC-Rec's test script: one user per generate() call, `prefix_allowed_tokens_fn` allowing every index
             token of position t (no trie: invalid items possible), the prompt expanded to every beam.
  generate   lcrec's previous recommend(): batches of 8 users, the prompt prefilled once per user and its cache
             repeated per beam, generate() with the trie logits processor (kept as the reference path).
  tree       recommend() today: tree attention (each prompt prefilled once, beams appended as tree nodes),
             exact top-K over the trie's children, all users in large batches.
Columns: users/s (wall clock) and users per CPU-second (one torch thread: on an idle machine the two agree; on a
shared one CPU time is the steadier measure), each with its ratio to `research` (measured in this run), invalid
rate (returned items not in the catalogue), repeated items, peak memory growth while the method runs (each method
in its own forked process, RSS sampled every 2 ms; CUDA: max allocated), and how many users' rankings equal
tree's exactly (and up to the order of items whose scores agree within 1e-4).

Parts:
  (a) the quickstart model: runs/quickstart/model when present, else a random-weight model of its shape (0.7M
      Llama, 2 x 128, vocabulary 1,024 text + 1,024 index tokens, 4 x 256 index over ML-100K's 1,349 items), on
      MovieLens-100K's 943 test users; plus the time of `evaluate_model` over all 943 (template 0, 20 beams).
  (b) SmolLM2-135M (offline asset) with a random 2,000-item 4 x 256 index.
  (c) a tiny model with 100k- and 1M-item synthetic catalogues: trie build time and table size, and the share
      of a decoding step spent in trie lookups.

    .venv/bin/python bench/decoding.py                     # all parts, one thread (about 10 minutes)
    .venv/bin/python bench/decoding.py --parts a --device cuda --threads 16
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig, LogitsProcessorList
from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

from lcrec.generation import SemanticIdTrie, recommend_items, render_prompts
from lcrec.generation.logits_process import generated_codes, inverse_token_tables
from lcrec.generation.recommendation import catalogue_trie
from lcrec.indexing import ItemIndex
from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.prompts import default_seqrec_instructions, seqrec_prompt
from lcrec.tokenization_lcrec import LCRecTokenizer

logger = logging.getLogger("bench.decoding")
BEAMS = 20
TOP_K = 20


def synthetic_index(item_ids, levels: int = 4, codebook: int = 256, seed: int = 0) -> ItemIndex:
    """Distinct random code tuples for `item_ids` (uniform over the codebooks)."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(codebook**levels, size=len(item_ids), replace=False)
    codes = np.stack([(keys // codebook ** (levels - 1 - level)) % codebook for level in range(levels)], axis=1)
    return ItemIndex(list(item_ids), codes, [codebook] * levels)


class PeakMemory:
    """Peak memory growth over a block: max allocated on CUDA, else the process RSS sampled every 2 ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.start, self.done = self._rss(), threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        return self

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self._rss() - self.start)
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.done.set()
            self.sampler.join()


def research_decode(model: LCRecForCausalLM, prompts: list[str], num_beams: int) -> list[list[int | None]]:
    """LC-Rec's test script: per user one generate() call, beam search constrained per position, not per prefix."""
    tokenizer, language_model = model.tokenizer, model.language_model
    levels = tokenizer.item_index.levels
    per_level = {
        level: [int(t) for t in row if t >= 0] for level, row in enumerate(tokenizer.index_token_ids.tolist())
    }
    trie = catalogue_trie(tokenizer, model.device)
    code_of, level_of = (table.to(model.device) for table in inverse_token_tables(tokenizer.index_token_ids))
    config = GenerationConfig(
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=levels + 1,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    results = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
        length = inputs["input_ids"].shape[1]

        def allowed(batch_id: int, sentence: torch.Tensor, length: int = length) -> list[int]:
            return per_level.get(len(sentence) - length, [tokenizer.eos_token_id])

        processors = LogitsProcessorList([PrefixConstrainedLogitsProcessor(allowed, num_beams)])
        with torch.no_grad():
            output = language_model.generate(**inputs, generation_config=config, logits_processor=processors)
        items, found = trie.item_ids(generated_codes(output[:, length : length + levels], code_of, level_of))
        results.append([int(item) if ok else None for item, ok in zip(items.tolist(), found.tolist())])
    return results


def run_method(name: str, model, histories, reference_users: int, device) -> dict:
    """Decode `histories` (research: the first `reference_users`) and measure speed, validity and memory."""
    tokenizer = model.tokenizer
    users = histories[:reference_users] if name == "research" else histories
    scores = None
    with PeakMemory(device) as memory:
        began, cpu_began = time.perf_counter(), time.process_time()
        if name == "research":
            prompts = render_prompts(model.config, tokenizer.item_index, users)
            ranked = [row[:TOP_K] for row in research_decode(model, prompts, BEAMS)]
        else:
            batch_size = 8 if name == "generate" else None
            result = recommend_items(
                model, tokenizer, users, top_k=TOP_K, num_beams=BEAMS, batch_size=batch_size, decoder=name
            )
            ranked = [[item for item, _ in row] for row in result]
            scores = [[score for _, score in row] for row in result]
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    catalogue = set(tokenizer.item_index.item_ids)
    returned = [item for row in ranked for item in row]
    invalid = sum(item is None or item not in catalogue for item in returned) / max(1, len(returned))
    repeated = sum(
        len(valid) - len(set(valid)) for valid in ([item for item in row if item is not None] for row in ranked)
    )
    return {
        "name": name,
        "users": len(users),
        "users_per_s": len(users) / seconds,
        "users_per_cpu_s": len(users) / cpu_seconds,
        "invalid": invalid,
        "repeated": repeated,
        "peak_mb": memory.peak / 2**20,
        "ranked": ranked,
        "scores": scores,
    }


def isolated(function, *args) -> dict:
    """`function(*args)` in a forked child, so the memory it measures is its own; the result comes back as JSON."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, leave without running the parent's exit handlers
        os.close(read)
        try:
            payload = json.dumps(function(*args))
        except Exception as error:  # noqa: BLE001 (reported to the parent, which raises)
            payload = json.dumps({"error": f"{type(error).__name__}: {error}"})
        with os.fdopen(write, "w") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = json.loads(pipe.read())
    os.waitpid(pid, 0)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def same_up_to_ties(a: list[int], b: list[int], scores_a: list[float], scores_b: list[float]) -> bool:
    """Equal rankings, or the same items with scores agreeing within 1e-4 (float-precision ties may swap)."""
    close = len(scores_a) == len(scores_b) and all(abs(x - y) < 1e-4 for x, y in zip(scores_a, scores_b))
    return a == b or (sorted(a) == sorted(b) and close)


def compare(model, histories, reference_users: int, device, title: str) -> None:
    """Run the three methods on one model (each in its own process on CPU) and print the table."""
    rows = {}
    for name in ("tree", "generate", "research"):
        arguments = (name, model, histories, reference_users, device)
        rows[name] = run_method(*arguments) if device.type == "cuda" else isolated(run_method, *arguments)
    baseline, cpu_baseline = rows["research"]["users_per_s"], rows["research"]["users_per_cpu_s"]
    tree = rows["tree"]
    print(f"\n## {title}\n")
    print(
        "| method | users | users/s | vs research | users/CPU-s | vs research (CPU) | invalid items | repeated "
        "| peak memory | rankings = tree (up to float ties) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, row in rows.items():
        pairs = list(zip(row["ranked"], tree["ranked"]))
        same = sum(a == b for a, b in pairs)
        tied = sum(same_up_to_ties(a, b, sa, sb) for (a, b), sa, sb in zip(pairs, row["scores"] or [], tree["scores"]))
        agreement = f"{same}/{len(pairs)}" + (f" ({tied}/{len(pairs)})" if row["scores"] else "")
        speed, cpu_speed = row["users_per_s"], row["users_per_cpu_s"]
        cells = [name, row["users"], f"{speed:.1f}", f"{speed / baseline:.1f}x", f"{cpu_speed:.1f}"]
        cells += [
            f"{cpu_speed / cpu_baseline:.1f}x",
            f"{row['invalid']:.1%}",
            row["repeated"],
            f"{row['peak_mb']:.0f} MB",
            agreement,
        ]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def quickstart_model(args, device):
    """(model, dataset): runs/quickstart/model with its data when present, else the random-weight stand-in."""
    from lcrec.data import load_prepared, prepare_dataset

    folder = Path(args.quickstart_dir)
    if (folder / "model" / "config.json").exists() and (folder / "data").exists():
        model = LCRecForCausalLM.from_pretrained(folder / "model").to(device).eval()
        return model, load_prepared(folder / "data"), f"trained {folder / 'model'}"
    from lcrec.training.scratch import scratch_llama_config, train_scratch_tokenizer

    dataset = prepare_dataset("ml-100k")
    items = dataset["items"]
    index = synthetic_index(items["item_id"], seed=args.seed)
    instructions = default_seqrec_instructions()
    texts = [
        seqrec_prompt(instructions[row % len(instructions)], [index.tokens(item) for item in history], 10)
        for row, history in enumerate(dataset["train"]["history"])
    ] + list(items["title"])
    tokenizer = train_scratch_tokenizer(
        texts, index, vocab_size=1024, titles=dict(zip(items["item_id"], items["title"]))
    )
    config = scratch_llama_config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_layers=2,
        num_heads=4,
        intermediate_size=384,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(args.seed)
    model = LCRecForCausalLM.from_base(config, tokenizer).to(device).eval()
    model.config.max_history = 10  # the ml-100k-cpu preset
    return model, dataset, f"random weights of the quickstart shape ({model.num_parameters() / 1e6:.2f}M parameters)"


def part_a(args, device) -> None:
    from lcrec.evaluation.config import EvaluationConfig
    from lcrec.evaluation.runner import evaluate_model

    model, dataset, what = quickstart_model(args, device)
    histories = [list(history) for history in dataset["test"]["history"]]
    compare(
        model,
        histories,
        args.reference_users,
        device,
        f"(a) quickstart model: {what}, {model.tokenizer.item_index.num_items} items, "
        f"{len(histories)} ML-100K test users",
    )
    began, cpu_began = time.perf_counter(), time.process_time()
    record = evaluate_model(model, dataset, EvaluationConfig(templates="0", num_beams=BEAMS))
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    print(
        f"\n`evaluate_model` over all {record['num_users']} test users (template 0, {record['num_beams']} beams): "
        f"{seconds:.2f} s wall, {cpu_seconds:.2f} CPU s; HR@10 {record['HR@10']:.4f}, "
        f"invalid_rate {record['invalid_rate']}"
    )


def part_b(args, device) -> None:
    from lcrec.assets import smollm2_path

    path = smollm2_path()
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    index = synthetic_index(range(args.smollm2_items), seed=args.seed)
    tokenizer = LCRecTokenizer.from_base(AutoTokenizer.from_pretrained(path), index)
    model = LCRecForCausalLM.from_base(base, tokenizer).to(device).eval()
    model.config.max_history = 10
    rng = np.random.default_rng(args.seed)
    histories = [rng.choice(args.smollm2_items, size=10, replace=False).tolist() for _ in range(args.smollm2_users)]
    compare(
        model,
        histories,
        args.smollm2_reference_users,
        device,
        f"(b) SmolLM2-135M, {args.smollm2_items} random items (4 x 256), {len(histories)} users of 10 items",
    )


def part_c(args, device) -> None:
    from lcrec.assets import smollm2_path

    print("\n## (c) scale: a tiny model (2 x 64 Llama, SmolLM2 vocabulary) over synthetic 4 x 256 catalogues\n")
    print("| items | trie build | trie tables | users | decode users/s | trie lookups, share of decoding ", end="")
    print("| per level (ms) | invalid |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|")
    base_tokenizer = AutoTokenizer.from_pretrained(smollm2_path())
    for num_items in args.scale_items:
        index = synthetic_index(range(num_items), seed=args.seed)
        began = time.perf_counter()
        SemanticIdTrie.from_index(index)
        build = time.perf_counter() - began
        tokenizer = LCRecTokenizer.from_base(base_tokenizer, index)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        torch.manual_seed(args.seed)
        model = LCRecForCausalLM.from_base(config, tokenizer).to(device).eval()
        model.config.max_history = 10
        trie = catalogue_trie(tokenizer, model.device)
        rng = np.random.default_rng(args.seed)
        histories = [rng.choice(num_items, size=10, replace=False).tolist() for _ in range(args.scale_users)]
        recommend_items(model, tokenizer, histories[:4], top_k=TOP_K, num_beams=BEAMS)  # warm-up
        spent, original = [], trie.children

        def timed_children(level, nodes, original=original, spent=spent):
            began = time.perf_counter()
            out = original(level, nodes)
            if device.type == "cuda":
                torch.cuda.synchronize()
            spent.append(time.perf_counter() - began)
            return out

        trie.children = timed_children
        began = time.perf_counter()
        ranked = recommend_items(model, tokenizer, histories, top_k=TOP_K, num_beams=BEAMS)
        seconds = time.perf_counter() - began
        del trie.children
        invalid = sum(item not in index for row in ranked for item, _ in row)
        levels = np.asarray(spent).reshape(-1, index.levels).sum(axis=0) * 1000
        cells = [f"{num_items:,}", f"{build:.2f} s", f"{trie.nbytes / 2**20:.0f} MB", len(histories)]
        cells += [
            f"{len(histories) / seconds:.0f}",
            f"{sum(spent) / seconds:.1%}",
            ", ".join(f"{ms:.1f}" for ms in levels),
            invalid,
        ]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="a,b,c", help="which parts to run: a, b, c (default all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--quickstart-dir", default="runs/quickstart", help="a quickstart run folder (model/, data/)")
    parser.add_argument("--reference-users", type=int, default=20, help="(a) users decoded by the research reference")
    parser.add_argument("--smollm2-items", type=int, default=2000)
    parser.add_argument("--smollm2-users", type=int, default=16)
    parser.add_argument("--smollm2-reference-users", type=int, default=3)
    parser.add_argument(
        "--scale-items", type=lambda text: [int(n) for n in text.split(",")], default=[100_000, 1_000_000]
    )
    parser.add_argument("--scale-users", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {device}, ", end="")
    print(f"load average at start {load:.1f} on {os.cpu_count()} CPUs")
    parts = {"a": part_a, "b": part_b, "c": part_c}
    for part in args.parts.split(","):
        parts[part.strip()](args, device)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
