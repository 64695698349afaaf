"""`lcrec demo`: the Gradio page driven in headless Chromium, and the Hub Space files that run it as is."""

from __future__ import annotations

import os
import runpy
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lcrec.serving import Recommender, ServeConfig, write_space_files  # noqa: E402
from lcrec.serving.browser import CHROMIUM  # noqa: E402

ARTIFACTS = Path(os.environ.get("LCREC_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
METRICS = {"HR@5": 0.25, "NDCG@10": 0.125, "num_users": 8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def recommender(lcrec_model):
    return Recommender(lcrec_model, lcrec_model.tokenizer, config=ServeConfig(max_top_k=8, max_num_beams=8, default_top_k=5), metrics=METRICS, name="tiny-lcrec")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium)")
def test_demo_in_headless_chromium(recommender):
    """Search 'microscope', add the first hit, ask for recommendations: the page shows the model's ranking."""
    from playwright.sync_api import expect

    from lcrec.serving.browser import chromium_page, recommend_in_page
    from lcrec.serving.demo import build_demo

    expected = recommender.recommend([[0]], top_k=5)[0]
    demo = build_demo(recommender)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    screenshot = ARTIFACTS / "demo.png"
    try:
        with chromium_page() as page:
            assert recommend_in_page(page, demo.local_url, "microscope") == ["red microscope 0 (#0)"]
            expect(page.locator("#history")).to_contain_text("red microscope 0")
            table = page.locator("#recommendations")
            for item in expected:
                expect(table).to_contain_text(item.title)
            expect(page.locator("#status")).to_contain_text("Top 5 items for a history of 1")
            expect(page.locator("#metrics")).to_contain_text("HR@5")
            expect(page.locator("#metrics")).to_contain_text("0.2500")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        demo.close()
    print(f"demo screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000


def test_space_app_builds_the_demo_from_the_model_folder(lcrec_model, tmp_path, monkeypatch):
    """The written app.py runs as is: pointed at a saved model (LCREC_MODEL), it builds the Blocks without launching."""
    import gradio as gr

    model_dir = tmp_path / "model"
    lcrec_model.save_pretrained(model_dir)
    (model_dir / "metrics.json").write_text('{"HR@10": 0.5}')
    written = write_space_files(tmp_path / "space", "org/lcrec-tiny", requirement="lcrec[serve] @ git+https://example.org/lcrec.git")
    assert sorted(path.name for path in written) == ["README.md", "app.py", "requirements.txt"]
    readme = (tmp_path / "space" / "README.md").read_text()
    assert "sdk: gradio" in readme and f"sdk_version: {gr.__version__}" in readme and "- org/lcrec-tiny" in readme
    assert (tmp_path / "space" / "requirements.txt").read_text() == "lcrec[serve] @ git+https://example.org/lcrec.git\n"
    assert "'org/lcrec-tiny'" in (tmp_path / "space" / "app.py").read_text()

    monkeypatch.setenv("LCREC_MODEL", str(model_dir))
    namespace = runpy.run_path(str(tmp_path / "space" / "app.py"), run_name="space_app")
    demo = namespace["demo"]
    assert isinstance(demo, gr.Blocks)
    texts = " ".join(str(getattr(block, "value", "")) for block in demo.blocks.values())
    assert "HR@10" in texts and "40 items" in texts


def test_space_files_refuse_a_bad_repo_id(tmp_path):
    with pytest.raises(ValueError, match="repo id"):
        write_space_files(tmp_path, " org/x")
    assert not any(tmp_path.iterdir())


def test_demo_cli_writes_space_files(tmp_path):
    from lcrec.cli import main

    assert main(["demo", "--model", "org/lcrec-tiny", "--space-dir", str(tmp_path)]) == 0
    assert (tmp_path / "app.py").is_file() and (tmp_path / "requirements.txt").read_text().startswith("lcrec[serve]")


def test_metrics_come_from_the_folder_its_parent_or_the_model_card(tmp_path):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from lcrec.serving.recommender import find_model_metrics, format_metrics

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    assert find_model_metrics(str(model_dir)) is None
    assert "No evaluation metrics" in format_metrics(None)

    result = EvalResult(task_type="recommendation", dataset_type="ml-100k", dataset_name="MovieLens-100K", metric_type="hr@10", metric_name="HR@10", metric_value=0.0625)
    ModelCard.from_template(ModelCardData(model_name="tiny", eval_results=[result])).save(model_dir / "README.md")
    assert find_model_metrics(str(model_dir)) == {"HR@10": 0.0625}

    (tmp_path / "run" / "metrics.json").write_text('{"HR@10": 0.25, "NDCG@10": 0.125, "per_template": {"0": {}}, "method": "lcrec", "num_users": 9}')
    metrics = find_model_metrics(str(model_dir))
    assert metrics["HR@10"] == 0.25
    assert format_metrics(metrics).splitlines()[2:] == ["| HR@10 | 0.2500 |", "| NDCG@10 | 0.1250 |", "| num_users | 9 |"]
