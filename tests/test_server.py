"""The local server (speech_endpoint/serving/, scripts/serve.py, Dockerfile) and its
launcher (evaluation/local_server.py).

Three kinds of servers:
- `server`: the Dockerfile's command line (host/port replaced) in a subprocess with the
  tiny models, called over HTTP for the contract (bodies, parameters, errors, limits,
  concurrency, metrics) and grepped for the token at the end;
- `fault_server`: the same command with `--handler-dir` pointing at a fake handler that
  logs, prints and raises with the token in hand (internal fault path, redaction);
- in-process uvicorn servers around `create_app` with fake handlers, for behaviour that
  needs control over timing (loading, queue, timeouts, disconnects) and for the metrics.

Helpers shared with the other test modules are in tests/support/server.py.
"""
from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from evaluation.local_server import LocalServer, RunningServer, ServerError, serve_argv
from support.server import (
    AUTH,
    DOCKERFILE,
    FAKE_TOKEN,
    REPO,
    SERVER_SETTINGS_ENV,
    ControlledHandler,
    clean_env,
    dockerfile_command,
    free_port,
    healthy_model_server,
    loaded_when,
    make_app,
    metrics,
    post,
    raw_http,
    running,
    scrape,
    server_argv,
    speech_wav,
    wait_for,
)

BODY_LIMIT = 1_000_000
QUEUE_LIMIT = 3


# ---- the real server (Dockerfile command, tiny models) --------------------------------


@pytest.fixture(scope="module")
def server(fast_models, tmp_path_factory):
    with healthy_model_server(fast_models, tmp_path_factory.mktemp("server") / "server.log",
                              MAX_QUEUE=str(QUEUE_LIMIT), MAX_BODY_BYTES=str(BODY_LIMIT), REQUEST_TIMEOUT="120") as proc:
        yield proc


def check_transcript_shape(result: dict) -> None:
    assert isinstance(result["text"], str)
    assert isinstance(result["chunks"], list) and isinstance(result["speakers"], list)
    for item in result["chunks"] + result["speakers"]:
        start, end = item["timestamp"]
        assert isinstance(item["text"], str) and 0.0 <= start <= end
    for utterance in result["speakers"]:
        assert re.fullmatch(r"SPEAKER_\d\d", utterance["speaker"])
    assert result["metadata"]["duration"] == pytest.approx(4.0, abs=0.01)


def test_dockerfile_runs_the_tested_command(server):
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    assert re.search(r"pip install -r requirements-current\.txt", text)
    assert re.search(r"^ARG TORCH_INDEX_URL=", text, re.M)  # a torch for an older CUDA driver
    assert re.search(r"^COPY \. \.\s*$", text, re.M)
    assert re.search(r"^EXPOSE 80\s*$", text, re.M)
    command = dockerfile_command()
    assert command[:3] == ["python", "-m", "scripts.serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "80"
    assert (REPO / "scripts" / "serve.py").is_file()
    # The server under test runs exactly that command line, only host/port/interpreter differ.
    expected = [sys.executable, *command[1:]]
    expected[expected.index("--host") + 1] = "127.0.0.1"
    expected[expected.index("--port") + 1] = str(server.port)
    assert server.argv == expected


def test_health_is_503_while_loading_then_200(server):
    statuses = server.health_statuses
    # Loading imports torch/transformers/pyannote on the worker thread: seconds during
    # which the server already answers, with 503.
    assert statuses[0] == 503 and statuses[-1] == 200
    assert statuses == sorted(statuses, reverse=True)  # never back to 503 once loaded
    assert "Loading" in server.first_loading_body
    for path in ("/", "/health"):
        response = requests.get(server.url + path, timeout=10)
        assert (response.status_code, response.text) == (200, "Ok")
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


def test_json_body(server):
    body = {"inputs": base64.b64encode(speech_wav()).decode(), "parameters": {"output_formats": ["srt", "vtt"]}}
    response = post(server.url, "/", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["X-Request-Id"]
    result = response.json()
    check_transcript_shape(result)
    assert result["text"].strip(), "the fast tiny model emits text"
    assert result["speakers"], "the tiny diarization model labels the speech"
    assert result["srt"].startswith("1\n") and result["vtt"].startswith("WEBVTT")


def test_binary_body_with_query_parameters(server):
    response = post(server.url, "/predict?language=en&batch_size=4&diarize=false", data=speech_wav(),
                    headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200, response.text
    result = response.json()
    check_transcript_shape(result)
    meta = result["metadata"]
    assert (meta["language"], meta["batch_size"], meta["diarization"]) == ("en", 4, False)
    assert result["speakers"] == []


@pytest.mark.parametrize("content_type", ["audio/x-wav", "audio/webm;codecs=opus", "application/octet-stream"])
def test_other_audio_content_types(server, content_type):
    response = post(server.url, "/predict?diarize=false", data=speech_wav(seed=1),
                    headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


def test_query_parameters_apply_only_when_the_body_has_none(server):
    audio = base64.b64encode(speech_wav()).decode()
    response = post(server.url, "/predict?language=fr&diarize=false", json={"inputs": audio})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["language"] == "fr"
    response = post(server.url, "/predict?language=fr",
                    json={"inputs": audio, "parameters": {"language": "de", "diarize": False}})
    assert response.json()["metadata"]["language"] == "de"


BAD_REQUESTS = {
    "bad base64": dict(json={"inputs": "not base64 at all!"}),
    "missing inputs": dict(json={"parameters": {"language": "en"}}),
    "not json": dict(data=b"{not json", headers={"Content-Type": "application/json"}),
    "unsupported content type": dict(data=b"hello", headers={"Content-Type": "text/plain"}),
    "bad parameter": dict(json={"inputs": base64.b64encode(speech_wav()).decode(), "parameters": {"task": "dance"}}),
    "bad query parameter": dict(data=speech_wav(), headers={"Content-Type": "audio/wav"}, params={"batch_size": "x"}),
    "empty body": dict(data=b"", headers={"Content-Type": "audio/wav"}),
    "not audio": dict(data=b"RIFF....garbage", headers={"Content-Type": "audio/wav"}),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_client_mistakes_are_400_with_a_message(server, name):
    response = post(server.url, "/predict", **BAD_REQUESTS[name])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and error and "Traceback" not in error
    if name in ("bad parameter", "bad query parameter"):
        assert "parameter '" in error


def test_bearer_token_required_on_post(server):
    for headers in ({}, {"Authorization": "Bearer wrong-token-123"}, {"Authorization": FAKE_TOKEN}):
        response = requests.post(server.url + "/", data=speech_wav(), timeout=30,
                                 headers={"Content-Type": "audio/wav", **headers})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(server.url + "/health", timeout=10).status_code == 200  # health stays open


def test_413_from_content_length_before_reading_the_body(server):
    head = (f"POST /predict HTTP/1.1\nHost: x\nAuthorization: Bearer {FAKE_TOKEN}\n"
            f"Content-Type: audio/wav\nContent-Length: {50 * BODY_LIMIT}\n")
    status, headers, body = raw_http(server.port, head)  # no body sent at all
    assert status == 413
    assert "larger than the limit" in json.loads(body)["error"]
    assert headers["x-request-id"]


def test_413_while_reading_a_chunked_body(server):
    head = (f"POST /predict HTTP/1.1\nHost: x\nAuthorization: Bearer {FAKE_TOKEN}\n"
            "Content-Type: audio/wav\nTransfer-Encoding: chunked\n")
    chunk = b"\0" * 65536
    count = BODY_LIMIT // len(chunk) + 1  # the limit is passed only by the last chunk
    parts = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * (count - 1)
    # The last chunk and the terminator go together, so the server has every byte when it
    # answers (closing with unread bytes would reset the connection before we read the 413).
    parts.append(parts[0] + b"0\r\n\r\n")
    status, _, body = raw_http(server.port, head, parts)
    assert status == 413
    assert "larger than the limit" in json.loads(body)["error"]


def test_concurrent_clients_are_all_answered(server):
    before = metrics(server.url)
    barrier = threading.Barrier(8)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call(seed):
        audio = speech_wav(seed=seed)
        barrier.wait()
        response = post(server.url, "/predict?diarize=false", data=audio, headers={"Content-Type": "audio/wav"})
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(results) == 8
    ok = [r for r in results if r.status_code == 200]
    busy = [r for r in results if r.status_code == 503]
    assert len(ok) + len(busy) == 8, [r.status_code for r in results]
    assert len(ok) >= 1 + QUEUE_LIMIT  # one running + a full queue are always served
    for response in busy:
        assert "busy" in response.json()["error"] and int(response.headers["Retry-After"]) > 0
    for response in ok:
        check_transcript_shape(response.json())
    after = metrics(server.url)
    assert after['speech_requests_total{status="200"}'] - before.get('speech_requests_total{status="200"}', 0) == len(ok)
    assert after.get('speech_requests_total{status="503"}', 0) - before.get('speech_requests_total{status="503"}', 0) \
        == len(busy)
    assert after["speech_queue_size"] == 0 and after["speech_requests_in_flight"] == 0
    assert after["speech_queue_capacity"] == QUEUE_LIMIT and after["speech_model_ready"] == 1
    device = {k: v for k, v in after.items() if k.startswith("speech_device_info{")}  # where the models run
    assert list(device.values()) == [1] and 'device="cpu"' in next(iter(device)) and "float32" in next(iter(device))


def test_metrics_move(server):
    before = metrics(server.url)
    post(server.url, "/predict", data=b"x", headers={"Content-Type": "text/plain"})
    response = post(server.url, "/predict?diarize=false", data=speech_wav(), headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200
    after = metrics(server.url)
    assert after['speech_requests_total{status="400"}'] == before.get('speech_requests_total{status="400"}', 0) + 1
    assert after['speech_requests_total{status="200"}'] == before['speech_requests_total{status="200"}'] + 1
    assert after["speech_request_duration_seconds_count"] == before["speech_request_duration_seconds_count"] + 1
    text = requests.get(server.url + "/metrics", timeout=10)
    assert text.headers["content-type"].startswith("text/plain")
    assert "# TYPE speech_requests_total counter" in text.text


def test_token_never_in_server_output(server):
    """Last in the module: stops the server, then greps everything it printed."""
    # A client mistake carrying the token in a parameter (the handler does not echo it).
    response = post(server.url, "/predict", data=speech_wav(), headers={"Content-Type": "audio/wav"},
                    params={"language": FAKE_TOKEN})
    assert response.status_code == 400 and FAKE_TOKEN not in response.text
    assert "'language'" in response.json()["error"]
    server.stop()
    output = server.output()
    assert "POST /predict" in output and "Uvicorn running" in output  # the log was captured
    assert FAKE_TOKEN not in output
    assert "[REDACTED]" in output  # the access log line with the token in the query string


# ---- a fake handler in a subprocess: internal faults and redaction ----------------------

FAKE_HANDLER = '''
import logging, os, sys, time
from speech_endpoint.schema import ClientError

log = logging.getLogger("fake_handler")


class EndpointHandler:
    def __init__(self, path):
        self.token = os.environ["HF_TOKEN"]
        log.warning("careless library log line with token %s", self.token)
        # one write: print() writes each argument apart, and the server's own startup lines
        # (another thread) may land between them
        print("careless print with token " + self.token)
        print("careless stderr write " + self.token, file=sys.stderr)
        self.calls = 0

    def __call__(self, data):
        self.calls += 1
        mode = (data.get("parameters") or {}).get("mode")
        if mode == "client":
            raise ClientError("bad value for a parameter near " + self.token)
        if mode == "crash":
            raise RuntimeError("internal failure while holding " + self.token)
        if mode == "nan":
            return {"value": float("nan")}
        log.info("handled a request (%s)", self.token)
        return {"text": "ok", "chunks": [], "speakers": [], "calls": self.calls}
'''


def fake_handler_server(folder, **env: str) -> LocalServer:
    """The Dockerfile's command serving FAKE_HANDLER from `folder`; started, not waited for."""
    (folder / "handler.py").write_text(textwrap.dedent(FAKE_HANDLER))
    env = clean_env(HF_TOKEN=FAKE_TOKEN, API_TOKEN=FAKE_TOKEN, **env)
    return LocalServer(server_argv(free_port(), "--handler-dir", str(folder)), env=env, log_path=folder / "server.log")


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory):
    proc = fake_handler_server(tmp_path_factory.mktemp("fake-handler"))
    try:
        proc.wait_healthy(timeout=60)
        yield proc
    finally:
        proc.stop()


def test_internal_fault_is_500_with_request_id_and_nothing_leaks(fault_server):
    url = fault_server.url
    crash = post(url, "/", json={"inputs": "AAAA", "parameters": {"mode": "crash"}})
    assert crash.status_code == 500
    body = crash.json()
    assert body == {"error": "internal error", "request_id": crash.headers["X-Request-Id"]}
    nan = post(url, "/", json={"inputs": "AAAA", "parameters": {"mode": "nan"}})
    assert nan.status_code == 500 and nan.json()["error"] == "internal error"
    client = post(url, "/", json={"inputs": "AAAA", "parameters": {"mode": "client"}})
    assert client.status_code == 400
    assert FAKE_TOKEN not in client.text and "[REDACTED]" in client.json()["error"]
    ok = post(url, "/predict", json={"inputs": "AAAA"}, params={"note": FAKE_TOKEN})
    assert ok.status_code == 200 and ok.json()["text"] == "ok"
    assert post(url, "/", json={"inputs": "AAAA"}, headers={"Authorization": f"Bearer {FAKE_TOKEN}x"}).status_code == 401

    fault_server.stop()
    output = fault_server.output()
    assert FAKE_TOKEN not in output
    # what was logged: the fault with its request id and traceback, the careless lines redacted
    assert crash.headers["X-Request-Id"] in output and "Traceback" in output and "RuntimeError" in output
    assert "internal failure while holding [REDACTED]" in output
    assert "careless library log line with token [REDACTED]" in output
    assert "careless print with token [REDACTED]" in output
    assert "careless stderr write [REDACTED]" in output


def test_refuses_to_listen_beyond_loopback_without_a_token():
    argv = [sys.executable, "-m", "scripts.serve", "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(argv, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "API_TOKEN" in result.stderr and "--allow-unauthenticated" in result.stderr


def test_loopback_detection():
    from scripts import serve

    assert all(serve.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(serve.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))


# ---- in-process servers with fake handlers: loading, queue, timeouts, disconnects -------


def send_async(url, results: dict, key: str, **params):
    def call():
        results[key] = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": key, **params}},
                                     timeout=60)

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def test_health_and_post_while_loading_then_ready():
    gate = threading.Event()
    handler = ControlledHandler()
    app = make_app(factory=loaded_when(gate, handler))
    with running(app) as (url, _):
        health = requests.get(url + "/health", timeout=10)
        assert health.status_code == 503 and health.text == "Loading the models"
        response = requests.post(url + "/", json={"inputs": "AAAA"}, timeout=10)
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert "loading" in response.json()["error"]
        assert metrics(url)["speech_model_ready"] == 0
        gate.set()
        wait_for(lambda: requests.get(url + "/health", timeout=10).status_code == 200)
        assert requests.get(url + "/", timeout=10).text == "Ok"
        assert requests.post(url + "/", json={"inputs": "AAAA"}, timeout=10).status_code == 200


def test_load_failure_is_a_503_with_a_safe_message(caplog):
    def failing_factory():
        raise RuntimeError(f"Invalid endpoint settings: ASR_MODEL: Field required (token {FAKE_TOKEN})")

    with running(make_app(factory=failing_factory)) as (url, _):
        wait_for(lambda: requests.get(url + "/health", timeout=10).status_code == 503
                 and "failed" in requests.get(url + "/health", timeout=10).text)
        health = requests.get(url + "/health", timeout=10)
        assert "ASR_MODEL: Field required" in health.text and FAKE_TOKEN not in health.text
        response = requests.post(url + "/", json={"inputs": "AAAA"}, timeout=10)
        assert response.status_code == 503 and "Retry-After" not in response.headers
        assert "ASR_MODEL" in response.json()["error"]
    assert any("loading the handler failed" in r.getMessage() for r in caplog.records)


def test_queue_limit_fifo_order_and_503():
    handler = ControlledHandler()
    app = make_app(handler, max_queue=2)
    results: dict[str, requests.Response] = {}
    with running(app) as (url, _):
        threads = [send_async(url, results, "first", block=True)]
        wait_for(lambda: metrics(url)["speech_requests_in_flight"] == 1)
        for name in ("second", "third"):
            threads.append(send_async(url, results, name))
            wait_for(lambda n=len(threads) - 1: metrics(url)["speech_queue_size"] == n)
        refused = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "fourth"}}, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
        assert "busy" in refused.json()["error"] and refused.headers["X-Request-Id"]
        handler.release.set()
        for thread in threads:
            thread.join(30)
        assert [results[n].status_code for n in ("first", "second", "third")] == [200, 200, 200]
        assert handler.calls == ["first", "second", "third"]  # FIFO; the refused one never ran
        final = metrics(url)
        assert final["speech_queue_size"] == 0 and final["speech_requests_in_flight"] == 0
        assert final['speech_requests_total{status="503"}'] == 1


def test_timeout_504_drops_the_result_and_frees_the_worker_afterwards():
    handler = ControlledHandler()
    app = make_app(handler, request_timeout_s=0.5)
    with running(app) as (url, _):
        started = time.monotonic()
        response = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "slow", "block": True}},
                                 timeout=30)
        assert response.status_code == 504 and time.monotonic() - started < 10
        assert response.json()["request_id"] == response.headers["X-Request-Id"]
        # The work goes on in the worker: the next request waits for it, then times out in the queue.
        assert metrics(url)["speech_requests_in_flight"] == 1
        queued = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "queued"}}, timeout=30)
        assert queued.status_code == 504 and "queue" in queued.json()["error"]
        handler.release.set()
        wait_for(lambda: metrics(url)["speech_requests_in_flight"] == 0)
        after = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "after"}}, timeout=30)
        assert after.status_code == 200
        assert handler.calls == ["slow", "after"]
        final = metrics(url)
        assert final['speech_requests_dropped_total{reason="timeout_running"}'] == 1
        assert final['speech_requests_dropped_total{reason="timeout_waiting"}'] == 1


def test_work_for_a_disconnected_client_is_skipped():
    handler = ControlledHandler()
    app = make_app(handler, max_queue=4)
    results: dict[str, requests.Response] = {}
    with running(app) as (url, port):
        blocker = send_async(url, results, "first", block=True)
        wait_for(lambda: metrics(url)["speech_requests_in_flight"] == 1)
        body = json.dumps({"inputs": "AAAA", "parameters": {"name": "gone"}}).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        wait_for(lambda: metrics(url)["speech_queue_size"] == 1)
        sock.close()  # the client gives up while waiting
        time.sleep(0.2)
        handler.release.set()
        blocker.join(30)
        wait_for(lambda: metrics(url).get('speech_requests_dropped_total{reason="client_disconnected"}') == 1)
        assert handler.calls == ["first"]
        assert requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "next"}},
                             timeout=10).status_code == 200
        assert handler.calls == ["first", "next"]


def test_error_mapping_request_ids_and_auth():
    handler = ControlledHandler()
    app = make_app(handler, api_token=FAKE_TOKEN)
    with running(app) as (url, _):
        client = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"fail": "client"}},
                               headers=AUTH, timeout=10)
        assert client.status_code == 400 and client.json() == {"error": "that parameter is wrong"}
        crash = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"fail": "crash"}},
                              headers={**AUTH, "X-Request-Id": "trace-42"}, timeout=10)
        assert crash.status_code == 500
        assert crash.json() == {"error": "internal error", "request_id": "trace-42"}
        assert crash.headers["X-Request-Id"] == "trace-42"
        odd = requests.get(url + "/nowhere", headers={"X-Request-Id": "bad id\twith tab"}, timeout=10)
        assert odd.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", odd.headers["X-Request-Id"])
        assert requests.post(url + "/", json={"inputs": "AAAA"}, timeout=10).status_code == 401
        assert requests.get(url + "/metrics", timeout=10).status_code == 200  # GETs need no token


def test_inference_client_request_shapes_are_accepted(monkeypatch):
    """What huggingface_hub's InferenceClient sends (read from its source): with parameters
    a JSON body {"inputs": base64, "parameters": {...}} (application/json on recent
    versions, no content type on older ones); without parameters the raw file bytes."""
    from huggingface_hub import InferenceClient, constants

    # conftest sets HF_HUB_OFFLINE, which makes the client refuse even a local URL; a new
    # thread gets a new HTTP session (older versions cache one per thread).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    import huggingface_hub.utils as hub_utils

    if hasattr(hub_utils, "reset_sessions"):  # huggingface_hub < 1.0 caches requests sessions
        hub_utils.reset_sessions()
    handler = ControlledHandler()
    answers = {}

    def call(url):
        client = InferenceClient(model=url, token=FAKE_TOKEN, timeout=30)
        answers["params"] = dict(client.automatic_speech_recognition(
            speech_wav(), extra_body={"name": "p", "language": "en"}))
        answers["raw"] = dict(client.automatic_speech_recognition(speech_wav()))

    with running(make_app(handler)) as (url, _):
        thread = threading.Thread(target=call, args=(url,))
        thread.start()
        thread.join(60)
    assert answers["params"]["text"] == "p"
    assert answers["params"]["inputs"] == "str"  # base64 in JSON
    assert answers["params"]["parameters"] == {"name": "p", "language": "en"}
    assert answers["raw"]["inputs"] == "bytes" and answers["raw"]["parameters"] == {}


# ---- pure pieces -------------------------------------------------------------------------


def test_parse_request_shapes():
    from speech_endpoint.serving.parsing import RequestError, parse_request, query_parameters

    audio = speech_wav(1.0)
    encoded = base64.b64encode(audio).decode()
    as_json = json.dumps({"inputs": encoded, "parameters": {"language": "en"}}).encode()
    for content_type in ("application/json", "application/json; charset=utf-8", None, "application/octet-stream"):
        assert parse_request(content_type, as_json, {}) == {"inputs": encoded, "parameters": {"language": "en"}}
    for content_type in ("audio/wav", "audio/webm;codecs=opus", "audio/AMR", None, "application/octet-stream"):
        assert parse_request(content_type, audio, {"language": "en"}) == {"inputs": audio,
                                                                            "parameters": {"language": "en"}}
    assert parse_request("application/json", b'{"inputs": "x"}', {"a": "1"}) == {"inputs": "x", "parameters": {"a": "1"}}
    for content_type, body in (("text/plain", b"x"), ("multipart/form-data; boundary=x", b"x"),
                               ("application/json", b"[1]"), ("application/json", b"\xff"), ("audio/wav", b"")):
        with pytest.raises(RequestError):
            parse_request(content_type, body, {})
    assert query_parameters([("a", "1"), ("b", "2"), ("a", "3")]) == {"a": ["1", "3"], "b": "2"}


def test_redaction_filter_and_stream():
    import logging

    from speech_endpoint.serving.loading import safe_error
    from speech_endpoint.serving.redaction import RedactingStream, SecretRedactingFilter

    flt = SecretRedactingFilter([FAKE_TOKEN])
    try:
        raise ValueError(f"token {FAKE_TOKEN} in an exception")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s and %d", (FAKE_TOKEN, 3), sys.exc_info())
    assert flt.filter(record)
    formatted = logging.Formatter().format(record)
    assert FAKE_TOKEN not in formatted and formatted.count("[REDACTED]") == 2 and "and 3" in formatted
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s" %d',
                               ("1.2.3.4", "POST", f"/?q={FAKE_TOKEN}", 200), None)
    flt.filter(access)
    assert access.args == ("1.2.3.4", "POST", "/?q=[REDACTED]", 200)  # args kept for uvicorn's formatter
    buffer = io.StringIO()
    RedactingStream(buffer, [FAKE_TOKEN]).write(f"print {FAKE_TOKEN}\n")
    assert buffer.getvalue() == "print [REDACTED]\n"
    assert safe_error(OSError(f"no file\nsecond line {FAKE_TOKEN}"), [FAKE_TOKEN]) == "OSError: no file"


# ---- settings: environment, flags, errors, the token -------------------------------------


SETTINGS_ENV = {"HOST": "::1", "PORT": "8123", "MAX_QUEUE": "7", "REQUEST_TIMEOUT": "12.5", "RETRY_AFTER": "9",
                "API_TOKEN": FAKE_TOKEN, "ALLOW_UNAUTHENTICATED": "yes", "LOG_LEVEL": "DEBUG",
                "MAX_BODY_BYTES": "4096", "HANDLER_DIR": "/somewhere"}


def server_settings(monkeypatch, argv: list[str], **env: str):
    from scripts import serve

    for name in SERVER_SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return serve.settings_from(serve.build_parser().parse_args(argv))


def test_settings_from_the_environment_with_flags_on_top(monkeypatch):
    from_env = server_settings(monkeypatch, [], **SETTINGS_ENV)
    assert (from_env.host, from_env.port, from_env.max_queue, from_env.request_timeout_s, from_env.retry_after_s,
            from_env.allow_unauthenticated, from_env.log_level, from_env.max_body_bytes, from_env.handler_dir) == \
        ("::1", 8123, 7, 12.5, 9, True, "debug", 4096, "/somewhere")
    assert from_env.token == FAKE_TOKEN
    flags = ["--host", "127.0.0.1", "--port", "9000", "--max-queue", "2", "--request-timeout", "3",
             "--max-body-bytes", "100", "--log-level", "warning", "--api-token", "flag-token-123"]
    both = server_settings(monkeypatch, flags, **SETTINGS_ENV)
    assert (both.host, both.port, both.max_queue, both.request_timeout_s, both.max_body_bytes, both.log_level,
            both.token, both.retry_after_s) == ("127.0.0.1", 9000, 2, 3.0, 100, "warning", "flag-token-123", 9)


def test_settings_defaults_and_the_body_limit_from_max_payload_bytes(monkeypatch):
    defaults = server_settings(monkeypatch, [], MAX_PAYLOAD_BYTES="3000")
    assert (defaults.host, defaults.port, defaults.max_queue, defaults.request_timeout_s, defaults.retry_after_s,
            defaults.token, defaults.allow_unauthenticated, defaults.log_level, defaults.handler_dir) == \
        ("127.0.0.1", 8000, 16, 600.0, 5, None, False, "info", None)
    assert defaults.max_body_bytes == 3000 * 4 // 3 + 64 * 1024  # room for base64 JSON
    assert server_settings(monkeypatch, [], MAX_PAYLOAD_BYTES="3000", MAX_BODY_BYTES="77").max_body_bytes == 77
    assert server_settings(monkeypatch, [], API_TOKEN="", PORT="").token is None  # empty = unset


@pytest.mark.parametrize("argv,env,named", [
    ([], {"PORT": "eighty"}, "environment variable PORT"),
    ([], {"MAX_QUEUE": FAKE_TOKEN}, "environment variable MAX_QUEUE"),  # a token pasted in the wrong place
    ([], {"REQUEST_TIMEOUT": "0"}, "environment variable REQUEST_TIMEOUT"),
    ([], {"RETRY_AFTER": "-1"}, "environment variable RETRY_AFTER"),
    ([], {"ALLOW_UNAUTHENTICATED": "perhaps"}, "environment variable ALLOW_UNAUTHENTICATED"),
    ([], {"LOG_LEVEL": "loud"}, "environment variable LOG_LEVEL"),
    (["--max-queue", "-1"], {"MAX_QUEUE": "4"}, "--max-queue"),
    (["--port", FAKE_TOKEN], {}, "--port"),
])
def test_an_invalid_setting_is_named_and_never_echoed(monkeypatch, argv, env, named):
    from speech_endpoint.serving.settings import SettingsError

    with pytest.raises(SettingsError) as caught:
        server_settings(monkeypatch, argv, API_TOKEN=FAKE_TOKEN, **env)
    message = str(caught.value)
    assert named in message and FAKE_TOKEN not in message, message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained ValidationError


def test_the_token_is_never_in_repr_str_or_dumps(monkeypatch):
    settings = server_settings(monkeypatch, [], API_TOKEN=FAKE_TOKEN)
    shown = [repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json()]
    assert all(FAKE_TOKEN not in text for text in shown)
    assert "api_token=SecretStr('**********')" in repr(settings)


def test_serve_reports_a_bad_variable_and_exits_2():
    env = clean_env(PORT="eighty", API_TOKEN=FAKE_TOKEN, MAX_QUEUE=FAKE_TOKEN)
    result = subprocess.run([sys.executable, "-m", "scripts.serve"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "environment variable PORT" in result.stderr and "environment variable MAX_QUEUE" in result.stderr
    assert FAKE_TOKEN not in result.stdout + result.stderr


def test_the_serving_package_imports_no_top_level_module():
    code = ("import sys, speech_endpoint.serving.app, speech_endpoint.serving.loading, scripts.serve; "
            "print(sorted({'config', 'handler', 'diarization_utils'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---- /metrics: the exposition, parsed by prometheus_client ----------------------------------


def families(url: str) -> dict:
    return {family.name: family for family in scrape(url)}


def sample(family, suffix: str = "", **labels) -> float:
    values = [s.value for s in family.samples if s.name == family.name + suffix and s.labels == labels]
    assert len(values) == 1, (family.name + suffix, labels, family.samples)
    return values[0]


def test_metrics_exposition():
    handler = ControlledHandler()
    with running(make_app(handler, max_queue=5)) as (url, _):
        response = requests.post(url + "/", json={"inputs": "AAAA", "parameters": {"name": "a"}}, timeout=10)
        assert response.status_code == 200
        assert requests.post(url + "/predict", data=b"x", headers={"Content-Type": "text/plain"},
                             timeout=10).status_code == 400
        requests.get(url + "/health", timeout=10)  # not an inference request: not counted
        seen = families(url)
        assert seen["speech_requests"].type == "counter"
        assert sample(seen["speech_requests"], "_total", status="200") == 1
        assert sample(seen["speech_requests"], "_total", status="400") == 1
        assert {s.labels["status"] for s in seen["speech_requests"].samples} == {"200", "400"}
        histogram = seen["speech_request_duration_seconds"]
        assert histogram.type == "histogram"
        buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
        finite = sorted(float(le) for le in buckets if le != "+Inf")
        assert (finite[0], finite[-1]) == (0.1, 1800.0)  # 0.1 s .. 30 min
        assert [buckets[le] for le in sorted(buckets, key=float)] == sorted(buckets.values())  # cumulative
        assert buckets["+Inf"] == 1 and buckets["1800.0"] == 1  # the served request, counted once
        assert sample(histogram, "_count") == 1 and 0 < sample(histogram, "_sum") < 10
        assert sample(seen["speech_model_ready"]) == 1 and sample(seen["speech_queue_capacity"]) == 5
        assert sample(seen["process_resident_memory_bytes"]) > 0

        results: dict[str, requests.Response] = {}
        threads = [send_async(url, results, "blocking", block=True)]
        wait_for(lambda: metrics(url)["speech_requests_in_flight"] == 1)
        threads.append(send_async(url, results, "waiting"))
        wait_for(lambda: metrics(url)["speech_queue_size"] == 1)
        busy = families(url)
        assert sample(busy["speech_requests_in_flight"]) == 1 and sample(busy["speech_queue_size"]) == 1
        handler.release.set()
        for thread in threads:
            thread.join(30)
        done = families(url)
        assert sample(done["speech_requests_in_flight"]) == 0 and sample(done["speech_queue_size"]) == 0
        assert sample(done["speech_requests"], "_total", status="200") == 3
        assert sample(done["speech_request_duration_seconds"], "_count") == 3


def test_each_app_has_its_own_registry():
    first, second = ControlledHandler(), ControlledHandler()
    with running(make_app(first)) as (url_a, _), running(make_app(second)) as (url_b, _):
        assert requests.post(url_a + "/", json={"inputs": "AAAA"}, timeout=10).status_code == 200
        assert metrics(url_a)['speech_requests_total{status="200"}'] == 1
        assert 'speech_requests_total{status="200"}' not in metrics(url_b)


def test_a_second_inference_route_shares_auth_queue_and_metrics():
    """A route with its own parsing and rendering (as /v1/audio/transcriptions will be)."""
    from starlette.responses import JSONResponse, PlainTextResponse

    from speech_endpoint.serving.app import INFERENCE_ROUTES, create_app
    from speech_endpoint.serving.inference import Protocol
    from speech_endpoint.serving.parsing import RequestError
    from support.server import settings

    def parse(request, body: bytes) -> dict:
        if not body:
            raise RequestError("no text")
        return {"inputs": body, "parameters": {"name": body.decode()}}

    def error(status, message, headers, extra):
        return JSONResponse({"error": {"message": message, "code": status}}, status_code=status, headers=headers)

    text_route = Protocol(parse=parse, render=lambda result: PlainTextResponse(result["text"]), error=error)
    handler = ControlledHandler()
    app = create_app(lambda: handler, settings(api_token=FAKE_TOKEN),
                     inference_routes={**INFERENCE_ROUTES, "/v1/echo": text_route})
    with running(app) as (url, _):
        wait_for(lambda: requests.get(url + "/health", timeout=10).status_code == 200)
        ok = requests.post(url + "/v1/echo", data=b"hello", headers=AUTH, timeout=10)
        assert (ok.status_code, ok.text) == (200, "hello") and ok.headers["X-Request-Id"]
        empty = requests.post(url + "/v1/echo", data=b"", headers=AUTH, timeout=10)
        assert empty.status_code == 400 and empty.json() == {"error": {"message": "no text", "code": 400}}
        refused = requests.post(url + "/v1/echo", data=b"x", timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == 401
        assert post(url, "/", json={"inputs": "AAAA", "parameters": {"name": "platform"}}).status_code == 200
        counts = metrics(url)
        assert counts['speech_requests_total{status="200"}'] == 2
        assert counts['speech_requests_total{status="400"}'] == counts['speech_requests_total{status="401"}'] == 1
        assert counts["speech_request_duration_seconds_count"] == 2
        assert handler.calls == ["hello", "platform"]


# ---- the shared launcher (evaluation/local_server.py) ----------------------------------------


def test_local_server_starts_waits_reads_and_stops(tmp_path):
    with fake_handler_server(tmp_path) as server:
        assert server.health_statuses[-1] == 200 and server.proc.poll() is None
        assert server.argv[1:3] == ["-m", "scripts.serve"] and server.url == f"http://127.0.0.1:{server.port}"
        assert requests.get(server.url + "/health", timeout=10).text == "Ok"
        assert server.rss() > 10 * 1024 * 1024
        elsewhere = RunningServer(server.url + "/", server.pid)  # the view loadtest --url takes
        assert elsewhere.wait_healthy(timeout=10) is elsewhere and elsewhere.rss() > 0
        elsewhere.stop()  # not its server: nothing happens
        assert server.proc.poll() is None
    assert server.proc.returncode is not None  # stopped at the end of the block
    output = server.output()
    assert "Uvicorn running" in output and "handler loaded" in output and FAKE_TOKEN not in output


def test_local_server_reports_a_server_that_exits(tmp_path):
    server = fake_handler_server(tmp_path, MAX_QUEUE="many")
    with pytest.raises(ServerError, match="exited with 2") as caught:
        server.wait_healthy(timeout=120)
    assert "environment variable MAX_QUEUE" in str(caught.value) and str(server.log_path) in str(caught.value)
    server.stop()
    default = LocalServer(env=clean_env(), startup_timeout=0.5)  # the default argv, a temporary log
    assert default.argv == serve_argv(default.port)
    with pytest.raises(ServerError, match="not healthy after"):
        with default:
            pass
    assert default.proc.returncode is not None  # stopped, not left running
    assert default.log_path.exists()
    default.log_path.unlink()
