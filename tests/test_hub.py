"""Publishing to and loading from a Hub, against real HTTP servers on 127.0.0.1; lcrec's model and dataset cards.

Write path: tests/hub_server.py (a minimal Hub for huggingface_hub's regular commit path, storing git repos).
Read path: olah (a self-hosted Hub mirror) serving those git repos as local mirrors; what a mirror cannot
answer itself (for example "this optional file does not exist") it asks its upstream, which is the same
test server, so no request ever leaves 127.0.0.1. Every client runs in a subprocess so that HF_ENDPOINT
is read when huggingface_hub is imported; every server is started and stopped here with bounded waits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hub_server import running_hub

from lcrec.cli import main as lcrec_main
from lcrec.hub import (
    LCRecModelCardData,
    load_index,
    push_model,
    stage_dataset,
    stage_model,
    update_model_card_metrics,
    write_model_card,
)
from lcrec.indexing.item_index import ItemIndex

TOKEN = "hf_lcrecTestToken0123456789"
SERVER_START_TIMEOUT = 30
CLIENT_TIMEOUT = 180
METRIC_NAMES = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")
PREPARE_COMMAND = "lcrec prepare --source tiny --out data"
TASKS_COMMAND = "lcrec tasks --data data --index index --out tasks"


# --- servers ----------------------------------------------------------------------------------------


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The test Hub: (url, root folder of its git repos, path of its request log)."""
    if shutil.which("git") is None:
        pytest.skip("the test Hub stores repos with the git command-line tool, which is not installed")
    root = tmp_path_factory.mktemp("hub")
    log = root.parent / "hub_server.log"
    with running_hub(root / "repos", TOKEN, log, max_file_bytes=4 * 2**20, start_timeout=SERVER_START_TIMEOUT) as url:
        yield url, root / "repos", log


@pytest.fixture(scope="module")
def olah(hub, tmp_path_factory):
    """olah serving the test Hub's git repos as local mirrors, with the test Hub as its upstream."""
    hub_url, repos, _ = hub
    folder = tmp_path_factory.mktemp("olah")
    port = _free_port()
    config = folder / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{folder / "cache"}"\nmirrors-path = ["{repos}"]\n'
        f'hf-scheme = "http"\nhf-netloc = "{hub_url.split("//")[1]}"\nhf-lfs-netloc = "{hub_url.split("//")[1]}"\n'
        "[accessibility]\noffline = false\n"
    )
    launcher = "import sys; from olah.server import cli; sys.argv[0] = 'olah'; cli()"
    with open(folder / "olah.out", "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", launcher, "--config", str(config), "--log-path", str(folder / "logs")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/whoami-v2", timeout=2)
                    break
                except urllib.error.HTTPError:
                    break  # answering (401 without a token) means it is up
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"olah did not start: {(folder / 'olah.out').read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.3)
            yield url
        finally:
            _stop(process)


def _client_env(endpoint: str, home: Path, token: str | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home),
        HF_HUB_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
    )
    if token:
        env["HF_TOKEN"] = token
    return env


def run_client(args: list[str], endpoint: str, home: Path, token: str | None = None) -> subprocess.CompletedProcess:
    """Run a Python client in a fresh process against `endpoint` with a fresh cache `home`."""
    return subprocess.run(
        [sys.executable, *args],
        env=_client_env(endpoint, home, token),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def lcrec_cli(*args: str, endpoint: str, home: Path, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    return run_client(["-m", "lcrec.cli", *args], endpoint, home, token)


# --- artifacts --------------------------------------------------------------------------------------


def _write_prepared(
    folder: Path,
    num_items: int = 12,
    num_users: int = 8,
    seed: int = 0,
    validation: str = "validation",
    command: str | None = PREPARE_COMMAND,
) -> Path:
    """A tiny prepared dataset in the shared layout (items, train/validation/test, stats.json)."""
    from datasets import Dataset, DatasetDict

    rng = np.random.default_rng(seed)
    items = Dataset.from_dict(
        {
            "item_id": list(range(num_items)),
            "raw_id": [f"B{index:04d}" for index in range(num_items)],
            "title": [f"Item number {index}" for index in range(num_items)],
            "description": [f"A description of item {index}." for index in range(num_items)],
            "brand": ["Acme" if index % 2 else "" for index in range(num_items)],
            "categories": ["Tools" for _ in range(num_items)],
        }
    )
    splits = {"train": [], validation: [], "test": []}
    for user in range(num_users):
        sequence = [int(item) for item in rng.choice(num_items, size=int(rng.integers(4, 7)), replace=False)]
        for split, cut in (("train", -3), (validation, -2), ("test", -1)):
            splits[split].append(
                {"user_id": user, "raw_user_id": f"U{user}", "history": sequence[:cut], "target": sequence[cut]}
            )
    dataset = DatasetDict({"items": items, **{split: Dataset.from_list(rows) for split, rows in splits.items()}})
    dataset.save_to_disk(str(folder))
    stats = {
        "source": "/home/someone/raw/tiny",
        "format": "csv",
        "kcore": 0,
        "after": {
            "users": num_users,
            "items": num_items,
            "interactions": sum(len(r["history"]) + 1 for r in splits["test"]),
            "sparsity": 0.91234567,
        },
        "drops": [{"stage": "clean", "reason": "repeated pair", "interactions": 5, "items": 2, "users": 1}],
    }
    if command:
        stats["command"] = command
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def _write_index_folder(folder: Path, index: ItemIndex) -> Path:
    """An index folder as `lcrec index --out` writes it (tiny RQ-VAE weights, real stats and PNG)."""
    from safetensors.numpy import save_file

    from lcrec.indexing.stats import index_stats, plot_index_stats

    folder.mkdir(parents=True, exist_ok=True)
    index.save(folder / "index.json")
    save_file({"encoder.0.weight": np.ones((4, 8), dtype=np.float32)}, str(folder / "rqvae.safetensors"))
    (folder / "rqvae_config.json").write_text(json.dumps({"input_dim": 8, "codebook_sizes": index.codebook_sizes}))
    (folder / "index_stats.json").write_text(json.dumps(index_stats(index.codes, index.codebook_sizes, 0.0, 0.1)))
    plot_index_stats(index.codes, index.codebook_sizes, folder / "index_stats.png")
    (folder / "embeddings.safetensors").write_bytes(b"cache, never published")
    return folder


def _write_tasks(
    folder: Path, validation: str = "validation", command: str | None = TASKS_COMMAND, fingerprint: str | None = None
):
    from datasets import Dataset, DatasetDict

    rows = {
        "prompt": ["p1", "p2"],
        "completion": ["<a_1><b_2><c_3>", "<a_0><b_1><c_2>"],
        "task": ["seqrec"] * 2,
        "template_id": [0, 1],
    }
    tasks = DatasetDict({split: Dataset.from_dict(rows) for split in ("train", validation)})
    tasks.save_to_disk(str(folder))
    (folder / "mix_info.json").write_text(
        json.dumps(
            {"counts": {"seqrec": 2}, "index_fingerprint": fingerprint, **({"command": command} if command else {})}
        )
    )
    return tasks


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, item_index):
    """A prepared dataset and its index folder over the shared tiny catalogue (conftest's `item_index`)."""
    folder = tmp_path_factory.mktemp("artifacts")
    return {
        "prepared": _write_prepared(folder / "data", num_items=item_index.num_items),
        "index": _write_index_folder(folder / "index", item_index),
        "item_index": item_index,
    }


@pytest.fixture(scope="module")
def model_folder(make_lcrec_model, tmp_path_factory):
    """A tiny LCRecForCausalLM saved as lcrec saves every model (tokenizer, index, remote code, generation config)."""
    folder = tmp_path_factory.mktemp("model") / "tiny-rec"
    make_lcrec_model("llama", tie=True).save_pretrained(folder)
    return folder


def _metrics_record(split: str = "test") -> dict:
    from lcrec.evaluation.report import build_metrics_record

    per_template = {
        "0": {"HR@1": 0.1, "HR@5": 0.3, "HR@10": 0.5, "NDCG@5": 0.2, "NDCG@10": 0.25},
        "1": {"HR@1": 0.2, "HR@5": 0.4, "HR@10": 0.6, "NDCG@5": 0.3, "NDCG@10": 0.35},
    }
    return build_metrics_record(
        per_template,
        method="lcrec",
        num_users=8,
        num_beams=6,
        invalid_rate=0.0,
        seconds=1.5,
        exclude_history=False,
        split=split,
    )


@pytest.fixture(scope="module")
def metrics_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("metrics") / "metrics.json"
    path.write_text(json.dumps(_metrics_record()))
    return path


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _card_metadata(path: Path) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard.load(path).data.to_dict()


# --- dataset ----------------------------------------------------------------------------------------


def test_dataset_card_lists_configs_license_size_and_only_recorded_commands(artifacts, tmp_path):
    from datasets import Dataset
    from hub_server import _validate_metadata
    from huggingface_hub import DatasetCard

    tasks = _write_tasks(tmp_path / "tasks", fingerprint=artifacts["item_index"].fingerprint)
    out = tmp_path / "staged"
    staged = stage_dataset(
        artifacts["prepared"],
        _mkdir(out),
        "org/tiny-data",
        index_dir=artifacts["index"],
        tasks_dir=tmp_path / "tasks",
        license="cc-by-4.0",
    )
    assert "index/index.json" in staged.files and "index/index_stats.png" in staged.files
    assert "index/embeddings.safetensors" not in staged.files
    assert "interactions/validation-00000-of-00001.parquet" in staged.files
    card = DatasetCard.load(out / "README.md")
    configs = {config["config_name"]: config for config in card.data.configs}
    assert set(configs) == {"interactions", "items", "tasks"}
    assert {entry["split"] for entry in configs["interactions"]["data_files"]} == {"train", "validation", "test"}
    assert list(Dataset.from_parquet(str(out / "tasks/validation-00000-of-00001.parquet"))["completion"]) == list(
        tasks["validation"]["completion"]
    )
    assert (card.data.license, card.data.size_categories) == ("cc-by-4.0", ["n<1K"])
    assert _validate_metadata((out / "README.md").read_text(), "dataset") == ([], [])
    assert 'lcrec.load_index("org/tiny-data")' in card.text
    # Reproduce: the commands the prepared data and the task mix recorded, in order; the index recorded none.
    reproduce = card.text.split("## Reproduce")[1]
    assert PREPARE_COMMAND in reproduce and TASKS_COMMAND in reproduce
    assert reproduce.index(PREPARE_COMMAND) < reproduce.index(TASKS_COMMAND)
    assert "lcrec index" not in reproduce and "lcrec push" not in reproduce
    assert "/home/someone" not in card.text  # the source is named, not the preparing machine's folders
    assert "| sparsity | 0.9123 |" in card.text
    assert "| dropped at clean: repeated pair | 5 interactions, 2 items, 1 users |" in card.text
    assert load_index(out).to_dict() == artifacts["item_index"].to_dict()


def test_an_index_file_given_by_path_is_published_as_index_json(artifacts, tmp_path):
    # A prepared LC-Rec release keeps its index as released_index.json beside the splits, not in an index folder.
    released = tmp_path / "data" / "released_index.json"
    released.parent.mkdir()
    artifacts["item_index"].save(released)
    out = _mkdir(tmp_path / "staged")
    staged = stage_dataset(artifacts["prepared"], out, "org/released", index_dir=released)
    assert [name for name in staged.files if name.startswith("index/")] == ["index/index.json"]
    assert load_index(out).to_dict() == artifacts["item_index"].to_dict()


def test_dataset_with_a_task_mix_of_another_index_is_refused_before_anything_is_written(artifacts, tmp_path, capsys):
    from conftest import make_item_index

    _write_tasks(tmp_path / "tasks", fingerprint=make_item_index(seed=1).fingerprint)
    argv = ["push", "dataset", "--data", str(artifacts["prepared"]), "--index", str(artifacts["index"])]
    argv += ["--tasks", str(tmp_path / "tasks"), "--repo_id", "org/x", "--dry_run", str(tmp_path / "out")]
    assert lcrec_main(argv) == 2
    assert "the task mix was built with another item index" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dataset_without_recorded_commands_lists_none_and_legacy_valid_split_is_published_as_validation(
    item_index, tmp_path
):
    from huggingface_hub import DatasetCard

    prepared = _write_prepared(tmp_path / "data", num_items=item_index.num_items, validation="valid", command=None)
    _write_tasks(tmp_path / "tasks", validation="valid", command=None)
    out = tmp_path / "staged"
    staged = stage_dataset(prepared, _mkdir(out), "org/legacy", tasks_dir=tmp_path / "tasks")
    assert {"interactions/validation-00000-of-00001.parquet", "tasks/validation-00000-of-00001.parquet"} <= set(
        staged.files
    )
    assert not any("/valid-" in name for name in staged.files)
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "unknown" and "not stated by the publisher" in card.text
    reproduce = card.text.split("## Reproduce")[1]
    assert "were not recorded" in reproduce and "lcrec " not in reproduce


# --- model cards ------------------------------------------------------------------------------------


TRAINING_RESULTS = {
    "base_model": "scratch",
    "use_lora": False,
    "tasks": ["seqrec", "item2index"],
    "train_rows_per_draw": [120, 118],
    "validation_rows": 9,
    "best_eval_loss": 1.2345,
    "seconds": 12.5,
    "command": "lcrec train --config tiny.yaml",
    "settings": {
        "learning_rate": 0.003,
        "max_steps": 40,
        "per_device_train_batch_size": 8,
        "lora_target_modules": ["q_proj", "v_proj"],
    },
}


@pytest.fixture
def trained_folder(model_folder, tmp_path):
    """A copy of the model folder with the record `lcrec train` writes beside the weights."""
    folder = tmp_path / "trained"
    shutil.copytree(model_folder, folder)
    (folder / "training_results.json").write_text(json.dumps(TRAINING_RESULTS))
    return folder


def test_write_model_card_then_evaluation_updates_it_and_keeps_the_publisher_fields(trained_folder, artifacts):
    card_path = write_model_card(
        trained_folder,
        LCRecModelCardData(license="apache-2.0", language=["en"]),
        dataset_dir=artifacts["prepared"],
        index_dir=artifacts["index"],
    )
    assert card_path == trained_folder / "README.md"
    assert json.loads((trained_folder / "index_stats.json").read_text()) == json.loads(
        (artifacts["index"] / "index_stats.json").read_text()
    )
    assert json.loads((trained_folder / "dataset_stats.json").read_text())["command"] == PREPARE_COMMAND
    text = card_path.read_text()
    assert (
        "| validation rows | 9 |" in text
        and "| best validation loss | 1.2345 |" in text
        and "| learning_rate | 0.003 |" in text
        and "| lora_target_modules | q_proj, v_proj |" in text
    )
    assert "| items sharing an index | 0 |" in text  # the index folder's statistics
    assert "Not evaluated yet" in text and "model-index" not in text
    assert PREPARE_COMMAND in text and "lcrec train --config tiny.yaml" in text  # the commands that were recorded
    assert "/home/someone" not in text and "tiny (" in text  # the source by name, with its counts
    assert "**Parameters:** " in text
    assert _card_metadata(card_path)["license"] == "apache-2.0"

    record = _metrics_record()
    update_model_card_metrics(trained_folder, record)
    assert json.loads((trained_folder / "metrics.json").read_text()) == record
    metadata = _card_metadata(card_path)
    assert (metadata["license"], metadata["language"]) == ("apache-2.0", ["en"])  # kept from the first render
    results = {
        entry["metric"]["name"] if "metric" in entry else entry["name"]: entry
        for entry in metadata["model-index"][0]["results"][0]["metrics"]
    }
    assert {name: results[name]["value"] for name in METRIC_NAMES} == {
        name: pytest.approx(record[name]) for name in METRIC_NAMES
    }
    text = card_path.read_text()
    assert (
        f"| NDCG@10 | {record['NDCG@10']:.4f} | {record['template_min']['NDCG@10']:.4f} | "
        f"{record['template_max']['NDCG@10']:.4f} |" in text
    )
    assert "one held-out test item per user" in text and "Not evaluated yet" not in text

    update_model_card_metrics(trained_folder, {**_metrics_record(split="valid"), "max_users": 8, "user_seed": 3})
    text = card_path.read_text()
    assert "one held-out validation item per user" in text and "8 users (a sample drawn with seed 3)" in text
    with pytest.raises(ValueError, match="lacks HR@1"):
        update_model_card_metrics(trained_folder, {"num_users": 3})


def test_model_card_without_records_says_what_is_missing(model_folder, tmp_path):
    folder = tmp_path / "bare"
    shutil.copytree(model_folder, folder)
    text = write_model_card(folder).read_text()
    assert "No training record" in text and "Not evaluated yet" in text and "were not recorded" in text
    assert _card_metadata(folder / "README.md")["license"] == "unknown"


def test_card_templates_are_package_data_and_LCREC_MODEL_CARDS_overrides_them(trained_folder, tmp_path, monkeypatch):
    import lcrec.cards

    templates = Path(lcrec.cards.__file__).parent / "templates"
    assert {"model_card.md.j2", "dataset_card.md.j2"} <= {path.name for path in templates.iterdir()}
    custom = _mkdir(tmp_path / "cards")
    (custom / "model_card.md.j2").write_text(
        "---\n{{ card_data }}\n---\n\nCustom card for {{ model_ref }}: {{ card.index.num_items }} items.\n"
    )
    monkeypatch.setenv("LCREC_MODEL_CARDS", str(custom))
    assert "Custom card for path/to/trained: 40 items." in write_model_card(trained_folder).read_text()
    monkeypatch.setenv("LCREC_MODEL_CARDS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="model_card.md.j2 not found in .*nowhere.*LCREC_MODEL_CARDS"):
        write_model_card(trained_folder)


def test_write_model_card_refuses_a_folder_that_is_not_an_lcrec_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        write_model_card(tmp_path / "missing")
    (_mkdir(tmp_path / "llama") / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama', expected 'lcrec'"):
        write_model_card(tmp_path / "llama")


# --- model repos ------------------------------------------------------------------------------------

HISTORIES = [[1, 2, 3], [4, 5], [10, 11, 12, 13], [7]]


def test_model_dry_run_has_card_generation_config_and_remote_code(
    model_folder, artifacts, metrics_file, tmp_path, capsys
):
    from huggingface_hub import ModelCard

    out = tmp_path / "staged"
    code = lcrec_main(
        [
            "push",
            "model",
            "--model",
            str(model_folder),
            "--repo_id",
            "org/tiny-rec",
            "--metrics",
            str(metrics_file),
            "--index",
            str(artifacts["index"]),
            "--dataset_repo",
            "org/tiny-data",
            "--license",
            "mit",
            "--reproduce",
            "lcrec train --config tiny.yaml",
            "--dry_run",
            str(out),
        ]
    )
    assert code == 0
    assert "dry run" in capsys.readouterr().out
    files = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "index.json",
        "README.md",
        "metrics.json",
        "index_stats.json",
        "modeling_lcrec.py",
    } <= files
    card = ModelCard.load(out / "README.md")
    metrics = json.loads(metrics_file.read_text())
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {name: pytest.approx(metrics[name]) for name in METRIC_NAMES}
    assert card.data.datasets == ["org/tiny-data"] and "lcrec" in card.data.tags and card.data.license == "mit"
    assert "lcrec train --config tiny.yaml" in card.text and "trust_remote_code=True" in card.text
    assert 'from_pretrained("org/tiny-rec"' in card.text
    assert f"| NDCG@10 | {metrics['NDCG@10']:.4f} |" in card.text


def test_generation_config_is_published_as_the_folder_has_it(model_folder, tmp_path):
    """One definition of the beam settings: the folder's generation_config.json, byte for byte; an older folder
    without one gets `default_generation_config`, the one every model lcrec builds carries."""
    from transformers import GenerationConfig

    from lcrec.configuration_lcrec import DEFAULT_NUM_BEAMS

    staged = stage_model(model_folder, _mkdir(tmp_path / "staged"), "org/tiny-rec")
    assert (
        "generation_config.json" in staged.files and json.loads((model_folder / "config.json").read_text())["auto_map"]
    )
    assert (tmp_path / "staged" / "generation_config.json").read_bytes() == (
        model_folder / "generation_config.json"
    ).read_bytes()
    assert GenerationConfig.from_pretrained(tmp_path / "staged").num_beams == DEFAULT_NUM_BEAMS
    assert f"beam search with {DEFAULT_NUM_BEAMS} beams" in (tmp_path / "staged" / "README.md").read_text()

    older = tmp_path / "older"
    shutil.copytree(model_folder, older)
    (older / "generation_config.json").unlink()
    stage_model(older, _mkdir(tmp_path / "older-staged"), "org/older")
    assert (
        GenerationConfig.from_pretrained(tmp_path / "older-staged").to_dict()
        == GenerationConfig.from_pretrained(model_folder).to_dict()
    )


def test_folder_card_and_pushed_card_say_the_same(trained_folder, artifacts, tmp_path):
    """The card a push publishes is the folder's card with the repo id filled in: nothing is lost or invented."""
    write_model_card(
        trained_folder,
        LCRecModelCardData(license="apache-2.0"),
        dataset_dir=artifacts["prepared"],
        index_dir=artifacts["index"],
    )
    update_model_card_metrics(trained_folder, _metrics_record())
    staged = stage_model(trained_folder, _mkdir(tmp_path / "staged"), "org/tiny-rec")
    assert {"training_results.json", "dataset_stats.json", "index_stats.json", "metrics.json"} <= set(staged.files)
    local = (trained_folder / "README.md").read_text()
    pushed = (tmp_path / "staged" / "README.md").read_text()
    expected = (
        local.replace("path/to/trained", "org/tiny-rec")
        .replace("model_name: trained", "model_name: tiny-rec")
        .replace("# trained\n", "# tiny-rec\n")
    )
    expected = expected.replace("name: trained\n", "name: tiny-rec\n")  # model-index name
    assert pushed == expected


def test_push_pretrained_carries_the_records_only_while_the_weights_are_unchanged(trained_folder, artifacts, tmp_path):
    import torch

    from lcrec.hub import push_pretrained
    from lcrec.modeling_lcrec import LCRecForCausalLM

    write_model_card(
        trained_folder,
        LCRecModelCardData(license="mit"),
        dataset_dir=artifacts["prepared"],
        index_dir=artifacts["index"],
    )
    update_model_card_metrics(trained_folder, _metrics_record())
    model = LCRecForCausalLM.from_pretrained(trained_folder)
    assert push_pretrained(model, "org/same", dry_run_dir=tmp_path / "same") is None
    same = tmp_path / "same"
    assert {"metrics.json", "training_results.json", "index_stats.json", "dataset_stats.json"} <= {
        p.name for p in same.iterdir()
    }
    assert _card_metadata(same / "README.md")["license"] == "mit" and "model-index" in (same / "README.md").read_text()

    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # further training in memory: the recorded metrics no longer apply
    push_pretrained(model, "org/changed", dry_run_dir=tmp_path / "changed")
    changed = {p.name for p in (tmp_path / "changed").iterdir()}
    assert {"index_stats.json", "dataset_stats.json"} <= changed and not {
        "metrics.json",
        "training_results.json",
    } & changed
    assert "Not evaluated yet" in (tmp_path / "changed" / "README.md").read_text()


def test_model_whose_index_differs_from_the_dataset_is_refused(model_folder, tmp_path, capsys):
    from conftest import make_item_index

    other = _write_index_folder(tmp_path / "other-index", make_item_index(seed=1))
    out = tmp_path / "staged"
    code = lcrec_main(
        [
            "push",
            "model",
            "--model",
            str(model_folder),
            "--repo_id",
            "org/tiny-rec",
            "--index",
            str(other),
            "--dry_run",
            str(out),
        ]
    )
    assert code == 2
    assert "does not match the dataset's index" in capsys.readouterr().err
    assert not out.exists()


def test_push_errors_are_one_line(model_folder, tmp_path, capsys):
    """A missing folder, a bad repo id, and a Hub id that cannot be resolved offline (conftest sets HF_HUB_OFFLINE)."""
    cases = [
        (["--model", str(tmp_path / "missing"), "--repo_id", "org/x"], "no such model folder"),
        (["--model", str(model_folder), "--repo_id", "org/x/y"], "--repo_id org/x/y: not a valid Hub repo id"),
        (
            [
                "--model",
                str(model_folder),
                "--repo_id",
                "org/x",
                "--dataset_repo",
                "org/not-cached",
                "--dry_run",
                str(tmp_path / "out"),
            ],
            "offline",
        ),
        # an upload while HF_HUB_OFFLINE=1 (conftest): huggingface_hub's own reason, on one line
        (["--model", str(model_folder), "--repo_id", "org/x"], "offline mode is enabled"),
    ]
    for arguments, message in cases:
        assert lcrec_main(["push", "model", *arguments]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(
        FileNotFoundError,
        match="org/not-cached: no such local path, and index/index.json cannot be fetched from the Hub while offline",
    ):
        load_index("org/not-cached")
    with pytest.raises(FileNotFoundError, match="not a valid Hub repo id"):
        load_index("no/such/folder")


def test_dry_run_refuses_an_input_folder_and_an_unrelated_folder(model_folder, tmp_path, capsys):
    assert (
        lcrec_main(
            ["push", "model", "--model", str(model_folder), "--repo_id", "org/x", "--dry_run", str(model_folder)]
        )
        == 2
    )
    assert "is the input" in capsys.readouterr().err
    unrelated = _mkdir(tmp_path / "notes")
    (unrelated / "keep.txt").write_text("mine")
    assert (
        lcrec_main(["push", "model", "--model", str(model_folder), "--repo_id", "org/x", "--dry_run", str(unrelated)])
        == 2
    )
    assert "--overwrite" in capsys.readouterr().err and (unrelated / "keep.txt").read_text() == "mine"
    out = tmp_path / "out"
    for _ in range(2):  # a previous dry run of `lcrec push` is replaced without --overwrite
        assert (
            lcrec_main(["push", "model", "--model", str(model_folder), "--repo_id", "org/x", "--dry_run", str(out)])
            == 0
        )
    assert (out / "README.md").is_file()


@pytest.fixture
def online(monkeypatch):
    """Let this process's huggingface_hub talk to the 127.0.0.1 servers (conftest sets HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.mark.slow
def test_failed_push_changes_nothing_and_reruns(hub, online, model_folder, artifacts, metrics_file, tmp_path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    hub_url, _, log = hub
    api = HfApi(endpoint=hub_url, token=TOKEN)
    before = _tree_digest(model_folder)
    urllib.request.urlopen(urllib.request.Request(f"{hub_url}/_test/fail-next-commit", method="POST"), timeout=10)
    failed = lcrec_cli(
        "push",
        "model",
        "--model",
        str(model_folder),
        "--repo_id",
        "org/tiny-rec-retry",
        "--metrics",
        str(metrics_file),
        "--index",
        str(artifacts["index"]),
        endpoint=hub_url,
        home=tmp_path / "push-home",
    )
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "no files were committed" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "httpx" not in failed.stderr and "HTTP Request" not in failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    assert api.list_repo_files("org/tiny-rec-retry") == [".gitattributes"]
    assert _tree_digest(model_folder) == before

    result = push_model(
        model_folder,
        "org/tiny-rec-retry",
        metrics_path=metrics_file,
        index_dir=artifacts["index"],
        token=TOKEN,
        endpoint=hub_url,
    )
    assert set(api.list_repo_files("org/tiny-rec-retry")) == {".gitattributes", *result.files}
    assert _tree_digest(model_folder) == before
    head = api.model_info("org/tiny-rec-retry").sha
    push_model(
        model_folder,
        "org/tiny-rec-retry",
        metrics_path=metrics_file,
        index_dir=artifacts["index"],
        token=TOKEN,
        endpoint=hub_url,
    )
    assert api.model_info("org/tiny-rec-retry").sha == head  # an unchanged rerun commits nothing

    branch = push_model(
        model_folder,
        "org/tiny-rec-private",
        index_dir=artifacts["index"],
        revision="exp",
        private=True,
        token=TOKEN,
        endpoint=hub_url,
    )
    assert branch.revision == "exp"
    assert api.model_info("org/tiny-rec-private", revision="exp").private
    assert "README.md" not in api.list_repo_files("org/tiny-rec-private")  # main keeps only the initial commit
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub_url, token=False).model_info("org/tiny-rec-private")
    assert "POST /api/validate-yaml -> 200" in log.read_text()
    assert TOKEN not in log.read_text()
    card = Path(api.hf_hub_download("org/tiny-rec-retry", "README.md", cache_dir=tmp_path / "cache")).read_text()
    assert "model-index" in card and TOKEN not in card

    quiet = lcrec_cli(
        "push",
        "model",
        "--model",
        str(model_folder),
        "--repo_id",
        "org/tiny-rec-retry",
        "--metrics",
        str(metrics_file),
        endpoint=hub_url,
        home=tmp_path / "push-home",
    )
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "httpx" not in quiet.stderr and "HTTP Request" not in quiet.stderr  # no request log lines by default
    # The repo holds exactly what this push staged: the index stats of the earlier push (given --index) are gone.
    assert "index_stats.json" in result.files and "index_stats.json" not in api.list_repo_files("org/tiny-rec-retry")


def test_test_hub_validates_card_metadata_like_the_hub(model_folder, metrics_file, tmp_path):
    """The write-path server must be able to refuse bad metadata, or a passing push would prove nothing."""
    from hub_server import _validate_metadata

    out = tmp_path / "staged"
    stage_model(model_folder, _mkdir(out), "org/tiny-rec", metrics_path=metrics_file)
    card = (out / "README.md").read_text()
    assert _validate_metadata(card, "model") == ([], [])
    broken = card.replace("      value: ", "      value_: ", 1)
    assert broken != card and _validate_metadata(broken, "model")[0]
    assert _validate_metadata(card.replace("license: unknown", "license: my-own-terms"), "model")[0]
    assert _validate_metadata("---\nsize_categories:\n- lots\n---\n", "dataset")[0]
    assert _validate_metadata("no metadata", "model")[1]


@pytest.mark.slow
def test_push_then_pull_through_mirror_gives_same_data_and_recommendations(
    hub, olah, online, model_folder, artifacts, metrics_file, tmp_path
):
    from datasets import load_from_disk

    from lcrec.hub import push_dataset
    from lcrec.modeling_lcrec import LCRecForCausalLM

    hub_url, _, _ = hub
    before = _tree_digest(artifacts["prepared"]), _tree_digest(model_folder)
    push_dataset(artifacts["prepared"], "org/tiny-data", index_dir=artifacts["index"], token=TOKEN, endpoint=hub_url)
    push_model(
        model_folder,
        "org/tiny-rec",
        metrics_path=metrics_file,
        dataset_repo="org/tiny-data",
        token=TOKEN,
        endpoint=hub_url,
    )
    assert (_tree_digest(artifacts["prepared"]), _tree_digest(model_folder)) == before

    reader = (
        "import json\n"
        "from datasets import load_dataset\n"
        "from transformers import AutoModelForCausalLM\n"
        f"histories = {HISTORIES!r}\n"
        "items = load_dataset('org/tiny-data', 'items', split='train')\n"
        "interactions = load_dataset('org/tiny-data', 'interactions')\n"
        "out = {'titles': list(items['title']), 'splits': sorted(interactions)}\n"
        "out['test'] = interactions['test'].to_list()\n"
        "remote = AutoModelForCausalLM.from_pretrained('org/tiny-rec', trust_remote_code=True)\n"
        "assert 'transformers_modules' in type(remote).__module__, type(remote).__module__\n"
        "out['remote'] = remote.recommend(histories, top_k=5)\n"
        "import lcrec\n"
        "from lcrec.hub import load_index\n"
        "model = AutoModelForCausalLM.from_pretrained('org/tiny-rec')\n"
        "assert type(model) is lcrec.modeling_lcrec.LCRecForCausalLM, type(model)\n"
        "out['index'] = load_index('org/tiny-data').to_dict()\n"
        "out['package'] = model.recommend(histories, top_k=5)\n"
        "print(json.dumps(out))\n"
    )
    pulled = run_client(["-c", reader], olah, tmp_path / "pull-home")
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    data = json.loads(pulled.stdout.strip().splitlines()[-1])

    local = load_from_disk(str(artifacts["prepared"]))
    assert data["titles"] == list(local["items"]["title"])
    assert data["splits"] == ["test", "train", "validation"]
    assert data["test"] == local["test"].to_list()
    assert ItemIndex.from_dict(data["index"]).to_dict() == artifacts["item_index"].to_dict()
    expected = LCRecForCausalLM.from_pretrained(model_folder).recommend(HISTORIES, top_k=5)
    for key in ("remote", "package"):
        assert [[item for item, _ in ranked] for ranked in data[key]] == [
            [item for item, _ in ranked] for ranked in expected
        ]
        assert np.allclose(
            [[score for _, score in ranked] for ranked in data[key]],
            [[score for _, score in ranked] for ranked in expected],
            atol=1e-5,
        )


@pytest.mark.slow
def test_push_to_hub_publishes_the_same_repo_and_card_as_lcrec_push_model(
    hub, online, trained_folder, artifacts, tmp_path
):
    """`model.push_to_hub` must not publish transformers' empty card: it gives what `lcrec push model` gives."""
    hub_url, _, _ = hub
    write_model_card(
        trained_folder,
        LCRecModelCardData(license="apache-2.0"),
        dataset_dir=artifacts["prepared"],
        index_dir=artifacts["index"],
    )
    update_model_card_metrics(trained_folder, _metrics_record())
    pushed = lcrec_cli(
        "push",
        "model",
        "--model",
        str(trained_folder),
        "--repo_id",
        "org/by-cli",
        endpoint=hub_url,
        home=tmp_path / "cli-home",
    )
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    script = (
        "import lcrec\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(trained_folder)!r})\n"
        "print(model.push_to_hub('org/by-method'))\n"
    )
    method = run_client(["-c", script], hub_url, tmp_path / "method-home", token=TOKEN)
    assert method.returncode == 0, method.stderr[-3000:]

    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_url, token=TOKEN)
    files = {repo: set(api.list_repo_files(repo)) for repo in ("org/by-cli", "org/by-method")}
    assert files["org/by-cli"] == files["org/by-method"]
    cards = {
        repo: Path(api.hf_hub_download(repo, "README.md", cache_dir=tmp_path / "cache")).read_text() for repo in files
    }
    assert cards["org/by-method"].replace("by-method", "by-cli") == cards["org/by-cli"]
    assert "metrics" in cards["org/by-method"] and "This is the model card of a" not in cards["org/by-method"]


def test_lora_adapter_is_published_beside_merged_weights_or_refused_alone(make_lcrec_model, model_folder, tmp_path):
    from peft import LoraConfig, get_peft_model

    folder = tmp_path / "trained"
    shutil.copytree(model_folder, folder)
    peft_model = get_peft_model(
        make_lcrec_model("llama", tie=True).language_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    peft_model.save_pretrained(folder / "adapter")

    both = stage_model(folder, _mkdir(tmp_path / "both"), "org/tiny-rec")
    assert {"model.safetensors", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= set(both.files)
    assert "LoRA adapter (`adapter/`)" in (tmp_path / "both" / "README.md").read_text()
    merged_only = stage_model(folder, _mkdir(tmp_path / "merged"), "org/tiny-rec", weights="merged")
    assert not any(name.startswith("adapter") for name in merged_only.files)
    with pytest.raises(ValueError, match="base_model_name_or_path"):
        stage_model(folder, _mkdir(tmp_path / "adapter-only"), "org/tiny-rec", weights="adapter")


def test_dataset_whose_index_misses_items_is_refused(artifacts, tmp_path, capsys):
    smaller = ItemIndex(
        artifacts["item_index"].item_ids[:-2],
        artifacts["item_index"].codes[:-2],
        artifacts["item_index"].codebook_sizes,
    )
    index_dir = _write_index_folder(tmp_path / "index", smaller)
    code = lcrec_main(
        [
            "push",
            "dataset",
            "--data",
            str(artifacts["prepared"]),
            "--index",
            str(index_dir),
            "--repo_id",
            "org/tiny-data",
            "--dry_run",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "lacks 2 of" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_push_command_weight_choices_match_the_library():
    from lcrec.commands.push import WEIGHT_CHOICES
    from lcrec.hub.model_repo import WEIGHT_CHOICES as LIBRARY_CHOICES

    assert WEIGHT_CHOICES == LIBRARY_CHOICES


def test_evaluate_updates_the_card_only_when_it_writes_the_folders_own_record(trained_folder, artifacts, tmp_path):
    # A sample evaluation sent elsewhere with --out must not replace the folder's metrics.json and card.
    from conftest import make_titles
    from datasets import load_from_disk

    titles = make_titles()  # the tiny model's titles, so the dataset is the one it was "trained" on
    prepared = load_from_disk(str(artifacts["prepared"]))
    prepared["items"] = prepared["items"].map(lambda row: {"title": titles[row["item_id"]]})
    prepared.save_to_disk(str(tmp_path / "data"))
    shutil.copy(artifacts["prepared"] / "stats.json", tmp_path / "data" / "stats.json")
    argv = ["evaluate", "--model", str(trained_folder), "--data", str(tmp_path / "data"), "--max_users"]
    assert lcrec_main([*argv, "4"]) == 0
    own = json.loads((trained_folder / "metrics.json").read_text())
    card = (trained_folder / "README.md").read_text()
    assert own["num_users"] == 4 and "HR@10" in card
    elsewhere = tmp_path / "sample.json"
    assert lcrec_main([*argv, "2", "--out", str(elsewhere)]) == 0
    assert json.loads(elsewhere.read_text())["num_users"] == 2
    assert json.loads((trained_folder / "metrics.json").read_text()) == own
    assert (trained_folder / "README.md").read_text() == card
