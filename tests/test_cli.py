"""The `lcrec` command: every command's options (dataclasses, help, defaults), presets by name, one-line errors."""

import argparse
import dataclasses
import importlib.metadata
import re

import pytest

from lcrec import cli
from lcrec.cli import COMMANDS, command_module, main

# Commands whose options are dataclasses parsed with one parser (push has a parser per kind: tested below).
SINGLE_PARSER_COMMANDS = [name for name in COMMANDS if name != "push"]


def flat(text: str) -> str:
    return " ".join(text.split())


def command_parser(name: str):
    return command_module(name).make_parser(prog=f"lcrec {name}")


def own_fields(dataclass_types):
    """(field, dataclass) of lcrec's own option dataclasses (TRL's and transformers' are theirs)."""
    for dtype in dataclass_types:
        if dtype.__module__.startswith("lcrec."):
            for field in dataclasses.fields(dtype):
                if field.init and field.metadata.get("help") != argparse.SUPPRESS:
                    yield field, dtype


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", out, re.MULTILINE), name
        assert flat(command_module(name).HELP)[:40] in flat(out)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lcrec {importlib.metadata.version('lcrec')}"


def assert_help_documents(help_text: str, dataclass_types) -> None:
    """Every option of lcrec's dataclasses appears in `help_text` with its help and then its default (or required)."""
    text = flat(help_text)
    checked = 0
    for field, dtype in own_fields(dataclass_types):
        help_text = flat(field.metadata.get("help") or "")
        assert help_text, f"{dtype.__name__}.{field.name} has no help"
        assert f"--{field.name}" in text, field.name
        assert help_text in text, field.name
        tail = text[text.index(help_text) + len(help_text) :].lstrip()
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert tail.startswith("(required)"), field.name
        elif "None:" in help_text:  # a None default that the help already explains
            assert field.default is None, field.name
        else:
            default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
            assert tail.startswith(f"(default: {default})"), f"--{field.name}: {tail[:60]}"
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", SINGLE_PARSER_COMMANDS)
def test_help_shows_every_option_with_its_help_and_default(name):
    parser = command_parser(name)
    assert_help_documents(parser.format_help(), parser.dataclass_types)


@pytest.mark.parametrize("kind", ["dataset", "model"])
def test_push_kinds_show_every_option_with_its_help_and_default(kind, capsys):
    from lcrec.commands import push

    with pytest.raises(SystemExit) as exit_info:
        main(["push", kind, "--help"])
    assert exit_info.value.code == 0
    assert_help_documents(capsys.readouterr().out, (push.KINDS[kind], push.PushTargetArguments))


@pytest.mark.parametrize("name", SINGLE_PARSER_COMMANDS)
def test_help_exits_cleanly_from_main(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: lcrec {name}" in capsys.readouterr().out


def parse(name: str, argv: list[str]):
    return command_parser(name).parse_args_into_dataclasses(argv, look_for_args_file=False)


def test_evaluate_parses_into_its_dataclasses():
    arguments, config = parse(
        "evaluate", ["--model", "m", "--data", "d", "--split", "valid", "--templates", "all", "--num-beams", "30"]
    )
    assert (arguments.model, arguments.data, arguments.out) == ("m", "d", None)
    assert type(config).__name__ == "EvaluationConfig"
    assert (config.split, config.templates, config.num_beams, config.max_users) == ("validation", "all", 30, None)
    with pytest.raises(ValueError, match="num_beams \\(5\\) is smaller than the largest cut-off K=10"):
        parse("evaluate", ["--model", "m", "--data", "d", "--num_beams", "5"])
    with pytest.raises(ValueError, match="split must be one of test, validation"):
        parse("evaluate", ["--model", "m", "--data", "d", "--split", "train"])


def test_index_parses_the_rqvae_configs():
    arguments, config, training = parse(
        "index",
        [
            "--data",
            "d",
            "--out",
            "o",
            "--codebook_sizes",
            "8",
            "8",
            "--sinkhorn_levels",
            "-1",
            "--epochs",
            "3",
            "--no_kmeans_init",
        ],
    )
    assert (arguments.encoder, arguments.fields, arguments.embedding_mode) == (
        "minilm",
        ["title", "description"],
        "paper",
    )
    assert config.codebook_sizes == [8, 8] and config.levels == 2 and config.kmeans_init is False
    assert training.epochs == 3 and training.device == "auto"
    with pytest.raises(ValueError, match="embedding_mode must be one of paper, concat"):
        parse("index", ["--data", "d", "--out", "o", "--embedding_mode", "mean"])
    with pytest.raises(ValueError, match="sinkhorn_levels: level 2 does not exist with 2 levels"):
        parse("index", ["--data", "d", "--out", "o", "--codebook_sizes", "8", "8", "--sinkhorn_levels", "2"])


def test_baseline_parses_users_and_sasrec_config():
    arguments, users, config = parse(
        "baseline", ["--model", "sasrec", "--data", "d", "--loss", "bce", "--max_users", "7", "--max-seconds", "9"]
    )
    assert arguments.model == "sasrec" and users.max_users == 7 and users.split == "test"
    assert config.loss == "bce" and config.max_seconds == 9.0 and config.num_items == 0
    with pytest.raises(SystemExit):
        parse("baseline", ["--model", "bpr", "--data", "d"])


def test_prepare_tasks_augment_recommend_parse():
    (prepare,) = parse(
        "prepare", ["--source", "ml-100k", "--out", "o", "--meta", "a.json", "b.json", "--on_bad", "drop"]
    )
    assert prepare.meta == ["a.json", "b.json"] and prepare.on_bad == "drop" and prepare.max_text_length == 2000
    (tasks,) = parse(
        "tasks",
        ["--data", "d", "--index", "i", "--out", "o", "--samples", "seqrec=5", "--tasks", "seqrec", "item2index"],
    )
    assert tasks.sample_caps() == {"seqrec": 5} and tasks.tasks == ["seqrec", "item2index"] and tasks.max_history == 20
    with pytest.raises(ValueError, match="expected TASK=COUNT"):
        parse("tasks", ["--data", "d", "--index", "i", "--out", "o", "--samples", "seqrec=0"])
    (augment,) = parse("augment", ["--data", "d", "--out", "u.jsonl", "--max_users", "4"])
    assert augment.model is None and augment.max_users == 4 and augment.batch_size == 8
    (recommend,) = parse("recommend", ["--model", "m", "--history", "1", "2", "3", "--top_k", "5"])
    assert recommend.history == [1, 2, 3] and recommend.num_beams is None and recommend.template == 0
    with pytest.raises(ValueError, match="num_beams \\(3\\) must be at least top_k \\(5\\)"):
        parse("recommend", ["--model", "m", "--history", "1", "--top_k", "5", "--num_beams", "3"])


def test_quickstart_parses_options_and_evaluation():
    options, evaluation = parse(
        "quickstart", ["--config", "ml-100k-cpu", "--max_steps", "10", "--split", "validation", "--no_baselines"]
    )
    assert options.preset == "ml-100k-cpu" and options.max_steps == 10 and options.baselines is False
    assert evaluation.split == "validation" and evaluation.templates == "0"


def test_train_reads_a_preset_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = command_parser("train")
    assert "--config CONFIG" in parser.format_help() and "ml-100k-cpu" in flat(parser.format_help())
    data, model, lora, training, extra = parser.parse_args_and_config(["--config", "ml-100k-cpu", "--max_steps", "7"])
    assert data.tasks == ["sequence", "item2index", "index2item"] and data.validation_samples == 300
    assert model.base_model == "scratch" and training.max_steps == 7 and training.learning_rate == 3e-3


def test_presets_resolve_by_name_or_path(tmp_path, monkeypatch):
    from lcrec.presets import list_presets, resolve_preset

    monkeypatch.chdir(tmp_path)
    assert {"ml-100k-cpu", "scientific-cpu", "ml-100k-smollm2-cpu"} <= set(list_presets())
    packaged = resolve_preset("ml-100k-cpu")
    assert packaged.is_file() and packaged.parent.name == "presets" and resolve_preset("ml-100k-cpu.yaml") == packaged
    own = tmp_path / "mine.yaml"
    own.write_text("max_steps: 3\n")
    assert resolve_preset(str(own)) == own and resolve_preset("mine.yaml").resolve() == own
    with pytest.raises(FileNotFoundError, match="did you mean the preset name 'ml-100k-cpu'"):
        resolve_preset("recipes/configs/ml-100k-cpu.yaml")
    with pytest.raises(FileNotFoundError, match="presets: .*ml-100k-cpu"):
        resolve_preset("nope")
    with pytest.raises(IsADirectoryError):
        resolve_preset(str(tmp_path))


def test_recipes_configs_link_to_the_packaged_presets():
    from pathlib import Path

    from lcrec.presets import list_presets, preset_dir

    configs = Path(__file__).resolve().parents[1] / "recipes" / "configs"
    for name in list_presets():
        link = configs / f"{name}.yaml"
        assert link.is_symlink() and link.resolve() == (preset_dir() / f"{name}.yaml").resolve(), name


# --- errors: one line `lcrec CMD: error: ...`, exit code 2; -v shows the traceback ---------------------------------


def run_main(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_missing_model_folder_is_one_line(tmp_path, capsys):
    code, err = run_main(["evaluate", "--model", str(tmp_path / "nonexistent"), "--data", str(tmp_path)], capsys)
    assert code == 2 and err == [f"lcrec evaluate: error: --model {tmp_path / 'nonexistent'}: no such folder"]
    with pytest.raises(FileNotFoundError):
        main(["evaluate", "--model", str(tmp_path / "nonexistent"), "--data", str(tmp_path), "-v"])
    with pytest.raises(FileNotFoundError):
        main(["-v", "evaluate", "--model", str(tmp_path / "nonexistent"), "--data", str(tmp_path)])


def test_a_folder_that_is_not_a_model(tmp_path, capsys):
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "dataset_dict.json").write_text("{}")
    code, err = run_main(["recommend", "--model", str(dataset), "--history", "1"], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].endswith(
        "not a model folder (no config.json or adapter_config.json); it is a prepared dataset or task mix folder"
    )
    (tmp_path / "empty").mkdir()
    code, err = run_main(["recommend", "--model", str(tmp_path / "empty"), "--history", "1"], capsys)
    assert code == 2 and err[0].endswith("(the folder is empty)")
    (tmp_path / "file.bin").write_text("x")
    code, err = run_main(["recommend", "--model", str(tmp_path / "file.bin"), "--history", "1"], capsys)
    assert code == 2 and "is a file, expected a model folder or a Hub repo id" in err[0]


def test_hub_id_that_cannot_be_resolved_offline(capsys):
    code, err = run_main(["recommend", "--model", "someone/not-cached-model", "--history", "1"], capsys)
    assert code == 2 and len(err) == 1
    assert "not in the local cache while the Hub is offline (HF_HUB_OFFLINE=1)" in err[0]
    code, err = run_main(["recommend", "--model", "bad repo id!", "--history", "1"], capsys)
    assert code == 2 and err[0].endswith("no such folder, and not a valid Hub repo id")


def test_unavailable_device_and_folder_given_for_a_file(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    code, err = run_main(
        ["augment", "--data", str(tmp_path), "--out", str(tmp_path / "u.jsonl"), "--device", "cuda"], capsys
    )
    assert code == 2 and len(err) == 1 and err[0].startswith("lcrec augment: error: --device cuda: ")
    code, err = run_main(["augment", "--data", str(tmp_path), "--out", str(tmp_path), "--device", "cpu"], capsys)
    assert code == 2 and err == [f"lcrec augment: error: {tmp_path}: is a folder; give the path of a file to write"]


def test_unwritable_output_refused_before_the_work(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "mix"
    code, err = run_main(
        ["tasks", "--data", str(tmp_path / "d"), "--index", str(tmp_path / "i"), "--out", str(out)], capsys
    )
    assert code == 2 and len(err) == 1 and "a-file is a file" in err[0]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, err = run_main(
        ["tasks", "--data", str(tmp_path / "d"), "--index", str(tmp_path / "i"), "--out", str(foreign)], capsys
    )
    assert code == 2 and "pass --overwrite" in err[0] and (foreign / "notes.txt").read_text() == "mine"


def test_missing_optional_dependency_names_the_extra(monkeypatch, capsys):
    from lcrec.commands import recommend

    def missing_gradio(arguments):
        raise ModuleNotFoundError("No module named 'gradio'", name="gradio")

    monkeypatch.setattr(recommend, "run", missing_gradio)
    code, err = run_main(["recommend", "--model", "m", "--history", "1"], capsys)
    assert code == 2
    assert err == ["lcrec recommend: error: this needs the optional dependency 'gradio': pip install \"lcrec[serve]\""]


def test_bugs_keep_their_traceback(monkeypatch):
    from lcrec.commands import recommend

    def broken(arguments):
        raise TypeError("a bug")

    monkeypatch.setattr(recommend, "run", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["recommend", "--model", "m", "--history", "1"])

    def broken_import(arguments):
        raise ImportError("cannot import name 'x' from 'lcrec.nothing'", name="lcrec.nothing")

    monkeypatch.setattr(recommend, "run", broken_import)
    with pytest.raises(ImportError):
        main(["recommend", "--model", "m", "--history", "1"])


def test_interrupt_exits_130(monkeypatch, capsys):
    from lcrec.commands import recommend

    def interrupted(arguments):
        raise KeyboardInterrupt

    monkeypatch.setattr(recommend, "run", interrupted)
    code, err = run_main(["recommend", "--model", "m", "--history", "1"], capsys)
    assert code == 130 and err == ["lcrec recommend: interrupted"]


def test_option_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--bogus", "evaluate", "--model", "m", "--data", "d"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "m", "--data", "d", "--bogus"])
    assert (
        exit_info.value.code == 2
        and "lcrec evaluate: error: unrecognized arguments: --bogus" in capsys.readouterr().err
    )
    code, err = run_main(["evaluate", "--model", "m", "--data", "d", "--num_beams", "5"], capsys)
    assert code == 2 and err == [
        "lcrec evaluate: error: num_beams (5) is smaller than the largest cut-off K=10: "
        "the top-10 needs at least 10 beams"
    ]


def test_command_line_is_recorded(monkeypatch):
    from lcrec import commands
    from lcrec.commands import recommend

    seen = []
    monkeypatch.setattr(recommend, "run", lambda arguments: seen.append(commands.command_line()) or 0)
    assert main(["recommend", "--model", "my model", "--history", "1"]) == 0
    assert seen == ["lcrec recommend --model 'my model' --history 1"]


def test_logging_is_quiet_for_other_libraries(capsys):
    import logging

    cli.configure_logging(verbose=False)
    logging.getLogger("httpx").info("HTTP Request: GET https://example")
    logging.getLogger("lcrec.test").info("lcrec progress")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("lcrec.test").isEnabledFor(logging.INFO)
    cli.configure_logging(verbose=True)
    assert logging.getLogger("httpx").isEnabledFor(logging.INFO) and logging.getLogger("lcrec").isEnabledFor(
        logging.DEBUG
    )
    cli.configure_logging(verbose=False)


@pytest.mark.parametrize("name", COMMANDS)
def test_make_parser_also_builds_a_subparser(name):
    """TRL's `make_parser(subparsers)`: the command can be embedded in another program's parser."""
    from transformers import HfArgumentParser

    host = argparse.ArgumentParser(prog="host")
    subparsers = host.add_subparsers(dest="command", parser_class=HfArgumentParser)
    parser = command_module(name).make_parser(subparsers)
    assert parser.prog == f"host {name}" and subparsers.choices[name] is parser
    assert "usage: host " + name in parser.format_help()
