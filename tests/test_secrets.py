"""HF_TOKEN never leaks: not in a log line, an error message, a repr, a response or the
dry-run output.

Everything the code prints during a full run is captured and grepped for a known fake
token:
- the handler alone, in a subprocess, with every logger (transformers and
  huggingface_hub included) at DEBUG: loading with a token, reprs of its settings and
  parts, a good request, bad requests, and the start-up failures (an invalid setting, a
  diarization model that cannot be loaded, an ASR model that does not exist) with their
  tracebacks, as the platform would log them;
- the server (the Dockerfile's command line) in a subprocess at log level debug: good and
  bad requests, requests that carry the token themselves (query string, a parameter,
  a wrong bearer token), health and metrics, and a server whose models fail to load;
- `scripts/create_endpoint.py --dry-run` and `scripts/client.py` against the server.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from support.server import (
    FAKE_TOKEN,
    REPO,
    clean_env,
    post,
    speech_wav,
    start_model_server,
)

TOKEN_PARTS = (FAKE_TOKEN, FAKE_TOKEN[3:], FAKE_TOKEN[:-3])  # also no recognisable piece of it


def assert_no_token(text: str, where: str) -> None:
    for part in TOKEN_PARTS:
        assert part not in text, f"the token (or part of it) is in {where}: ...{_around(text, part)}..."


def _around(text: str, part: str) -> str:
    i = text.find(part)
    return text[max(0, i - 200): i + 200]


# ---- the handler alone, logging at DEBUG -------------------------------------------------

HANDLER_RUN = r'''
import base64, json, logging, os, sys, traceback, warnings

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="%(levelname)s %(name)s: %(message)s")
warnings.simplefilter("always")
logging.captureWarnings(True)
import transformers, huggingface_hub

transformers.logging.set_verbosity_debug()
huggingface_hub.logging.set_verbosity_debug()

import torch
torch.set_num_threads(1)
from handler import EndpointHandler
from speech_endpoint.schema import ClientError
from support.server import speech_wav

logging.getLogger("speech_endpoint").debug("building the handler")
handler = EndpointHandler(os.environ["REPO"])
print("SETTINGS repr:", repr(handler.settings))
print("SETTINGS str:", str(handler.settings))
print("SETTINGS dump:", handler.settings.model_dump())
print("SETTINGS json:", handler.settings.model_dump_json())
print("HANDLER vars:", {k: repr(v)[:2000] for k, v in vars(handler).items()})
print("ASR vars:", {k: repr(v)[:300] for k, v in vars(handler.asr).items()})
print("DIARIZER vars:", {k: repr(v)[:300] for k, v in vars(handler.diarizer).items()})

audio = speech_wav()
good = handler({"inputs": base64.b64encode(audio).decode(), "parameters": {"num_speakers": 2, "output_formats": ["srt", "rttm"]}})
print("GOOD:", json.dumps(good))

bad = [
    {"inputs": "not base64 !!!"},
    {"inputs": os.environ["HF_TOKEN"]},  # the token itself as (invalid) base64 audio
    {"inputs": base64.b64encode(b"not audio at all").decode()},
    {"inputs": audio, "parameters": {"batch_size": 10**6}},
    {"inputs": audio, "parameters": {"task": "dance", "diarize": "maybe"}},
    {"inputs": audio, "parameters": {"num_speakers": 500, "language": "klingon"}},
    {"parameters": {}},
    "a string body",
]
for data in bad:
    try:
        handler(data)
    except ClientError as exc:
        print("CLIENT ERROR:", exc)
        logging.getLogger("platform").info("400 %s", exc, exc_info=True)
    else:
        print("UNEXPECTED SUCCESS")

# start-up failures, logged with their tracebacks as the platform's toolkit does
from config import ModelSettings
for name, value in (("MAX_BATCH_SIZE", "zero"), ("CPU_BF16", "sometimes")):
    os.environ[name] = value
    try:
        ModelSettings.from_env()
    except Exception as exc:
        print("SETTINGS ERROR:", exc)
        logging.getLogger("platform").error("start-up failed", exc_info=True)
        traceback.print_exc()
    del os.environ[name]
for env in ({"DIARIZATION_MODEL": "/nonexistent/diarization"},
            {"DIARIZATION_MODEL": "someone/private-diarization"},
            {"ASR_MODEL": "/nonexistent/whisper", "DIARIZATION_MODEL": ""},
            {"ASR_MODEL": "someone/private-whisper", "DIARIZATION_MODEL": ""}):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        EndpointHandler(os.environ["REPO"])
    except Exception as exc:
        print("LOAD ERROR:", type(exc).__name__, exc)
        logging.getLogger("platform").error("start-up failed", exc_info=True)
        traceback.print_exc()
    else:
        print("UNEXPECTED LOAD")
    os.environ.clear()
    os.environ.update(saved)
print("DONE")
'''


@pytest.fixture(scope="module")
def handler_output(tiny_models, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("secrets-handler")
    script = folder / "run.py"
    script.write_text(HANDLER_RUN)
    env = clean_env(REPO=str(REPO), PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]), HF_TOKEN=FAKE_TOKEN, ASR_MODEL=str(tiny_models.whisper),
                    ASSISTANT_MODEL=str(tiny_models.assistant), DIARIZATION_MODEL=str(tiny_models.diarization),
                    WARMUP="true", PYTHONWARNINGS="always")
    result = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    output = result.stdout + "\n" + result.stderr
    (folder / "output.txt").write_text(output)
    assert result.returncode == 0, output[-5000:]
    return output


def test_the_handler_run_covered_what_it_should(handler_output):
    out = handler_output
    assert "DONE" in out and "UNEXPECTED" not in out
    assert "DEBUG speech_endpoint: building the handler" in out  # DEBUG logging was on
    # libraries' debug lines too (transformers 5 prefixes them "[transformers] ", 4.51 does not)
    assert "loading configuration file" in out
    good = json.loads(next(line for line in out.splitlines() if line.startswith("GOOD: "))[6:])
    assert good["text"].strip() and good["speakers"]
    assert out.count("CLIENT ERROR:") == 8
    assert out.count("SETTINGS ERROR:") == 2 and "MAX_BATCH_SIZE" in out and "CPU_BF16" in out
    assert out.count("LOAD ERROR:") == 4 and "Traceback" in out
    assert "SecretStr('**********')" in out and '"hf_token":"**********"' in out


def test_the_handler_never_prints_the_token(handler_output):
    assert_no_token(handler_output, "the handler's output")


# ---- the server, log level debug -------------------------------------------------------------


@pytest.fixture(scope="module")
def server_output(fast_models, tmp_path_factory) -> dict:
    """Run the server through good and bad requests, then stop it; its whole output and
    every response body and header seen."""
    folder = tmp_path_factory.mktemp("secrets-server")
    proc = start_model_server(fast_models, folder / "server.log", LOG_LEVEL="debug", MAX_QUEUE="4")
    seen: list[str] = []

    def record(response: requests.Response) -> requests.Response:
        seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    try:
        proc.wait_healthy()
        audio = speech_wav()
        encoded = base64.b64encode(audio).decode()
        statuses = {}
        statuses["good json"] = record(post(proc.url, "/", json={"inputs": encoded, "parameters": {"num_speakers": 2}}))
        statuses["good binary"] = record(post(proc.url, "/predict?diarize=false", data=audio,
                                              headers={"Content-Type": "audio/wav"}))
        statuses["token in the query"] = record(post(proc.url, "/predict", data=audio, params={"note": FAKE_TOKEN},
                                                     headers={"Content-Type": "audio/wav"}))
        statuses["token as a parameter"] = record(post(proc.url, "/predict", json={
            "inputs": encoded, "parameters": {"language": FAKE_TOKEN, "prompt": FAKE_TOKEN}}))
        statuses["token as inputs"] = record(post(proc.url, "/", json={"inputs": FAKE_TOKEN}))
        statuses["wrong bearer"] = record(requests.post(proc.url + "/", data=audio, timeout=60, headers={
            "Authorization": f"Bearer {FAKE_TOKEN}x", "Content-Type": "audio/wav"}))
        statuses["bad base64"] = record(post(proc.url, "/", json={"inputs": "%%%"}))
        statuses["not audio"] = record(post(proc.url, "/", data=b"RIFF garbage", headers={"Content-Type": "audio/wav"}))
        statuses["bad json"] = record(post(proc.url, "/", data=b"{", headers={"Content-Type": "application/json"}))
        statuses["bad parameter"] = record(post(proc.url, "/", json={"inputs": encoded, "parameters": {"batch_size": -1}}))
        statuses["health"] = record(requests.get(proc.url + "/health", timeout=10))
        statuses["metrics"] = record(requests.get(proc.url + "/metrics", timeout=10))
        (folder / "talk.wav").write_bytes(audio)
        client = subprocess.run([sys.executable, "-m", "scripts.client", str(folder / "talk.wav"),
                                 "--url", proc.url, "--format", "json"],
                                capture_output=True, text=True, timeout=300, cwd=REPO,
                                env=clean_env(HF_TOKEN=FAKE_TOKEN))
    finally:
        proc.stop()
    return {"log": proc.output(), "responses": "\n".join(seen),
            "statuses": {k: v.status_code for k, v in statuses.items()},
            "client": (client.returncode, client.stdout + client.stderr)}


def test_the_server_run_covered_what_it_should(server_output):
    statuses = server_output["statuses"]
    assert statuses == {"good json": 200, "good binary": 200, "token in the query": 200,
                        "token as a parameter": 400, "token as inputs": 400, "wrong bearer": 401,
                        "bad base64": 400, "not audio": 400, "bad json": 400, "bad parameter": 400,
                        "health": 200, "metrics": 200}
    log = server_output["log"]
    assert "Uvicorn running" in log and "POST /predict" in log and " DEBUG " in log
    assert "[REDACTED]" in log  # the access log line of the request with the token in its query
    code, output = server_output["client"]
    assert code == 0, output
    assert json.loads(output)["text"].strip()


def test_the_server_never_prints_or_answers_the_token(server_output):
    assert_no_token(server_output["log"], "the server's output")
    assert_no_token(server_output["responses"], "a response")
    assert_no_token(server_output["client"][1], "the client's output")


def test_a_server_whose_models_fail_to_load_does_not_leak_the_token(fast_models, tmp_path):
    proc = start_model_server(fast_models, tmp_path / "server.log", LOG_LEVEL="debug",
                              ASR_MODEL=str(tmp_path / "no-such-model"))
    try:
        deadline = time.monotonic() + 180
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(proc.url + "/health", timeout=5)
            except requests.ConnectionError:
                health = None
            if health is not None and "failed" in health.text:
                break
            assert proc.proc.poll() is None, proc.output()[-3000:]
            time.sleep(0.2)
        assert health is not None and health.status_code == 503 and "failed" in health.text, proc.output()[-3000:]
        answer = post(proc.url, "/", json={"inputs": "AAAA"})
        assert answer.status_code == 503
    finally:
        proc.stop()
    assert_no_token(health.text + answer.text + str(dict(answer.headers)), "the health/error answers")
    output = proc.output()
    assert "loading the handler failed" in output and "Traceback" in output
    assert_no_token(output, "the server's output")


# ---- dry-run ---------------------------------------------------------------------------------


def test_create_endpoint_dry_run_masks_the_token():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "create_endpoint.py"), "--name", "speech", "--repository",
         "me/speech", "--diarization-model", "pyannote/speaker-diarization-3.1", "--dry-run"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=clean_env(HF_TOKEN=FAKE_TOKEN))
    assert result.returncode == 0, result.stderr
    assert_no_token(result.stdout + result.stderr, "the dry-run output")
    request = json.loads(result.stdout)
    assert request["token"] == "***" and request["secrets"] == {"HF_TOKEN": "***"}


def test_token_parts_helper_catches_pieces():
    with pytest.raises(AssertionError):
        assert_no_token(f"x {FAKE_TOKEN[2:]} y", "a sample")
    assert_no_token("hf_ and FAKE alone are fine", "a sample")
