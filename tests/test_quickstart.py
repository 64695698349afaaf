"""The quickstart workflow: presets by name, checks before any stage, SFT options as objects, a tiny run end to end."""

import json

import numpy as np
import pytest

from lcrec.evaluation import EvaluationConfig
from lcrec.io_utils import OutputFolderError
from lcrec.workflows import QuickstartOptions, run_quickstart
from lcrec.workflows.quickstart import DEFAULT_PRESET, sft_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_preset_is_found_from_any_folder(tmp_path, monkeypatch):
    from lcrec.presets import resolve_preset

    monkeypatch.chdir(tmp_path)
    assert QuickstartOptions().preset == DEFAULT_PRESET
    assert resolve_preset(QuickstartOptions().preset).name == "ml-100k-cpu.yaml"


def test_missing_preset_fails_before_any_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml: no such file and no packaged preset"):
        run_quickstart(QuickstartOptions(out=str(tmp_path / "run"), preset=str(tmp_path / "missing.yaml")))
    assert not (tmp_path / "run").exists()


def test_foreign_output_folder_refused_before_any_stage(tmp_path, capsys):
    from lcrec.cli import main

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match="pass --overwrite"):
        run_quickstart(QuickstartOptions(out=str(foreign)))
    assert main(["quickstart", "--out", str(foreign)]) == 2
    assert "lcrec quickstart: error:" in capsys.readouterr().err
    assert sorted(path.name for path in foreign.iterdir()) == ["notes.txt"]


def test_option_checks():
    with pytest.raises(ValueError, match="threads and examples must be >= 0"):
        QuickstartOptions(threads=-1)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        QuickstartOptions(max_steps=0)


def test_sft_options_are_objects_from_the_preset_and_overrides(tmp_path):
    from lcrec.presets import resolve_preset

    data, model, lora, training = sft_options(
        resolve_preset("ml-100k-cpu"),
        dataset_dir="d",
        index_dir="i",
        output_dir=str(tmp_path / "m"),
        max_steps=5,
        seed=3,
    )
    assert (data.dataset_dir, data.index_dir, data.validation_samples) == ("d", "i", 300)
    assert model.base_model == "scratch" and model.scratch_hidden_size == 128 and not lora.use_lora
    assert training.max_steps == 5 and training.seed == 3 and training.output_dir == str(tmp_path / "m")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        sft_options(bad)


TINY_PRESET = """
tasks: [seqrec, item2index, index2item]
max_history: 5
base_model: scratch
scratch_vocab_size: 300
scratch_hidden_size: 32
scratch_num_layers: 1
scratch_num_heads: 2
scratch_intermediate_size: 64
scratch_max_positions: 128
use_cpu: true
bf16: false
learning_rate: 3.0e-3
max_steps: 4
per_device_train_batch_size: 8
per_device_eval_batch_size: 8
max_length: 128
eval_strategy: "no"
save_strategy: "no"
logging_steps: 2
report_to: none
"""


def tiny_source(folder, num_users: int = 24, num_items: int = 16) -> str:
    """A CSV log (every user sees 8 items in a fixed walk) and an item file with titles: 5-core safe."""
    rows = ["user,item,ts"]
    for user in range(num_users):
        for step in range(8):
            rows.append(f"u{user},i{(user + step) % num_items},{step}")
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    items = ["item,title"] + [f"i{item},Film number {item}" for item in range(num_items)]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    return str(folder / "log.csv")


def tiny_quickstart_options(tmp_path, preset_text: str) -> tuple[QuickstartOptions, int]:
    """Options of a quickstart on the tiny log with a prebuilt two-level index, and the catalogue size."""
    from lcrec.data import prepare_dataset
    from lcrec.indexing import ItemIndex

    source = tiny_source(tmp_path)
    data_dir, index_dir = tmp_path / "data", tmp_path / "index"
    dataset = prepare_dataset(
        source,
        "csv",
        output_dir=data_dir,
        columns={"user": "user", "item": "item", "timestamp": "ts"},
        items=tmp_path / "items.csv",
        item_columns={"item": "item", "title": "title"},
    )
    num_items = len(dataset["items"])
    codes = np.array([[item // 4, item % 4] for item in range(num_items)])
    index_dir.mkdir()
    ItemIndex(list(range(num_items)), codes, [4, 4], raw_ids=dataset["items"]["raw_id"]).save(index_dir / "index.json")
    preset = tmp_path / "tiny.yaml"
    preset.write_text(preset_text)
    options = QuickstartOptions(
        source=source,
        name="tiny",
        out=str(tmp_path / "run"),
        preset=str(preset),
        data_dir=str(data_dir),
        index_dir=str(index_dir),
        sasrec_seconds=2.0,
        examples=1,
        seed=0,
    )
    return options, num_items


@pytest.mark.slow
def test_tiny_quickstart_end_to_end_on_validation(tmp_path, monkeypatch, capsys):
    """prepare -> (prebuilt tiny index) -> baselines -> SFT from a preset file -> evaluate on validation."""
    options, num_items = tiny_quickstart_options(tmp_path, TINY_PRESET)
    evaluation = EvaluationConfig(split="validation", max_users=10, num_beams=num_items)
    records = run_quickstart(options, evaluation, command="lcrec quickstart --split validation")
    assert set(records) == {"LC-Rec", "SASRec", "most-popular"}
    for record in records.values():
        assert record["split"] == "validation" and record["num_users"] == 10 and record["max_users"] == 10
    assert records["LC-Rec"]["invalid_rate"] == 0.0
    pipeline = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert (
        pipeline["evaluation"]["split"] == "validation"
        and pipeline["command"] == "lcrec quickstart --split validation"
    )
    assert "HR@10" in (tmp_path / "run" / "model" / "README.md").read_text()
    out = capsys.readouterr().out
    assert "leave-one-out validation split" in out and "LC-Rec HR@10 vs SASRec" in out
    # A rerun into the same folder is allowed (the folder is the quickstart's own) and reuses what is there.
    rerun = run_quickstart(QuickstartOptions(**{**options.__dict__, "reuse": True, "baselines": False}), evaluation)
    assert rerun["LC-Rec"]["HR@10"] == pytest.approx(records["LC-Rec"]["HR@10"])


@pytest.mark.slow
def test_a_distilling_preset_learns_from_the_sasrec_of_its_own_run(tmp_path):
    """A preset with `teacher_dir` gets this run's SASRec baseline, trained before SFT, as its teacher."""
    distilling = TINY_PRESET.replace("[seqrec, item2index, index2item]", "[sequence]")
    options, num_items = tiny_quickstart_options(tmp_path, distilling + "teacher_dir: set-by-the-workflow\n")
    evaluation = EvaluationConfig(split="validation", max_users=10, num_beams=num_items)
    records = run_quickstart(options, evaluation)
    assert set(records) == {"LC-Rec", "SASRec", "most-popular"}
    run = tmp_path / "run"
    stages = list(json.loads((run / "pipeline.json").read_text())["stage_seconds"])
    assert stages.index("baseline SASRec") < stages.index("task mix + SFT")
    training = json.loads((run / "model" / "training_results.json").read_text())
    assert training["distillation"]["teacher"].startswith("SASRec") and training["distillation"]["weight"] == 1.0
    assert (run / "baselines" / "sasrec" / "sasrec.safetensors").is_file()
    # Without baselines the teacher is still trained (and not reported); teacher_dir None turns distillation off.
    alone = QuickstartOptions(**{**options.__dict__, "out": str(tmp_path / "alone"), "baselines": False})
    assert set(run_quickstart(alone, evaluation)) == {"LC-Rec"}
    assert "SASRec teacher" in json.loads((tmp_path / "alone" / "pipeline.json").read_text())["stage_seconds"]
    assert json.loads((tmp_path / "alone" / "model" / "training_results.json").read_text())["distillation"]
    plain = QuickstartOptions(**{**options.__dict__, "out": str(tmp_path / "plain"), "baselines": False})
    assert set(run_quickstart(plain, evaluation, sft_overrides={"teacher_dir": None})) == {"LC-Rec"}
    assert json.loads((tmp_path / "plain" / "model" / "training_results.json").read_text())["distillation"] is None


@pytest.mark.slow
def test_an_item_text_teacher_is_trained_from_the_index_text_vectors(tmp_path):
    """`teacher_item_text`: the teacher is lcrec.training.teacher's SASRec, read from the index's embeddings."""
    from safetensors.numpy import save_file

    from lcrec.indexing.embedding import EMBEDDINGS_NAME

    distilling = TINY_PRESET.replace("[seqrec, item2index, index2item]", "[sequence]")
    options, num_items = tiny_quickstart_options(tmp_path, distilling + "teacher_dir: set-by-the-workflow\n")
    changes = {"baselines": False, "teacher_item_text": True, "teacher_epochs": 2}
    options = QuickstartOptions(**{**options.__dict__, **changes})
    evaluation = EvaluationConfig(split="validation", max_users=10, num_beams=num_items)
    # An index without text vectors stops the run at the teacher, before SFT, naming the file.
    with pytest.raises(FileNotFoundError, match=f"index/{EMBEDDINGS_NAME}: no item embeddings"):
        run_quickstart(options, evaluation)
    assert not (tmp_path / "run" / "model").exists()
    vectors = np.random.default_rng(0).normal(size=(num_items, 8)).astype(np.float32)
    save_file({"embeddings": vectors}, str(tmp_path / "index" / EMBEDDINGS_NAME))
    assert set(run_quickstart(options, evaluation)) == {"LC-Rec"}
    run = tmp_path / "run"
    facts = json.loads((run / "teacher" / "teacher.json").read_text())
    assert facts["item_text"] is True and facts["epochs"] == facts["kept_epoch"] == 2
    assert "SASRec teacher (item text)" in json.loads((run / "pipeline.json").read_text())["stage_seconds"]
    distillation = json.loads((run / "model" / "training_results.json").read_text())["distillation"]
    assert distillation["teacher"].startswith("SASRec") and "item text vectors (8 dims)" in distillation["teacher"]
    with pytest.raises(ValueError, match="teacher_epochs must be >= 1"):
        QuickstartOptions(teacher_epochs=0)
    # The flag is refused, before any work, where no teacher would be trained.
    for overrides in ({"teacher_dir": None}, {"teacher_dir": str(run / "teacher")}):
        other = QuickstartOptions(**{**options.__dict__, "out": str(tmp_path / "other")})
        with pytest.raises(ValueError, match="teacher_item_text trains the run's teacher, but this run has none"):
            run_quickstart(other, evaluation, sft_overrides=overrides)
        assert not (tmp_path / "other").exists()


def test_sft_overrides_of_options_the_workflow_sets_are_refused_before_any_work(tmp_path):
    # `seed` comes from QuickstartOptions.seed (index, SFT and SASRec): an override would be silently replaced.
    out = tmp_path / "qs"
    with pytest.raises(ValueError, match=r"may not set output_dir, seed: .*seed <- seed"):
        run_quickstart(QuickstartOptions(out=str(out)), sft_overrides={"seed": 43, "output_dir": "x", "lr": 1})
    with pytest.raises(ValueError, match="may not set max_steps"):
        run_quickstart(QuickstartOptions(out=str(out), max_steps=5), sft_overrides={"max_steps": 10})
    assert not out.exists()
