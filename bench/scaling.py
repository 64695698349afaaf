"""HR@10 / NDCG@10 against training CPU minutes: LC-Rec at several model sizes and SASRec, on the validation split.

    .venv/bin/python bench/scaling.py --dataset scientific --data-dir D --index-dir I --sizes 0.7M,3M \\
        --set tasks=[sequence] --set num_train_epochs=8 --label "LC-Rec sequence"
    .venv/bin/python bench/scaling.py --plot-only --merge A/scaling.json B/scaling.json   # redraw docs/scaling.png

Each LC-Rec size trains once with the dataset's SFT preset (plus --set overrides; a preset that distils needs
`--set teacher_dir=DIR`, a SASRec from `lcrec baseline --model sasrec --save_model DIR`, or `--set
teacher_dir=null` to train without a teacher); `--points` times during the run
a callback evaluates the model on the validation users (full ranking, 20 beams, template 0) with the training clock
paused, so the x axis is the training process's CPU time alone (one torch thread; `time.process_time`, which other
jobs waiting for the same cores do not inflate). The learning-rate schedule is the whole run's, so a point is "this
run, stopped here": a lower bound for a run planned for that budget. SASRec (cross-entropy, the baseline's
settings, no early stopping) is evaluated the same way after every epoch. Numbers go to --out/scaling.json (merged
with any --merge files) and are printed as a table; the plot goes to --plot.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# hidden size, layers, heads, MLP size of the scratch Llama; the name is its parameter count with the ~2k-token
# scratch vocabulary and the index tokens (tied head).
SIZES = {
    "0.7M": (128, 2, 4, 384),
    "3M": (256, 3, 4, 768),
    "10M": (384, 5, 6, 1152),
}
DATASETS = {"ml-100k": "ml-100k-cpu", "scientific": "scientific-cpu"}


class CpuClock:
    """Process CPU seconds, with pauses (evaluation) taken out."""

    def __init__(self) -> None:
        self.started = time.process_time()
        self.paused = 0.0

    def seconds(self) -> float:
        return time.process_time() - self.started - self.paused

    def pause(self):
        clock = self

        class Paused:
            def __enter__(self):
                self.at = time.process_time()

            def __exit__(self, *exc):
                clock.paused += time.process_time() - self.at

        return Paused()


def evaluate_lcrec(model, dataset, users: int | None) -> dict:
    from lcrec.evaluation import EvaluationConfig
    from lcrec.evaluation.runner import evaluate_model

    was_training = model.training
    record = evaluate_model(model, dataset, EvaluationConfig(split="validation", max_users=users))
    model.train(was_training)
    return {"HR@10": record["HR@10"], "NDCG@10": record["NDCG@10"]}


def run_lcrec(size: str, args, dataset, overrides: dict) -> list[dict]:
    from transformers import TrainerCallback

    from lcrec.presets import resolve_preset
    from lcrec.training import run_sft
    from lcrec.workflows.quickstart import sft_options

    hidden, layers, heads, intermediate = SIZES[size]
    settings = {
        "dataset_dir": args.data_dir,
        "index_dir": args.index_dir,
        "output_dir": str(Path(args.out) / f"lcrec-{size}"),
        "scratch_hidden_size": hidden,
        "scratch_num_layers": layers,
        "scratch_num_heads": heads,
        "scratch_intermediate_size": intermediate,
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "eval_strategy": "no",
        "ranking_eval_users": None,
        "overwrite": True,
        **overrides,
    }
    data, model_options, lora, sft_args = sft_options(resolve_preset(DATASETS[args.dataset]), **settings)
    clock = CpuClock()
    points: list[dict] = []

    class Measure(TrainerCallback):
        def on_step_end(self, train_args, state, control, model=None, **kwargs):
            every = max(1, state.max_steps // args.points)
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                with clock.pause():
                    metrics = evaluate_lcrec(model, dataset, args.eval_users)
                points.append(
                    {
                        "step": state.global_step,
                        "epoch": round(state.epoch, 2),
                        "cpu_minutes": round(clock.seconds() / 60, 2),
                        "parameters": model.num_parameters(),
                        **metrics,
                    }
                )
                print(f"{args.label} {size} step {state.global_step}: {points[-1]}", flush=True)

    run_sft(data, model_options, lora, sft_args, callbacks=[Measure()])
    return points


def run_sasrec(args, dataset) -> list[dict]:
    from lcrec.evaluation.baselines import SASRecConfig, evaluate_scorer, split_rows, train_sasrec, training_sequences
    from lcrec.evaluation.ranking import select_rows

    rows = select_rows(len(dataset["validation"]), args.eval_users, 0)
    histories, targets = split_rows(dataset, "validation", rows)
    clock = CpuClock()
    points: list[dict] = []

    def validate(model) -> float:
        with clock.pause():
            metrics = evaluate_scorer(model.score, histories, targets)
        points.append(
            {
                "epoch": len(points) + 1,
                "cpu_minutes": round(clock.seconds() / 60, 2),
                "HR@10": metrics["HR@10"],
                "NDCG@10": metrics["NDCG@10"],
            }
        )
        return metrics["NDCG@10"]

    config = SASRecConfig(num_items=len(dataset["items"]), max_epochs=args.sasrec_epochs, patience=10**6, seed=42)
    train_sasrec(training_sequences(dataset), config, validate)
    return points


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    legend_inches = 0.2 * ((len(results) + 1) // 2) + 0.1  # two legend columns below the panels
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2 + legend_inches))
    for name, points in results.items():
        style = {"color": "black", "linestyle": "--"} if name.startswith("SASRec") else {"marker": "o"}
        for axis, metric in zip(axes, ("HR@10", "NDCG@10")):
            axis.plot([p["cpu_minutes"] for p in points], [p[metric] for p in points], label=name, **style)
    for axis, metric in zip(axes, ("HR@10", "NDCG@10")):
        axis.set_xlabel("training CPU minutes (one thread)")
        axis.set_ylabel(f"validation {metric}")
        axis.grid(alpha=0.3)
    # One legend below both panels, so that it hides no curve.
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, legend_inches / (4.2 + legend_inches), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def parse_overrides(entries: list[str]) -> dict:
    """`KEY=VALUE` SFT overrides, the value read as YAML."""
    import yaml

    pairs = [entry.partition("=") for entry in entries]
    bad = [entry for entry, (key, separator, _) in zip(entries, pairs) if not separator or not key]
    if bad:
        raise SystemExit(f"--set expects KEY=VALUE, got {bad}")
    return {key.strip(): yaml.safe_load(value) for key, _, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scientific", choices=sorted(DATASETS))
    parser.add_argument("--data-dir", help="prepared dataset folder")
    parser.add_argument("--index-dir", help="item index folder")
    parser.add_argument("--sizes", default="0.7M", help="comma-separated among " + ", ".join(SIZES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="SFT override (every size)")
    parser.add_argument("--points", type=int, default=4, help="evaluations per LC-Rec run")
    parser.add_argument("--eval-users", type=int, default=None, help="a seeded sample of validation users (all)")
    parser.add_argument("--sasrec-epochs", type=int, default=40, help="SASRec epochs (0: no SASRec curve)")
    parser.add_argument("--label", default="LC-Rec", help="name of these LC-Rec curves in the table and plot")
    parser.add_argument("--merge", nargs="*", default=[], help="scaling.json files of earlier runs to add")
    parser.add_argument("--out", default="bench/out/scaling")
    parser.add_argument("--plot", default="docs/scaling.png")
    parser.add_argument("--title", help="plot title (default: the dataset)")
    parser.add_argument("--plot-only", action="store_true", help="no training: table and plot from saved numbers")
    args = parser.parse_args()

    out = Path(args.out)
    numbers = out / "scaling.json"
    results = json.loads(numbers.read_text()) if numbers.is_file() else {}
    for path in args.merge:
        results.update(json.loads(Path(path).read_text()))
    if not args.plot_only:
        if not (args.data_dir and args.index_dir):
            parser.error("--data-dir and --index-dir are required unless --plot-only")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import torch

        from lcrec.data import load_prepared

        torch.set_num_threads(1)
        dataset = load_prepared(args.data_dir)
        overrides = parse_overrides(args.set)
        if "SASRec" not in results and args.sasrec_epochs:
            results["SASRec"] = run_sasrec(args, dataset)
        for size in args.sizes.split(","):
            results[f"{args.label} {size}"] = run_lcrec(size, args, dataset, overrides)
            out.mkdir(parents=True, exist_ok=True)
            numbers.write_text(json.dumps(results, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    numbers.write_text(json.dumps(results, indent=1))
    print("| method | CPU minutes | epoch | HR@10 | NDCG@10 |\n|---|---:|---:|---:|---:|")
    for name, points in results.items():
        for p in points:
            print(f"| {name} | {p['cpu_minutes']:.1f} | {p['epoch']} | {p['HR@10']:.4f} | {p['NDCG@10']:.4f} |")
    plot(results, Path(args.plot), args.title or f"{args.dataset}: validation metrics vs training CPU time")
    print(f"plot -> {args.plot}")


if __name__ == "__main__":
    main()
