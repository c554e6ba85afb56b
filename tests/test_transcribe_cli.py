"""scripts/transcribe.py: a real run over two files with the tiny models (JSON, SRT and VTT
that parse), plus its progress hook and parameters offline."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from scripts import transcribe as tr
from support.server import FAKE_TOKEN, REPO, clean_env, speech_wav

SCRIPT = ["-m", "scripts.transcribe"]


def read_vtt(text: str):
    reader = getattr(webvtt, "from_buffer", None) or webvtt.read_buffer
    return list(reader(io.StringIO(text)))


def test_writes_json_srt_and_vtt_that_parse(fast_models, tmp_path):
    whisper, diarization = fast_models
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, seed in (("first.wav", 0), ("second.wav", 1)):
        (inputs / name).write_bytes(speech_wav(seed=seed))
    out = tmp_path / "out"
    env = clean_env(ASR_MODEL=str(whisper), DIARIZATION_MODEL=str(diarization), WARMUP="false", HF_TOKEN=FAKE_TOKEN)
    result = subprocess.run([sys.executable, *SCRIPT, str(inputs / "first.wav"), str(inputs / "second.wav"),
                             "--output", str(out), "--language", "en", "--num-speakers", "1", "--progress"],
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert FAKE_TOKEN not in result.stdout + result.stderr
    assert "s audio" in result.stderr  # the progress bar was drawn (forced with --progress)
    written = sorted(Path(line).name for line in result.stdout.splitlines())
    assert written == sorted(f"{stem}.{ext}" for stem in ("first", "second") for ext in ("json", "srt", "vtt"))
    for stem in ("first", "second"):
        data = json.loads((out / f"{stem}.json").read_text())
        assert set(data) >= {"text", "chunks", "speakers", "metadata"} and "srt" not in data
        assert data["metadata"]["language"] == "en" and data["metadata"]["diarization"] is True
        assert data["text"].strip() and data["speakers"]
        cues = list(srt.parse((out / f"{stem}.srt").read_text()))
        assert cues and all(c.content.startswith("SPEAKER_00: ") for c in cues)
        assert all(c.end.total_seconds() <= data["metadata"]["duration"] + 0.01 for c in cues)
        captions = read_vtt((out / f"{stem}.vtt").read_text())
        assert len(captions) == len(cues)
    assert not list(inputs.glob("*.json"))  # --output was honoured


def test_request_parameters():
    parser = tr.build_parser()
    args = parser.parse_args(["a.wav", "--language", "de", "--task", "translate", "--num-speakers", "2",
                              "--no-diarization", "--assisted", "--batch-size", "4", "--beam-size", "3"])
    assert tr.request_parameters(args, ["json", "srt", "vtt"]) == {
        "language": "de", "task": "translate", "num_speakers": 2, "batch_size": 4, "beam_size": 3, "diarize": False,
        "assisted": True, "output_formats": ["srt", "vtt"]}
    assert tr.request_parameters(parser.parse_args(["a.wav"]), ["json"]) == {}
    assert tr.outputs_for(Path("/x/talk.flac"), None, ["json", "vtt"]) == {
        "json": Path("/x/talk.json"), "vtt": Path("/x/talk.vtt")}


class FakeHandler:
    diarizer = object()

    def __init__(self):
        self.seen_progress = None

    def __call__(self, data, progress=None):
        self.seen_progress = progress
        for done in (10.0, 20.0, 25.0):
            progress(done, 25.0)
        return {"text": "hi", "chunks": [], "speakers": [], "srt": "", "vtt": "WEBVTT\n"}


def test_progress_bar_is_fed_by_the_handlers_callback(tmp_path, capsys):
    handler = FakeHandler()
    audio = tmp_path / "clip.wav"
    audio.write_bytes(speech_wav(seconds=1.0))
    written = tr.transcribe_file(handler, audio, {}, None, ["json", "srt", "vtt"], progress=True)
    assert set(written) == {"json", "srt", "vtt"} and all(p.exists() for p in written.values())
    assert callable(handler.seen_progress)
    err = capsys.readouterr().err
    assert "25.0/25.0" in err and "diarizing" in err
    assert json.loads(written["json"].read_text()) == {"text": "hi", "chunks": [], "speakers": []}


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        tr.main([str(tmp_path / "nope.wav")])
    assert info.value.code == 2


def test_audio_seconds():
    assert tr.audio_seconds(speech_wav(seconds=2.0)) == pytest.approx(2.0, abs=0.01)
    assert tr.audio_seconds(b"not audio") is None
