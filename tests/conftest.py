"""Shared test setup: offline Hugging Face libraries, CPU only, small thread count."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run, so CI never fails on a lucky draw.
settings.register_profile("lcrec", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("lcrec")

# Shared tiny fixtures (model engineer): a synthetic catalogue, a byte-level BPE trained in code, tiny random
# Llama / Qwen2 models with tied and untied embeddings, and LC-Rec tokenizer + model built from them.
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

TINY_LEVELS = 3
TINY_CODEBOOK = 8
TINY_NUM_ITEMS = 40
BASE_PAD, BASE_EOS = "<pad>", "</s>"
ARCHITECTURES = ("llama", "qwen2")


def make_item_index(
    num_items: int = TINY_NUM_ITEMS, levels: int = TINY_LEVELS, codebook: int = TINY_CODEBOOK, seed: int = 0
):
    """A collision-free synthetic catalogue; item 0's first code has a single child chain (a sparse prefix)."""
    from lcrec.indexing import ItemIndex

    rng = np.random.default_rng(seed)
    codes = {(codebook - 1,) + (0,) * (levels - 1)}  # the only item under first code codebook-1
    while len(codes) < num_items:
        row = tuple(int(c) for c in rng.integers(0, codebook, levels))
        if row[0] != codebook - 1:
            codes.add(row)
    ordered = sorted(codes)
    return ItemIndex(list(range(num_items)), np.asarray(ordered, dtype=np.int64), [codebook] * levels)


def make_titles(num_items: int = TINY_NUM_ITEMS) -> dict[int, str]:
    colours = ["red", "blue", "green", "black", "white"]
    kinds = ["microscope", "pipette", "beaker", "flask", "scale", "thermometer", "burner", "funnel"]
    return {item: f"{colours[item % 5]} {kinds[item % 8]} {item}" for item in range(num_items)}


def train_base_tokenizer(vocab_size: int = 320):
    """A byte-level BPE (GPT-2 / Qwen style) trained on a few template and title lines, with pad and EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import TokenizersBackend

    from lcrec.tasks.templates import load_templates

    texts = [template.instruction for template in load_templates("seqrec")] + list(make_titles().values())
    texts += ["### Task", "### Answer", "Which item will the user pick next?"] * 3
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BASE_PAD, BASE_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return TokenizersBackend(tokenizer_object=backend, pad_token=BASE_PAD, eos_token=BASE_EOS)


def tiny_base_config(arch: str = "llama", tie: bool = True, vocab_size: int = 320):
    """A 2-layer, 32-wide random decoder config of the given architecture."""
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tie,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    raise ValueError(f"unknown tiny architecture {arch!r}")


def tiny_base_model(arch: str = "llama", tie: bool = True, vocab_size: int = 320, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_base_config(arch, tie, vocab_size)).eval()


@pytest.fixture(scope="session")
def item_index():
    """40 items, 3 levels x 8 codes, no collisions."""
    return make_item_index()


@pytest.fixture(scope="session")
def item_titles() -> dict[int, str]:
    return make_titles()


@pytest.fixture(scope="session")
def base_tokenizer():
    """A tiny trained byte-level BPE without index tokens (do not mutate)."""
    return train_base_tokenizer()


@pytest.fixture(scope="session")
def lcrec_tokenizer(base_tokenizer, item_index, item_titles):
    """`LCRecTokenizer` over the tiny BPE and catalogue (do not mutate; build your own to add items)."""
    from lcrec.tokenization_lcrec import LCRecTokenizer

    return LCRecTokenizer.from_base(base_tokenizer, item_index, titles=item_titles)


@pytest.fixture(scope="session")
def make_lcrec_model(lcrec_tokenizer, base_tokenizer) -> Callable:
    """Factory: `make_lcrec_model(arch="llama"|"qwen2", tie=True, seed=0)` -> a fresh tiny `LCRecForCausalLM`
    (eval mode)."""
    from lcrec.modeling_lcrec import LCRecForCausalLM

    def make(arch: str = "llama", tie: bool = True, seed: int = 0):
        base = tiny_base_model(arch, tie, vocab_size=len(base_tokenizer), seed=seed)
        return LCRecForCausalLM.from_base(base, lcrec_tokenizer, seed=seed).eval()

    return make


@pytest.fixture(scope="session")
def lcrec_model(make_lcrec_model):
    """A tiny tied-embedding Llama `LCRecForCausalLM` with the tiny tokenizer attached (do not mutate)."""
    return make_lcrec_model("llama", tie=True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a small (possibly shared) machine: one intra-op thread avoids spin-waiting on busy cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
