"""Publishing to and loading from a Hub, against real HTTP servers on 127.0.0.1.

Write path: tests/hub_server.py (a minimal Hub for huggingface_hub's regular commit path, storing git repos).
Read path: olah (a self-hosted Hub mirror) serving those git repos as local mirrors; what a mirror cannot
answer itself (for example "this optional file does not exist") it asks its upstream, which is the same
test server, so no request ever leaves 127.0.0.1. Every client runs in a subprocess so that HF_ENDPOINT
is read when huggingface_hub is imported; every server is started and stopped here with bounded waits.
"""

from __future__ import annotations

import json
import os
import select
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

from lcrec.cli import main as lcrec_main
from lcrec.hub import load_index, push_model, stage_dataset
from lcrec.indexing.item_index import ItemIndex

TOKEN = "hf_lcrecTestToken0123456789"
SERVER_START_TIMEOUT = 30
CLIENT_TIMEOUT = 180
HERE = Path(__file__).resolve().parent


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
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "hub_server.py"), "--root", str(root / "repos"), "--token", TOKEN, "--max-file-bytes", str(4 * 2**20)],
            stdout=subprocess.PIPE, stderr=log_file, text=True,
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], SERVER_START_TIMEOUT)
            line = process.stdout.readline() if ready else ""
            if not line.startswith("READY "):
                raise RuntimeError(f"hub_server did not start in {SERVER_START_TIMEOUT}s: {line!r}")
            yield line.split()[1], root / "repos", log
        finally:
            _stop(process)


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
            stdout=out, stderr=subprocess.STDOUT, cwd=folder,
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
                        raise RuntimeError(f"olah did not start: {(folder / 'olah.out').read_text()[-2000:]}") from None
                    time.sleep(0.3)
            yield url
        finally:
            _stop(process)


def _client_env(endpoint: str, home: Path, token: str | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false")
    if token:
        env["HF_TOKEN"] = token
    return env


def run_client(args: list[str], endpoint: str, home: Path, token: str | None = None) -> subprocess.CompletedProcess:
    """Run a Python client in a fresh process against `endpoint` with a fresh cache `home`."""
    result = subprocess.run([sys.executable, *args], env=_client_env(endpoint, home, token), capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    return result


def lcrec_cli(*args: str, endpoint: str, home: Path, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    return run_client(["-m", "lcrec.cli", *args], endpoint, home, token)


# --- artifacts --------------------------------------------------------------------------------------


def _write_prepared(folder: Path, num_items: int = 12, num_users: int = 8, seed: int = 0) -> Path:
    """A tiny prepared dataset in the shared layout (items, train/valid/test, stats.json)."""
    from datasets import Dataset, DatasetDict

    rng = np.random.default_rng(seed)
    items = Dataset.from_dict({
        "item_id": list(range(num_items)),
        "raw_id": [f"B{index:04d}" for index in range(num_items)],
        "title": [f"Item number {index}" for index in range(num_items)],
        "description": [f"A description of item {index}." for index in range(num_items)],
        "brand": ["Acme" if index % 2 else "" for index in range(num_items)],
        "categories": ["Tools" for _ in range(num_items)],
    })
    splits = {"train": [], "valid": [], "test": []}
    for user in range(num_users):
        sequence = [int(item) for item in rng.choice(num_items, size=int(rng.integers(4, 7)), replace=False)]
        for split, cut in (("train", -3), ("valid", -2), ("test", -1)):
            splits[split].append({"user_id": user, "raw_user_id": f"U{user}", "history": sequence[:cut], "target": sequence[cut]})
    dataset = DatasetDict({"items": items, **{split: Dataset.from_list(rows) for split, rows in splits.items()}})
    dataset.save_to_disk(str(folder))
    (folder / "stats.json").write_text(json.dumps({"num_users": num_users, "num_items": num_items, "num_interactions": sum(len(r["history"]) + 1 for r in splits["test"])}))
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
    """A tiny LCRecForCausalLM saved with its tokenizer, index and remote code (register_for_auto_class)."""
    from lcrec.modeling_lcrec import LCRecForCausalLM

    folder = tmp_path_factory.mktemp("model") / "tiny-rec"
    model = make_lcrec_model("llama", tie=True)
    previous = LCRecForCausalLM._auto_class
    LCRecForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    try:
        model.save_pretrained(folder)
    finally:
        LCRecForCausalLM._auto_class = previous
    return folder


@pytest.fixture(scope="module")
def metrics_file(tmp_path_factory):
    from lcrec.evaluation.report import build_metrics_record

    per_template = {"0": {"HR@1": 0.1, "HR@5": 0.3, "HR@10": 0.5, "NDCG@5": 0.2, "NDCG@10": 0.25}, "1": {"HR@1": 0.2, "HR@5": 0.4, "HR@10": 0.6, "NDCG@5": 0.3, "NDCG@10": 0.35}}
    record = build_metrics_record(per_template, method="lcrec", num_users=8, num_beams=6, invalid_rate=0.0, seconds=1.5, exclude_history=False)
    path = tmp_path_factory.mktemp("metrics") / "metrics.json"
    path.write_text(json.dumps(record))
    return path


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# --- dataset ----------------------------------------------------------------------------------------


def test_dataset_dry_run_card_parses_and_lists_configs(artifacts, tmp_path):
    from datasets import Dataset, DatasetDict
    from huggingface_hub import DatasetCard

    tasks = DatasetDict({split: Dataset.from_dict({"prompt": ["p1", "p2"], "completion": ["<a_1><b_2><c_3>", "<a_0><b_1><c_2>"], "task": ["seqrec"] * 2, "template_id": [0, 1]}) for split in ("train", "valid")})
    tasks.save_to_disk(str(tmp_path / "tasks"))
    out = tmp_path / "staged"
    staged = stage_dataset(artifacts["prepared"], _mkdir(out), "org/tiny-data", index_dir=artifacts["index"], tasks_dir=tmp_path / "tasks")
    assert "index/index.json" in staged.files and "index/index_stats.png" in staged.files
    assert "index/embeddings.safetensors" not in staged.files
    assert "interactions/test-00000-of-00001.parquet" in staged.files
    card = DatasetCard.load(out / "README.md")
    configs = {config["config_name"]: config for config in card.data.configs}
    assert set(configs) == {"interactions", "items", "tasks"}
    assert list(Dataset.from_parquet(str(out / "tasks/valid-00000-of-00001.parquet"))["completion"]) == list(tasks["valid"]["completion"])
    assert {entry["split"] for entry in configs["interactions"]["data_files"]} == {"train", "valid", "test"}
    assert "lcrec.load_index(\"org/tiny-data\")" in card.text
    assert load_index(out).to_dict() == artifacts["item_index"].to_dict()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# --- model ------------------------------------------------------------------------------------------

HISTORIES = [[1, 2, 3], [4, 5], [10, 11, 12, 13], [7]]


def test_model_dry_run_has_card_generation_config_and_remote_code(model_folder, artifacts, metrics_file, tmp_path, capsys):
    from huggingface_hub import ModelCard
    from transformers import GenerationConfig

    out = tmp_path / "staged"
    code = lcrec_main(["push", "model", str(model_folder), "--repo-id", "org/tiny-rec", "--metrics", str(metrics_file), "--index", str(artifacts["index"]),
                       "--dataset-repo", "org/tiny-data", "--reproduce", "lcrec train --config tiny.yaml", "--dry-run", str(out)])
    assert code == 0
    assert "dry run" in capsys.readouterr().out
    files = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "index.json", "generation_config.json", "README.md", "metrics.json", "index_stats.json", "modeling_lcrec.py"} <= files
    generation = GenerationConfig.from_pretrained(out)
    assert (generation.num_beams, generation.num_return_sequences, generation.do_sample) == (6, 6, False)

    card = ModelCard.load(out / "README.md")
    metrics = json.loads(metrics_file.read_text())
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {name: pytest.approx(metrics[name]) for name in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")}
    assert card.data.datasets == ["org/tiny-data"] and "lcrec" in card.data.tags
    assert "lcrec train --config tiny.yaml" in card.text and "trust_remote_code=True" in card.text
    assert f"| NDCG@10 | {metrics['NDCG@10']:.4f} |" in card.text


def test_model_whose_index_differs_from_the_dataset_is_refused(model_folder, tmp_path, capsys):
    from conftest import make_item_index

    other = _write_index_folder(tmp_path / "other-index", make_item_index(seed=1))
    out = tmp_path / "staged"
    code = lcrec_main(["push", "model", str(model_folder), "--repo-id", "org/tiny-rec", "--index", str(other), "--dry-run", str(out)])
    assert code == 2
    assert "does not match the dataset's index" in capsys.readouterr().err
    assert not out.exists()


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
    failed = lcrec_cli("push", "model", str(model_folder), "--repo-id", "org/tiny-rec-retry", "--metrics", str(metrics_file), "--index", str(artifacts["index"]),
                       endpoint=hub_url, home=tmp_path / "push-home")
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "no files were committed" in failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    assert api.list_repo_files("org/tiny-rec-retry") == [".gitattributes"]
    assert _tree_digest(model_folder) == before

    result = push_model(model_folder, "org/tiny-rec-retry", metrics_path=metrics_file, index_dir=artifacts["index"], token=TOKEN, endpoint=hub_url)
    assert set(api.list_repo_files("org/tiny-rec-retry")) == {".gitattributes", *result.files}
    assert _tree_digest(model_folder) == before
    head = api.model_info("org/tiny-rec-retry").sha
    push_model(model_folder, "org/tiny-rec-retry", metrics_path=metrics_file, index_dir=artifacts["index"], token=TOKEN, endpoint=hub_url)
    assert api.model_info("org/tiny-rec-retry").sha == head  # an unchanged rerun commits nothing

    branch = push_model(model_folder, "org/tiny-rec-private", index_dir=artifacts["index"], revision="exp", private=True, token=TOKEN, endpoint=hub_url)
    assert branch.revision == "exp"
    assert api.model_info("org/tiny-rec-private", revision="exp").private
    assert "README.md" not in api.list_repo_files("org/tiny-rec-private")  # main keeps only the initial commit
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub_url, token=False).model_info("org/tiny-rec-private")
    assert "POST /api/validate-yaml -> 200" in log.read_text()
    assert TOKEN not in log.read_text()
    card = Path(api.hf_hub_download("org/tiny-rec-retry", "README.md", cache_dir=tmp_path / "cache")).read_text()
    assert "model-index" in card and TOKEN not in card


def test_test_hub_validates_card_metadata_like_the_hub(model_folder, metrics_file, tmp_path):
    """The write-path server must be able to refuse bad metadata, or a passing push would prove nothing."""
    from hub_server import _validate_metadata

    from lcrec.hub import stage_model

    out = tmp_path / "staged"
    stage_model(model_folder, _mkdir(out), "org/tiny-rec", metrics_path=metrics_file)
    card = (out / "README.md").read_text()
    assert _validate_metadata(card, "model") == ([], [])
    broken = card.replace("      value: ", "      value_: ", 1)
    assert broken != card and _validate_metadata(broken, "model")[0]
    assert _validate_metadata("no metadata", "model")[1]


@pytest.mark.slow
def test_push_then_pull_through_mirror_gives_same_data_and_recommendations(hub, olah, online, model_folder, artifacts, metrics_file, tmp_path):
    from datasets import load_from_disk

    from lcrec.hub import push_dataset
    from lcrec.modeling_lcrec import LCRecForCausalLM

    hub_url, _, log = hub
    before = _tree_digest(artifacts["prepared"]), _tree_digest(model_folder)
    push_dataset(artifacts["prepared"], "org/tiny-data", index_dir=artifacts["index"], token=TOKEN, endpoint=hub_url)
    push_model(model_folder, "org/tiny-rec", metrics_path=metrics_file, dataset_repo="org/tiny-data", token=TOKEN, endpoint=hub_url)
    assert (_tree_digest(artifacts["prepared"]), _tree_digest(model_folder)) == before

    reader = (
        "import json\n"
        "from datasets import load_dataset\n"
        "from transformers import AutoModelForCausalLM\n"
        f"histories = {HISTORIES!r}\n"
        "items = load_dataset('org/tiny-data', 'items', split='train')\n"
        "interactions = load_dataset('org/tiny-data', 'interactions')\n"
        "out = {'titles': list(items['title']), 'splits': sorted(interactions), 'test': interactions['test'].to_list()}\n"
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
    assert data["splits"] == ["test", "train", "valid"]
    assert data["test"] == local["test"].to_list()
    assert ItemIndex.from_dict(data["index"]).to_dict() == artifacts["item_index"].to_dict()
    expected = LCRecForCausalLM.from_pretrained(model_folder).recommend(HISTORIES, top_k=5)
    for key in ("remote", "package"):
        assert [[item for item, _ in ranked] for ranked in data[key]] == [[item for item, _ in ranked] for ranked in expected]
        assert np.allclose([[score for _, score in ranked] for ranked in data[key]], [[score for _, score in ranked] for ranked in expected], atol=1e-5)


def test_lora_adapter_is_published_beside_merged_weights_or_refused_alone(make_lcrec_model, model_folder, tmp_path):
    from peft import LoraConfig, get_peft_model

    from lcrec.hub import stage_model

    folder = tmp_path / "trained"
    shutil.copytree(model_folder, folder)
    peft_model = get_peft_model(make_lcrec_model("llama", tie=True).language_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(folder / "adapter")

    both = stage_model(folder, _mkdir(tmp_path / "both"), "org/tiny-rec")
    assert {"model.safetensors", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= set(both.files)
    merged_only = stage_model(folder, _mkdir(tmp_path / "merged"), "org/tiny-rec", weights="merged")
    assert not any(name.startswith("adapter") for name in merged_only.files)
    with pytest.raises(ValueError, match="base_model_name_or_path"):
        stage_model(folder, _mkdir(tmp_path / "adapter-only"), "org/tiny-rec", weights="adapter")


def test_dataset_whose_index_misses_items_is_refused(artifacts, tmp_path, capsys):
    smaller = ItemIndex(artifacts["item_index"].item_ids[:-2], artifacts["item_index"].codes[:-2], artifacts["item_index"].codebook_sizes)
    index_dir = _write_index_folder(tmp_path / "index", smaller)
    code = lcrec_main(["push", "dataset", str(artifacts["prepared"]), "--index", str(index_dir), "--repo-id", "org/tiny-data", "--dry-run", str(tmp_path / "out")])
    assert code == 2
    assert "2 items have no index" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
