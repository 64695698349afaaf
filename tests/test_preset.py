"""`lcrec preset`: SFT settings derived from a prepared dataset, its index and a CPU budget."""

import pytest
import yaml
from sft_fixtures import write_sft_data

from lcrec.cli import main
from lcrec.training.derive import (
    EPOCH_OVERHEAD_CPU_SECONDS,
    MAX_HISTORY,
    MIN_HISTORY,
    RANKING_EVAL_USERS,
    RANKING_SECONDS_PER_USER,
    TARGET_EPOCHS,
    DataProfile,
    derive_preset,
    epoch_cpu_seconds,
    epoch_tokens,
    training_tokens_per_cpu_second,
)


def profile(**changes) -> DataProfile:
    values = dict(
        users=3000, items=1500, train_targets=12000, p90_length=8, levels=4, mean_title_chars=60.0, max_title_chars=300
    )
    return DataProfile(**{**values, **changes})


def test_window_and_lengths_follow_the_data():
    short, long = derive_preset(profile()), derive_preset(profile(p90_length=200, train_targets=90000))
    assert short["max_history"] == MIN_HISTORY and long["max_history"] == MAX_HISTORY
    assert derive_preset(profile(p90_length=33))["max_history"] == 33
    for options in (short, long):
        # a window of max_history + 1 items of `levels` tokens, the instruction and EOS fit: no row is dropped
        assert options["max_length"] >= 18 + (options["max_history"] + 1) * 4 + 1
        assert options["max_length"] % 32 == 0 and options["scratch_max_positions"] == options["max_length"]
    assert short["per_device_train_batch_size"] == 64 and long["per_device_train_batch_size"] == 32
    assert short["tasks"] == ["sequence"]
    aligned = derive_preset(profile(), alignment=True)
    assert aligned["tasks"] == ["sequence", "item2index", "index2item"]
    assert aligned["max_length"] >= 40 + 300 // 2 + 4 + 1  # the longest title's alignment row fits too


def test_epochs_shrink_with_the_budget_and_never_exceed_the_target(caplog):
    roomy = derive_preset(profile(), cpu_minutes=1000)
    assert roomy["num_train_epochs"] == TARGET_EPOCHS and not caplog.records
    tight = derive_preset(profile(train_targets=2_000_000, users=100_000), cpu_minutes=5)
    assert tight["num_train_epochs"] == 1
    assert "plans one epoch anyway" in caplog.text  # a budget below one epoch is said, not silently overrun
    middle = derive_preset(profile(train_targets=200_000, users=20_000), cpu_minutes=15)
    estimate = middle["_estimate"]
    assert 1 <= middle["num_train_epochs"] == min(TARGET_EPOCHS, int(estimate["affordable_epochs"]))
    with pytest.raises(ValueError, match="cpu_minutes must be positive"):
        derive_preset(profile(), cpu_minutes=0)
    with pytest.raises(ValueError, match="nothing to train on"):
        derive_preset(profile(train_targets=0))


def test_command_writes_a_preset_the_sft_parser_reads(tmp_path):
    from lcrec.training import parse_sft_args

    paths = write_sft_data(tmp_path)
    out = tmp_path / "derived.yaml"
    assert (
        main(
            [
                "preset",
                "--data",
                paths["dataset_dir"],
                "--index",
                paths["index_dir"],
                "--out",
                str(out),
                "--cpu_minutes",
                "2",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert text.startswith("# Derived by `lcrec preset`")
    options = yaml.safe_load(text)
    assert options["dataset_dir"] == paths["dataset_dir"] and options["tasks"] == ["sequence"]
    assert options["ranking_eval_users"] == 8  # every one of the 8 users
    data, model, _, args = parse_sft_args(["--config", str(out), "--output_dir", str(tmp_path / "model")])
    assert data.prompt_format == "sequence" and data.max_history == MIN_HISTORY
    assert args.metric_for_best_model == "NDCG@10" and args.max_length == options["max_length"]
    assert model.scratch_max_positions == options["max_length"]


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    paths = write_sft_data(tmp_path)
    base = ["preset", "--data", paths["dataset_dir"], "--index", paths["index_dir"]]
    assert main([*base, "--out", str(tmp_path / "p.yaml"), "--cpu_minutes", "-1"]) == 2
    assert "cpu_minutes must be positive" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "p.txt")]) == 2
    assert "must name a .yaml file" in capsys.readouterr().err
    assert (
        main(
            [
                "preset",
                "--data",
                str(tmp_path / "nowhere"),
                "--index",
                paths["index_dir"],
                "--out",
                str(tmp_path / "p.yaml"),
            ]
        )
        == 2
    )
    assert "--data" in capsys.readouterr().err
    assert not (tmp_path / "p.yaml").exists()


def test_the_cost_model_slows_with_longer_windows_and_counts_the_ranking_evaluation():
    rates = [training_tokens_per_cpu_second(window) for window in (1, MIN_HISTORY, 35, MAX_HISTORY, 500)]
    assert rates[0] == rates[1] > rates[2] > rates[3] == rates[4]  # held at the measured ends, falling between
    data = profile()
    seconds = epoch_cpu_seconds(data, MIN_HISTORY, alignment=False)
    training = epoch_tokens(data, MIN_HISTORY, alignment=False) / training_tokens_per_cpu_second(MIN_HISTORY)
    ranking = EPOCH_OVERHEAD_CPU_SECONDS + RANKING_SECONDS_PER_USER * RANKING_EVAL_USERS
    assert seconds == pytest.approx(training + ranking)
    estimate = derive_preset(data, cpu_minutes=1000)["_estimate"]
    assert estimate["cpu_minutes_per_epoch"] == round(seconds / 60, 2)


@pytest.mark.parametrize(
    ("users", "train_targets", "epochs", "measured_cpu_seconds"),
    [(2843, 10570, 24, 433), (4182, 27674, 16, 458)],  # scientific-cpu; bench/heldout.py's Beauty sample
)
def test_the_cost_model_reproduces_the_runs_it_was_fitted_to(users, train_targets, epochs, measured_cpu_seconds):
    data = profile(users=users, train_targets=train_targets, p90_length=15)
    estimate = epochs * epoch_cpu_seconds(data, MIN_HISTORY, alignment=False)
    assert estimate == pytest.approx(measured_cpu_seconds, rel=0.05)


def test_a_teacher_distils_with_the_soft_targets_alone_and_more_epochs(tmp_path, capsys):
    from lcrec.evaluation.baselines.sasrec import SASRec, SASRecConfig
    from lcrec.training import parse_sft_args
    from lcrec.training.derive import DISTILLED_TARGET_EPOCHS, SAMPLED_TARGET_EPOCHS, TEACHER_SAMPLING
    from lcrec.training.options import DEFAULT_TEACHER_WEIGHT

    plain, distilled = derive_preset(profile(), 600), derive_preset(profile(), 600, teacher_dir="t")
    assert plain["num_train_epochs"] == TARGET_EPOCHS and "teacher_dir" not in plain
    # A budget that pays for SAMPLED_TARGET_EPOCHS draws items from the teacher; a tighter one distils without.
    assert distilled["num_train_epochs"] == SAMPLED_TARGET_EPOCHS > DISTILLED_TARGET_EPOCHS > TARGET_EPOCHS
    assert distilled["teacher_dir"] == "t" and distilled["teacher_weight"] == DEFAULT_TEACHER_WEIGHT
    assert distilled["teacher_sampling"] == TEACHER_SAMPLING > 0
    twenty_epochs = 20 * epoch_cpu_seconds(profile(), MIN_HISTORY, alignment=False) / 60
    tight = derive_preset(profile(), twenty_epochs, teacher_dir="t")
    assert tight["num_train_epochs"] == DISTILLED_TARGET_EPOCHS and tight["teacher_sampling"] == 0.0
    paths = write_sft_data(tmp_path)
    base = ["preset", "--data", paths["dataset_dir"], "--index", paths["index_dir"], "--out", str(tmp_path / "p.yaml")]
    SASRec(SASRecConfig(num_items=12, max_len=8, hidden_size=16, num_heads=2)).save_pretrained(tmp_path / "ok")
    assert main([*base, "--teacher", str(tmp_path / "ok")]) == 0
    assert "distilled from" in capsys.readouterr().out
    data, _, _, _ = parse_sft_args(["--config", str(tmp_path / "p.yaml"), "--output_dir", str(tmp_path / "model")])
    assert data.teacher_dir == str(tmp_path / "ok") and data.teacher_weight == DEFAULT_TEACHER_WEIGHT
    assert data.teacher_sampling == TEACHER_SAMPLING  # the fixture's few users: 24 epochs fit in the default budget
    # A SASRec of another catalogue, or no SASRec at all, is named before anything is written.
    SASRec(SASRecConfig(num_items=30, max_len=8, hidden_size=16, num_heads=2)).save_pretrained(tmp_path / "other")
    out = [*base[:-1], str(tmp_path / "q.yaml")]
    assert main([*out, "--teacher", str(tmp_path / "other")]) == 2
    assert "a SASRec of 30 items, but the dataset has 12" in capsys.readouterr().err
    assert main([*out, "--teacher", str(tmp_path / "nowhere")]) == 2
    assert "--teacher" in capsys.readouterr().err and not (tmp_path / "q.yaml").exists()
