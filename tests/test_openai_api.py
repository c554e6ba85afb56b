"""OpenAI's audio API on the local server (speech_endpoint/serving/openai_api.py), called
with the official `openai` client.

- `server`: the Dockerfile's command with the fast tiny models (diarization on), checked
  against the platform route's answer for the same audio and parameters: every
  response_format on both routes, timestamp granularities, the extra speaker fields,
  errors in OpenAI's shape;
- in-process apps around fake handlers for what needs control over timing (busy, loading)
  or faults (500), and pure checks of the verbose_json builder;
- once with the real Whisper base (real_model: skips without WHISPER_MODEL_DIR), every
  response_format, verbose_json validated by openai's own `TranscriptionVerbose`.
"""
from __future__ import annotations

import base64
import io
import json
import math
import re
import threading

import numpy as np
import openai
import pytest
import requests
import soundfile
import srt
import webvtt
from openai.types.audio import TranscriptionVerbose, TranslationVerbose

from speech_endpoint.whisper.languages import language_name
from speech_endpoint.serving import openai_format
from support.server import (
    AUTH,
    FAKE_TOKEN,
    REPO,
    healthy_model_server,
    loaded_when,
    make_app,
    metrics,
    post,
    raw_http,
    running,
    speech_wav,
    start_model_server,
    wait_for,
)

# openai marks audio.translations deprecated; the route is still part of OpenAI's API.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

AUDIO = speech_wav(seconds=4.0)
FORMATS = ["json", "text", "srt", "vtt", "verbose_json"]
TASKS = {"transcriptions": "transcribe", "translations": "translate"}
BODY_LIMIT = 1_000_000
SPEAKER = re.compile(r"^SPEAKER_\d\d$")


def upload(data: bytes = AUDIO, name: str = "talk.wav"):
    return (name, data, "audio/wav")


def parts(file=upload(), **fields) -> list:
    """multipart/form-data parts for requests' `files=`: the file (unless None) and text fields."""
    return ([("file", file)] if file is not None else []) + [(k, (None, v)) for k, v in fields.items()]


@pytest.fixture(scope="module")
def server(fast_models, tmp_path_factory):
    with healthy_model_server(fast_models, tmp_path_factory.mktemp("openai") / "server.log",
                              MAX_BODY_BYTES=str(BODY_LIMIT), REQUEST_TIMEOUT="120") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=FAKE_TOKEN, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference(server):
    """The platform route's answer for AUDIO with the same parameters (cached)."""
    answers: dict = {}

    def get(task: str, **params) -> dict:
        key = (task, tuple(sorted(params.items())))
        if key not in answers:
            body = {"inputs": base64.b64encode(AUDIO).decode(),
                    "parameters": {"task": task, "output_formats": ["srt", "vtt"], **params}}
            response = post(server.url, "/predict", json=body)
            assert response.status_code == 200, response.text
            answers[key] = response.json()
        return answers[key]

    return get


def endpoint(client: openai.OpenAI, route: str):
    return client.audio.transcriptions if route == "transcriptions" else client.audio.translations


def verbose(client, route="transcriptions", **kwargs) -> dict:
    """verbose_json's raw body, after openai parsed it into its own type."""
    raw = endpoint(client, route).with_raw_response.create(file=upload(), model="whisper-1",
                                                           response_format="verbose_json", **kwargs)
    assert isinstance(raw.parse(), TranscriptionVerbose if route == "transcriptions" else TranslationVerbose)
    return json.loads(raw.content)


def spans(items):
    return [(item["text"], *item["timestamp"]) for item in items]


# ---- every response_format, both routes ------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("route", list(TASKS))
def test_every_response_format(client, reference, route, fmt):
    task = TASKS[route]
    expected = reference(task)
    raw = endpoint(client, route).with_raw_response.create(file=upload(), model="whisper-1", response_format=fmt)
    assert raw.headers["openai-model"] == "whisper-1"  # model: echoed, not used
    out = raw.parse()
    if fmt == "json":
        assert isinstance(out, openai.types.audio.Transcription if route == "transcriptions"
                          else openai.types.audio.Translation)
        assert json.loads(raw.content) == {"text": expected["text"]} and expected["text"].strip()
    elif fmt == "text":
        assert out == expected["text"] + "\n"
        assert raw.headers["content-type"].startswith("text/plain")
    elif fmt == "srt":
        assert out == expected["srt"]
        cues = list(srt.parse(out))
        assert cues and all(cue.content.startswith("SPEAKER_") for cue in cues)
    elif fmt == "vtt":
        assert out == expected["vtt"]
        reader = getattr(webvtt, "from_buffer", None) or webvtt.read_buffer
        assert list(reader(io.StringIO(out)))
    else:
        body = json.loads(raw.content)
        assert body["task"] == task and body["text"] == expected["text"]
        assert body["duration"] == pytest.approx(4.0, abs=0.01)
        language = "english" if task == "translate" else language_name(expected["metadata"]["language"])
        assert body["language"] == language
        assert [(s["text"], s["start"], s["end"]) for s in body["segments"]] == spans(expected["chunks"])
        for index, segment in enumerate(body["segments"]):
            assert segment["id"] == index and SPEAKER.match(segment["speaker"])
            assert (segment["temperature"], segment["tokens"], segment["no_speech_prob"]) == (0.0, [], 0.0)
        assert "words" not in body  # only when word timestamps are asked for
        assert ("usage" in body) == (task == "transcribe")


# ---- timestamp granularities and the extra fields --------------------------------------------


@pytest.mark.parametrize("granularities", [["word"], ["segment"], ["word", "segment"]])
def test_timestamp_granularities(client, reference, granularities):
    expected = reference("transcribe")
    body = verbose(client, timestamp_granularities=granularities)
    assert ("segments" in body) == ("segment" in granularities)
    assert ("words" in body) == ("word" in granularities)
    if "words" in body:
        assert body["words"] == [{k: w[k] for k in ("word", "start", "end", "speaker", "probability") if k in w} for w in expected["words"]]
        assert all(SPEAKER.match(w["speaker"]) for w in body["words"])


def test_granularities_also_without_brackets(server, reference):
    response = requests.post(server.url + "/v1/audio/transcriptions", headers=AUTH, timeout=120,
                             files=parts(response_format="verbose_json", timestamp_granularities="word"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "segments" not in body and [w["word"] for w in body["words"]] == \
        [w["word"] for w in reference("transcribe")["words"]]


def test_speaker_fields_pass_through(client, reference):
    one = verbose(client, timestamp_granularities=["word", "segment"], extra_body={"num_speakers": 1})
    assert {s["speaker"] for s in one["segments"]} | {w["speaker"] for w in one["words"]} == {"SPEAKER_00"}
    off = verbose(client, timestamp_granularities=["word", "segment"], extra_body={"diarize": "false"})
    assert off["segments"] and all("speaker" not in item for item in off["segments"] + off["words"])
    subtitles = client.audio.transcriptions.create(file=upload(), model="m", response_format="srt",
                                                   extra_body={"diarize": "false"})
    assert subtitles == reference("transcribe", diarize=False)["srt"] and "SPEAKER_" not in subtitles


def test_a_stereo_call_is_split_by_channel_and_mono_is_refused(client, server):
    from support.audio_factory import speech, wav_bytes

    left, right = speech(3.0, seed=0)[:, 0], speech(3.0, seed=2)[:, 0]
    silence = np.zeros_like(left)
    stereo = wav_bytes(np.stack([np.concatenate([left, silence]), np.concatenate([silence, right])], axis=1), 16000)
    body = endpoint(client, "transcriptions").with_raw_response.create(
        file=upload(stereo), model="m", response_format="verbose_json", timestamp_granularities=["word"],
        extra_body={"multichannel": "true", "language": "en"})
    words = json.loads(body.content)["words"]
    assert words and {w["speaker"] for w in words} <= {"SPEAKER_00", "SPEAKER_01"}
    assert all(w["end"] <= 3.5 for w in words if w["speaker"] == "SPEAKER_00")
    assert all(w["start"] >= 2.5 for w in words if w["speaker"] == "SPEAKER_01")
    response = requests.post(server.url + "/v1/audio/transcriptions", headers=AUTH,
                             files=parts(model="m", multichannel="true"), timeout=120)
    assert response.status_code == 400 and response.json()["error"]["param"] == "multichannel"


def test_language_prompt_and_temperature(client, reference):
    assert verbose(client, language="fr")["language"] == "french"
    greedy = client.audio.transcriptions.create(file=upload(), model="m", temperature=0.0)
    # temperature is accepted, and does not change anything: the handler decodes greedily.
    assert client.audio.transcriptions.create(file=upload(), model="m", temperature=0.9).text == greedy.text
    prompted = client.audio.transcriptions.create(file=upload(), model="m", prompt="Quarterly budget review.")
    assert prompted.text == reference("transcribe", prompt="Quarterly budget review.")["text"]


# ---- errors in OpenAI's shape --------------------------------------------------------------


def error_of(response) -> dict:
    assert "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


BAD_FORMS = {  # name: (multipart parts, the param the error names)
    "missing file": (parts(None, model="whisper-1"), "file"),
    "file as text": ([("file", (None, "talk.wav"))], "file"),
    "empty file": (parts(upload(b"")), "file"),
    "not audio": (parts(upload(b"RIFF....garbage")), None),
    "unsupported format": (parts(response_format="xml"), "response_format"),
    "diarized_json": (parts(response_format="diarized_json"), "response_format"),
    "temperature not a number": (parts(temperature="hot"), "temperature"),
    "temperature above 1": (parts(temperature="1.5"), "temperature"),
    "granularity": (parts(**{"timestamp_granularities[]": "sentence"}), "timestamp_granularities"),
    "stream": (parts(stream="true"), "stream"),
    "unknown language": (parts(language="klingon"), "language"),
    "prompt too long": (parts(prompt="word " * 300), "prompt"),
    "num_speakers 0": (parts(num_speakers="0"), "num_speakers"),
    "speaker range": (parts(min_speakers="3", max_speakers="2"), None),
    "model not ascii": (parts(model="wh\u00efsper"), "model"),
    "two files": (parts() + [("other", upload())], None),
}


@pytest.mark.parametrize("name", list(BAD_FORMS))
def test_bad_requests_are_400_in_openai_shape(server, name):
    form, param = BAD_FORMS[name]
    response = requests.post(server.url + "/v1/audio/transcriptions", headers=AUTH, timeout=120, files=form)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, None)


def test_a_body_that_is_not_multipart_is_400(server):
    response = post(server.url, "/v1/audio/translations", json={"file": "x"})
    assert response.status_code == 400 and "multipart/form-data" in error_of(response)["message"]


def test_openai_client_raises_its_own_errors(server, client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=upload(), model="whisper-1", language="klingon")
    assert caught.value.body["param"] == "language" and caught.value.body["type"] == "invalid_request_error"
    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.audio.transcriptions.create(file=upload(), model="whisper-1")
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"


def test_413_in_openai_shape(server):
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\nHost: x\nAuthorization: Bearer {FAKE_TOKEN}\n"
            f"Content-Type: multipart/form-data; boundary=b\nContent-Length: {5 * BODY_LIMIT}\n")
    status, _, body = raw_http(server.port, head)
    error = json.loads(body)["error"]
    assert status == 413 and (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")


# ---- busy, loading, faults: in-process apps around fake handlers -----------------------------


class FakeHandler:
    """Answers a fixed transcript; the form's prompt steers it: "block" waits for
    `release`, "crash" raises an internal error, "client" a ClientError."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, data):
        from speech_endpoint.schema import ClientError

        self.calls += 1
        prompt = data["parameters"].get("prompt")
        if prompt == "block":
            assert self.release.wait(30)
        if prompt == "crash":
            raise KeyError("something internal")
        if prompt == "client":
            raise ClientError("Invalid request: parameter 'language': unknown language")
        return {"text": "ok", "chunks": [{"text": "ok", "timestamp": [0.0, 1.0]}], "speakers": [],
                "metadata": {"duration": 1.0, "language": "en", "diarization": False}}


def form_post(url: str, prompt: str, **kwargs):
    return requests.post(url + "/v1/audio/transcriptions", files={"file": upload()}, data={"prompt": prompt},
                         timeout=30, **kwargs)


def test_busy_is_503_with_retry_after():
    handler = FakeHandler()
    with running(make_app(handler, max_queue=0)) as (url, _):
        first: list = []
        thread = threading.Thread(target=lambda: first.append(form_post(url, "block")))
        thread.start()
        wait_for(lambda: handler.calls == 1)
        busy = form_post(url, "hello")
        handler.release.set()
        thread.join(30)
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
        assert error_of(busy)["type"] == "server_error" and "busy" in error_of(busy)["message"]
        assert first[0].status_code == 200 and first[0].json() == {"text": "ok"}
        counted = metrics(url)
        assert counted['speech_requests_total{status="503"}'] == 1  # the same metrics as every route
        assert counted['speech_requests_total{status="200"}'] == 1


def test_loading_is_503_and_faults_are_not_tracebacks():
    loaded = threading.Event()
    handler = FakeHandler()
    with running(make_app(factory=loaded_when(loaded, handler))) as (url, _):
        loading = form_post(url, "hello")
        assert loading.status_code == 503 and loading.headers["Retry-After"]
        assert "loading" in error_of(loading)["message"]
        loaded.set()
        wait_for(lambda: requests.get(url + "/health", timeout=5).status_code == 200)
        crash = form_post(url, "crash")
        assert crash.status_code == 500 and error_of(crash)["type"] == "server_error"
        assert "something internal" not in crash.text and crash.headers["X-Request-Id"] in crash.text
        refused = form_post(url, "client")
        assert refused.status_code == 400 and error_of(refused)["param"] == "language"


# ---- the verbose_json builder --------------------------------------------------------------


def test_verbose_json_passes_word_probabilities_through():
    result = {"text": "Hi there. Yes.",
              "chunks": [{"text": "Hi there.", "timestamp": [0.0, 1.0]}, {"text": "Yes.", "timestamp": [1.5, 2.0]}],
              "speakers": [{"speaker": "SPEAKER_00", "text": "Hi there.", "timestamp": [0.0, 1.0]},
                           {"speaker": "SPEAKER_01", "text": "Yes.", "timestamp": [1.5, 2.0]}],
              "words": [{"word": "Hi", "start": 0.0, "end": 0.4, "speaker": "SPEAKER_00", "probability": 0.9},
                        {"word": "there.", "start": 0.4, "end": 1.0, "speaker": "SPEAKER_00", "probability": 0.5},
                        {"word": "Yes.", "start": 1.5, "end": 2.0, "speaker": "SPEAKER_01", "probability": 1.0}],
              "metadata": {"duration": 2.5, "language": None, "diarization": True}}
    body = openai_format.verbose_json(result, "transcribe", ["word", "segment"])
    TranscriptionVerbose.model_validate(body)
    assert body["language"] == ""  # unknown: no language given or detected
    assert [w["probability"] for w in body["words"]] == [0.9, 0.5, 1.0]
    assert [s["speaker"] for s in body["segments"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert body["segments"][0]["avg_logprob"] == pytest.approx((math.log(0.9) + math.log(0.5)) / 2, abs=1e-4)
    assert body["segments"][1]["avg_logprob"] == 0.0 and body["segments"][1]["seek"] == 150
    assert openai_format.compression_ratio("ab" * 200) > 2.4  # what Whisper calls repetitive


# ---- the real Whisper base -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_client(real_whisper_dir, tiny_models, tmp_path_factory):
    proc = start_model_server((real_whisper_dir, tiny_models.diarization),
                              tmp_path_factory.mktemp("openai-real") / "server.log", REQUEST_TIMEOUT="300")
    try:
        proc.wait_healthy()
        yield openai.OpenAI(base_url=proc.url + "/v1", api_key=FAKE_TOKEN, max_retries=0, timeout=300)
    finally:
        proc.stop()


@pytest.mark.real_model
@pytest.mark.parametrize("fmt", FORMATS)
def test_real_whisper_every_response_format(real_client, fmt):
    path = REPO / "tests" / "data" / "speech.flac"  # "Good morning everyone, thanks for joining the call. ..."
    clip = ("speech.flac", path.read_bytes(), "audio/flac")
    raw = real_client.audio.transcriptions.with_raw_response.create(
        file=clip, model="whisper-1", response_format=fmt, language="en",
        timestamp_granularities=["word", "segment"] if fmt == "verbose_json" else openai.omit)
    out = raw.parse()
    text = out.text if fmt == "json" else out if isinstance(out, str) else ""
    if fmt == "srt":
        text = " ".join(cue.content for cue in srt.parse(out))
    if fmt == "vtt":
        reader = getattr(webvtt, "from_buffer", None) or webvtt.read_buffer
        text = " ".join(caption.text for caption in reader(io.StringIO(out)))
    if fmt == "verbose_json":
        body = json.loads(raw.content)
        parsed = TranscriptionVerbose.model_validate(body)  # OpenAI's documented fields and types
        assert (body["task"], parsed.language) == ("transcribe", "english")
        assert parsed.duration == pytest.approx(soundfile.info(str(path)).duration, abs=0.01)
        assert parsed.segments and parsed.words and all(SPEAKER.match(s.speaker) for s in parsed.segments)
        assert all(0 <= w.start <= w.end <= parsed.duration for w in parsed.words)
        assert all(0 <= s.start <= s.end <= parsed.duration for s in parsed.segments)
        text = parsed.text
    assert "good morning everyone" in text.lower() and "numbers look fine" in text.lower(), text
