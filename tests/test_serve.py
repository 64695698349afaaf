"""`lcrec serve`'s API over real HTTP on 127.0.0.1: batching keeps results, bad input is 422, a full queue is 503."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from lcrec.generation import resolve_num_beams
from lcrec.serving import MicroBatcher, QueueFull, Recommender, RequestError, ServeConfig
from lcrec.serving.api import create_app
from lcrec.serving.auth import API_KEY_ENV, is_loopback, resolve_api_key, secrets_match, warn_if_open
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
    config = ServeConfig(
        max_batch=16,
        max_wait_ms=300,
        max_queue=32,
        max_top_k=8,
        max_num_beams=8,
        max_history=6,
        max_users_per_request=32,
        default_top_k=4,
    )
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
    assert {hit["item_id"] for hit in found} == {
        item for item, title in recommender.titles.items() if title.startswith("red microscope")
    }
    assert httpx.get(f"{server.url}/items", params={"q": "no such thing"}, timeout=10).json() == []
    assert [hit["item_id"] for hit in httpx.get(f"{server.url}/items", params={"q": "17"}, timeout=10).json()][:1] == [
        17
    ]


def test_concurrent_requests_match_one_by_one(server, recommender):
    """Whatever batches concurrent requests (or one multi-user request) end up in, each gets its own ranking.

    (That they do share batches is tested deterministically below, with the worker held.)"""
    one_by_one = [post(server.url, {"history": history, "top_k": TOP_K}).json()["items"] for history in HISTORIES]
    for items in one_by_one:
        assert len(items) == TOP_K and [item["rank"] for item in items] == [1, 2, 3, 4]
        assert all(item["title"] == recommender.titles[item["item_id"]] for item in items)
        assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)

    with ThreadPoolExecutor(len(HISTORIES)) as pool:
        responses = list(pool.map(lambda history: post(server.url, {"history": history, "top_k": TOP_K}), HISTORIES))
    assert all(response.status_code == 200 for response in responses)
    in_one_request = post(server.url, {"histories": HISTORIES, "top_k": TOP_K}).json()["results"]

    concurrent_items = [response.json()["items"] for response in responses]
    batched_items = [result["items"] for result in in_one_request]
    for expected, concurrent, batched in zip(one_by_one, concurrent_items, batched_items, strict=True):
        for got in (concurrent, batched):
            assert [item["item_id"] for item in got] == [item["item_id"] for item in expected]
            assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-4)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"history": [1, 2, 999], "top_k": 3}, "history 0: 1 item ids are not in the catalogue: [999]"),
        ({"histories": [[1], [2, -5]], "top_k": 3}, "history 1: 1 item ids are not in the catalogue: [-5]"),
        ({"history": [], "top_k": 3}, "history 0: empty history"),
        ({"histories": [[1], []]}, "history 1: empty history"),
        ({"history": [1, 2, 3, 4, 5, 6, 7], "top_k": 3}, "history 0 has 7 items; at most 6"),
        ({"history": [1, 2], "top_k": 0}, "top_k=0 is out of range"),
        ({"history": [1, 2], "top_k": 9}, "top_k=9 is out of range: must be an integer between 1 and 8"),
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


# Bodies a hostile or careless client sends: each is a 422 whose first problem names the field (`loc`).
HOSTILE_BODIES = [
    ('{"history": [1, NaN]}', ["body", "history", 1], "NaN is not a JSON number"),
    ('{"histories": [[1], [2, Infinity]]}', ["body", "histories", 1, 1], "Infinity is not a JSON number"),
    ('{"history": [1], "top_k": -Infinity}', ["body", "top_k"], "-Infinity is not a JSON number"),
    ('{"history": [1, 1e400]}', ["body", "history", 1], "1e400 is out of range for a 64-bit float"),
    ('{"history": [1], "note": {"deep": [0.5, NaN]}}', ["body", "note", "deep", 1], "NaN"),
    ('{"histories": [[true, 7]]}', ["body", "histories", 0, 0], "expected a JSON integer, got true"),
    ('{"history": [12.5]}', ["body", "history", 0], "got the number 12.5"),
    ('{"history": ["12"]}', ["body", "history", 0], "got a string"),
    ('{"history": [12.0]}', ["body", "history", 0], "got the number 12.0"),
    ('{"history": [1], "top_k": "3"}', ["body", "top_k"], "got a string"),
    ('{"history": [1], "top_k": 2.5}', ["body", "top_k"], "got the number 2.5"),
    ('{"history": [1], "num_beams": true}', ["body", "num_beams"], "got true"),
    ('{"history": [1' + "0" * 5000 + "]}", ["body", "history", 0], "outside the 64-bit integer range"),
    ('{"history": [1], "topk": 3}', ["body", "topk"], "Extra inputs are not permitted"),
    ('{"history": ["a", "b"]}', ["body", "history", 0], "got a string"),
    ('{"history": [1, 2], "history": [3]}', ["body"], "the key 'history' appears more than once"),
    ("[" * 50_000 + "]" * 50_000, ["body"], "nested too deeply"),
    ('{"history": [1], "top_k": 3', ["body"], "invalid JSON at line 1 column 28"),
    ("\xff\xfe{}", ["body"], "not UTF-8"),
    ("", ["body"], "the body is empty"),
    ("null", ["body"], "valid dictionary"),
]


def test_hostile_bodies_get_422_naming_the_field_on_one_kept_alive_connection(server):
    """Never a 500 nor a dropped connection: one HTTP/1.1 connection carries every bad body and then a good one."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.connect()
    first_socket = connection.sock
    try:
        for body, loc, message in HOSTILE_BODIES:
            raw = body.encode("latin-1") if body.startswith("\xff") else body.encode()
            connection.request("POST", "/recommend", body=raw, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = json.loads(response.read())
            assert response.status == 422, (body[:60], payload)
            assert not response.will_close and connection.sock is first_socket, (
                f"connection dropped after {body[:60]!r}"
            )
            problem = payload["detail"][0]
            assert problem["loc"] == loc and message in problem["msg"], (body[:60], problem)
            assert set(problem) == {"type", "loc", "msg"}  # the input is never echoed back
        connection.request(
            "POST",
            "/recommend",
            body=json.dumps({"history": [1, 2], "top_k": 2}),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 200 and len(json.loads(response.read())["items"]) == 2
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_body_size_and_content_type_limits(server, recommender):
    limit = recommender.config.max_body_bytes
    too_large = httpx.post(
        f"{server.url}/recommend",
        content=b'{"history": [' + b"1, " * limit + b"1]}",
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert too_large.status_code == 413 and f"limit of {limit} bytes" in too_large.json()["detail"]
    as_form = httpx.post(
        f"{server.url}/recommend",
        content=b'{"history": [1]}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert as_form.status_code == 415 and "Content-Type: application/json" in as_form.json()["detail"]
    without_type = httpx.post(f"{server.url}/recommend", content=b'{"history": [1], "top_k": 1}', timeout=60)
    assert without_type.status_code == 200 and len(without_type.json()["items"]) == 1


def test_python_api_refuses_non_integer_item_ids(recommender):
    """The same rules hold without HTTP (the demo calls Recommender directly): True is never item 1."""
    for histories, problem in (
        ([[True, 7]], "history 0, position 0: item ids are integers, got True"),
        ([[7, 12.5]], "history 0, position 1: item ids are integers, got 12.5"),
        ([["12"]], "history 0, position 0: item ids are integers, got '12'"),
        (["12", "7"], "history 0, position 0: item ids are integers, got '12'"),
        ("12", "got the string '12'"),
    ):
        with pytest.raises(RequestError, match=re.escape(problem)):
            recommender.recommend(histories, top_k=2)
    for top_k in (2.5, "3", True):
        with pytest.raises(RequestError, match="must be an integer"):
            recommender.recommend([[1, 2]], top_k=top_k)
    assert [item.item_id for item in recommender.recommend([[np.int64(1), 2]], top_k=2)[0]] == [
        item.item_id for item in recommender.recommend([[1, 2]], top_k=2)[0]
    ]


def test_item_search_ignores_odd_digits(server):
    for query in ("²", "1" * 5000, "١٢"):
        response = httpx.get(f"{server.url}/items", params={"q": query}, timeout=10)
        assert response.status_code == 200 and response.json() == []


API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def protected(recommender):
    with BackgroundServer(create_app(recommender, api_key=API_KEY)) as running:
        yield running


def test_api_key_guards_every_route_but_health_and_docs(protected):
    body = {"history": [1, 2], "top_k": 2}
    missing = post(protected.url, body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in missing.json()["detail"]
    for header in ("Bearer wrong-key", f"Bearer {API_KEY}x", f"Basic {API_KEY}", API_KEY, "Bearer ключ".encode()):
        wrong = httpx.post(f"{protected.url}/recommend", json=body, headers={"Authorization": header}, timeout=60)
        assert wrong.status_code == 401, header
        assert wrong.headers["www-authenticate"].startswith("Bearer"), header
    # The key is checked before the body is read: an unauthenticated caller cannot probe the parser.
    hostile = httpx.post(
        f"{protected.url}/recommend",
        content=b'{"history": [NaN]}',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert hostile.status_code == 401
    assert httpx.get(f"{protected.url}/items", params={"q": "red"}, timeout=10).status_code == 401

    authorized = {"Authorization": f"Bearer {API_KEY}"}
    answered = httpx.post(f"{protected.url}/recommend", json=body, headers=authorized, timeout=60)
    assert answered.status_code == 200 and len(answered.json()["items"]) == 2
    assert httpx.get(f"{protected.url}/items", params={"q": "red"}, headers=authorized, timeout=10).json()

    assert httpx.get(f"{protected.url}/health", timeout=10).json() == {"status": "ok"}
    details = httpx.get(f"{protected.url}/health", headers=authorized, timeout=10).json()
    assert details["status"] == "ok" and details["num_items"] == 40 and "queue" in details
    schema = httpx.get(f"{protected.url}/openapi.json", timeout=10).json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert set(
        schema["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    ) == {"history", "histories", "top_k", "num_beams"}


def test_api_key_sources_and_checks(monkeypatch, caplog):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert resolve_api_key(None) is None
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    assert resolve_api_key(None) == API_KEY
    assert resolve_api_key("from-the-command-line-1234") == "from-the-command-line-1234"  # the option wins
    monkeypatch.setenv(API_KEY_ENV, "")
    with pytest.raises(ValueError, match=r"\$LCREC_API_KEY is empty"):
        resolve_api_key(None)
    for bad in ("two words here long", "tab\there-0123456789", "ключ-0123456789abcdef"):
        with pytest.raises(ValueError, match="visible ASCII"):
            resolve_api_key(bad)
    with caplog.at_level(logging.WARNING, logger="lcrec.serving.auth"):
        assert resolve_api_key("short") == "short"
    assert "only 5 characters" in caplog.text
    assert secrets_match("ключ", "ключ") and not secrets_match("ключ", "ключи") and not secrets_match("", "x")


def test_loopback_detection_and_the_open_server_warning(caplog):
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org", "10.0.0.1"):
        assert not is_loopback(host), host
    with caplog.at_level(logging.WARNING, logger="lcrec.serving.auth"):
        assert not warn_if_open("127.0.0.1", protected=False, what="lcrec serve", remedy="set a key")
        assert not warn_if_open("0.0.0.0", protected=True, what="lcrec serve", remedy="set a key")
        assert caplog.text == ""
        assert warn_if_open("0.0.0.0", protected=False, what="lcrec serve", remedy="set a key")
    assert "lcrec serve listens on 0.0.0.0 without authentication" in caplog.text


def test_full_queue_answers_503(recommender, monkeypatch):
    """While one request computes, a queue of one takes one more request and turns the rest away."""
    config = ServeConfig(
        max_batch=1,
        max_wait_ms=0,
        max_queue=1,
        max_top_k=8,
        max_num_beams=8,
        max_history=6,
        max_users_per_request=32,
        default_top_k=4,
    )
    busy = Recommender(recommender.model, recommender.tokenizer, config=config)
    # The in-flight decoding holds until the test has seen the turned-away requests, so no timing decides the outcome.
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


def test_requests_with_different_top_k_share_a_batch_but_not_different_beams(recommender, monkeypatch):
    """Queued requests decode together when their beam counts match, whatever their top_k; each answer equals the
    ranking the same request gets alone (the decoder's top k is the first k of its num_beams beams)."""
    config = ServeConfig(
        max_batch=32, max_wait_ms=0, max_queue=32, max_top_k=8, max_num_beams=8, max_history=6, default_top_k=4
    )
    shared = Recommender(recommender.model, recommender.tokenizer, config=config)
    requests = [(history, top_k, None) for history, top_k in zip(HISTORIES, (1, 2, 3, 4, 5, 8), strict=True)]
    requests += [(HISTORIES[0], 3, 8), (HISTORIES[2], 8, 8)]
    alone = [recommender.recommend([history], top_k=top_k, num_beams=beams)[0] for history, top_k, beams in requests]
    default_beams = min(resolve_num_beams(recommender.model, None, 1), recommender.num_items)

    calls, release = [], threading.Event()
    real_recommend = recommender.model.recommend

    def spied_recommend(histories, top_k, num_beams, **kwargs):
        calls.append((len(histories), top_k, num_beams))
        assert release.wait(60), "the test never released the first batch"
        return real_recommend(histories, top_k=top_k, num_beams=num_beams, **kwargs)

    monkeypatch.setattr(recommender.model, "recommend", spied_recommend)
    with BackgroundServer(create_app(shared)) as running, ThreadPoolExecutor(len(requests)) as pool:

        def ask(request):
            history, top_k, beams = request
            return post(running.url, {"history": history, "top_k": top_k} | ({"num_beams": beams} if beams else {}))

        first = pool.submit(ask, requests[0])
        deadline = time.monotonic() + 30
        while not calls:  # the first request is decoding (held); the others now queue up behind it
            assert time.monotonic() < deadline, "the first request never reached the decoder"
            time.sleep(0.01)
        rest = [pool.submit(ask, request) for request in requests[1:]]
        while httpx.get(f"{running.url}/health", timeout=10).json()["queue"]["waiting"] < len(rest):
            assert time.monotonic() < deadline, "the requests did not queue"
            time.sleep(0.01)
        release.set()
        responses = [first.result(60)] + [future.result(60) for future in rest]

    assert calls == [(1, default_beams, default_beams), (5, default_beams, default_beams), (2, 8, 8)]
    for (history, top_k, beams), response, expected in zip(requests, responses, alone, strict=True):
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["item_id"] for item in items] == [item.item_id for item in expected], (history, top_k, beams)
        assert [item["rank"] for item in items] == list(range(1, top_k + 1))
        assert [item["score"] for item in items] == pytest.approx([item.score for item in expected], abs=1e-4)


def hold_worker(batcher: MicroBatcher, gate: threading.Event):
    """Occupy the batcher's worker with a request under key "hold" until `gate` is set; queued requests then wait."""
    held = batcher.submit([[0]], "hold")
    deadline = time.monotonic() + 30
    while batcher.stats()["in_flight"] == 0:
        assert time.monotonic() < deadline, "the worker never took the held request"
        time.sleep(0.005)
    return held


def test_micro_batcher_groups_by_key_and_reports_failures():
    """The batcher on its own: one call per key, results split back in order, errors reach every waiter."""
    calls, gate = [], threading.Event()

    def run_batch(histories, key):
        calls.append((key, [list(history) for history in histories]))
        if key == "hold":
            assert gate.wait(30)
        if key == "fail":
            raise RuntimeError("model exploded")
        return [(key, sum(history)) for history in histories]

    batcher = MicroBatcher(run_batch, max_batch=8, max_wait_s=0.5, max_queue=2)
    batcher.start()
    try:
        held = hold_worker(batcher, gate)
        first, second = batcher.submit([[1, 2]], "a"), batcher.submit([[3], [4]], "a")
        with pytest.raises(QueueFull, match="queue capacity 2"):
            batcher.submit([[5]], "b")
        gate.set()
        assert held.result(10) == [("hold", 0)]
        assert first.result(10) == [("a", 3)] and second.result(10) == [("a", 3), ("a", 4)]
        failing = batcher.submit([[6]], "fail")
        with pytest.raises(RuntimeError, match="model exploded"):
            failing.result(10)
    finally:
        batcher.stop()
    assert calls == [("hold", [[0]]), ("a", [[1, 2], [3], [4]]), ("fail", [[6]])]


def test_micro_batcher_does_not_hold_a_lone_request():
    """With nobody else around, a request is decoded at once, not after max_wait_s (here a minute)."""
    batcher = MicroBatcher(lambda histories, key: [len(history) for history in histories], 8, 60.0, 8)
    batcher.start()
    try:
        assert batcher.submit([[1, 2, 3]], "a").result(timeout=20) == [3]
        assert batcher.submit([[1, 2]], "a").result(timeout=20) == [2]
    finally:
        batcher.stop()


def test_micro_batcher_skips_cancelled_requests_and_fails_waiting_ones_on_stop():
    calls, gate = [], threading.Event()

    def run_batch(histories, key):
        calls.append(histories)
        if key == "hold":
            assert gate.wait(30)
        return [0] * len(histories)

    batcher = MicroBatcher(run_batch, max_batch=8, max_wait_s=0.05, max_queue=8)
    batcher.start()
    held = hold_worker(batcher, gate)
    kept, dropped = batcher.submit([[1]], "a"), batcher.submit([[2]], "a")
    assert dropped.cancel()
    gate.set()
    assert held.result(10) == [0] and kept.result(10) == [0]

    gate.clear()
    running = hold_worker(batcher, gate)
    waiting = batcher.submit([[3]], "a")
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    with pytest.raises(RuntimeError, match="shutting down"):
        waiting.result(10)
    gate.set()  # the batch already running finishes; the waiting one was failed, never computed
    stopper.join(30)
    assert running.result(10) == [0]
    assert calls == [[[0]], [[1]], [[0]]]
    with pytest.raises(RuntimeError, match="not running"):
        batcher.submit([[4]], "a")


def start_serve_command(model_dir, *options: str, env: dict[str, str]) -> tuple[subprocess.Popen, str, list[str]]:
    """`lcrec serve` as a user starts it, on a port the system picks; returns the process, its URL and its log."""
    command = [
        sys.executable,
        "-m",
        "lcrec.cli",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        "0",
        "--threads",
        "1",
        *options,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}
    )
    lines: list[str] = []
    for line in process.stdout:  # ends when the process exits; it prints uvicorn's address once listening
        lines.append(line)
        found = re.search(r"Uvicorn running on http://[^:]+:(\d+)", line)
        if found:
            return process, f"http://127.0.0.1:{found.group(1)}", lines
    process.wait(30)
    raise AssertionError(f"lcrec serve exited with {process.returncode} before listening:\n{''.join(lines)}")


def stop_serve_command(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def test_serve_command_takes_the_key_from_the_environment(model_dir):
    environment = {API_KEY_ENV: API_KEY, "OMP_NUM_THREADS": "1"}
    process, url, lines = start_serve_command(model_dir, env=environment)
    try:
        assert not any("without authentication" in line for line in lines), "".join(lines)
        assert any("API key required" in line for line in lines), "".join(lines)
        assert httpx.post(f"{url}/recommend", json={"history": [1, 2], "top_k": 3}, timeout=60).status_code == 401
        answered = httpx.post(
            f"{url}/recommend",
            json={"history": [1, 2], "top_k": 3},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )
        assert answered.status_code == 200 and len(answered.json()["items"]) == 3
    finally:
        stop_serve_command(process)


def test_serve_command_warns_when_open_beyond_loopback(model_dir, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    process, url, lines = start_serve_command(model_dir, "--host", "0.0.0.0", env={"OMP_NUM_THREADS": "1"})
    try:
        assert any("lcrec serve listens on 0.0.0.0 without authentication" in line for line in lines), "".join(lines)
        assert httpx.get(f"{url}/health", timeout=10).json()["num_items"] == 40
    finally:
        stop_serve_command(process)


@pytest.mark.parametrize(
    ("command", "module", "hidden"),
    [("serve", "lcrec.serving.api", "fastapi"), ("demo", "lcrec.serving.demo", "gradio")],
)
def test_missing_serve_extra_is_one_line_naming_the_pip_command(
    model_dir, monkeypatch, capsys, command, module, hidden
):
    from lcrec.cli import main

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, hidden, None)  # what an environment without the extra looks like to `import`
    assert main([command, "--model", str(model_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith(f"lcrec {command}: error: ") and 'pip install "lcrec[serve]"' in error and "\n" not in error
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--model", "/nonexistent/model"], "no such folder"),
        (["--device", "cuda:7"], "--device cuda:7"),
        (["--max_top_k", "80"], "max_num_beams (50) must be >= max_top_k (80)"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--threads", "-1"], "--threads must be an integer >= 0"),
        (["--max_wait_ms", "nan"], "max_wait_ms must be between 0 and 60000"),
    ],
)
def test_serve_command_refuses_bad_options_in_one_line(model_dir, monkeypatch, capsys, options, problem):
    from lcrec.cli import main

    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    argv = ["serve", "--model", str(model_dir), *options] if options[0] != "--model" else ["serve", *options]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lcrec serve: error: ") and problem in error and "\n" not in error, error
