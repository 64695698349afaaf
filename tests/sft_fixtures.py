"""Tiny SFT inputs built in code (a prepared dataset, an item index, a compact scratch model's options).

Shared by the training, resume and multi-process tests; each run takes seconds on one CPU thread.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

ROOT = Path(__file__).resolve().parents[1]
NUM_ITEMS = 12
TINY_MODEL = [
    "--base_model",
    "scratch",
    "--scratch_vocab_size",
    "300",
    "--scratch_hidden_size",
    "32",
    "--scratch_num_layers",
    "1",
    "--scratch_num_heads",
    "2",
    "--scratch_intermediate_size",
    "64",
    "--scratch_max_positions",
    "256",
]


def user_sequence(user: int) -> list[int]:
    """A fixed, learnable walk over the catalogue: user u visits u, u+1, u+2, ... (mod NUM_ITEMS)."""
    return [(user + step) % NUM_ITEMS for step in range(7)]


def write_sft_data(root: Path, num_users: int = 8) -> dict[str, str]:
    """A prepared dataset (the `lcrec prepare` layout, leave-one-out) and an item index folder, both tiny."""
    from lcrec.indexing import ItemIndex

    items = Dataset.from_dict(
        {
            "item_id": list(range(NUM_ITEMS)),
            "raw_id": [f"i{item}" for item in range(NUM_ITEMS)],
            "title": [f"Film number {item}" for item in range(NUM_ITEMS)],
            "description": [f"A story about {item} friends." for item in range(NUM_ITEMS)],
            "brand": [""] * NUM_ITEMS,
            "categories": ["Drama"] * NUM_ITEMS,
        }
    )
    splits = {}
    for name, cut in (("train", 3), ("validation", 2), ("test", 1)):
        splits[name] = Dataset.from_dict(
            {
                "user_id": list(range(num_users)),
                "raw_user_id": [f"u{user}" for user in range(num_users)],
                "history": [user_sequence(user)[:-cut] for user in range(num_users)],
                "target": [user_sequence(user)[-cut] for user in range(num_users)],
            }
        )
    dataset_dir = root / "data"
    DatasetDict({"items": items, **splits}).save_to_disk(str(dataset_dir))
    (dataset_dir / "stats.json").write_text(json.dumps({"num_items": NUM_ITEMS, "num_users": num_users}))
    codes = np.array([[item // 4, item % 4, 0] for item in range(NUM_ITEMS)])
    index_dir = root / "index"
    index_dir.mkdir()
    ItemIndex(list(range(NUM_ITEMS)), codes, [3, 4, 2]).save(index_dir / "index.json")
    return {"dataset_dir": str(dataset_dir), "index_dir": str(index_dir)}


def sft_args(data: dict[str, str], output_dir: Path, *extra: str) -> list[str]:
    """Recipe flags for a seconds-long seqrec run of the tiny scratch model on CPU."""
    return [
        "--dataset_dir",
        data["dataset_dir"],
        "--index_dir",
        data["index_dir"],
        "--tasks",
        "seqrec",
        "--output_dir",
        str(output_dir),
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--activation_checkpointing",
        "false",
        "--report_to",
        "none",
        "--seed",
        "7",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "8",
        "--max_length",
        "128",
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
        *TINY_MODEL,
        *extra,
    ]


def subprocess_env() -> dict[str, str]:
    """The environment of a child python: offline, CPU only, one thread per process."""
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        CUDA_VISIBLE_DEVICES="",
    )


def weights(model_dir: Path) -> dict:
    """Every tensor of a saved model folder (safetensors), by name."""
    from safetensors.torch import load_file

    tensors = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors
