"""scripts/transcribe_many.py: many files, N requests at a time, retries, resume, summary.

- against the local server (the Dockerfile's command, fast tiny models): a folder with a
  file that is not audio (one 400, never sent again), resume (the server's /metrics count
  what it saw), the summary;
- against scripted in-process servers: a 503 phase as Inference Endpoints answer while a
  scaled-to-zero endpoint starts, 429 with Retry-After, a request that times out, a 401
  that stops the run;
- 40 generated clips through a proxy that answers 503 for its first seconds, in front of
  the local server: every file done once, a resume run sends nothing; the throughput is
  printed (`pytest -s`; README). The same with Whisper base when WHISPER_MODEL_DIR is set.
"""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import pytest
import requests
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scripts import transcribe_many as tm
from scripts.endpoint_http import EndpointError, send_with_retries
from support.audio_factory import encode, speech
from support.server import (
    FAKE_TOKEN,
    healthy_model_server,
    metrics,
    running,
    speech_wav,
    start_model_server,
)

COUNTED = ("200", "400", "503")


@pytest.fixture(scope="module")
def server(fast_models, tmp_path_factory):
    with healthy_model_server(fast_models, tmp_path_factory.mktemp("many") / "server.log") as proc:
        yield proc


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)


def seen(url: str) -> collections.Counter:
    """Inference requests the local server answered so far, by status."""
    values = metrics(url)
    return collections.Counter({s: int(values.get(f'speech_requests_total{{status="{s}"}}', 0)) for s in COUNTED})


def delta(url: str, before: collections.Counter) -> dict[str, int]:
    after = seen(url)
    return {s: after[s] - before[s] for s in COUNTED if after[s] - before[s]}


@pytest.fixture
def folder(tmp_path) -> Path:
    """Three clips (one in a sub-folder, one FLAC), a file named .wav that is not audio, and
    a text file the folder search ignores."""
    root = tmp_path / "audio"
    (root / "day2").mkdir(parents=True)
    (root / "a.wav").write_bytes(speech_wav(seconds=2.0, seed=0))
    (root / "b.flac").write_bytes(encode(speech(2.0, seed=1), 16000, "flac"))
    (root / "day2" / "c.wav").write_bytes(speech_wav(seconds=2.0, seed=2))
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    (root / "notes.txt").write_text("not audio, not sent")
    return root


# ---- against the local server ----------------------------------------------------------------


def test_folder_run_resume_and_summary(server, folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(folder), "--url", server.url, "--output", str(out), "--concurrency", "2", "--formats", "srt,vtt",
            "--no-diarization", "--quiet", "--summary-json", str(tmp_path / "summary.json")]
    before = seen(server.url)
    assert tm.main(argv) == 1  # a file failed
    assert delta(server.url, before) == {"200": 3, "400": 1}  # the bad file was sent once
    for name in ("a", "b", "day2/c"):
        assert json.loads((out / f"{name}.json").read_text())["metadata"]["diarization"] is False
        assert (out / f"{name}.srt").read_text().startswith("1\n")
        assert (out / f"{name}.vtt").read_text().startswith("WEBVTT")
        assert "srt" not in json.loads((out / f"{name}.json").read_text())
    assert not list(out.glob("broken.*")) and not list(out.rglob("*.tmp"))
    report = capsys.readouterr().out
    assert "files: 3 done, 0 skipped (outputs exist), 1 failed, of 4" in report
    assert "audio transcribed: 0.0017 h (6.0 s)" in report
    assert "audio-hours per hour" in report and "files per minute" in report
    failures = report.split("failures:\n")[1].splitlines()
    assert len(failures) == 1 and failures[0].startswith(f"  {folder / 'broken.wav'}: HTTP 400: ")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["audio_s"]) == (3, 1, 6.0)

    # Resume: only what has no outputs is sent (the lost JSON, and the file that failed).
    (out / "b.json").unlink()
    before = seen(server.url)
    assert tm.main(argv) == 1
    assert delta(server.url, before) == {"200": 1, "400": 1}
    assert "files: 1 done, 2 skipped (outputs exist), 1 failed, of 4" in capsys.readouterr().out

    # Nothing left to do: no request at all.
    before = seen(server.url)
    assert tm.main([str(folder / "a.wav"), str(folder / "b.flac"), *argv[1:]]) == 0
    assert delta(server.url, before) == {}
    assert "files: 0 done, 2 skipped" in capsys.readouterr().out


# ---- scripted servers: 503 phase, 429, timeouts, 401 -------------------------------------------


class Scripted:
    """An endpoint that answers its requests from a script, one entry per request
    (then "ok"): "503" (scaling up, X-Scale-Up-Timeout), "busy" (503 + Retry-After 1),
    "loading" (503 + Retry-After 10), "429", "slow" (answers after 2 s), "401"."""

    def __init__(self, *script: str):
        self.script = list(script)
        self.requests: list[str] = []

    def app(self) -> Starlette:
        async def predict(request: Request) -> Response:
            body = await request.json()
            step = self.script.pop(0) if self.script else "ok"
            self.requests.append(step)
            if step == "503":
                return PlainTextResponse("scaling up", status_code=503, headers={"X-Scale-Up-Timeout": "600"})
            if step in ("busy", "loading"):
                wait = "1" if step == "busy" else "10"
                return JSONResponse({"error": step}, status_code=503, headers={"Retry-After": wait})
            if step == "429":
                return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "1"})
            if step == "401":
                return JSONResponse({"error": "Missing or invalid bearer token"}, status_code=401)
            if step == "slow":
                await run_in_threadpool(time.sleep, 2.0)
            assert body["parameters"]["output_formats"] == ["srt"]
            return JSONResponse({"text": "hi", "chunks": [], "speakers": [], "srt": "1\n00:00:00,000 --> 00:00:01,000\nhi\n",
                                 "metadata": {"duration": 2.0}})

        return Starlette(routes=[Route("/", predict, methods=["POST"])])


def clips(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"clip{index:02d}.wav"
        path.write_bytes(speech_wav(seconds=1.0, seed=index))
        paths.append(path)
    return paths


def test_waits_out_scaling_up_busy_429_and_timeouts(tmp_path, capsys):
    endpoint = Scripted("slow", "503", "503", "busy", "429")
    with running(endpoint.app()) as (url, _):
        items = tm.collect(clips(tmp_path / "in", 3), [])
        summary = tm.run(items, url=url, params={"output_formats": ["srt"]}, out_dir=tmp_path / "out",
                         formats=["srt"], concurrency=1, timeout=1.0, max_wait=60, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (3, 0, 0), summary.failures
    # The first file waits through a timeout and 4 retryable answers; then two more files.
    assert endpoint.requests == ["slow", "503", "503", "busy", "429", "ok", "ok", "ok"]
    log = capsys.readouterr().err
    assert log.count("(endpoint scaling up); retrying in") == 2 and "no answer in time; retrying" in log
    assert all((tmp_path / "out" / f"clip{i:02d}.srt").is_file() for i in range(3))


def test_401_stops_the_run(tmp_path):
    """A 401 stops the run: files not sent yet are not sent, and a file waiting to retry a
    503 gives up at once instead of waiting out --max-wait."""
    endpoint = Scripted("loading", "401")
    with running(endpoint.app()) as (url, _):
        started = time.monotonic()
        summary = tm.run(tm.collect(clips(tmp_path / "in", 4), []), url=url, params={}, out_dir=tmp_path / "out",
                         formats=[], concurrency=2, max_wait=60, progress=False)
    assert time.monotonic() - started < 10
    assert endpoint.requests == ["loading", "401"] and summary.failed == 4
    reasons = sorted(reason.split(":")[0] for _, reason in summary.failures)
    assert reasons == ["HTTP 401", "not finished", "not sent", "not sent"], summary.failures


def test_timeouts_are_retried_within_max_wait():
    now = [0.0]

    def send():
        now[0] += 5.0
        raise TimeoutError("no answer within 5 s")

    with pytest.raises(EndpointError, match="no answer from the endpoint within 20 s"):
        send_with_retries(send, 20, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0],
                          log=lambda message: None)


# ---- inputs ----------------------------------------------------------------------------------


def test_inputs_from_folders_files_and_lists(folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# recordings\naudio/a.wav\n\n" + str(folder / "day2" / "c.wav") + "\n")
    items = tm.collect([folder], [listing])
    assert [item.name for item in items] == ["a", "b", "broken", "day2/c"]  # duplicates from the list merged
    clash = tmp_path / "other" / "a.wav"
    clash.parent.mkdir()
    clash.write_bytes(b"x")
    with pytest.raises(ValueError, match="would write the same outputs"):
        tm.collect([folder / "a.wav", clash], [])
    with pytest.raises(ValueError, match="no such file"):
        tm.collect([tmp_path / "missing.wav"], [])
    with pytest.raises(SystemExit):
        tm.main([str(folder), "--output", str(tmp_path / "o"), "--formats", "docx"])


# ---- 40 clips with a 503 phase in front of the local server -------------------------------------


class ScalingUpProxy:
    """In front of `upstream`: answers 503 with X-Scale-Up-Timeout (as Inference Endpoints do
    while a scaled-to-zero endpoint starts) for `phase_s` seconds from its first request,
    then forwards each POST."""

    def __init__(self, upstream: str, phase_s: float):
        self.upstream, self.phase_s = upstream, phase_s
        self.first: float | None = None
        self.statuses: collections.Counter = collections.Counter()

    def app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            body = await request.body()
            self.first = self.first or time.monotonic()
            if time.monotonic() - self.first < self.phase_s:
                self.statuses[503] += 1
                return PlainTextResponse("scaling up", status_code=503, headers={"X-Scale-Up-Timeout": "600"})
            headers = {k: v for k, v in request.headers.items() if k in ("authorization", "content-type")}
            answer = await run_in_threadpool(requests.post, self.upstream + request.url.path, data=body,
                                             headers=headers, timeout=300)
            self.statuses[answer.status_code] += 1
            return Response(answer.content, status_code=answer.status_code,
                            media_type=answer.headers.get("content-type"))

        return Starlette(routes=[Route("/", forward, methods=["POST"])])


def forty_clips(server_url: str, tmp_path: Path, label: str) -> None:
    paths = []
    for index in range(40):  # the test clip from 40 places, 2 s each
        path = tmp_path / "in" / f"clip{index:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(speech_wav(seconds=2.0, seed=index))
        paths.append(path)
    proxy = ScalingUpProxy(server_url, phase_s=4.0)
    with running(proxy.app()) as (url, _):
        before = seen(server_url)
        first = tm.run(tm.collect([tmp_path / "in"], []), url=url, params={"output_formats": ["srt"]},
                       out_dir=tmp_path / "out", formats=["srt"], concurrency=4, max_wait=120, progress=False)
        done = delta(server_url, before)
        resumed = tm.run(tm.collect([tmp_path / "in"], []), url=url, params={"output_formats": ["srt"]},
                         out_dir=tmp_path / "out", formats=["srt"], concurrency=4, progress=False)
        assert delta(server_url, before) == done  # the resume run sent nothing
    assert (first.done, first.failed) == (40, 0) and done == {"200": 40}  # every file exactly once
    assert proxy.statuses[503] >= 4 and proxy.statuses[200] == 40
    assert (resumed.done, resumed.skipped, resumed.failed) == (0, 40, 0)
    print(f"\n[{label}] 40 x 2 s clips, --concurrency 4 --formats srt, 503 for the first {proxy.phase_s:g} s "
          f"({proxy.statuses[503]} answers 503)")
    print("\n".join(first.lines()))
    print(f"resume: {resumed.lines()[0]}")


def test_forty_clips_with_a_503_phase(server, tmp_path):
    forty_clips(server.url, tmp_path, "tiny test model")


@pytest.mark.real_model
def test_forty_clips_whisper_base(real_whisper_dir, tmp_path):
    proc = start_model_server((real_whisper_dir, ""), tmp_path / "server.log", DIARIZATION_MODEL="")
    try:
        proc.wait_healthy()
        forty_clips(proc.url, tmp_path, f"Whisper base ({real_whisper_dir.name}), no diarization")
    finally:
        proc.stop()
