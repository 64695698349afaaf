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
    return Recommender(
        lcrec_model,
        lcrec_model.tokenizer,
        config=ServeConfig(max_top_k=8, max_num_beams=8, default_top_k=5),
        metrics=METRICS,
        name="tiny-lcrec",
    )


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
    """The written app.py runs as is: pointed at a saved model (LCREC_MODEL) it builds the Blocks without launching."""
    import gradio as gr

    model_dir = tmp_path / "model"
    lcrec_model.save_pretrained(model_dir)
    (model_dir / "metrics.json").write_text('{"HR@10": 0.5}')
    written = write_space_files(
        tmp_path / "space", "org/lcrec-tiny", requirement="lcrec[serve] @ git+https://example.org/lcrec.git"
    )
    assert sorted(path.name for path in written) == ["README.md", "app.py", "requirements.txt"]
    readme = (tmp_path / "space" / "README.md").read_text()
    assert "sdk: gradio" in readme and f"sdk_version: {gr.__version__}" in readme and "- org/lcrec-tiny" in readme
    assert (
        tmp_path / "space" / "requirements.txt"
    ).read_text() == "lcrec[serve] @ git+https://example.org/lcrec.git\n"
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


def test_demo_cli_writes_space_files(tmp_path, capsys):
    from lcrec.cli import main

    space = tmp_path / "space"
    assert main(["demo", "--model", "org/lcrec-tiny", "--space-dir", str(space)]) == 0
    assert (space / "app.py").is_file() and (space / "requirements.txt").read_text().startswith("lcrec[serve]")
    assert "LCREC_API_KEY" in (space / "app.py").read_text()  # a Space secret puts a login in front
    assert main(["demo", "--model", "org/lcrec-other", "--space_dir", str(space)]) == 0  # its own output: rewritten
    assert "'org/lcrec-other'" in (space / "app.py").read_text()

    clone = tmp_path / "clone"  # e.g. a git clone of an existing Space: refused unless --overwrite, never emptied
    clone.mkdir()
    (clone / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["demo", "--model", "org/lcrec-tiny", "--space_dir", str(clone)]) == 2
    assert "--overwrite" in capsys.readouterr().err and not (clone / "app.py").exists()
    assert main(["demo", "--model", "org/lcrec-tiny", "--space_dir", str(clone), "--overwrite"]) == 0
    assert (clone / "notes.txt").read_text() == "keep me" and (clone / "app.py").is_file()


def test_demo_cli_checks_the_screenshot_path_before_loading(lcrec_model, tmp_path, capsys):
    from lcrec.cli import main

    model_dir = tmp_path / "model"
    lcrec_model.save_pretrained(model_dir)
    assert main(["demo", "--model", str(model_dir), "--screenshot", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["demo", "--model", str(model_dir), "--screenshot", "x.png", "--space_dir", str(tmp_path / "s")]) == 2
    assert "not both" in capsys.readouterr().err
    picture = tmp_path / "holiday.png"
    picture.write_bytes(b"\x89PNG not ours")
    assert main(["demo", "--model", str(model_dir), "--screenshot", str(picture)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and picture.read_bytes() == b"\x89PNG not ours"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium)")
def test_demo_cli_screenshot(lcrec_model, tmp_path, monkeypatch, capsys):
    """`lcrec demo --screenshot` end to end: the page in headless Chromium, two picks, a PNG written atomically."""
    from lcrec.cli import main

    monkeypatch.setenv("LCREC_DEMO_AUTH", "alice:s3cret-pass")  # a login never blocks the loopback screenshot
    model_dir = tmp_path / "model"
    lcrec_model.save_pretrained(model_dir)
    png = tmp_path / "shots" / "demo.png"
    argv = ["demo", "--model", str(model_dir), "--screenshot", str(png), "--query", "red", "--picks", "2"]
    assert main([*argv, "--port", str(free_port()), "--threads", "1"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    assert [path.name for path in png.parent.iterdir()] == ["demo.png"]
    assert "history: red microscope 0 (#0); red" in capsys.readouterr().out


def test_metrics_come_from_the_folder_its_parent_or_the_model_card(tmp_path):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from lcrec.serving.recommender import find_model_metrics, format_metrics

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    assert find_model_metrics(str(model_dir)) is None
    assert "No evaluation metrics" in format_metrics(None)

    result = EvalResult(
        task_type="recommendation",
        dataset_type="ml-100k",
        dataset_name="MovieLens-100K",
        metric_type="hr@10",
        metric_name="HR@10",
        metric_value=0.0625,
    )
    ModelCard.from_template(ModelCardData(model_name="tiny", eval_results=[result])).save(model_dir / "README.md")
    assert find_model_metrics(str(model_dir)) == {"HR@10": 0.0625}

    (tmp_path / "run" / "metrics.json").write_text(
        '{"HR@10": 0.25, "NDCG@10": 0.125, "per_template": {"0": {}}, "method": "lcrec", "num_users": 9}'
    )
    metrics = find_model_metrics(str(model_dir))
    assert metrics["HR@10"] == 0.25
    assert format_metrics(metrics).splitlines()[2:] == [
        "| HR@10 | 0.2500 |",
        "| NDCG@10 | 0.1250 |",
        "| num_users | 9 |",
    ]


DEMO_KEY = "demo-key-0123456789abcdef"


@pytest.mark.parametrize("mode", ["api_key", "user_password"])
def test_demo_login_over_http(recommender, mode):
    """With a key or USER:PASSWORD the page and Gradio's API answer 401 until a login; wrong logins are refused."""
    import httpx

    from lcrec.serving.auth import gradio_login
    from lcrec.serving.demo import build_demo

    if mode == "api_key":
        login, good = gradio_login(DEMO_KEY, None), {"username": "anyone", "password": DEMO_KEY}
        bad = [{"username": "anyone", "password": DEMO_KEY + "x"}, {"username": "anyone", "password": DEMO_KEY[:-1]}]
    else:
        login, good = gradio_login(None, ("alice", "s3cret-pass")), {"username": "alice", "password": "s3cret-pass"}
        bad = [{"username": "bob", "password": "s3cret-pass"}, {"username": "alice", "password": "s3cret-pasS"}]
    demo = build_demo(recommender)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, auth=login)
    try:
        url = demo.local_url.rstrip("/")
        with httpx.Client(timeout=30) as client:
            assert client.get(f"{url}/config").status_code == 401
            assert client.get(f"{url}/gradio_api/info").status_code == 401
            for credentials in bad:
                assert client.post(f"{url}/login", data=credentials).status_code == 400, credentials
            assert client.get(f"{url}/config").status_code == 401
            assert client.post(f"{url}/login", data=good).status_code == 200
            config = client.get(f"{url}/config")
            assert config.status_code == 200 and config.json()["components"]
            assert client.get(f"{url}/gradio_api/info").status_code == 200
    finally:
        demo.close()


def test_demo_command_takes_the_login_from_the_environment(lcrec_model, tmp_path):
    """`lcrec demo` as a user starts it, with LCREC_DEMO_AUTH set: the page needs that login."""
    import subprocess
    import sys
    import time

    import httpx

    model_dir = tmp_path / "model"
    lcrec_model.save_pretrained(model_dir)
    port = free_port()
    environment = {**os.environ, "LCREC_DEMO_AUTH": "alice:s3cret-pass", "OMP_NUM_THREADS": "1"}
    environment.pop("LCREC_API_KEY", None)
    command = [
        sys.executable,
        "-m",
        "lcrec.cli",
        "demo",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--threads",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                first = httpx.get(f"{url}/config", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "lcrec demo did not start listening"
                time.sleep(0.3)
        assert first.status_code == 401
        with httpx.Client(timeout=30) as client:
            assert client.post(f"{url}/login", data={"username": "alice", "password": "wrong"}).status_code == 400
            assert (
                client.post(f"{url}/login", data={"username": "alice", "password": "s3cret-pass"}).status_code == 200
            )
            assert client.get(f"{url}/config").status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def test_demo_login_options_are_checked(monkeypatch):
    from lcrec.serving.auth import DEMO_AUTH_ENV, gradio_login, resolve_demo_login

    monkeypatch.delenv(DEMO_AUTH_ENV, raising=False)
    assert resolve_demo_login(None) is None and gradio_login(None, None) is None
    assert resolve_demo_login("alice:pa:ss") == ("alice", "pa:ss")
    monkeypatch.setenv(DEMO_AUTH_ENV, "bob:pw")
    assert resolve_demo_login(None) == ("bob", "pw")
    for bad in ("alice", "alice:", ":pw", " :pw"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            resolve_demo_login(bad)
    with pytest.raises(ValueError, match="not both"):
        gradio_login(DEMO_KEY, ("alice", "pw"))
    check = gradio_login(None, ("alice", "pw"))
    assert check("alice", "pw") and check(" alice ", "pw") and not check("alice", "pw ") and not check("", "pw")
