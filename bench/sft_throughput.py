"""SFT throughput on this CPU: tokens/s and peak memory for SmolLM2 + LoRA vs full fine-tuning (+ the scratch preset).

Uses the ml-100k-cpu settings (task mix, max_history, max_length, batch size) from the config. Each variant
runs in its own process so peak memory (max RSS) is its own. Needs the prepared data and index the config
names (`lcrec prepare --source ml-100k`, `lcrec index`).

    .venv/bin/python bench/sft_throughput.py                   # 4 timed steps per variant (after 1 warm-up step)
    .venv/bin/python bench/sft_throughput.py --steps 40 --batch-size 8
    .venv/bin/python bench/sft_throughput.py --variants scratch-full scratch-full-trl-head --steps 20
    .venv/bin/python bench/sft_throughput.py --variants smollm2-lora smollm2-lora-trl-head --batch-size 8

`*-trl-head` variants are their namesakes with TRL's own CPU behaviour of its fused LM head (every position is
projected through the head) instead of lcrec's compact scoring (`lcrec.training.trl_compat`): it measures what
that compatibility shim buys.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (base_model, use_lora, compact fused head on CPU)
    "smollm2-lora": ("smollm2", True, True),
    "smollm2-lora-trl-head": ("smollm2", True, False),
    "smollm2-full": ("smollm2", False, True),
    "scratch-full": ("scratch", False, True),
    "scratch-full-trl-head": ("scratch", False, False),
}


def run_variant(name: str, config: str, steps: int, warmup: int, batch_size: int | None) -> dict:
    """Train `warmup + steps` steps of one variant; time the last `steps` and count their tokens."""
    import torch
    from transformers import TrainerCallback

    import lcrec.training.trainer as trainer_module
    from lcrec.data import load_prepared
    from lcrec.indexing import ItemIndex
    from lcrec.training import parse_sft_args
    from lcrec.training.model_setup import build_lora_config, build_tokenizer_and_model
    from lcrec.training.scratch import scratch_tokenizer_texts
    from lcrec.training.template_draws import build_template_draws
    from lcrec.training.tokenize import tokenize_prompt_completion
    from lcrec.training.trainer import LCRecSFTTrainer

    base_model, use_lora, compact_head = VARIANTS[name]
    if not compact_head:
        trainer_module.compact_fused_head_on_cpu = contextlib.nullcontext
    output_dir = tempfile.mkdtemp(prefix=f"sft-bench-{name}-")
    overrides = [
        "--base_model",
        base_model,
        "--use_lora",
        str(use_lora).lower(),
        "--output_dir",
        output_dir,
        "--max_steps",
        str(steps + warmup),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--logging_steps",
        "1000",
    ]
    if batch_size:
        overrides += ["--per_device_train_batch_size", str(batch_size)]
    data, model_options, lora, args = parse_sft_args(["--config", config, *overrides])
    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, _ = build_template_draws(data, dataset, item_index, seed=args.seed)
    titles = dict(zip(dataset["items"]["item_id"], dataset["items"]["title"]))
    texts = scratch_tokenizer_texts(draws[0], dataset["items"])
    tokenizer, model = build_tokenizer_and_model(model_options, item_index, titles, texts)
    train = tokenize_prompt_completion(draws[0], tokenizer, args.max_length)

    class Timer(TrainerCallback):
        def __init__(self):
            self.tokens, self.start, self.seconds = 0, None, 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                self.start = time.perf_counter()
                self.tokens_at_start = trainer._total_train_tokens

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.start
            self.tokens = trainer._total_train_tokens - self.tokens_at_start

    timer = Timer()
    trainer = LCRecSFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[timer],
        peft_config=build_lora_config(model, lora) if use_lora else None,
        draw_sizes=[len(train)],
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    trainer.train()
    samples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps
    return {
        "variant": name,
        "params_m": total / 1e6,
        "trainable_m": trainable / 1e6,
        "batch_size": args.per_device_train_batch_size,
        "steps": steps,
        "seconds": timer.seconds,
        "tokens_per_s": timer.tokens / timer.seconds,
        "samples_per_s": samples / timer.seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "recipes/configs/ml-100k-cpu.yaml"))
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=None, help="override per_device_train_batch_size")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    options = parser.parse_args()
    if options.variant:
        result = run_variant(options.variant, options.config, options.steps, options.warmup, options.batch_size)
        print("RESULT " + json.dumps(result))
        return
    rows = []
    for name in options.variants:
        command = [
            sys.executable,
            __file__,
            "--variant",
            name,
            "--config",
            options.config,
            "--steps",
            str(options.steps),
            "--warmup",
            str(options.warmup),
        ]
        if options.batch_size:
            command += ["--batch-size", str(options.batch_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
        if done.returncode or line is None:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(line[len("RESULT ") :]))
        print(f"done: {name}", file=sys.stderr)
    reference = next((row for row in rows if row["variant"] == "smollm2-full"), rows[0])
    print(
        f"config {Path(options.config).name}, {options.steps} timed steps after {options.warmup} warm-up steps, "
        f"{rows[0]['threads']} torch threads (CPU shared with other jobs: numbers are indicative)"
    )
    header = (
        f"{'variant':<22} {'params M':>9} {'trainable M':>12} {'batch':>6} {'tokens/s':>9} {'samples/s':>10} "
        f"{'peak RSS GiB':>13} {'tokens/s vs ' + reference['variant']:>24}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row["tokens_per_s"] / reference["tokens_per_s"]
        print(
            f"{row['variant']:<22} {row['params_m']:>9.1f} {row['trainable_m']:>12.2f} {row['batch_size']:>6} "
            f"{row['tokens_per_s']:>9.0f} {row['samples_per_s']:>10.2f} {row['peak_rss_gib']:>13.2f} "
            f"{ratio:>23.2f}x"
        )


if __name__ == "__main__":
    main()
