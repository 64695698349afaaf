"""`lcrec quickstart` wiring: flags, the preset lookup, and errors before any heavy stage starts."""

import argparse

import pytest

from lcrec.commands.quickstart import _users
from lcrec.evaluation.pipeline import PRESET, PipelineOptions, resolve_preset, run_pipeline


def test_eval_users_flag():
    assert _users("all") is None and _users("150") == 150
    with pytest.raises(argparse.ArgumentTypeError, match="positive number"):
        _users("0")


def test_preset_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_preset(PRESET).name == "ml-100k-cpu.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml not found"):
        resolve_preset("recipes/configs/nope.yaml")


def test_missing_preset_fails_before_any_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        run_pipeline(PipelineOptions(out=str(tmp_path / "run"), config=str(tmp_path / "missing.yaml")))
    assert not (tmp_path / "run").exists()
