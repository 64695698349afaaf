"""lcrec as a pip user gets it: the built wheel, installed into a fresh virtualenv, run outside the checkout.

1. Build the wheel from a copy of the sources (the checkout is left untouched) and check it ships every file lcrec
   reads from its own folder: presets, card templates, task templates.
2. Install it into a fresh virtualenv `user` (with pip, `--no-index`: nothing is downloaded) with its `serve` and
   `gguf` extras. Its dependencies are this test environment's packages, seen through a `.pth` line naming this
   environment's site-packages: a `.pth` inside a folder added that way is not processed, so the editable lcrec of the
   checkout stays invisible and `import lcrec` is the wheel's.
3. From a folder outside the checkout: a tiny `lcrec quickstart` (few steps, few users, no baselines, a 5-second
   SASRec teacher), then `lcrec push model` to the local test Hub (tests/hub_server.py).
4. In a second fresh virtualenv `bare` that has transformers and torch but not lcrec: load the pushed repo with
   `trust_remote_code=True` and recommend; the ranking must be the one `user` gets from its local folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from hub_server import running_hub
from venvs import bare_venv, share_site_packages

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_lcrecWheelTestToken0123456789"
STEP_TIMEOUT = 600
# The preset distils: its SASRec teacher is trained even without baselines, here for 5 seconds.
QUICKSTART = ["--max_steps", "30", "--max_users", "30", "--index_epochs", "3", "--no_baselines", "--examples", "0"]
QUICKSTART += ["--sasrec_seconds", "5"]
PACKAGE_DATA = (
    "lcrec/presets/ml-100k-cpu.yaml",
    "lcrec/cards/templates/model_card.md.j2",
    "lcrec/cards/templates/dataset_card.md.j2",
    "lcrec/tasks/templates/seqrec.json",
)

# argv: model folder or repo id, JSON histories, "package" (import lcrec) or "remote" (trust_remote_code, no lcrec).
RANK_SCRIPT = """
import json, sys
from transformers import AutoModelForCausalLM
name, histories, mode = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
if mode == "package":
    import lcrec  # registers the lcrec model type with the Auto classes
model = AutoModelForCausalLM.from_pretrained(name, trust_remote_code=mode == "remote")
print(json.dumps({"module": type(model).__module__, "ranked": model.recommend(histories, top_k=10)}))
"""


def _run(command: list, cwd: Path, env: dict, what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def _fresh_venv(folder: Path, shared_site_packages: list[str], wheel: Path | None = None) -> Path:
    """A virtualenv without pip (optionally with `wheel` installed, no dependencies) whose interpreter then also sees
    `shared_site_packages` as plain sys.path entries; returns its python.

    The `.pth` line is written after the install, so pip never sees the checkout's editable lcrec there.
    """
    python = bare_venv(folder, timeout=STEP_TIMEOUT)
    if wheel is not None:
        _run([*_pip_install(python), "--no-deps", wheel], folder, _clean_env(), "installing the wheel")
    share_site_packages(python, shared_site_packages, "_lcrec_test_shared_site.pth")
    return python


def _pip_install(python: Path) -> list:
    """This environment's pip installing into the virtualenv of `python`, from local files only."""
    return [sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "-q"]


def _clean_env(**extra: str) -> dict:
    """No variables that would point Python or Hugging Face at the checkout or this test session."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith(("HF_", "HUGGINGFACE_"))
    }
    env.update(HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", **extra)
    return env


def test_wheel_installs_runs_the_quickstart_pushes_and_loads_without_lcrec(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("the test Hub stores repos with the git command-line tool, which is not installed")
    # 1. the wheel, built from a copy of the sources
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            dist,
            source,
        ],
        tmp_path,
        _clean_env(),
        "building the wheel",
    )
    (wheel,) = dist.glob("lcrec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names, sorted(set(PACKAGE_DATA) - names)

    # 2. a fresh virtualenv with the wheel and its extras (dependencies resolved from this environment's packages)
    shared = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    user = tmp_path / "user"
    user_python = _fresh_venv(user, shared, wheel)
    _run(
        [*_pip_install(user_python), "--find-links", dist, "lcrec[serve,gguf]"],
        tmp_path,
        _clean_env(),
        "resolving the wheel's extras",
    )
    where = _run(
        [user_python, "-c", "import lcrec; print(lcrec.__file__)"], tmp_path, _clean_env(), "import lcrec"
    ).stdout.strip()
    assert Path(where).is_relative_to(user), where  # the wheel's lcrec, not the checkout's
    version = _run([user / "bin" / "lcrec", "--version"], tmp_path, _clean_env(), "lcrec --version").stdout.strip()
    assert version == f"lcrec {wheel.name.split('-')[1]}", version

    # 3. quickstart and push, from a folder outside the checkout
    work = tmp_path / "work"
    work.mkdir()
    offline = _clean_env(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    _run([user / "bin" / "lcrec", "quickstart", "--out", "qs", *QUICKSTART], work, offline, "lcrec quickstart")
    model_dir = work / "qs" / "model"
    card = (model_dir / "README.md").read_text()
    assert "# model" in card and "## Evaluation" in card and "fine-tuned version of" not in card  # lcrec's card
    with running_hub(tmp_path / "hub", TOKEN, tmp_path / "hub.log") as hub_url:
        online = _clean_env(HF_ENDPOINT=hub_url, HF_TOKEN=TOKEN, HF_HOME=str(tmp_path / "push-home"))
        pushed = _run(
            [user / "bin" / "lcrec", "push", "model", "--model", "qs/model", "--repo_id", "tester/qs-model"],
            work,
            online,
            "lcrec push model",
        )
        assert "httpx" not in pushed.stderr and "HTTP Request" not in pushed.stderr

        # 4. the same recommendations from the pushed repo where lcrec is not installed
        histories = json.loads(
            _run(
                [
                    user_python,
                    "-c",
                    (
                        "import json, sys; from lcrec.data import load_prepared; "
                        "print(json.dumps(load_prepared(sys.argv[1])['test'].select(range(5)).to_dict()['history']))"
                    ),
                    work / "qs" / "data",
                ],
                work,
                offline,
                "reading test histories",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        local = json.loads(
            _run(
                [user_python, "-c", RANK_SCRIPT, model_dir, json.dumps(histories), "package"],
                work,
                offline,
                "local ranking",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        bare_python = _fresh_venv(tmp_path / "bare", shared)
        bare_env = _clean_env(HF_ENDPOINT=hub_url, HF_HOME=str(tmp_path / "bare-home"))
        missing = _run(
            [bare_python, "-c", "import importlib.util; print(importlib.util.find_spec('lcrec') is None)"],
            work,
            bare_env,
            "checking lcrec is absent",
        )
        assert missing.stdout.strip() == "True"
        remote = json.loads(
            _run(
                [bare_python, "-c", RANK_SCRIPT, "tester/qs-model", json.dumps(histories), "remote"],
                work,
                bare_env,
                "loading the pushed repo with trust_remote_code",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    assert "transformers_modules" in remote["module"] and local["module"].startswith("lcrec.")
    assert [[item for item, _ in ranked] for ranked in remote["ranked"]] == [
        [item for item, _ in ranked] for ranked in local["ranked"]
    ]
    for remote_ranked, local_ranked in zip(remote["ranked"], local["ranked"]):
        assert [score for _, score in remote_ranked] == pytest.approx([score for _, score in local_ranked], abs=1e-5)
