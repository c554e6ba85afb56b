"""The peer benchmark's code path (`python -m evaluation.benchmark --peers`) on the tiny test
models: handler variants built from the environment, the original pipeline, and
faster-whisper's rows, skipped with a message when it is absent (always checked, by hiding
it) and run on a tiny CTranslate2 conversion when requirements-peers.txt is installed."""
from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import REPO

SPEECH = REPO / "tests" / "data" / "speech.flac"
FW_KEYS = ("fw-float32", "fw-float32-batched", "fw-int8", "fw-int8-batched")


def run_peers(tmp_path, monkeypatch, tiny_models) -> dict:
    from evaluation import benchmark

    monkeypatch.setenv("ASR_MODEL", str(tiny_models.whisper))
    reference = tmp_path / "reference.txt"
    reference.write_text("good morning everyone")
    out = tmp_path / "peers"
    assert benchmark.main(["--peers", "--audio", str(SPEECH), "--reference-text", str(reference), "--long-s", "5",
                           "--threads", "1", "--runs", "2", "--warmup", "0", "--output", str(out),
                           "--ct2-cache", str(tmp_path / "ct2")]) == 0
    assert out.with_suffix(".md").read_text().startswith("5.0 s of audio")
    return json.loads(out.with_suffix(".json").read_text())


def test_peer_rows_skip_cleanly_without_faster_whisper(tmp_path, monkeypatch, tiny_models, capsys):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    report = run_peers(tmp_path, monkeypatch, tiny_models)

    assert "skipping the faster-whisper rows: faster-whisper is not installed" in capsys.readouterr().out
    rows = {r["key"]: r for r in report["rows"]}
    assert list(rows) == ["handler", "handler-float32", "handler-float32-only", "handler-sequential", *FW_KEYS,
                          "pipeline"]
    for key in FW_KEYS:
        assert "median_s" not in rows[key] and "requirements-peers.txt" in rows[key]["skipped"]
    for key in ("handler", "handler-float32", "handler-float32-only", "handler-sequential", "pipeline"):
        assert rows[key]["runs"] == 2 and rows[key]["median_s"] > 0 and 0 <= rows[key]["wer"]
    assert [q["ratio"] for q in report["ratios"]] == ["handler default / transformers pipeline, original settings"]
    assert report["language"] == "en"
    assert not (tmp_path / "ct2").exists()


def test_handler_variants_are_built_from_the_environment(monkeypatch, tiny_models):
    from evaluation.peers import build_handler

    monkeypatch.setenv("ASR_MODEL", str(tiny_models.whisper))
    monkeypatch.setenv("CPU_BF16", "true")
    before = dict(os.environ)
    forced = build_handler(1, CPU_BF16=None)  # unset: auto, as the platform's default
    float32 = build_handler(1, CPU_BF16="false")
    assert dict(os.environ) == before
    assert float32.placement.cpu_bf16 is False and float32.settings.cpu_bf16 is False
    assert forced.settings.cpu_bf16 == "auto" and forced.settings.cpu_threads == 1
    assert forced.asr.assistant is None and forced.diarizer is None


def test_peer_rows_with_a_tiny_ctranslate2_model(tmp_path, monkeypatch, tiny_models):
    pytest.importorskip("faster_whisper", reason="requirements-peers.txt is not installed")
    report = run_peers(tmp_path, monkeypatch, tiny_models)

    rows = {r["key"]: r for r in report["rows"]}
    assert all(rows[key]["runs"] == 2 and rows[key]["skipped"] is None for key in FW_KEYS)
    assert len(report["ratios"]) == 4
    assert [q["target"] for q in report["ratios"]] == [0.9, 0.8, 1.0, 0.7]
    converted = list((tmp_path / "ct2").iterdir())
    assert len(converted) == 1 and (converted[0] / "model.bin").is_file()

    from evaluation.peers import ct2_model

    stamp = (converted[0] / "model.bin").stat().st_mtime_ns
    assert ct2_model(tiny_models.whisper, tmp_path / "ct2") == converted[0]  # cached: not converted again
    assert (converted[0] / "model.bin").stat().st_mtime_ns == stamp
