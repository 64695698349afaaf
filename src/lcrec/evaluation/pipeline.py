"""The end-to-end comparison behind `lcrec quickstart` and bench/quality.py: LC-Rec vs SASRec vs most-popular.

prepare -> index (MiniLM + RQ-VAE) -> task mix + SFT (a preset) -> full-ranking evaluation -> baselines
on the same users -> a results table and example users. Every stage calls the library function, prints
its time, and leaves its artifact under the output folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io_utils import write_json

PRESET = "recipes/configs/ml-100k-cpu.yaml"


@dataclass
class PipelineOptions:
    """What the pipeline runs; the defaults are the quickstart's (MovieLens-100K, the CPU preset, all test users)."""

    source: str = "ml-100k"
    name: str = "MovieLens-100K"
    out: str = "runs/quickstart"
    config: str = PRESET
    tasks: list[str] | None = None
    baselines: bool = True
    data_dir: str | None = None
    index_dir: str | None = None
    max_steps: int | None = None
    eval_users: int | None = None
    user_seed: int = 0
    templates: str = "0"
    num_beams: int = 20
    sasrec_seconds: float = 120.0
    index_epochs: int | None = None
    exclude_history: bool = False
    reuse: bool = False
    examples: int = 3
    seed: int = 42
    threads: int | None = 1
    stage_seconds: dict[str, float] = field(default_factory=dict)


def resolve_preset(path: str) -> Path:
    """The SFT preset: as given (relative to the working folder), else inside this source checkout."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    in_checkout = Path(__file__).resolve().parents[3] / path
    if not candidate.is_absolute() and in_checkout.is_file():
        return in_checkout
    raise FileNotFoundError(f"SFT preset {path} not found (run from the lcrec checkout, or pass --config PATH)")


@contextmanager
def stage(options: PipelineOptions, name: str) -> Iterator[None]:
    """Print a stage's start and its wall time, and record the time."""
    print(f"\n== {name} ==", flush=True)
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    options.stage_seconds[name] = round(seconds, 1)
    print(f"== {name}: {seconds:.1f} s ==", flush=True)


def run_pipeline(options: PipelineOptions) -> dict[str, dict]:
    """Run every stage and return the metrics records {"LC-Rec": ..., "SASRec": ..., "most-popular": ...}."""
    preset = resolve_preset(options.config)
    from ..data import load_prepared, prepare_dataset
    from ..modeling_lcrec import LCRecForCausalLM
    from .runner import EvaluationConfig, evaluate_model

    out = Path(options.out)
    model_dir, baseline_dir = out / "model", out / "baselines"
    # Shared data/index folders (an ablation trains several models on one index) are built once and reused.
    data_dir = Path(options.data_dir) if options.data_dir else out / "data"
    index_dir = Path(options.index_dir) if options.index_dir else out / "index"
    if options.threads:
        import torch

        # The compact CPU models gain little from more threads, and on a busy machine extra OpenMP threads
        # spin-wait for cores other jobs hold: one thread is often several times faster there.
        torch.set_num_threads(options.threads)
    started = time.perf_counter()

    with stage(options, f"prepare {options.name}"):
        if (options.reuse or options.data_dir) and (data_dir / "stats.json").is_file():
            print(f"reusing {data_dir}")
        else:
            prepare_dataset(options.source, output_dir=data_dir)
        dataset = load_prepared(data_dir)
        print(f"{len(dataset['items'])} items, {len(dataset['test'])} users -> {data_dir}")

    with stage(options, "index (MiniLM + RQ-VAE)"):
        _build_index(options, dataset, index_dir)

    with stage(options, "task mix + SFT"):
        _train(options, preset, data_dir, index_dir, model_dir)

    config = EvaluationConfig(templates=options.templates, num_beams=options.num_beams, max_users=options.eval_users, user_seed=options.user_seed, exclude_history=options.exclude_history)
    with stage(options, "evaluate LC-Rec"):
        model = LCRecForCausalLM.from_pretrained(model_dir)
        lcrec = evaluate_model(model, dataset, config, output_file=str(out / "metrics.json"))
        print(f"HR@10 {lcrec['HR@10']:.4f} on {lcrec['num_users']} users, invalid_rate {lcrec['invalid_rate']}, {lcrec['users_per_second']:.2f} users/s")

    records = {"LC-Rec": lcrec}
    if options.baselines:
        records.update(_run_baselines(options, dataset, baseline_dir))
    total = time.perf_counter() - started
    write_json(out / "pipeline.json", {"options": asdict(options), "total_seconds": round(total, 1), "HR@10": {name: r["HR@10"] for name, r in records.items()}})
    _print_results(options, dataset, records)
    _print_examples(model, dataset, config, lcrec["templates"][0], options.examples)
    print("\nstage times: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in options.stage_seconds.items()) + f"; total {total / 60:.1f} min")
    print(f"artifacts under {out}/")
    return records


def _run_baselines(options: PipelineOptions, dataset, baseline_dir: Path) -> dict[str, dict]:
    """Most-popular and SASRec on the users the LC-Rec evaluation used, with the same exclusion rule."""
    from .baselines import SASRecConfig, run_baseline

    same_users = dict(max_users=options.eval_users, user_seed=options.user_seed, exclude_history=options.exclude_history)
    with stage(options, "baseline most-popular"):
        popular = run_baseline("most_popular", dataset, **same_users)
        write_json(baseline_dir / "most_popular.json", popular)
    with stage(options, "baseline SASRec"):
        sasrec_config = SASRecConfig(max_seconds=options.sasrec_seconds, seed=options.seed)
        sasrec = run_baseline("sasrec", dataset, sasrec_config=sasrec_config, model_dir=str(baseline_dir / "sasrec"), **same_users)
        write_json(baseline_dir / "sasrec.json", sasrec)
    return {"SASRec": sasrec, "most-popular": popular}


def _print_results(options: PipelineOptions, dataset, records: dict[str, dict]) -> None:
    from .report import format_table

    lcrec = records["LC-Rec"]
    users = "all" if options.eval_users is None else f"a seeded sample of {lcrec['num_users']}"
    print(f"\n{options.name}, leave-one-out test, full ranking over {len(dataset['items'])} items, {users} test users "
          f"(the same for every method), exclude_history={options.exclude_history}, LC-Rec templates {lcrec['templates']}, {lcrec['num_beams']} beams")
    print(format_table(records))
    for name in ("most-popular", "SASRec"):
        if name in records:
            base = records[name]["HR@10"]
            ratio = f"{lcrec['HR@10'] / base:.2f}x" if base else "n/a"
            print(f"LC-Rec HR@10 vs {name}: {lcrec['HR@10']:.4f} vs {base:.4f} ({ratio})")


def _build_index(options: PipelineOptions, dataset, index_dir: Path) -> None:
    from ..assets import minilm_path
    from ..indexing import RQVAETrainingArguments, build_index

    if (options.reuse or options.index_dir) and (index_dir / "index.json").is_file():
        print(f"reusing {index_dir}")
        return
    training = RQVAETrainingArguments(seed=options.seed, **({"epochs": options.index_epochs} if options.index_epochs else {}))
    stats = build_index(dataset["items"].to_list(), index_dir, encoder=str(minilm_path()), training_args=training).stats
    print(f"{stats['num_items']} items, codebooks {stats['codebook_sizes']}, collisions {stats['collisions']} -> {index_dir}")


def _train(options: PipelineOptions, preset: Path, data_dir: Path, index_dir: Path, model_dir: Path) -> None:
    from ..training import parse_sft_args, run_sft

    if options.reuse and (model_dir / "config.json").is_file():
        print(f"reusing {model_dir}")
        return
    argv = ["--config", str(preset), "--dataset_dir", str(data_dir), "--index_dir", str(index_dir), "--output_dir", str(model_dir), "--seed", str(options.seed)]
    if options.max_steps:
        argv += ["--max_steps", str(options.max_steps)]
    if options.tasks:
        argv += ["--tasks", *options.tasks]
    run_sft(*parse_sft_args(argv, prog="lcrec quickstart"))
    print(f"model -> {model_dir}")


def _print_examples(model, dataset, config, template: int, count: int) -> None:
    """A few evaluated users: their last items, and the top-5 recommendations by title (* = the held-out item)."""
    from .ranking import finalize_ranking, select_rows

    if count < 1:
        return
    rows = select_rows(len(dataset[config.split]), config.max_users, config.user_seed)[:count]
    users = dataset[config.split].select(rows)
    titles = dataset["items"]["title"]
    histories = [list(history) for history in users["history"]]
    ranked = model.recommend(histories, top_k=config.num_beams, num_beams=config.num_beams, template=template)
    for user, history, target, items in zip(users["user_id"], histories, users["target"], ranked):
        top = finalize_ranking([item for item, _ in items], history, 5, config.exclude_history)
        print(f"\nuser {user}: last items " + "; ".join(titles[item] for item in history[-3:]))
        print(f"  held-out next item: {titles[target]}")
        for position, item in enumerate(top, start=1):
            print(f"  {position}. {titles[item]}{'  *' if item == target else ''}")

