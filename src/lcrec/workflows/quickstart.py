"""The quickstart workflow behind `lcrec quickstart` and bench/quality.py: LC-Rec vs SASRec vs most-popular.

prepare -> index (MiniLM + RQ-VAE) -> baselines (most-popular, SASRec) -> task mix + SFT (a preset) -> full-ranking
evaluation on the same users -> a results table and example users. A preset that distils from SASRec (it sets
`teacher_dir`) is given this run's SASRec baseline as its teacher (a teacher_dir in `sft_overrides` replaces it;
None turns distillation off). Every stage calls the library function, prints its time and leaves its artifact
under the output folder. Options are chosen on the validation split (`evaluation.split="validation"`); the test
split is for the final report. Stage times are recorded as wall and CPU seconds (this process, all threads): the
CPU time does not grow when other jobs share the machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation.config import EvaluationConfig
from ..indexing.collaborative import COLLABORATIVE_MODES, DEFAULT_COLLABORATIVE_MODE
from ..io_utils import check_output_dir, mark_output, write_json
from ..training.teacher import TEACHER_EPOCHS

COMMAND = "quickstart"
SFT_STAGE = "task mix + SFT"
# What a quickstart folder written before output markers existed holds.
OUTPUT_SIGNATURE = ("pipeline.json",)
DEFAULT_PRESET = "ml-100k-cpu"


@dataclass
class QuickstartOptions:
    """What the workflow runs; the defaults are the quickstart's (MovieLens-100K, the CPU preset). Which users and
    templates are evaluated is the `EvaluationConfig` passed next to it."""

    source: str = field(default="ml-100k", metadata={"help": "dataset: 'ml-100k' (bundled) or a folder/file"})
    name: str = field(default="MovieLens-100K", metadata={"help": "dataset name shown in the results"})
    out: str = field(default="runs/quickstart", metadata={"help": "output folder (data, index, model, metrics)"})
    preset: str = field(
        default=DEFAULT_PRESET,
        metadata={
            "help": "SFT preset: a packaged name (`lcrec train --help` lists them) or a YAML file",
            "aliases": ["--config"],
        },
    )
    tasks: list[str] | None = field(default=None, metadata={"help": "training tasks (None: the preset's)"})
    max_steps: int | None = field(
        default=None, metadata={"help": "SFT steps (None: the preset's schedule); more steps, better model"}
    )
    sasrec_seconds: float = field(default=120.0, metadata={"help": "SASRec training time budget in seconds"})
    index_epochs: int | None = field(default=None, metadata={"help": "RQ-VAE epochs (None: the index builder's)"})
    collaborative: str | None = field(
        default=None,
        metadata={
            "help": "collaborative signal in the index: sasrec (item vectors of a SASRec trained on the train split "
            "only, as `lcrec index --collaborative sasrec`) or None: text only"
        },
    )
    collaborative_mode: str = field(
        default=DEFAULT_COLLABORATIVE_MODE,
        metadata={"help": "how the SASRec vectors shape the index: letter, concat or only (`lcrec index --help`)"},
    )
    teacher_item_text: bool = field(
        default=False,
        metadata={
            "help": "a distilling preset learns from a SASRec with the index's item text vectors in its item table, "
            "trained a fixed schedule (lcrec.training.teacher; the Scientific preset's teacher), instead of the "
            "run's SASRec baseline (the MovieLens preset's)"
        },
    )
    teacher_epochs: int = field(
        default=TEACHER_EPOCHS, metadata={"help": "epochs of the item-text teacher (`teacher_item_text`)"}
    )
    baselines: bool = field(default=True, metadata={"help": "also fit and evaluate most-popular and SASRec"})
    data_dir: str | None = field(
        default=None, metadata={"help": "prepared dataset folder, built once and shared (None: OUT/data)"}
    )
    index_dir: str | None = field(
        default=None, metadata={"help": "item index folder, built once and shared (None: OUT/index)"}
    )
    reuse: bool = field(
        default=False, metadata={"help": "keep the data, index and model already under --out instead of rebuilding"}
    )
    examples: int = field(default=3, metadata={"help": "evaluated users whose recommendations are printed"})
    seed: int = field(default=42, metadata={"help": "seed of the index, SFT and SASRec"})
    threads: int = field(
        default=1,
        metadata={
            "help": "torch CPU threads (0: torch's default); small models gain little from more, and a busy "
            "machine loses a lot"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a non-empty --out folder that `lcrec quickstart` did not write"}
    )

    def __post_init__(self) -> None:
        if self.threads < 0 or self.examples < 0:
            raise ValueError(f"threads and examples must be >= 0, got {self.threads} and {self.examples}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.index_epochs is not None and self.index_epochs < 1:
            raise ValueError(f"index_epochs must be >= 1 or None, got {self.index_epochs}")
        if self.teacher_epochs < 1:
            raise ValueError(f"teacher_epochs must be >= 1, got {self.teacher_epochs}")
        if self.sasrec_seconds <= 0:
            raise ValueError(f"sasrec_seconds must be > 0, got {self.sasrec_seconds}")
        if self.collaborative not in (None, "sasrec") or self.collaborative_mode not in COLLABORATIVE_MODES:
            raise ValueError(
                f"collaborative must be sasrec or None and collaborative_mode one of {', '.join(COLLABORATIVE_MODES)}"
            )


@contextmanager
def stage(name: str, seconds: dict[str, float], cpu_seconds: dict[str, float] | None = None) -> Iterator[None]:
    """Print a stage's start and its wall and CPU time, and record them in `seconds` / `cpu_seconds`."""
    print(f"\n== {name} ==", flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    yield
    seconds[name] = round(time.perf_counter() - started, 1)
    cpu = round(time.process_time() - cpu_started, 1)
    if cpu_seconds is not None:
        cpu_seconds[name] = cpu
    print(f"== {name}: {seconds[name]:.1f} s wall, {cpu:.1f} s CPU ==", flush=True)


def run_quickstart(
    options: QuickstartOptions,
    evaluation: EvaluationConfig | None = None,
    command: str | None = None,
    sft_overrides: dict[str, Any] | None = None,
) -> dict[str, dict]:
    """Run every stage and return the metrics records {"LC-Rec": ..., "SASRec": ..., "most-popular": ...}.

    The preset and the output folder are checked before the first stage starts. `command` (the command line that
    started the run) is recorded with the prepared dataset and in pipeline.json. `sft_overrides` (SFT option ->
    value) replace the preset's settings, as flags after `--config` do (benchmarks compare variants this way).
    """
    from ..cards.model_card import METRICS_NAME, update_model_card_metrics
    from ..data import load_prepared, prepare_dataset
    from ..evaluation.runner import evaluate_model
    from ..modeling_lcrec import LCRecForCausalLM
    from ..presets import resolve_preset

    evaluation = evaluation or EvaluationConfig()
    out = Path(options.out)
    model_dir, baseline_dir = out / "model", out / "baselines"
    # Shared data/index folders (an ablation trains several models on one index) are built once and reused.
    data_dir = Path(options.data_dir) if options.data_dir else out / "data"
    index_dir = Path(options.index_dir) if options.index_dir else out / "index"
    preset = resolve_preset(options.preset)
    # A distilling preset learns from this run's SASRec, unless the caller names the teacher (None: no distillation).
    own_teacher = preset_distils(preset) and "teacher_dir" not in (sft_overrides or {})
    if options.teacher_item_text and not own_teacher:
        raise ValueError(
            "teacher_item_text trains the run's teacher, but this run has none to train: the preset "
            f"{preset.name} sets no teacher_dir, or sft_overrides names the teacher"
        )
    teacher_dir = None
    if own_teacher:
        teacher_dir = out / "teacher" if options.teacher_item_text else baseline_dir / "sasrec"
    settings = _workflow_sft_settings(options, data_dir, index_dir, model_dir, teacher_dir)
    owned = sorted(set(sft_overrides or {}) & set(settings))
    if owned:  # the workflow sets these itself: an override would be silently replaced
        raise ValueError(
            f"sft_overrides may not set {', '.join(owned)}: the quickstart sets them from its own options "
            f"({', '.join(f'{key} <- {settings[key][1]}' for key in owned)})"
        )
    source = None if options.source == "ml-100k" else options.source
    check_output_dir(out, COMMAND, inputs=[source], overwrite=options.overwrite, signature=OUTPUT_SIGNATURE)
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, COMMAND)  # marked first, so a rerun after a failed stage may reuse or replace the folder
    if options.threads:
        import torch

        # The compact CPU models gain little from more threads, and on a busy machine extra OpenMP threads
        # spin-wait for cores other jobs hold: one thread is often several times faster there.
        torch.set_num_threads(options.threads)
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    started = time.perf_counter()

    with stage(f"prepare {options.name}", seconds, cpu_seconds):
        if (options.reuse or options.data_dir) and (data_dir / "stats.json").is_file():
            print(f"reusing {data_dir}")
        else:
            prepare_dataset(options.source, output_dir=data_dir, overwrite=options.overwrite, command=command)
        dataset = load_prepared(data_dir)
        print(f"{len(dataset['items'])} items, {len(dataset['test'])} users -> {data_dir}")

    collaborative = f" + SASRec vectors ({options.collaborative_mode})" if options.collaborative else ""
    with stage(f"index (MiniLM + RQ-VAE{collaborative})", seconds, cpu_seconds):
        _build_index(options, dataset, index_dir)

    # Before SFT: a distilling preset learns from this SASRec (trained even when the baselines are not reported).
    baselines = {}
    if options.baselines:
        baselines = _run_baselines(options, evaluation, dataset, baseline_dir, seconds, cpu_seconds)
    if teacher_dir and (options.teacher_item_text or not options.baselines):
        with stage("SASRec teacher" + (" (item text)" if options.teacher_item_text else ""), seconds, cpu_seconds):
            _train_teacher(options, dataset, index_dir, teacher_dir)

    with stage(SFT_STAGE, seconds, cpu_seconds):
        _train(
            options,
            preset,
            model_dir,
            {**(sft_overrides or {}), **{key: value for key, (value, _) in settings.items()}},
        )

    with stage("evaluate LC-Rec", seconds, cpu_seconds):
        model = LCRecForCausalLM.from_pretrained(model_dir)
        lcrec = evaluate_model(model, dataset, evaluation, output_file=str(out / METRICS_NAME))
        update_model_card_metrics(model_dir, lcrec)
        print(
            f"HR@10 {lcrec['HR@10']:.4f} on {lcrec['num_users']} {lcrec['split']} users, "
            f"invalid_rate {lcrec['invalid_rate']}, {lcrec['users_per_second']:.2f} users/s"
        )

    records = {"LC-Rec": lcrec, **baselines}
    total = time.perf_counter() - started
    write_json(
        out / "pipeline.json",
        {
            "options": asdict(options),
            "evaluation": asdict(evaluation),
            "preset": str(preset),
            "command": command,
            "sft_overrides": sft_overrides or {},
            "stage_seconds": seconds,
            "stage_cpu_seconds": cpu_seconds,
            "total_seconds": round(total, 1),
            "HR@10": {name: record["HR@10"] for name, record in records.items()},
        },
    )
    _print_results(options, dataset, records)
    _print_examples(model, dataset, evaluation, lcrec, options.examples)
    times = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
    print(f"\nstage times: {times}; total {total / 60:.1f} min")
    print(f"artifacts under {out}/")
    return records


def _run_baselines(
    options: QuickstartOptions, evaluation: EvaluationConfig, dataset, baseline_dir: Path, seconds, cpu_seconds
):
    """Most-popular and SASRec on the users the LC-Rec evaluation used, with the same exclusion rule."""
    from ..evaluation.baselines import run_baseline

    with stage("baseline most-popular", seconds, cpu_seconds):
        popular = run_baseline("most_popular", dataset, evaluation)
        write_json(baseline_dir / "most_popular.json", popular)
    with stage("baseline SASRec", seconds, cpu_seconds):
        sasrec = run_baseline(
            "sasrec",
            dataset,
            evaluation,
            sasrec_config=_sasrec_config(options),
            model_dir=str(baseline_dir / "sasrec"),
        )
        write_json(baseline_dir / "sasrec.json", sasrec)
    return {"SASRec": sasrec, "most-popular": popular}


def _sasrec_config(options: QuickstartOptions):
    """The SASRec the workflow trains, as the reported baseline and as the teacher alike."""
    from ..evaluation.baselines import SASRecConfig

    return SASRecConfig(max_seconds=options.sasrec_seconds, seed=options.seed)


def _train_teacher(options: QuickstartOptions, dataset, index_dir: Path, teacher_dir: Path) -> None:
    """The distillation teacher: the text SASRec of lcrec.training.teacher, or the SASRec baseline's training alone
    (early stopping on validation) when the baselines are not run."""
    from ..evaluation.baselines import fit_baseline
    from ..training.teacher import train_teacher

    if options.reuse and (teacher_dir / "sasrec.safetensors").is_file():
        print(f"reusing {teacher_dir}")
        return
    if options.teacher_item_text:
        facts = train_teacher(
            dataset, index_dir, teacher_dir, options.seed, options.teacher_epochs, options.sasrec_seconds
        )
        write_json(teacher_dir / "teacher.json", facts)
    else:
        model, facts = fit_baseline("sasrec", dataset, sasrec_config=_sasrec_config(options))
        model.save_pretrained(teacher_dir)
    print(f"SASRec teacher (kept epoch {facts['kept_epoch']} of {facts['epochs']}) -> {teacher_dir}")


def _print_results(options: QuickstartOptions, dataset, records: dict[str, dict]) -> None:
    from ..evaluation.report import format_table

    lcrec = records["LC-Rec"]
    users = "all" if lcrec["max_users"] is None else f"a seeded sample of {lcrec['num_users']}"
    print(
        f"\n{options.name}, leave-one-out {lcrec['split']} split, full ranking over {len(dataset['items'])} items, "
        f"{users} users (the same for every method), exclude_history={lcrec['exclude_history']}, "
        f"LC-Rec templates {lcrec['templates']}, {lcrec['num_beams']} beams"
    )
    print(format_table(records))
    for name in ("most-popular", "SASRec"):
        if name in records:
            base = records[name]["HR@10"]
            ratio = f"{lcrec['HR@10'] / base:.2f}x" if base else "n/a"
            print(f"LC-Rec HR@10 vs {name}: {lcrec['HR@10']:.4f} vs {base:.4f} ({ratio})")


def _build_index(options: QuickstartOptions, dataset, index_dir: Path) -> None:
    from ..evaluation.baselines import sasrec_index_arguments, training_sequences
    from ..indexing import RQVAETrainingArguments, build_index
    from ..indexing.embedding import DEFAULT_ENCODER

    if (options.reuse or options.index_dir) and (index_dir / "index.json").is_file():
        print(f"reusing {index_dir}")
        return
    epochs = {"epochs": options.index_epochs} if options.index_epochs else {}
    training = RQVAETrainingArguments(seed=options.seed, **epochs)
    items = dataset["items"].to_list()
    extra: dict[str, Any] = {"sequences": training_sequences(dataset)}
    if options.collaborative:
        # SASRec on the train split alone, a fixed number of epochs: no validation or test data shapes the index.
        extra.update(sasrec_index_arguments(dataset, items, options.collaborative_mode, options.seed))
    stats = build_index(
        items, index_dir, encoder=DEFAULT_ENCODER, training_args=training, overwrite=options.overwrite, **extra
    ).stats
    kind = f", collaborative {options.collaborative_mode}" if options.collaborative else ""
    print(
        f"{stats['num_items']} items, codebooks {stats['codebook_sizes']}, collisions {stats['collisions']}{kind} "
        f"-> {index_dir}"
    )


def read_preset(preset: Path) -> dict[str, Any]:
    """A preset YAML's option -> value mapping (refused, naming the file, when it is not one)."""
    import yaml

    values = yaml.safe_load(preset.read_text(encoding="utf-8"))
    if not isinstance(values, dict):
        raise ValueError(f"{preset}: an SFT preset must be a YAML mapping of option names to values")
    return values


def preset_distils(preset: Path) -> bool:
    """Whether the SFT preset distils from a SASRec teacher (sets `teacher_dir`)."""
    return read_preset(preset).get("teacher_dir") is not None


def _workflow_sft_settings(
    options: QuickstartOptions, data_dir: Path, index_dir: Path, model_dir: Path, teacher_dir: Path | None
) -> dict[str, tuple[Any, str]]:
    """The SFT options the workflow sets from its own: SFT option -> (value, the QuickstartOptions field behind it)."""
    settings: dict[str, tuple[Any, str]] = {
        "dataset_dir": (str(data_dir), "data_dir / out"),
        "index_dir": (str(index_dir), "index_dir / out"),
        "output_dir": (str(model_dir), "out"),
        "seed": (options.seed, "seed"),
        "overwrite": (options.overwrite, "overwrite"),
    }
    if teacher_dir:
        settings["teacher_dir"] = (str(teacher_dir), "out (the run's SASRec teacher)")
    if options.max_steps:
        settings["max_steps"] = (options.max_steps, "max_steps")
    if options.tasks:
        settings["tasks"] = (list(options.tasks), "tasks")
    return settings


def sft_options(preset: Path, **overrides: Any) -> tuple:
    """(DataOptions, ModelOptions, LoraOptions, SFTConfig) from a preset YAML with `overrides` (field -> value)."""
    from ..training import make_sft_parser

    return make_sft_parser().parse_dict({**read_preset(preset), **overrides})


def _train(options: QuickstartOptions, preset: Path, model_dir: Path, overrides: dict[str, Any]) -> None:
    """SFT with the preset and `overrides` (the caller's and the workflow's own settings) into `model_dir`."""
    from ..training import run_sft

    if options.reuse and (model_dir / "config.json").is_file():
        print(f"reusing {model_dir}")
        return
    run_sft(*sft_options(preset, **overrides))
    print(f"model -> {model_dir}")


def _print_examples(model, dataset, evaluation: EvaluationConfig, record: dict, count: int) -> None:
    """A few evaluated users: their last items, and the top-5 recommendations by title (* = the held-out item)."""
    from ..evaluation.ranking import finalize_ranking, select_rows

    if count < 1:
        return
    table = dataset[evaluation.split]
    rows = select_rows(len(table), evaluation.max_users, evaluation.user_seed)[:count]
    users = table.select(rows)
    titles = dataset["items"]["title"]
    histories = [list(history) for history in users["history"]]
    beams = record["num_beams"]
    ranked = model.recommend(histories, top_k=beams, num_beams=beams, template=record["templates"][0])
    for user, history, target, items in zip(users["user_id"], histories, users["target"], ranked):
        top = finalize_ranking([item for item, _ in items], history, 5, evaluation.exclude_history)
        print(f"\nuser {user}: last items " + "; ".join(titles[item] for item in history[-3:]))
        print(f"  held-out next item: {titles[target]}")
        for position, item in enumerate(top, start=1):
            print(f"  {position}. {titles[item]}{'  *' if item == target else ''}")
