"""scripts/client.py: against the local server (started from the Dockerfile's command line
with the tiny models), over every transport, plus its retry and formatting logic offline."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from scripts import client as cl
from scripts import endpoint_http as http
from support.server import (
    FAKE_TOKEN,
    REPO,
    clean_env,
    speech_wav,
    start_model_server,
)

SCRIPT = ["-m", "scripts.client"]
LINE = re.compile(r"^\[\d\d:\d\d\.\d - \d\d:\d\d\.\d\] SPEAKER_\d\d: \S.*$")


@pytest.fixture(scope="module")
def audio_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "talk.wav"
    path.write_bytes(speech_wav())
    return path


@pytest.fixture(scope="module")
def local_server(fast_models, tmp_path_factory):
    """Started but not waited for: the first test meets it while it loads."""
    proc = start_model_server(fast_models, tmp_path_factory.mktemp("client-server") / "server.log")
    try:
        yield proc
    finally:
        proc.stop()


def run_client(*argv: str, token: str | None = FAKE_TOKEN, timeout: float = 300) -> subprocess.CompletedProcess:
    """The script as a subprocess (how users run it)."""
    # InferenceClient refuses every request (even to a local URL) in huggingface_hub's offline mode.
    env = clean_env(HF_TOKEN=token, HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0")
    result = subprocess.run([sys.executable, *SCRIPT, *argv], capture_output=True, text=True, env=env,
                            timeout=timeout, cwd=REPO)
    assert FAKE_TOKEN not in result.stdout + result.stderr  # never printed
    return result


@pytest.fixture
def client_run(monkeypatch, capsys):
    """Run the client: in-process for the requests transports (fast), as a subprocess for
    inference-client (huggingface_hub's offline mode, set for this test process, would
    refuse the request). Returns (exit code, stdout, stderr)."""

    def run(*argv: str, token: str | None = FAKE_TOKEN):
        if "inference-client" in argv:
            result = run_client(*argv, token=token)
            return result.returncode, result.stdout, result.stderr
        if token:
            monkeypatch.setenv("HF_TOKEN", token)
        else:
            monkeypatch.delenv("HF_TOKEN", raising=False)
        code = cl.main(list(argv))
        captured = capsys.readouterr()
        assert FAKE_TOKEN not in captured.out + captured.err
        return code, captured.out, captured.err

    return run


def test_waits_out_the_start_up_then_prints_speakers(local_server, audio_file):
    """Run while the server is still loading: connection refused / 503 + Retry-After are
    retried within --max-wait, then the transcript comes."""
    result = run_client(str(audio_file), "--url", local_server.url, "--max-wait", "280")
    assert result.returncode == 0, result.stderr
    assert "retrying in" in result.stderr  # it did have to wait
    lines = result.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), result.stdout


@pytest.mark.parametrize("transport", ["json", "binary", "inference-client"])
def test_transports_print_a_speaker_labelled_transcript(local_server, audio_file, client_run, transport):
    local_server.wait_healthy()
    code, out, err = client_run(str(audio_file), "--url", local_server.url, "--transport", transport,
                                "--language", "en", "--num-speakers", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines and all(LINE.match(line) for line in lines), out
    assert {line.split("] ")[1].split(":")[0] for line in lines} == {"SPEAKER_00"}  # num_speakers=1 was sent


def test_inference_client_without_parameters_sends_raw_bytes(local_server, audio_file, client_run):
    local_server.wait_healthy()
    code, out, err = client_run(str(audio_file), "--url", local_server.url, "--transport", "inference-client",
                                "--format", "json")
    assert code == 0, err
    assert json.loads(out)["metadata"]["diarization"] is True


@pytest.mark.parametrize("transport,fmt", [("json", "srt"), ("binary", "vtt"), ("inference-client", "srt"),
                                           ("binary", "json")])
def test_subtitles_and_json(local_server, audio_file, tmp_path, client_run, transport, fmt):
    local_server.wait_healthy()
    target = tmp_path / f"talk.{fmt}"
    code, _, err = client_run(str(audio_file), "--url", local_server.url, "--transport", transport,
                              "--format", fmt, "-o", str(target), "--param", "diarize=true")
    assert code == 0, err
    text = target.read_text()
    if fmt == "srt":
        cues = list(srt.parse(text))
        assert cues and all(c.content.startswith("SPEAKER_") for c in cues)
    elif fmt == "vtt":
        reader = getattr(webvtt, "from_buffer", None) or webvtt.read_buffer
        captions = list(reader(io.StringIO(text)))
        assert captions and all(c.raw_text.startswith("<v SPEAKER_") for c in captions)
    else:
        data = json.loads(text)
        assert set(data) >= {"text", "chunks", "speakers", "metadata"} and "srt" not in data


def test_errors_are_reported_without_retrying(local_server, audio_file, tmp_path, client_run):
    local_server.wait_healthy()
    code, _, err = client_run(str(audio_file), "--url", local_server.url, "--language", "klingon")
    assert code == 1
    assert "HTTP 400" in err and "language" in err and "retrying" not in err
    code, out, err = client_run(str(audio_file), "--url", local_server.url, token="hf_wrongtoken12345")
    assert code == 1 and "HTTP 401" in err
    assert "hf_wrongtoken12345" not in out + err
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    code, _, err = client_run(str(bad), "--url", local_server.url, "--transport", "binary")
    assert code == 1 and "HTTP 400" in err


# ---- offline ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def replies(*items):
    queue = list(items)

    def send():
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return send


def test_cold_start_503_is_retried_until_ready(capsys):
    clock = FakeClock()
    scaling = http.Reply(503, {"X-Scale-Up-Timeout": "600"}, b"")
    loading = http.Reply(503, {"Retry-After": "5"}, b'{"error": "loading"}')
    ok = http.Reply(200, {}, b"{}")
    send = replies(ConnectionError("refused"), scaling, scaling, loading, ok)
    assert http.send_with_retries(send, 600, sleep=clock.sleep, clock=clock) is ok
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0]
    assert capsys.readouterr().err.count("retrying in") == 4


def test_retries_are_bounded():
    clock = FakeClock()
    busy = http.Reply(503, {"Retry-After": "30"}, b'{"error": "busy"}')
    assert http.send_with_retries(replies(*[busy] * 10), 70, sleep=clock.sleep, clock=clock) is busy
    assert sum(clock.sleeps) <= 70
    with pytest.raises(http.EndpointError, match="could not connect"):
        http.send_with_retries(replies(*[ConnectionError("x")] * 20), 10, sleep=FakeClock().sleep, clock=FakeClock())


def test_final_answers_are_not_retried():
    for reply in (http.Reply(503, {}, b'{"error": "The models failed to load"}'), http.Reply(400, {}, b"{}"),
                  http.Reply(500, {}, b"{}")):
        clock = FakeClock()
        assert http.send_with_retries(replies(reply), 600, sleep=clock.sleep, clock=clock) is reply
        assert clock.sleeps == []


def test_transcript_lines():
    result = {"text": "a b", "chunks": [{"text": " a b", "timestamp": [0.0, 3725.44]}],
              "speakers": [{"speaker": "SPEAKER_00", "text": " hello", "timestamp": [1.24, 4.5]},
                           {"speaker": "SPEAKER_01", "text": "hi", "timestamp": [61.0, 3725.44]}]}
    assert cl.transcript_lines(result) == ["[00:01.2 - 00:04.5] SPEAKER_00: hello",
                                           "[01:01.0 - 1:02:05.4] SPEAKER_01: hi"]
    assert cl.transcript_lines({**result, "speakers": []}) == ["[00:00.0 - 1:02:05.4] a b"]
    assert cl.transcript_lines({"text": "", "chunks": [], "speakers": []}) == []
    assert cl.clock(59.96) == "01:00.0"


def test_parameters_and_query_string():
    args = cl.build_parser().parse_args(["x.wav", "--language", "en", "--no-diarization", "--assisted",
                                         "--num-speakers", "2", "--format", "srt", "--param", "chunk_length_s=0",
                                         "--param", "prompt=hello"])
    params = cl.parameters_from(args)
    assert params == {"language": "en", "num_speakers": 2, "diarize": False, "assisted": True,
                      "chunk_length_s": 0, "prompt": "hello", "output_formats": ["srt"]}
    assert http.query_string_parameters(params) == {"language": "en", "num_speakers": "2", "diarize": "false",
                                                  "assisted": "true", "chunk_length_s": "0", "prompt": "hello",
                                                  "output_formats": "srt"}
    assert http.content_type_for(Path("a.MP3")) == "audio/mpeg" and http.content_type_for(Path("a.xyz")) == "audio/x-audio"


def test_token_only_from_the_environment(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert http.auth_headers() == {}
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert http.auth_headers() == {"Authorization": f"Bearer {FAKE_TOKEN}"}
    assert not any("token" in action.dest for action in cl.build_parser()._actions)
    assert os.environ["HF_TOKEN"] == FAKE_TOKEN


def test_body_over_the_limit_is_reported_not_retried(tmp_path, client_run):
    """A 413 (or, for a big upload, the connection the server closed after answering 413)
    is a final answer."""
    from support.server import ControlledHandler, make_app, running

    big = tmp_path / "big.wav"
    big.write_bytes(speech_wav(seconds=60.0))  # ~1.9 MB
    with running(make_app(ControlledHandler(), max_body_bytes=100_000)) as (url, _):
        for transport in ("json", "binary"):
            code, _, err = client_run(str(big), "--url", url, "--transport", transport, "--max-wait", "30")
            assert code == 1
            assert "HTTP 413" in err or "body limit" in err, err
            assert "retrying" not in err
