"""`lcrec augment`: per-user texts from a local model, appended as it goes and resumed on rerun."""

import json

import pytest
import torch
from test_tasks import make_dataset, make_index
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lcrec.tasks import TaskMix, load_user_texts
from lcrec.tasks.augment import PREFERENCE_PROMPT, augment_user_texts, read_done_users

CHAT_TEMPLATE = (
    "{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_chat_model():
    """A random 1-layer Llama and a word-level tokenizer with a chat template (stands in for SmolLM2)."""
    words = (PREFERENCE_PROMPT + " Gadget gadgets shopper likes sturdy wants handy model series").split()
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(words * 2, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config), tokenizer


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_augment_appends_resumes_and_joins_into_the_mix(tiny_chat_model, tmp_path):
    model, tokenizer = tiny_chat_model
    dataset = make_dataset(users_split=False)
    out = tmp_path / "users.jsonl"
    options = dict(batch_size=4, max_new_tokens=4, model_name="tiny")
    assert augment_user_texts(dataset, model, tokenizer, out, max_users=6, **options) == 6
    first = read_lines(out)
    assert [row["user_id"] for row in first] == list(range(6))
    assert (
        set(first[0]) == {"user_id", "raw_user_id", "preference", "intention", "model"}
        and first[0]["raw_user_id"] == "U0"
    )

    with out.open("a") as handle:  # a run killed mid-write leaves a cut-off line
        handle.write('{"user_id": 6, "raw_user_id": "U6", "prefer')
    assert read_done_users(out) == set(range(6)) and out.read_text().endswith("\n")
    written = augment_user_texts(dataset, model, tokenizer, out, **options)
    rows = read_lines(out)
    assert written == len(dataset["train"]) - 6
    assert rows[:6] == first and sorted(row["user_id"] for row in rows) == list(range(len(dataset["train"])))
    assert augment_user_texts(dataset, model, tokenizer, out, **options) == 0
    assert all(row["intention"] == "" or row["intention"].startswith("I need") for row in rows)

    texts = load_user_texts(dataset, out)
    with_both = [row["user_id"] for row in rows if row["preference"] and row["intention"]]
    assert set(with_both) <= set(texts.preferences) & set(texts.intentions)
    mix = TaskMix.build(dataset, make_index(), ["itemsearch", "preferenceobtain"], user_texts=out)
    assert mix.counts["preferenceobtain"] == sum(1 for row in rows if row["preference"])


def test_augment_rejects_a_file_that_is_not_augment_output(tiny_chat_model, tmp_path):
    model, tokenizer = tiny_chat_model
    out = tmp_path / "users.jsonl"
    out.write_text('{"name": "not a user"}\n')
    with pytest.raises(ValueError, match="line 1"):
        augment_user_texts(make_dataset(users_split=False), model, tokenizer, out)


def test_lcrec_augment_command_writes_jsonl_from_a_model_folder(tiny_chat_model, tmp_path, capsys):
    from test_tasks import save_prepared_fixture

    from lcrec.cli import main

    model, tokenizer = tiny_chat_model
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data = save_prepared_fixture(make_dataset(users_split=False), tmp_path / "data")
    out = tmp_path / "data" / "users.jsonl"
    argv = [
        "augment",
        "--data",
        data,
        "--out",
        str(out),
        "--model",
        str(tmp_path / "model"),
        "--max-users",
        "3",
        "--max-new-tokens",
        "3",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert "wrote texts for 3 users" in capsys.readouterr().out
    assert [row["user_id"] for row in read_lines(out)] == [0, 1, 2]


def test_generations_are_cleaned_and_title_echoes_detected():
    from lcrec.tasks.augment import _clean, _echoes

    assert _clean('  "Likes sturdy tools. Prefers steel handles and" \n\nignored') == "Likes sturdy tools."
    assert _clean("no sentence end at all") == "no sentence end at all"
    assert _clean("Buys 1.75mm filament and 2.0mm tubes. Also likes") == "Buys 1.75mm filament and 2.0mm tubes."
    assert _echoes("I want the Gorilla Super Glue Gel, 15 Gram please", "Gorilla Super Glue Gel, 15 Gram, Clear")
    assert not _echoes("I need a strong glue for mending shoes.", "Gorilla Super Glue Gel, 15 Gram, Clear")
