"""Amazon Beauty from LETTER's LC-Rec release (interactions + semantic IDs, no item text), end to end on CPU.

The mission's example made real: a Beauty model trained on this machine, published to a Hub, and loaded back with
`AutoModel.from_pretrained("tester/lcrec-beauty").recommend(history)`.

    .venv/bin/python bench/beauty.py                              # the test split, every user (about 1 h, 2 cores)
    .venv/bin/python bench/beauty.py --split validation           # choose options without the test users
    .venv/bin/python bench/beauty.py --max-steps 50 --max-users 500 --sasrec-epochs 2   # a smoke run (4 min)

Each step is the `lcrec` command a user would type (one torch thread each):
 1. lcrec prepare --format lcrec       keeps the released index as data/released_index.json (shared codes resolved)
 2. lcrec train --config beauty-cpu    the preset's ID-only tasks on that index (no text tasks: the release has none)
 3. lcrec evaluate                     LC-Rec, full ranking over the 12,101 items, every user of the split
 4. lcrec baseline sasrec, most_popular   on the same users (SASRec: CE loss, early stopping on validation)
 5. the local test Hub of tests/hub_server.py (nothing leaves 127.0.0.1): lcrec push dataset, lcrec push model
 6. AutoModel.from_pretrained("tester/lcrec-beauty").recommend(history) with lcrec imported, and with
    trust_remote_code=True in a virtualenv without lcrec: both must rank as the local model folder does
 7. the results table (README material)
Artifacts go to bench/out/beauty/. Not a CI test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from hub_server import USER, running_hub  # noqa: E402 (the test Hub lives with the tests, not in the package)
from venvs import bare_venv, share_site_packages  # noqa: E402 (shared with tests/test_wheel_install.py)

REPO_ID = f"{USER}/lcrec-beauty"  # the model repo and the dataset repo (two repo types, one name)
TOKEN = "hf_lcrecBeautyBenchToken0123456789"
EXAMPLE_USERS = 8  # test users whose rankings are compared between the local folder and the Hub copies
METRICS = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")
# What each ID-only task of the mix trains on (the table's "given" column); lcrec.tasks documents the tasks.
TASK_ROWS = {
    "seqrec": "train-split prefixes as seqrec prompts (one target per row)",
    "sequence": "train-split item sequences in windows of {window} + 1 items (a target at every item after the first)",
}

# argv: repo id, JSON histories. Run by an interpreter that cannot import lcrec: the repo's remote code decodes.
COMMANDS: list[str] = []  # the lcrec commands this run ran, in order (for the results file)

REMOTE_SCRIPT = """
import importlib.util, json, sys
from transformers import AutoModel
assert importlib.util.find_spec("lcrec") is None, "lcrec is importable here"
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
print(json.dumps({"module": type(model).__module__, "ranked": model.recommend(json.loads(sys.argv[2]))}))
"""


def run_lcrec(*args, env: dict | None = None) -> dict:
    """Run one `lcrec` command (this interpreter, one torch thread, offline unless `env` says otherwise); returns its
    wall and CPU seconds (the command's process and its children). Every command run is kept in COMMANDS."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    COMMANDS.append("lcrec " + " ".join(str(arg) for arg in args))
    print("\n$ " + COMMANDS[-1], flush=True)
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-m", "lcrec.cli", *map(str, args)], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": round(time.perf_counter() - started, 1), "cpu": round(cpu, 1)}


def python_without_lcrec(folder: Path) -> Path:
    """A virtualenv that sees this environment's packages as plain sys.path entries: its `.pth` files (the editable
    lcrec among them) are not processed there, so `import lcrec` fails as it does for a user without the package."""
    python = bare_venv(folder, clear=True)
    shared = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    share_site_packages(python, shared, "_shared_site_packages.pth")
    return python


def sasrec_stop(record: dict) -> str:
    """Why SASRec's training ended: early stopping, its time cap or its epoch cap (from its metrics record)."""
    config = record["config"]
    if record["epochs"] - record["best_epoch"] >= config["patience"]:
        return f"early stop, patience {config['patience']}"
    if config["max_seconds"] is not None and record["fit_seconds"] >= config["max_seconds"]:
        return f"stopped by the {config['max_seconds']:.0f} s time cap"
    return f"stopped by the {config['max_epochs']}-epoch cap"


def hardware() -> str:
    cores = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()} CPU, {cores} cores, one torch thread per command"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "beauty"), help="the release folder")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "beauty"))
    parser.add_argument("--preset", default="beauty-cpu")
    parser.add_argument("--split", default="test", choices=("test", "validation"))
    parser.add_argument("--max-steps", type=int, help="SFT steps (default: the preset's)")
    parser.add_argument("--max-users", type=int, help="a seeded sample of users (default: every user)")
    parser.add_argument("--sasrec-epochs", type=int, help="SASRec's epoch cap (default: lcrec baseline's)")
    parser.add_argument("--sasrec-seconds", type=float, help="SASRec's training time cap (default: none)")
    parser.add_argument("--reuse", action="store_true", help="keep the data and model folders a previous run wrote")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data, model = out / "data", out / "model"
    index = data / "released_index.json"  # written by `lcrec prepare` for a release that ships D.index.json
    users = ["--split", args.split] + (["--max_users", args.max_users] if args.max_users else [])
    times = {}

    # 1-2. data and model
    if not (args.reuse and index.is_file()):
        times["prepare"] = run_lcrec("prepare", "--source", args.source, "--format", "lcrec", "--out", data)
    if not (args.reuse and (model / "config.json").is_file()):
        steps = ["--max_steps", args.max_steps] if args.max_steps else []
        train = ["--config", args.preset, "--dataset_dir", data, "--index_dir", index, "--output_dir", model]
        times["LC-Rec"] = run_lcrec("train", *train, *steps)
    training = json.loads((model / "training_results.json").read_text())

    # 3-4. LC-Rec and the baselines on the same users
    run_lcrec("evaluate", "--model", model, "--data", data, "--out", out / f"lcrec-{args.split}.json", *users)
    sasrec = ["--max_epochs", args.sasrec_epochs] if args.sasrec_epochs else []
    sasrec += ["--max_seconds", args.sasrec_seconds] if args.sasrec_seconds else []
    times["SASRec"] = run_lcrec(
        "baseline", "--model", "sasrec", "--data", data, "--out", out / f"sasrec-{args.split}.json", *users, *sasrec
    )
    run_lcrec(
        "baseline", "--model", "most_popular", "--data", data, "--out", out / f"most_popular-{args.split}.json", *users
    )
    records = {
        method: json.loads((out / f"{name}-{args.split}.json").read_text())
        for method, name in (("LC-Rec", "lcrec"), ("SASRec", "sasrec"), ("most-popular", "most_popular"))
    }

    # 5-6. publish to the local test Hub, load back by repo id, rank as the local folder does
    with running_hub(out / "hub", TOKEN, out / "hub.log", max_file_bytes=64 * 2**20) as url:
        hub = {"HF_ENDPOINT": url, "HF_TOKEN": TOKEN, "HF_HOME": str(out / "hf-home"), "HF_HUB_OFFLINE": "0"}
        run_lcrec("push", "dataset", "--data", data, "--index", index, "--repo_id", REPO_ID, env=hub)
        run_lcrec(
            "push",
            "model",
            "--model",
            model,
            "--index",
            index,
            "--dataset_repo",
            REPO_ID,
            "--repo_id",
            REPO_ID,
            env=hub,
        )
        os.environ.update(hub, HF_HOME=str(out / "hf-home-reader"))  # huggingface_hub reads these on import
        os.environ.pop("HF_TOKEN")  # the repos are public: readers need no token

        from transformers import AutoModel

        import lcrec  # registers the lcrec model type with the Auto classes
        from lcrec.io_utils import write_text

        histories = lcrec.load_prepared(data)["test"].select(range(EXAMPLE_USERS)).to_dict()["history"]
        local_model = AutoModel.from_pretrained(model)
        local = local_model.recommend(histories)
        started = time.perf_counter()
        from_hub = AutoModel.from_pretrained(REPO_ID)
        load_seconds = time.perf_counter() - started
        published = from_hub.recommend(histories)
        dataset_index = lcrec.load_index(REPO_ID)  # the dataset repo's index/index.json
        venv_python = python_without_lcrec(out / "venv-without-lcrec")
        remote = subprocess.run(
            [venv_python, "-c", REMOTE_SCRIPT, REPO_ID, json.dumps(histories)],
            env={key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
            | {"HF_HOME": str(out / "hf-home-remote")},
            cwd=out,
            check=True,
            capture_output=True,
            text=True,
        )
        remote = json.loads(remote.stdout.strip().splitlines()[-1])

    def items(rankings: list) -> list[list[int]]:
        return [[item for item, _ in ranked] for ranked in rankings]

    def score_gap(rankings: list) -> float:
        return max(abs(a - b) for x, y in zip(rankings, local) for (_, a), (_, b) in zip(x, y))

    same = {"lcrec imported": items(published) == items(local), "remote code": items(remote["ranked"]) == items(local)}
    same_index = dataset_index.fingerprint == from_hub.config.index_fingerprint
    example = [
        f"model = AutoModel.from_pretrained({REPO_ID!r})  # {type(from_hub).__module__}.{type(from_hub).__name__}, "
        f"{load_seconds:.1f} s",
        f"model.recommend({histories[0]})[:5]",
        f"# {[(item, round(score, 3)) for item, score in published[0][:5]]}",
        f"# {EXAMPLE_USERS} test users ranked as the local folder ranks them: {same} (remote code: "
        f"{remote['module']}); largest score difference {max(score_gap(published), score_gap(remote['ranked'])):.1e}",
        f"# the dataset repo's index is the model's (fingerprint): {same_index}",
    ]
    print("\n" + "\n".join(example))
    if not all(same.values()) or not same_index:
        raise SystemExit("the Hub copies differ from the local folders (rankings or item index)")

    # 7. results
    settings = training["settings"]
    rows = "; ".join(
        TASK_ROWS.get(task, task).format(window=local_model.config.max_history) for task in training["tasks"]
    )
    chosen = ""
    if training.get("best_checkpoint"):
        chosen = f"; {training['best_checkpoint']} kept by validation {training['metric_for_best_model']}"
    given = {
        "LC-Rec": f"{rows}, over the released index (no text); {local_model.num_parameters() / 1e6:.2f}M-parameter "
        f"scratch Llama, {settings['global_step']} steps x {settings['per_device_train_batch_size']} rows "
        f"({training['metrics']['epoch']:.2f} epochs){chosen}",
        "SASRec": f"train-split sequences (item ids), validation NDCG@10 for early stopping; best epoch "
        f"{records['SASRec']['best_epoch']} of {records['SASRec']['epochs']} ({sasrec_stop(records['SASRec'])})",
        "most-popular": "train-split interaction counts",
    }
    timing = {
        "LC-Rec": f"SFT {times['LC-Rec']['wall']:.0f} s wall / {times['LC-Rec']['cpu']:.0f} s CPU"
        if "LC-Rec" in times
        else f"SFT {training['seconds']:.0f} s wall (earlier run, --reuse)",
        "SASRec": f"fit {records['SASRec']['fit_seconds']:.0f} s wall; command {times['SASRec']['wall']:.0f} s wall / "
        f"{times['SASRec']['cpu']:.0f} s CPU",
        "most-popular": f"fit {records['most-popular']['fit_seconds']:.1f} s",
    }
    for method, record in records.items():
        timing[method] += f"; ranking {record['seconds']:.0f} s"
    table = [
        f"Amazon Beauty (LETTER's release), {args.split} split, full ranking over "
        f"{lcrec.load_index(index).num_items} items, history items not excluded; {hardware()} (shared machine)",
        "",
        "| method | " + " | ".join(METRICS) + " | users | given | time |",
        "|---|" + "---|" * len(METRICS) + "---|---|---|",
    ]
    for method, record in records.items():
        metrics = " | ".join(f"{record[key]:.4f}" for key in METRICS)
        table.append(f"| {method} | {metrics} | {record['num_users']} | {given[method]} | {timing[method]} |")
    print("\n" + "\n".join(table))
    results = out / f"results-{args.split}.md"
    sections = (
        "\n".join(table),
        "```python\n" + "\n".join(example) + "\n```",
        "\n".join(f"    {c}" for c in COMMANDS),
    )
    write_text(results, "\n\n".join(sections) + "\n")
    print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
