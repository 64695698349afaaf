"""Multi-process training and evaluation through the real launcher: `accelerate launch` with 2 CPU processes (DDP
over gloo) runs recipes/sft.py and `-m lcrec.cli evaluate`, and both agree with one process."""

import json
import socket
import subprocess
import sys

import pytest
import torch
from sft_fixtures import (
    NUM_ITEMS,
    ROOT,
    sft_args,
    subprocess_env,
    weights,
    write_sft_data,
)

from lcrec.training import parse_sft_args, run_sft

# 8 users -> a 32-row seqrec mix: two processes x 8 rows make 2 steps per epoch with no padded batch, so the
# data-parallel run sees exactly the batches of one process with 16 rows (and averages the same gradients).
TRAIN = (
    "--max_steps",
    "12",
    "--learning_rate",
    "1e-2",
    "--lr_scheduler_type",
    "constant",
    "--save_strategy",
    "no",
    "--eval_strategy",
    "no",
)


def _accelerate_launch(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`accelerate launch` with 2 local processes. On a machine without GPUs, `--multi_gpu` is accelerate's
    torchrun launcher, and SFTConfig's use_cpu (or lcrec's CPU evaluation) makes the processes use gloo."""
    with socket.socket() as probe:  # a free rendezvous port, so concurrent runs do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=subprocess_env(), cwd=ROOT, check=False
    )


def _failure(done: subprocess.CompletedProcess) -> str:
    """What to show for a failed launch: the other rank's own lines first (the rank that failed first is often not
    rank 0, whose trace then only says that its peer went away), then the end of stderr."""
    others = [line for line in done.stderr.splitlines() if line.startswith("[rank1]")]
    return "\n".join(others[-40:]) + "\n---\n" + done.stderr[-3000:]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ddp-data")
    return {"train": write_sft_data(root / "train", num_users=8), "evaluate": write_sft_data(root / "evaluate", 9)}


@pytest.fixture(scope="module")
def ddp_model(data, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("ddp") / "model"
    done = _accelerate_launch(str(ROOT / "recipes" / "sft.py"), *sft_args(data["train"], output_dir, *TRAIN))
    assert done.returncode == 0, _failure(done)
    return output_dir


def test_ddp_training_matches_one_process_with_the_global_batch_and_the_model_recommends(
    data, ddp_model, tmp_path, one_torch_thread
):
    from transformers import AutoModel

    import lcrec  # noqa: F401  (registers the Auto classes)

    results = json.loads((ddp_model / "training_results.json").read_text())
    assert results["settings"]["world_size"] == 2 and results["settings"]["global_step"] == 12
    single = run_sft(
        *parse_sft_args(sft_args(data["train"], tmp_path / "single", *TRAIN, "--per_device_train_batch_size", "16"))
    )
    expected, trained = weights(single), weights(ddp_model)
    assert expected.keys() == trained.keys()
    for name, tensor in expected.items():
        assert torch.allclose(tensor, trained[name], atol=1e-5), name
    losses = [entry["loss"] for entry in results["log_history"] if "loss" in entry]
    assert len(losses) == 12 and losses[-1] < 0.5 * losses[0]

    model = AutoModel.from_pretrained(ddp_model)
    recommendations = model.recommend([[0, 1, 2], [5, 6, 7]], top_k=3)
    assert [len(row) for row in recommendations] == [3, 3]
    assert all(0 <= item < NUM_ITEMS for row in recommendations for item, _ in row)


def test_evaluation_on_two_processes_gives_the_metrics_of_one(data, ddp_model, tmp_path):
    """9 test users on 2 processes (an odd count: the shards differ in size): same metrics as one process."""
    from lcrec.cli import main

    one, two = tmp_path / "one.json", tmp_path / "two.json"
    options = ("--model", str(ddp_model), "--data", data["evaluate"]["dataset_dir"], "--batch_size", "2")
    assert main(["evaluate", *options, "--out", str(one)]) == 0
    done = _accelerate_launch("-m", "lcrec.cli", "evaluate", *options, "--out", str(two))
    assert done.returncode == 0, _failure(done)
    single, parallel = json.loads(one.read_text()), json.loads(two.read_text())
    assert single["num_users"] == parallel["num_users"] == 9
    assert single.get("num_processes", 1) == 1 and parallel["num_processes"] == 2
    for key in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "invalid_rate"):
        assert parallel[key] == pytest.approx(single[key], abs=1e-9), key
    assert parallel["per_template"].keys() == single["per_template"].keys() == {"0"}
    assert parallel["per_template"]["0"] == pytest.approx(single["per_template"]["0"], abs=1e-9)
    assert 0 < single["HR@10"] and single["invalid_rate"] == 0


def test_distilled_ddp_training_matches_one_process_with_the_global_batch(data, tmp_path, one_torch_thread):
    """The distillation loss goes through the DDP-wrapped forward: two processes average the one-process gradients."""
    from lcrec.evaluation.baselines.sasrec import SASRec, SASRecConfig

    torch.manual_seed(0)
    SASRec(SASRecConfig(num_items=NUM_ITEMS, max_len=8, hidden_size=16, num_heads=2)).save_pretrained(tmp_path / "t")
    distil = (*TRAIN, "--teacher_dir", str(tmp_path / "t"), "--teacher_weight", "0.7")
    done = _accelerate_launch(str(ROOT / "recipes" / "sft.py"), *sft_args(data["train"], tmp_path / "ddp", *distil))
    assert done.returncode == 0, _failure(done)
    single = run_sft(
        *parse_sft_args(sft_args(data["train"], tmp_path / "single", *distil, "--per_device_train_batch_size", "16"))
    )
    expected, trained = weights(single), weights(tmp_path / "ddp")
    for name, tensor in expected.items():
        assert torch.allclose(tensor, trained[name], atol=1e-5), name
    assert json.loads((tmp_path / "ddp" / "training_results.json").read_text())["distillation"]["weight"] == 0.7
