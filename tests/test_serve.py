"""`lcrec serve`'s API over real HTTP on 127.0.0.1: batching keeps results, bad input is 422, a full queue is 503."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lcrec.serving import MicroBatcher, QueueFull, Recommender, ServeConfig
from lcrec.serving.api import create_app
from lcrec.serving.server import BackgroundServer

HISTORIES = [[1, 2, 3], [5, 9], [12, 4, 30, 7], [20], [33, 34, 35, 36], [8, 16, 24]]
TOP_K = 4


@pytest.fixture(scope="module")
def model_dir(make_lcrec_model, tmp_path_factory):
    """The tiny model saved as a folder (with a metrics.json), loaded back the way `lcrec serve` loads it."""
    folder = tmp_path_factory.mktemp("serve") / "model"
    make_lcrec_model("llama", tie=True).save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({"HR@5": 0.25, "NDCG@10": 0.125, "num_users": 8}))
    return folder


@pytest.fixture(scope="module")
def recommender(model_dir):
    config = ServeConfig(max_batch=16, max_wait_ms=300, max_queue=32, max_top_k=8, max_num_beams=8, max_history=6, max_users_per_request=32, default_top_k=4)
    return Recommender.from_pretrained(str(model_dir), config=config, device="cpu")


@pytest.fixture(scope="module")
def server(recommender):
    with BackgroundServer(create_app(recommender)) as running:
        yield running


def post(url: str, body: dict, timeout: float = 60.0) -> httpx.Response:
    return httpx.post(f"{url}/recommend", json=body, timeout=timeout)


def test_health_and_title_search(server, recommender):
    health = httpx.get(f"{server.url}/health", timeout=10).json()
    assert health["status"] == "ok" and health["num_items"] == 40
    assert health["batching"] == {"max_batch": 16, "max_wait_ms": 300}
    found = httpx.get(f"{server.url}/items", params={"q": "Red MICRO"}, timeout=10).json()
    assert found and all("red" in hit["title"] and "microscope" in hit["title"] for hit in found)
    assert {hit["item_id"] for hit in found} == {item for item, title in recommender.titles.items() if title.startswith("red microscope")}
    assert httpx.get(f"{server.url}/items", params={"q": "no such thing"}, timeout=10).json() == []
    assert [hit["item_id"] for hit in httpx.get(f"{server.url}/items", params={"q": "17"}, timeout=10).json()][:1] == [17]


def test_concurrent_requests_are_batched_and_match_one_by_one(server, recommender):
    one_by_one = [post(server.url, {"history": history, "top_k": TOP_K}).json()["items"] for history in HISTORIES]
    for history, items in zip(HISTORIES, one_by_one):
        assert len(items) == TOP_K and [item["rank"] for item in items] == [1, 2, 3, 4]
        assert all(item["title"] == recommender.titles[item["item_id"]] for item in items)
        assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)

    batches_before = httpx.get(f"{server.url}/health", timeout=10).json()["queue"]["batches"]
    with ThreadPoolExecutor(len(HISTORIES)) as pool:
        responses = list(pool.map(lambda history: post(server.url, {"history": history, "top_k": TOP_K}), HISTORIES))
    batches = httpx.get(f"{server.url}/health", timeout=10).json()["queue"]["batches"] - batches_before
    assert all(response.status_code == 200 for response in responses)
    assert batches < len(HISTORIES), "concurrent requests should share beam searches"
    in_one_request = post(server.url, {"histories": HISTORIES, "top_k": TOP_K}).json()["results"]

    for expected, concurrent, batched in zip(one_by_one, (r.json()["items"] for r in responses), (r["items"] for r in in_one_request)):
        for got in (concurrent, batched):
            assert [item["item_id"] for item in got] == [item["item_id"] for item in expected]
            assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-4)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"history": [1, 2, 999], "top_k": 3}, "unknown item ids [999]"),
        ({"histories": [[1], [2, -5]], "top_k": 3}, "history 1: unknown item ids [-5]"),
        ({"history": [], "top_k": 3}, "history is empty"),
        ({"histories": [[1], []]}, "history 1 is empty"),
        ({"history": [1, 2, 3, 4, 5, 6, 7], "top_k": 3}, "history has 7 items; at most 6"),
        ({"history": [1, 2], "top_k": 0}, "top_k=0 is out of range"),
        ({"history": [1, 2], "top_k": 9}, "top_k=9 is out of range: must be between 1 and 8"),
        ({"history": [1, 2], "top_k": 4, "num_beams": 2}, "num_beams=2 is out of range"),
        ({"top_k": 3}, "exactly one of `history`"),
        ({"history": [1], "histories": [[1]]}, "exactly one of `history`"),
        ({"histories": []}, "no histories given"),
        ({"histories": [[1]] * 33}, "33 histories in one request; at most 32"),
    ],
)
def test_bad_requests_get_422_naming_the_problem(server, body, problem):
    response = post(server.url, body)
    assert response.status_code == 422
    assert problem in response.json()["detail"]


def test_malformed_json_fields_get_422(server):
    for body in ({"history": ["a", "b"]}, {"history": [1], "topk": 3}):
        response = post(server.url, body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][:2] == ["body", "history" if "topk" not in body else "topk"]


def test_full_queue_answers_503(recommender, monkeypatch):
    """While one request computes, a queue of one takes one more request and turns the rest away."""
    config = ServeConfig(max_batch=1, max_wait_ms=0, max_queue=1, max_top_k=8, max_num_beams=8, max_history=6, max_users_per_request=32, default_top_k=4)
    busy = Recommender(recommender.model, recommender.tokenizer, config=config)
    # The in-flight beam search holds until the test has seen the turned-away requests, so no timing decides the outcome.
    release = threading.Event()
    real_recommend = recommender.model.recommend

    def held_recommend(*args, **kwargs):
        assert release.wait(60), "the test never released the in-flight request"
        return real_recommend(*args, **kwargs)

    monkeypatch.setattr(recommender.model, "recommend", held_recommend)
    with BackgroundServer(create_app(busy)) as running:
        first = threading.Thread(target=post, args=(running.url, {"history": HISTORIES[0], "top_k": 8}))
        first.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{running.url}/health", timeout=10).json()["queue"]["in_flight"] == 0:
            assert time.monotonic() < deadline, "the first request never started"
            time.sleep(0.01)
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, running.url, {"history": history, "top_k": 2}) for history in HISTORIES[1:5]]
            deadline = time.monotonic() + 30
            while sum(future.done() for future in futures) < 3:
                assert time.monotonic() < deadline, "a full queue did not turn requests away"
                time.sleep(0.01)
            release.set()
            responses = [future.result() for future in futures]
        first.join(60)
    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 503, 503, 503], codes
    rejected = next(response for response in responses if response.status_code == 503)
    assert "queue capacity 1" in rejected.json()["detail"] and rejected.headers["retry-after"] == "1"


def test_micro_batcher_groups_by_key_and_reports_failures():
    """The batcher on its own: one call per key, results split back in order, errors reach every waiter."""
    calls = []

    def run_batch(histories, key):
        calls.append((key, [list(history) for history in histories]))
        if key == "fail":
            raise RuntimeError("model exploded")
        return [(key, sum(history)) for history in histories]

    batcher = MicroBatcher(run_batch, max_batch=8, max_wait_s=0.5, max_queue=2)
    batcher.start()
    try:
        first, second = batcher.submit([[1, 2]], "a"), batcher.submit([[3], [4]], "a")
        with pytest.raises(QueueFull, match="queue capacity 2"):
            batcher.submit([[5]], "b")
        assert first.result(10) == [("a", 3)] and second.result(10) == [("a", 3), ("a", 4)]
        failing = batcher.submit([[6]], "fail")
        with pytest.raises(RuntimeError, match="model exploded"):
            failing.result(10)
    finally:
        batcher.stop()
    assert calls == [("a", [[1, 2], [3], [4]]), ("fail", [[6]])]


def test_micro_batcher_skips_cancelled_requests_and_fails_waiting_ones_on_stop():
    calls = []
    batcher = MicroBatcher(lambda histories, key: calls.append(histories) or [0] * len(histories), max_batch=8, max_wait_s=0.5, max_queue=8)
    batcher.start()
    kept, dropped = batcher.submit([[1]], "a"), batcher.submit([[2]], "a")
    assert dropped.cancel()
    assert kept.result(10) == [0]
    waiting = batcher.submit([[3]], "a")
    batcher.stop()
    with pytest.raises(RuntimeError, match="shutting down"):
        waiting.result(10)
    assert calls == [[[1]]]
    with pytest.raises(RuntimeError, match="not running"):
        batcher.submit([[4]], "a")
