"""Every recipe config parses (SFT YAMLs through the recipe's TrlParser, accelerate YAMLs through accelerate)."""

from pathlib import Path

import pytest
import yaml

from lcrec.training import parse_sft_args

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SFT_CONFIGS = sorted((RECIPES / "configs").glob("*.yaml"))
ACCELERATE_CONFIGS = sorted((RECIPES / "accelerate").glob("*.yaml"))


def test_the_expected_configs_exist():
    names = {path.stem for path in SFT_CONFIGS}
    assert {"ml-100k-cpu", "ml-100k-smollm2-cpu", "scientific-cpu", "instruments", "arts", "games", "beauty"} <= names
    assert {path.stem for path in ACCELERATE_CONFIGS} == {"single_gpu", "multi_gpu", "deepspeed_zero3", "fsdp"}


@pytest.mark.parametrize("path", SFT_CONFIGS, ids=lambda path: path.stem)
def test_sft_config_parses(path):
    gpu = yaml.safe_load(path.read_text())["bf16"]
    # bf16 configs target GPUs; TrainingArguments refuses bf16 on a CPU-only machine, so parse those with it off.
    overrides = ["--bf16", "false"] if gpu else []
    data, model, lora, training = parse_sft_args(["--config", str(path), *overrides])
    assert data.dataset_dir and data.index_dir
    assert training.output_dir
    assert training.metric_for_best_model == "eval_loss" and training.load_best_model_at_end
    if gpu:  # paper scale: global batch 128 on 8 GPUs, lr 5e-5, cosine, 1 % warmup, 4 epochs
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps * 8 == 128
        assert training.learning_rate == 5e-5 and training.lr_scheduler_type == "cosine"
        assert training.warmup_steps == 0.01 and training.num_train_epochs == 4
        assert not lora.use_lora and model.torch_dtype == "bfloat16"


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda path: path.stem)
def test_accelerate_config_parses(path):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(path))  # raises on unknown keys
    assert config.mixed_precision == "bf16"


def test_unknown_config_key_is_an_error_naming_it(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("dataset_dir: d\nindex_dir: i\noutput_dir: o\nbf16: false\nlerning_rate: 0.1\n")
    with pytest.raises(ValueError, match="lerning_rate"):
        parse_sft_args(["--config", str(config)])


def test_unknown_command_line_flag_is_an_error_naming_it():
    with pytest.raises(ValueError, match="--lora_rank"):
        parse_sft_args(["--output_dir", "o", "--bf16", "false", "--lora_rank", "4"])


def test_bad_option_values_are_errors():
    with pytest.raises(ValueError, match="unknown task"):
        parse_sft_args(["--output_dir", "o", "--bf16", "false", "--tasks", "seqrec", "itemsaerch"])
    with pytest.raises(ValueError, match="lm_head"):
        parse_sft_args(["--output_dir", "o", "--bf16", "false", "--lora_target_modules", "q_proj", "lm_head"])
