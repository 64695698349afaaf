"""Collaborative signal in the item index: the letter alignment, concat/only inputs, the prefix-sharing measure,
and `lcrec index --collaborative sasrec`."""

import json

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from lcrec.indexing import RQVAEConfig, RQVAETrainingArguments, add_items, build_index, train_rqvae
from lcrec.indexing.collaborative import CollaborativeAlignment, check_collaborative, prefix_sharing, quantiser_inputs
from lcrec.indexing.modeling_rqvae import RQVAE
from lcrec.indexing.synthetic import clustered_embeddings

NUM_ITEMS = 96


def tiny_config():
    return RQVAEConfig(hidden_sizes=[16], code_dim=8, codebook_sizes=[4, 8, 8])


def tiny_args(epochs=40):
    return RQVAETrainingArguments(epochs=epochs, batch_size=96, eval_every=10, progress=False, device="cpu", seed=0)


@pytest.fixture(scope="module")
def data():
    """Text vectors with one cluster structure, collaborative vectors with another (4 groups), and sequences
    that walk inside a collaborative group: the signal only the collaborative vectors carry."""
    text, _ = clustered_embeddings(NUM_ITEMS, dim=24, clusters=4, spread=0.3, seed=1)
    rng = np.random.default_rng(2)
    groups = np.arange(NUM_ITEMS) % 4
    centres = rng.normal(size=(4, 16)) * 3
    collaborative = (centres[groups] + 0.3 * rng.normal(size=(NUM_ITEMS, 16))).astype(np.float32)
    members = [np.flatnonzero(groups == g) for g in range(4)]
    sequences = [rng.choice(members[user % 4], size=8, replace=False).tolist() for user in range(60)]
    return text, collaborative, sequences


def items():
    return [{"item_id": i, "title": f"item {i}", "description": ""} for i in range(NUM_ITEMS)]


def test_prefix_sharing_counts_pairs_and_the_random_rate():
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    sharing = prefix_sharing(codes, [10, 11, 12, 13], [[10, 11, 12], [13, 12, 12]])
    # pairs (10,11) same first code, (11,12) differ, (13,12) same; (12,12) is a repeat and not counted
    assert sharing == {"pairs": 3, "shared": round(2 / 3, 4), "random": round(4 / 12, 4)}
    assert prefix_sharing(codes, [10, 11, 12, 13], [[10, 11]], depth=2)["shared"] == 0.0


def test_quantiser_inputs_per_mode(data):
    text, collaborative, _ = data
    assert quantiser_inputs(text, collaborative, "letter") is text
    only = quantiser_inputs(text, collaborative, "only")
    assert only.shape == collaborative.shape and np.allclose(np.linalg.norm(only, axis=1), 1.0, atol=1e-5)
    both = quantiser_inputs(text, collaborative, "concat")
    assert both.shape == (NUM_ITEMS, text.shape[1] + collaborative.shape[1])
    assert np.allclose(np.linalg.norm(both[:, : text.shape[1]], axis=1), 1.0, atol=1e-5)


def test_bad_collaborative_input_is_named(data):
    _, collaborative, _ = data
    with pytest.raises(ValueError, match="collaborative mode must be one of"):
        check_collaborative(collaborative, NUM_ITEMS, "fuse")
    with pytest.raises(ValueError, match="one row per item"):
        check_collaborative(collaborative[:5], NUM_ITEMS, "only")
    broken = collaborative.copy()
    broken[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(rows \[3\]\)"):
        check_collaborative(broken, NUM_ITEMS, "letter")
    with pytest.raises(ValueError, match="must be positive"):
        CollaborativeAlignment(collaborative, code_dim=8, weight=0.0)


def test_alignment_loss_is_low_when_latents_match_their_own_vectors(data):
    _, collaborative, _ = data
    alignment = CollaborativeAlignment(collaborative, code_dim=16, weight=1.0, temperature=0.1)
    with torch.no_grad():
        alignment.projection.weight.copy_(torch.eye(16))
        alignment.projection.bias.zero_()
    model = RQVAE(RQVAEConfig(input_dim=24, hidden_sizes=[16], code_dim=16, codebook_sizes=[4]))
    output = model(torch.randn(8, 24))
    ids = torch.arange(8)
    output.quantized = torch.as_tensor(collaborative[:8])
    matched = alignment(output, ids)
    output.quantized = torch.as_tensor(collaborative[8:16])
    mismatched = alignment(output, ids)
    assert float(matched.detach()) < float(mismatched.detach())


def test_collaborative_codes_group_items_consumed_together(data, tmp_path):
    """Text codes ignore the co-consumption groups; `only` codes follow them (`concat` builds a valid index too),
    and index_stats.json says so."""
    text, collaborative, sequences = data
    shared = {}
    for mode in ("text", "only", "concat"):
        extra = {} if mode == "text" else {"collaborative": collaborative, "collaborative_mode": mode}
        result = build_index(
            items(),
            tmp_path / mode,
            embeddings=text,
            config=tiny_config(),
            training_args=tiny_args(),
            progress=False,
            sequences=sequences,
            **extra,
        )
        stats = json.loads((tmp_path / mode / "index_stats.json").read_text())
        assert stats["collisions"] == 0
        assert stats.get("collaborative", {}).get("mode") == (None if mode == "text" else mode)
        shared[mode] = stats["train_pair_prefix_sharing"]["first_1"]["shared"]
        assert shared[mode] == prefix_sharing(result.index.codes, result.index.item_ids, sequences)["shared"]
    assert shared["only"] > 0.9 > shared["text"] + 0.3


def test_letter_alignment_trains_with_the_rqvae(data):
    """The alignment term's parameters train with the RQ-VAE and its loss falls; the codes stay text-quantised."""
    text, collaborative, _ = data
    config = RQVAEConfig(input_dim=text.shape[1], hidden_sizes=[16], code_dim=8, codebook_sizes=[4, 8, 8])
    alignment = CollaborativeAlignment(collaborative, code_dim=8, weight=1.0)
    inputs, ids = torch.from_numpy(text), torch.arange(NUM_ITEMS)

    def alignment_loss(model):
        with torch.no_grad():
            return float(alignment(model(inputs, use_sinkhorn=False), ids))

    torch.manual_seed(0)
    untrained = RQVAE(config)
    untrained.initialize_codebooks(inputs)
    before = alignment_loss(untrained)
    args = RQVAETrainingArguments(
        epochs=300, learning_rate=1e-2, batch_size=96, eval_every=50, progress=False, device="cpu", seed=0
    )
    trained = train_rqvae(inputs, config, args, auxiliary=alignment).model
    assert alignment_loss(trained) < 0.8 * before


def test_cold_start_needs_text_only_quantiser_inputs(data, tmp_path):
    text, collaborative, _ = data
    build_index(
        items(),
        tmp_path,
        embeddings=text,
        config=tiny_config(),
        training_args=tiny_args(5),
        progress=False,
        collaborative=collaborative,
        collaborative_mode="concat",
    )
    config = RQVAEConfig.from_pretrained(tmp_path)
    config.embedding["encoder"] = "some-encoder"  # as if built from an encoder
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="collaborative vectors \\(concat\\)"):
        add_items(tmp_path, [{"item_id": 500, "title": "new"}], device="cpu", progress=False)


def test_sasrec_item_vectors_read_the_train_split_only():
    """Item vectors come from the train split: the same vectors whatever the validation and test splits hold."""
    from lcrec.evaluation.baselines import SASRecConfig, sasrec_item_vectors

    num_items = 10
    items_split = Dataset.from_dict({"item_id": list(range(num_items)), "title": [f"t{i}" for i in range(num_items)]})
    train = Dataset.from_dict({"user_id": [0, 1, 2], "history": [[0, 1, 2], [3, 4], [5, 6, 7]], "target": [3, 5, 8]})

    def vectors(held_out_target: int) -> np.ndarray:
        held_out = Dataset.from_dict({"user_id": [0], "history": [[0, 1, 2, 3]], "target": [held_out_target]})
        dataset = DatasetDict({"items": items_split, "train": train, "validation": held_out, "test": held_out})
        config = SASRecConfig(max_epochs=2, hidden_size=8, num_heads=2, inner_size=16, max_len=5, seed=0)
        return sasrec_item_vectors(dataset, config)

    first = vectors(9)
    assert first.shape == (num_items, 8) and np.isfinite(first).all()
    assert np.array_equal(first, vectors(4))


def test_index_command_parses_the_collaborative_options():
    from lcrec.commands.index import make_parser

    parser = make_parser(prog="lcrec index")
    arguments, _, _ = parser.parse_args_into_dataclasses(
        ["--data", "d", "--out", "o", "--collaborative", "sasrec", "--collaborative_mode", "concat"],
        look_for_args_file=False,
    )
    assert (arguments.collaborative, arguments.collaborative_mode, arguments.collaborative_weight) == (
        "sasrec",
        "concat",
        0.1,
    )
    assert arguments.collaborative_epochs == 20
    for bad in (["--collaborative", "bpr"], ["--collaborative_mode", "fuse"], ["--collaborative_weight", "0"]):
        with pytest.raises(ValueError):
            parser.parse_args_into_dataclasses(["--data", "d", "--out", "o", *bad], look_for_args_file=False)
