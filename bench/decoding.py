"""Constrained decoding benchmark: unconstrained beam search vs the research code's per-position mask vs our trie.

Part 1 (same model, same prompts, beam 20): users/s, the logits processor's share of generate() time, and the
invalid-item rate of (a) unconstrained beam search, (b) the research code's approach (a Python dict behind
`prefix_allowed_tokens_fn` that allows every token of level t at step t, one user at a time), (b') that
per-position mask batched, and (c) our trie processor through `model.recommend` (batched).
Part 2 (scale): a synthetic 1,000,000-item catalogue (4 levels x 256 codes): trie build time and memory, and
the processor's time per decoding step at batch 32 x beam 20 against the model's forward time for that step.
Part 3: how much of that forward the output head takes, and what computing only the index-token rows would cost.

    .venv/bin/python bench/decoding.py                      # SmolLM2-135M default, small scale (a few minutes)
    .venv/bin/python bench/decoding.py --users 32 --items 20000
    .venv/bin/python bench/decoding.py --model tiny         # a random 2-layer model, for a quick check
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import time
import multiprocessing
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig, LogitsProcessorList
from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

from lcrec.generation import SemanticIdLogitsProcessor, SemanticIdTrie
from lcrec.indexing import ItemIndex
from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.tokenization_lcrec import LCRecTokenizer

logger = logging.getLogger("bench.decoding")


class Timed:
    """Wrap a logits processor and add up the seconds spent in it."""

    def __init__(self, processor):
        self.processor, self.seconds = processor, 0.0

    def __call__(self, input_ids, scores):
        start = time.perf_counter()
        out = self.processor(input_ids, scores)
        self.seconds += time.perf_counter() - start
        return out


def synthetic_index(num_items: int, levels: int, codebook: int, seed: int) -> ItemIndex:
    """`num_items` distinct random code tuples (uniform over the codebooks)."""
    rng = np.random.default_rng(seed)
    radix = codebook**levels
    keys = np.unique(rng.integers(0, radix, size=int(num_items * 1.2) + 16))
    keys = rng.permutation(keys)[:num_items]
    codes = np.stack([(keys // codebook ** (levels - 1 - level)) % codebook for level in range(levels)], axis=1)
    return ItemIndex(list(range(num_items)), codes, [codebook] * levels)


def load_base(name: str):
    if name == "tiny":
        config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
        torch.manual_seed(0)
        from lcrec.assets import smollm2_path

        return AutoModelForCausalLM.from_config(config), AutoTokenizer.from_pretrained(smollm2_path())
    if name == "smollm2":
        from lcrec.assets import smollm2_path

        name = str(smollm2_path())
    return AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32), AutoTokenizer.from_pretrained(name)


def beam_config(model: LCRecForCausalLM, beams: int) -> GenerationConfig:
    return model.recommend_generation_config(beams)


def decode_invalid_rate(tokenizer: LCRecTokenizer, sequences: torch.Tensor, prompt_length: int) -> float:
    items = tokenizer.decode_items(sequences[:, prompt_length:])
    return sum(item is None for item in items) / len(items)


def level_mask_fn(tokenizer: LCRecTokenizer, prompt_length: int):
    """The research code's 'constraint': a dict from position to every token of that level (EOS after the last)."""
    allowed = {level: [int(t) for t in row if t >= 0] for level, row in enumerate(tokenizer.index_token_ids.tolist())}
    eos = [tokenizer.eos_token_id]

    def prefix_allowed_tokens_fn(batch_id: int, sentence: torch.Tensor) -> list[int]:
        return allowed.get(len(sentence) - prompt_length, eos)

    return prefix_allowed_tokens_fn


def run_generate(model, tokenizer, prompts, beams, processor_factory, batch_size):
    """generate() over prompts in batches; returns (seconds, processor seconds, invalid rate)."""
    total, in_processor, invalid, rows = 0.0, 0.0, 0.0, 0
    for start in range(0, len(prompts), batch_size):
        inputs = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True, padding_side="left")
        prompt_length = inputs["input_ids"].shape[1]
        processors = LogitsProcessorList()
        timed = None
        if processor_factory is not None:
            timed = Timed(processor_factory(prompt_length))
            processors.append(timed)
        began = time.perf_counter()
        with torch.no_grad():
            output = model.generate(**inputs, generation_config=beam_config(model, beams), logits_processor=processors)
        total += time.perf_counter() - began
        in_processor += timed.seconds if timed else 0.0
        n = output.sequences.shape[0]
        invalid += decode_invalid_rate(tokenizer, output.sequences, prompt_length) * n
        rows += n
    return total, in_processor, invalid / rows


def part1(args) -> list[tuple]:
    rng = np.random.default_rng(args.seed)
    if args.lcrec_model:
        # A trained LC-Rec folder: its own catalogue, and real test histories when --data is given.
        model = LCRecForCausalLM.from_pretrained(args.lcrec_model).eval()
        tokenizer, index = model.tokenizer, model.tokenizer.item_index
        if args.data:
            from lcrec.data import load_prepared

            test = load_prepared(args.data)["test"]
            rows = rng.choice(len(test), size=min(args.users, len(test)), replace=False)
            histories = [list(test[int(row)]["history"]) for row in rows]
        else:
            histories = [rng.choice(index.item_ids, size=int(rng.integers(3, args.max_history + 1)), replace=False).tolist() for _ in range(args.users)]
    else:
        base, base_tokenizer = load_base(args.model)
        index = synthetic_index(args.items, args.levels, args.codebook, args.seed)
        tokenizer = LCRecTokenizer.from_base(base_tokenizer, index)
        model = LCRecForCausalLM.from_base(base, tokenizer).eval()
        histories = [rng.choice(args.items, size=int(rng.integers(3, args.max_history + 1)), replace=False).tolist() for _ in range(args.users)]
    prompts = [model.build_prompt(history, skip_unknown=True) for history in histories]
    beams = args.beams
    rows = []

    def record(name, seconds, processor_seconds, invalid):
        rows.append((name, args.users / seconds, processor_seconds / seconds, invalid))
        logger.info("%s: %.1f s", name, seconds)

    trie_processor = lambda length: SemanticIdLogitsProcessor(tokenizer.trie, tokenizer.index_token_ids, tokenizer.eos_token_id, length)  # noqa: E731
    level_processor = lambda length: PrefixConstrainedLogitsProcessor(level_mask_fn(tokenizer, length), beams)  # noqa: E731
    with tqdm(total=5, desc="part 1 decoding") as bar:
        record("(a) unconstrained beam, batched", *run_generate(model, tokenizer, prompts, beams, None, args.batch_size))
        bar.update()
        record("(b) research: per-position dict mask, 1 user/call", *run_generate(model, tokenizer, prompts, beams, level_processor, 1))
        bar.update()
        record("(b') per-position mask, batched", *run_generate(model, tokenizer, prompts, beams, level_processor, args.batch_size))
        bar.update()
        # (c) through the public API; the processor is timed by wrapping its class call.
        spent = [0.0]
        original_call = SemanticIdLogitsProcessor.__call__

        def timed_call(self, input_ids, scores):
            began = time.perf_counter()
            out = original_call(self, input_ids, scores)
            spent[0] += time.perf_counter() - began
            return out

        catalogue = set(index.item_ids)
        top_k = min(beams, index.num_items)
        rankings = {}
        SemanticIdLogitsProcessor.__call__ = timed_call
        try:
            for name, shared_prefill in (("(c) ours: trie + plain generate(), batched", False), ("(c') ours: recommend() (trie + prompt prefilled once per user)", True)):
                if not shared_prefill:
                    model._shared_prefill = lambda *a: None  # generate() runs each prompt once per beam
                spent[0] = 0.0
                began = time.perf_counter()
                results = model.recommend(histories, top_k=top_k, num_beams=beams, batch_size=args.batch_size, skip_unknown=True)
                seconds = time.perf_counter() - began
                if not shared_prefill:
                    del model._shared_prefill
                returned = [item for ranked in results for item, _ in ranked]
                invalid = sum(item not in catalogue for item in returned) / max(1, len(returned))
                assert all(len({i for i, _ in ranked}) == len(ranked) == top_k for ranked in results), "ours returned duplicates or too few"
                rankings[shared_prefill] = [[item for item, _ in ranked] for ranked in results]
                record(name, seconds, spent[0], invalid)
                bar.update()
        finally:
            SemanticIdLogitsProcessor.__call__ = original_call
        same = sum(a == b for a, b in zip(rankings[False], rankings[True]))
        logger.info("shared prefill: identical rankings for %d of %d users", same, len(histories))
        rows.append(("(c') rankings identical to (c)", float("nan"), float("nan"), 1 - same / len(histories)))
    del trie_processor
    return rows, model


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_trie_build(codes: np.ndarray) -> tuple[float, int]:
    """(seconds, bytes) of building a trie in a fresh process; memory is the peak RSS growth, sampled every 2 ms."""
    gc.collect()
    before, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    trie = SemanticIdTrie(codes, [256] * codes.shape[1])
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    del trie
    return seconds, max(peak[0], before) - before


def part2(args, model: LCRecForCausalLM | None) -> dict:
    """1M-item trie: build time/memory; per-step processor time at batch x beam vs one forward step."""
    index_codes = synthetic_index(args.scale_items, 4, 256, args.seed).codes
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        build_seconds, peak = pool.apply(measure_trie_build, (index_codes,))
    trie = SemanticIdTrie(index_codes, [256] * 4)
    vocab = 49152 + 1024
    token_ids = torch.arange(4 * 256).reshape(4, 256) + 49152
    rows = args.scale_batch * args.beams
    rng = np.random.default_rng(args.seed)
    paths = torch.from_numpy(index_codes[rng.integers(0, len(index_codes), rows)])
    step_seconds = []
    prompt = torch.zeros((rows, 8), dtype=torch.int64)
    for step in range(5):
        processor = SemanticIdLogitsProcessor(trie, token_ids, 2, prompt_length=8)
        generated = token_ids[torch.arange(step), paths[:, :step]] if step else torch.zeros((rows, 0), dtype=torch.int64)
        input_ids = torch.cat([prompt, generated], dim=1)
        scores = torch.randn(rows, vocab)
        processor(input_ids, scores)  # warm-up
        began = time.perf_counter()
        for _ in range(args.repeats):
            out = processor(input_ids, scores)
        step_seconds.append((time.perf_counter() - began) / args.repeats)
        assert torch.isfinite(out).any(dim=1).all()
    result = {
        "items": len(index_codes),
        "build_seconds": build_seconds,
        "trie_mb": trie.nbytes / 2**20,
        "build_peak_mb": peak / 2**20,
        "rows": rows,
        "step_ms": [s * 1000 for s in step_seconds],
    }
    if model is not None:
        result.update(forward_step_cost(model, rows, args.cache_length, args.repeats))
    return result


def forward_step_cost(model: LCRecForCausalLM, rows: int, cache_length: int, repeats: int) -> dict:
    """Seconds of one decoding forward (rows x 1 token over a `cache_length` KV cache), of its output head,
    and of a head restricted to the index-token rows."""
    from transformers import DynamicCache

    lm = model.language_model
    config = lm.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cache = DynamicCache(config=config)
    for layer in range(config.num_hidden_layers):
        shape = (rows, config.num_key_value_heads, cache_length, head_dim)
        cache.update(torch.randn(shape) * 0.1, torch.randn(shape) * 0.1, layer)
    input_ids = torch.full((rows, 1), model.tokenizer.first_index_token_id)
    attention = torch.ones((rows, cache_length + 1), dtype=torch.int64)
    position_ids = torch.full((rows, 1), cache_length)
    timings = {"forward": [], "head": [], "index_head": []}
    head = lm.get_output_embeddings()
    index_rows = model.tokenizer.index_token_ids.flatten()
    index_rows = torch.cat([index_rows[index_rows >= 0], torch.tensor([model.tokenizer.eos_token_id])])
    index_head = head.weight[index_rows].contiguous()  # a real restricted head would keep this slice
    hidden = torch.randn(rows, 1, config.hidden_size)
    with torch.no_grad():
        for _ in range(repeats):
            began = time.perf_counter()
            lm(input_ids=input_ids, attention_mask=attention, position_ids=position_ids, cache=cache, use_cache=True)
            timings["forward"].append(time.perf_counter() - began)
            cache.crop(-1)  # back to `cache_length` for the next repeat
            began = time.perf_counter()
            head(hidden)
            timings["head"].append(time.perf_counter() - began)
            began = time.perf_counter()
            torch.nn.functional.linear(hidden, index_head)
            timings["index_head"].append(time.perf_counter() - began)
    return {key + "_ms": 1000 * float(np.median(values)) for key, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="smollm2 (offline asset), tiny (random 2-layer), or a path / hub id")
    parser.add_argument("--lcrec-model", help="a trained LC-Rec model folder for part 1 instead of an untrained --model (real invalid rates)")
    parser.add_argument("--data", help="with --lcrec-model: a prepared dataset folder whose test histories are decoded")
    parser.add_argument("--users", type=int, default=2, help="users decoded in part 1 (default 2)")
    parser.add_argument("--items", type=int, default=2000, help="catalogue size in part 1 (default 2000)")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--codebook", type=int, default=256)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4, help="users per generate() call for the batched methods (default 4)")
    parser.add_argument("--max-history", type=int, default=10)
    parser.add_argument("--scale-items", type=int, default=1_000_000, help="part 2 catalogue size (default 1,000,000)")
    parser.add_argument("--scale-batch", type=int, default=32, help="part 2 users per step (x beams rows)")
    parser.add_argument("--cache-length", type=int, default=64, help="KV length of the timed forward step")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-part1", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, model: {args.model}")

    model = None
    if not args.skip_part1:
        rows, model = part1(args)
        baseline = next(r for r in rows if r[0].startswith("(b) "))[1]
        what = f"trained {args.lcrec_model} ({model.tokenizer.item_index.num_items} items)" if args.lcrec_model else f"untrained {args.model}, {args.items} synthetic items ({args.levels} x {args.codebook})"
        print(f"\n## Decoding: {args.users} users, beam {args.beams}, {what}\n")
        print("| method | users/s | vs (b) | processor share of generate | invalid items |")
        print("|---|---:|---:|---:|---:|")
        for name, users_per_second, share, invalid in rows:
            if users_per_second != users_per_second:  # the identity check row
                print(f"| {name} | | | | users differing: {invalid:.0%} |")
                continue
            print(f"| {name} | {users_per_second:.3f} | {users_per_second / baseline:.2f}x | {share:.1%} | {invalid:.1%} |")
    else:
        base, base_tokenizer = load_base(args.model)
        index = synthetic_index(args.items, args.levels, args.codebook, args.seed)
        model = LCRecForCausalLM.from_base(base, LCRecTokenizer.from_base(base_tokenizer, index)).eval()

    scale = part2(args, model)
    print(f"\n## Scale: {scale['items']:,} items (4 x 256), batch {args.scale_batch} x beam {args.beams} = {scale['rows']} rows\n")
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(f"| trie build | {scale['build_seconds']:.2f} s | < 30 s |")
    print(f"| trie memory (tables) | {scale['trie_mb']:.1f} MB | < 1 GB |")
    print(f"| peak memory growth while building (fresh process) | {scale['build_peak_mb']:.1f} MB | < 1 GB |")
    for step, ms in enumerate(scale["step_ms"]):
        ratio = f"{ms / scale['forward_ms']:.1%} of forward" if "forward_ms" in scale else ""
        print(f"| processor, step {step} | {ms:.1f} ms {ratio} | < 5 % |")
    if "forward_ms" in scale:
        print(f"| model forward step ({scale['rows']} rows, KV {args.cache_length}) | {scale['forward_ms']:.1f} ms | |")
        print(f"| of which the full output head | {scale['head_ms']:.1f} ms ({scale['head_ms'] / scale['forward_ms']:.1%}) | |")
        print(f"| a head over index tokens + EOS only | {scale['index_head_ms']:.1f} ms ({scale['index_head_ms'] / scale['forward_ms']:.1%}) | |")


if __name__ == "__main__":
    main()
