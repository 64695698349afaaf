"""Every recipe config parses (SFT presets through the recipe's TrlParser, by name or path; accelerate YAMLs through
accelerate, including the DeepSpeed ZeRO-3 and FSDP launchers that CI cannot run)."""

from pathlib import Path

import pytest
import yaml

from lcrec.presets import list_presets, resolve_preset
from lcrec.training import parse_sft_args

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ACCELERATE_CONFIGS = sorted((RECIPES / "accelerate").glob("*.yaml"))
GPU_PRESETS = {"instruments", "arts", "games", "beauty"}


def test_the_expected_configs_exist():
    assert {"ml-100k-cpu", "ml-100k-smollm2-cpu", "scientific-cpu", "beauty-cpu"} | GPU_PRESETS <= set(list_presets())
    assert {path.stem for path in ACCELERATE_CONFIGS} == {"single_gpu", "multi_gpu", "deepspeed_zero3", "fsdp"}


@pytest.mark.parametrize("name", list_presets())
def test_sft_preset_parses_by_name_and_by_path(name):
    gpu = yaml.safe_load(resolve_preset(name).read_text())["bf16"]
    # bf16 presets target GPUs; TrainingArguments refuses bf16 on a CPU-only machine, so parse those with it off.
    overrides = ["--bf16", "false"] if gpu else []
    data, model, lora, training = parse_sft_args(["--config", name, *overrides])
    assert data.dataset_dir and data.index_dir
    assert training.output_dir
    assert training.load_best_model_at_end
    if training.metric_for_best_model != "eval_loss":  # a ranking metric needs the callback that measures it
        assert training.metric_for_best_model == "NDCG@10" and training.greater_is_better
        assert data.ranking_eval_users and training.eval_strategy == training.save_strategy
    if gpu:  # paper scale: global batch 128 on 8 GPUs, lr 5e-5, cosine, 1 % warmup, 4 epochs
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps * 8 == 128
        assert training.learning_rate == 5e-5 and training.lr_scheduler_type == "cosine"
        assert training.warmup_steps == 0.01 and training.num_train_epochs == 4
        assert not lora.use_lora and model.torch_dtype == "bfloat16"
    by_path = parse_sft_args([f"--config={RECIPES / 'configs' / f'{name}.yaml'}", *overrides])
    assert by_path[0] == data and by_path[3].learning_rate == training.learning_rate


def test_an_unknown_preset_name_is_an_error_listing_the_presets():
    with pytest.raises(FileNotFoundError, match="ml-100k-cpu"):
        parse_sft_args(["--config", "ml-100k-gpu"])


def test_command_line_flags_override_the_preset():
    data, _, _, training = parse_sft_args(["--config", "ml-100k-cpu", "--max_steps", "7", "--max_history", "3"])
    assert training.max_steps == 7 and data.max_history == 3


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda path: path.stem)
def test_accelerate_config_parses(path):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(path))  # raises on unknown keys
    assert config.mixed_precision == "bf16" and not config.use_cpu
    assert f"--config_file recipes/accelerate/{path.name} recipes/sft.py" in path.read_text()  # documented launch line
    if path.stem == "deepspeed_zero3":
        assert config.distributed_type == "DEEPSPEED" and config.deepspeed_config["zero_stage"] == 3
        assert config.deepspeed_config["zero3_save_16bit_model"]  # the final folder gets whole weights
    if path.stem == "fsdp":
        assert config.distributed_type == "FSDP" and config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the final folder gets whole weights


def test_unknown_config_key_is_an_error_naming_it(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("dataset_dir: d\nindex_dir: i\noutput_dir: o\nbf16: false\nlerning_rate: 0.1\n")
    with pytest.raises(ValueError, match="lerning_rate"):
        parse_sft_args(["--config", str(config)])


def test_unknown_command_line_flag_is_an_error_naming_it():
    with pytest.raises(ValueError, match="--lora_rank"):
        parse_sft_args(["--output_dir", "o", "--bf16", "false", "--lora_rank", "4"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tasks", "seqrec", "itemsaerch"], "unknown task"),
        (["--lora_target_modules", "q_proj", "lm_head"], "lm_head"),
        (["--validation_samples", "0"], "validation_samples must be >= 1"),
        (["--max_history", "0"], "max_history must be >= 1"),
        (["--scratch_num_layers", "0"], "scratch_num_layers must be >= 1"),
        (["--lora_alpha", "0"], "lora_alpha must be > 0"),
    ],
)
def test_bad_option_values_are_errors_naming_the_option(flags, message):
    with pytest.raises(ValueError, match=message):
        parse_sft_args(["--output_dir", "o", "--bf16", "false", *flags])
