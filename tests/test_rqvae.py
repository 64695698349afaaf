"""RQ-VAE: the loss falls on clustered data, k-means init copes with tiny catalogues, weights round-trip."""

import logging

import numpy as np
import pytest
import torch

from lcrec.indexing import RQVAE, RQVAEConfig, RQVAETrainingArguments, train_rqvae
from lcrec.indexing.synthetic import clustered_embeddings
from lcrec.indexing.training_rqvae import collision_rate, encode_all, restart_dead_codes

TINY = dict(input_dim=16, hidden_sizes=[32], code_dim=8, codebook_sizes=[8, 8, 8])


def tiny_args(**overrides):
    return RQVAETrainingArguments(
        **{
            "epochs": 40,
            "batch_size": 32,
            "learning_rate": 3e-3,
            "eval_every": 10,
            "progress": False,
            "device": "cpu",
            "seed": 0,
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def clustered():
    embeddings, _ = clustered_embeddings(256, dim=16, clusters=8, seed=0)
    return torch.from_numpy(embeddings)


@pytest.fixture(scope="module")
def trained(clustered):
    return train_rqvae(clustered, RQVAEConfig(**TINY), tiny_args())


def test_loss_falls_on_clustered_data(trained):
    losses = [record["loss"] for record in trained.history]
    reconstruction = [record["reconstruction_loss"] for record in trained.history]
    assert losses[-1] < 0.5 * losses[0]
    assert reconstruction[-1] < 0.25 * reconstruction[0]
    assert all(np.isfinite(losses))


def test_best_collision_checkpoint_is_kept(trained, clustered):
    evaluated = [record for record in trained.history if "collision_rate" in record]
    assert [record["epoch"] for record in evaluated] == [10, 20, 30, 40]
    assert trained.best_collision_rate == min(
        record["collision_rate"] for record in evaluated if record["epoch"] >= 20
    )  # keep_best_from=0.5
    codes, _ = encode_all(trained.model, clustered)
    assert collision_rate(codes) == pytest.approx(trained.best_collision_rate)


def test_same_seed_same_model(clustered):
    first = train_rqvae(clustered, RQVAEConfig(**TINY), tiny_args(epochs=3))
    second = train_rqvae(clustered, RQVAEConfig(**TINY), tiny_args(epochs=3))
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_forward_gives_codes_and_straight_through_gradients(clustered):
    model = RQVAE(RQVAEConfig(**TINY))
    output = model(clustered[:32])
    assert output.codes.shape == (32, 3)
    assert int(output.codes.max()) < 8
    output.loss.backward()
    assert model.encoder[0].weight.grad is not None and model.encoder[0].weight.grad.abs().sum() > 0
    assert all(codebook.grad is not None for codebook in model.codebooks)


def test_kmeans_init_with_fewer_items_than_codes_clamps_and_warns(caplog):
    model = RQVAE(RQVAEConfig(input_dim=16, hidden_sizes=[32], code_dim=8, codebook_sizes=[64, 64]))
    with caplog.at_level(logging.WARNING):
        model.initialize_codebooks(torch.randn(5, 16))
    assert "only 5 points for 64 codewords" in caplog.text
    assert all(torch.isfinite(codebook).all() for codebook in model.codebooks)
    assert len(torch.unique(model.codebooks[0], dim=0)) == 64  # 5 k-means centroids + 59 perturbed points


def test_tiny_catalogue_trains(caplog):
    result = train_rqvae(
        torch.randn(3, 16),
        RQVAEConfig(input_dim=16, hidden_sizes=[8], code_dim=4, codebook_sizes=[16, 16]),
        tiny_args(epochs=2, eval_every=1),
    )
    assert result.best_epoch in (1, 2)


def test_dead_code_restart_moves_unused_codewords(trained, clustered):
    model = RQVAE(RQVAEConfig(**TINY))
    model.load_state_dict(trained.model.state_dict())
    codes, residuals = encode_all(model, clustered)
    unused = sum(8 - len(torch.unique(codes[:, level])) for level in range(3))
    assert restart_dead_codes(model, torch.zeros_like(codes), residuals) == 21  # only code 0 "used" at each level
    codes_after, _ = encode_all(model, clustered)
    assert sum(8 - len(torch.unique(codes_after[:, level])) for level in range(3)) <= max(unused, 21)


def test_restart_option_runs_in_training(clustered):
    result = train_rqvae(clustered, RQVAEConfig(**TINY), tiny_args(epochs=4, eval_every=2, dead_code_restart=True))
    assert result.restarted_codes >= 0 and result.best_epoch in (2, 4)


def test_save_and_load_give_the_same_codes(tmp_path, trained, clustered):
    trained.model.save_pretrained(tmp_path)
    assert (tmp_path / "rqvae.safetensors").is_file() and (tmp_path / "rqvae_config.json").is_file()
    loaded = RQVAE.from_pretrained(tmp_path)
    assert loaded.config == trained.model.config
    torch.testing.assert_close(encode_all(loaded, clustered)[0], encode_all(trained.model, clustered)[0])


def test_config_validates():
    with pytest.raises(ValueError, match="sinkhorn_levels"):
        RQVAEConfig(codebook_sizes=[4, 4], sinkhorn_levels=[2])
    with pytest.raises(ValueError, match="unknown keys"):
        RQVAEConfig.from_dict({"levels_typo": 3})
    assert RQVAEConfig(codebook_sizes=[4, 4, 4]).uses_sinkhorn(2) and not RQVAEConfig(
        codebook_sizes=[4, 4, 4]
    ).uses_sinkhorn(0)
    assert not RQVAEConfig(sinkhorn_levels=[]).uses_sinkhorn(3)


def test_training_rejects_mismatched_embeddings():
    with pytest.raises(ValueError, match="shape"):
        train_rqvae(torch.randn(10, 7), RQVAEConfig(**TINY), tiny_args())
    with pytest.raises(ValueError, match="schedule"):
        RQVAETrainingArguments(schedule="step")


def test_warmup_then_decay_schedule():
    from lcrec.indexing.training_rqvae import learning_rate_schedule

    multiplier = learning_rate_schedule(
        RQVAETrainingArguments(epochs=10, warmup_epochs=2, schedule="cosine"), steps_per_epoch=5
    )
    assert [round(multiplier(step), 3) for step in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert (
        multiplier(10) == pytest.approx(1.0)
        and multiplier(30) == pytest.approx(0.5)
        and multiplier(50) == pytest.approx(0.0)
    )
    linear = learning_rate_schedule(RQVAETrainingArguments(epochs=4, schedule="linear"), steps_per_epoch=1)
    assert [linear(step) for step in range(4)] == [1.0, 0.75, 0.5, 0.25]
    with pytest.raises(ValueError, match="warmup_epochs"):
        RQVAETrainingArguments(epochs=3, warmup_epochs=4)


def test_gradient_clipping_and_schedule_run(clustered):
    result = train_rqvae(
        clustered,
        RQVAEConfig(**TINY),
        tiny_args(epochs=2, eval_every=1, max_grad_norm=0.5, warmup_epochs=1, schedule="linear"),
    )
    assert all(np.isfinite(record["loss"]) for record in result.history)
