"""Helpers for the tests that talk to the local server (test_server, test_secrets,
test_client, test_hardening, test_transcribe_cli): generated speech, the fast tiny Whisper
(`fast_models` fixture, imported by those modules), the Dockerfile's command on
`evaluation.local_server.LocalServer`, in-process apps around fake handlers, and a
Prometheus scrape."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from evaluation.local_server import REPO, LocalServer, free_port
from support.audio_factory import speech, wav_bytes
from speech_endpoint.serving.settings import ServerSettings, env_name

DOCKERFILE = REPO / "Dockerfile"
FAKE_TOKEN = "hf_FAKEtoken1234567890"
AUTH = {"Authorization": f"Bearer {FAKE_TOKEN}"}
SERVER_SETTINGS_ENV = tuple(env_name(field) for field in ServerSettings.model_fields)
SERVER_ENV_NAMES = ("ASR_MODEL", "ASSISTANT_MODEL", "DIARIZATION_MODEL", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                    "MAX_PAYLOAD_BYTES", "WARMUP", "DEFAULT_ASSISTED", *SERVER_SETTINGS_ENV)


# ---- audio and models ----------------------------------------------------------------------


def speech_wav(seconds: float = 4.0, seed: int = 0, rate: int = 16000) -> bytes:
    """A WAV of speech (the test clip, from another place for each seed)."""
    return wav_bytes(speech(seconds, rate, seed=seed), rate)


def make_fast_whisper(source: Path, target: Path, max_new_tokens: int = 12) -> Path:
    """A copy of the tiny Whisper that decodes quickly and emits text: at most
    `max_new_tokens` tokens, and timestamp tokens suppressed (random weights otherwise
    emit only timestamps, i.e. an empty transcript)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    path = target / "generation_config.json"
    generation = json.loads(path.read_text())
    vocab_size = json.loads((target / "config.json").read_text())["vocab_size"]
    first_timestamp = generation["no_timestamps_token_id"] + 1
    generation["suppress_tokens"] = sorted(set(generation.get("suppress_tokens") or [])
                                           | set(range(first_timestamp, vocab_size)))
    generation["max_new_tokens"] = max_new_tokens
    path.write_text(json.dumps(generation, indent=2))
    return target


@pytest.fixture(scope="module")
def fast_models(tiny_models, tmp_path_factory):
    """(whisper folder that decodes fast and emits text, diarization folder)."""
    whisper = make_fast_whisper(Path(tiny_models.whisper), tmp_path_factory.mktemp("fast") / "whisper")
    return whisper, Path(tiny_models.diarization)


# ---- the server in a subprocess ------------------------------------------------------------


def dockerfile_command() -> list[str]:
    """ENTRYPOINT + CMD of the Dockerfile (exec form), as the container runs them."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^\s*(ENTRYPOINT|CMD)\s+(\[.*\])\s*$", line)
        if match:
            value = json.loads(match.group(2))
            if match.group(1) == "ENTRYPOINT":
                entrypoint = value
            else:
                cmd = value
    return entrypoint + cmd


def server_argv(port: int, *extra: str) -> list[str]:
    """The Dockerfile's command with this interpreter, loopback and `port`."""
    argv = dockerfile_command()
    assert argv[0] == "python", argv
    argv = [sys.executable, *argv[1:]]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return [*argv, *extra]


def clean_env(**values: str | None) -> dict[str, str]:
    """This process's environment without the server's and the models' settings, with
    one thread, offline, plus `values` (None: left unset)."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_NAMES}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYANNOTE_METRICS_ENABLED="0", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def start_model_server(fast_models, log_path: Path, *extra_argv: str, **env: str) -> LocalServer:
    """The Dockerfile's command with the fast tiny models and FAKE_TOKEN as HF_TOKEN and
    API_TOKEN; started, not waited for."""
    whisper, diarization = fast_models
    values = dict(ASR_MODEL=str(whisper), DIARIZATION_MODEL=str(diarization), WARMUP="false",
                  HF_TOKEN=FAKE_TOKEN, API_TOKEN=FAKE_TOKEN)
    values.update(env)
    return LocalServer(server_argv(free_port(), *extra_argv), env=clean_env(**values), log_path=log_path)


@contextlib.contextmanager
def healthy_model_server(fast_models, log_path: Path, **env: str):
    """start_model_server, waited for until /health answers 200; stopped on exit."""
    proc = start_model_server(fast_models, log_path, **env)
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.stop()


# ---- HTTP ----------------------------------------------------------------------------------


def post(url: str, path: str = "/", **kwargs) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return requests.post(url + path, headers=headers, timeout=120, **kwargs)


def _read_until(sock: socket.socket, data: bytes, done) -> bytes:
    while not done(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def raw_http(port: int, head: str, body_parts=(), read_timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """Send a hand-made HTTP/1.1 request; return (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in body_parts:
            sock.sendall(part)
        data = _read_until(sock, b"", lambda d: b"\r\n\r\n" in d)
        header_blob, _, rest = data.partition(b"\r\n\r\n")
        lines = header_blob.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        rest = _read_until(sock, rest, lambda d: len(d) >= length)
        return int(lines[0].split()[1]), headers, rest


def scrape(url: str):
    """GET /metrics, parsed by prometheus_client: the metric families."""
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return list(text_string_to_metric_families(response.text))


def metrics(url: str) -> dict[str, float]:
    """The scrape as {'name{label="value",...}': value} (labels sorted)."""
    out = {}
    for family in scrape(url):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


# ---- in-process servers around fake handlers -------------------------------------------------


class ControlledHandler:
    """Records calls; `{"parameters": {"block": true}}` waits until `release` is set."""

    def __init__(self):
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, data):
        from speech_endpoint.schema import ClientError

        params = data.get("parameters") or {}
        self.calls.append(params.get("name", "?"))
        if params.get("block"):
            assert self.release.wait(30)
        if params.get("fail") == "client":
            raise ClientError("that parameter is wrong")
        if params.get("fail") == "crash":
            raise KeyError("something internal")
        return {"text": params.get("name", ""), "chunks": [], "speakers": [],
                "inputs": type(data["inputs"]).__name__, "parameters": params}


@contextlib.contextmanager
def running(app):
    """`app` on uvicorn in a thread on a free port: yields (url, port)."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive())
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def settings(**values) -> ServerSettings:
    """ServerSettings from `values` only: the server's variables in this process's
    environment are ignored."""
    with pytest.MonkeyPatch.context() as patch:
        for name in SERVER_SETTINGS_ENV:
            patch.delenv(name, raising=False)
        return ServerSettings(**values)


def loaded_when(event: threading.Event, handler):
    """A handler factory that loads `handler` once `event` is set (the server stays in its
    loading state until then)."""

    def factory():
        assert event.wait(30)
        return handler

    return factory


def make_app(handler=None, *, factory=None, **values):
    from speech_endpoint.serving.app import create_app

    values.setdefault("retry_after_s", 2)
    return create_app(factory or (lambda: handler), settings(**values), secrets=[FAKE_TOKEN])
