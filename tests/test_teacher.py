"""The distillation teacher: SASRec with item text vectors in its item table, a fixed schedule, folded when saved."""

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from test_baselines import NUM_ITEMS, successor_dataset

from lcrec.evaluation.baselines import SASRec, SASRecConfig, fit_baseline, run_baseline
from lcrec.evaluation.baselines.evaluate import training_sequences
from lcrec.evaluation.baselines.sasrec import ItemTextTable, train_sasrec
from lcrec.indexing.embedding import EMBEDDINGS_NAME, read_item_embeddings
from lcrec.training.teacher import TEACHER_EPOCHS, teacher_config, train_teacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**changes) -> SASRecConfig:
    settings = dict(
        num_items=NUM_ITEMS, max_len=10, hidden_size=16, num_layers=1, num_heads=2, inner_size=32, dropout=0.1
    )
    settings.update(changes)
    return SASRecConfig(**settings)


def item_text(dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(NUM_ITEMS, dim)).astype(np.float32)


def test_folding_keeps_every_score_and_saves_a_plain_sasrec(tmp_path):
    torch.manual_seed(0)
    model = SASRec(tiny_config())
    model.add_item_text(item_text())
    assert isinstance(model.item_embeddings, ItemTextTable)
    with torch.no_grad():  # a trained projection: the text part of the table is not zero
        model.item_embeddings.projection.weight.normal_()
    histories = [[1, 2, 3], [5], [7, 8, 9, 10, 11]]
    before = model.score(histories)
    model.fold_item_text()
    assert isinstance(model.item_embeddings, torch.nn.Embedding)
    np.testing.assert_allclose(model.score(histories), before, rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path)
    np.testing.assert_allclose(SASRec.from_pretrained(tmp_path).score(histories), before, rtol=1e-5, atol=1e-5)


def test_item_text_must_have_one_finite_row_per_item():
    model = SASRec(tiny_config())
    with pytest.raises(ValueError, match=rf"must be \({NUM_ITEMS}, dim\).*got \(3, 8\)"):
        model.add_item_text(np.zeros((3, 8), dtype=np.float32))
    bad = item_text()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.add_item_text(bad)


def test_without_early_stopping_the_last_epoch_is_kept():
    dataset = successor_dataset()
    config = tiny_config(num_items=0, max_epochs=4, patience=1, early_stopping=False, learning_rate=1e-2)
    model, facts = fit_baseline("sasrec", dataset, sasrec_config=config, item_text=item_text())
    assert facts["epochs"] == 4 and facts["kept_epoch"] == 4 and facts["item_text"] is True
    assert isinstance(model.item_embeddings, torch.nn.Embedding)  # folded before it is returned
    # The same schedule trained by hand ends on the same weights: the kept model is the last epoch's.
    by_hand, log = train_sasrec(
        training_sequences(dataset),
        tiny_config(max_epochs=4, early_stopping=False, learning_rate=1e-2),
        None,
        item_text(),
    )
    assert len(log) == 4
    histories = [list(h) for h in dataset["test"]["history"][:4]]
    np.testing.assert_allclose(model.score(histories), by_hand.score(histories), rtol=1e-4, atol=1e-5)


def test_a_text_sasrec_learns_and_only_sasrec_takes_text():
    dataset = successor_dataset()
    config = tiny_config(num_items=0, max_epochs=10, patience=10, learning_rate=1e-2, seed=0)
    record = run_baseline("sasrec", dataset, sasrec_config=config, item_text=item_text())
    assert record["HR@10"] > 10 / NUM_ITEMS + 0.3 and record["item_text"] is True
    with pytest.raises(ValueError, match="SASRec option; most_popular takes none"):
        run_baseline("pop", dataset, item_text=item_text())


def test_read_item_embeddings_names_the_problem(tmp_path):
    folder = tmp_path / "index"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=f"no item embeddings.*{EMBEDDINGS_NAME}"):
        read_item_embeddings(folder, NUM_ITEMS)
    save_file({"embeddings": item_text()}, str(folder / EMBEDDINGS_NAME))
    assert read_item_embeddings(folder, NUM_ITEMS).shape == (NUM_ITEMS, 8)
    assert read_item_embeddings(folder / EMBEDDINGS_NAME, NUM_ITEMS).dtype == np.float32
    with pytest.raises(ValueError, match=rf"shape \({NUM_ITEMS}, 8\), expected \(41, dim\)"):
        read_item_embeddings(folder, NUM_ITEMS + 1)
    other = tmp_path / "other.safetensors"
    save_file({"vectors": item_text()}, str(other))
    with pytest.raises(ValueError, match=r"no 'embeddings' tensor \(has \['vectors'\]\)"):
        read_item_embeddings(other, NUM_ITEMS)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_item_embeddings(broken, NUM_ITEMS)
    nan = item_text()
    nan[7] = np.inf
    save_file({"embeddings": nan}, str(other))
    with pytest.raises(ValueError, match=r"NaN or inf, e.g. items \[7\]"):
        read_item_embeddings(other, NUM_ITEMS)


def test_train_teacher_reads_the_index_and_saves_a_sasrec_folder(tmp_path):
    assert teacher_config(3).max_epochs == TEACHER_EPOCHS and teacher_config(3).early_stopping is False
    save_file({"embeddings": item_text()}, str(tmp_path / EMBEDDINGS_NAME))
    facts = train_teacher(successor_dataset(num_users=20), tmp_path, tmp_path / "teacher", seed=0, max_seconds=0.01)
    # The time budget stops it after its first epoch; the last epoch is the one kept.
    assert facts["epochs"] == facts["kept_epoch"] == 1 and facts["item_text"] is True
    config = SASRec.from_pretrained(tmp_path / "teacher").config
    assert config.num_items == NUM_ITEMS and config.item_text_dim == 8  # the saved config says what it was taught


def test_baseline_cli_trains_a_text_sasrec(tmp_path, capsys):
    from lcrec.cli import main
    from lcrec.data import save_prepared

    save_prepared(successor_dataset(num_users=20), {}, tmp_path / "data")
    save_file({"embeddings": item_text()}, str(tmp_path / EMBEDDINGS_NAME))
    args = ["baseline", "--model", "sasrec", "--data", str(tmp_path / "data"), "--max_epochs", "2"]
    args += ["--early_stopping", "false", "--item_text", str(tmp_path), "--save_model", str(tmp_path / "t")]
    assert main(args) == 0
    assert SASRec.from_pretrained(tmp_path / "t").item_embeddings.weight.shape == (NUM_ITEMS + 1, 64)
    capsys.readouterr()
    assert main([*args[:-4], "--item_text", str(tmp_path / "data")]) != 0
    assert "data/embeddings.safetensors: no item embeddings" in capsys.readouterr().err
