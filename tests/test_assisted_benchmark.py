"""The speculative-decoding benchmark (`python -m evaluation.assisted_benchmark`) runs end to
end on the tiny models and checks what it reports: assisted output equal to plain output,
acceptance counted."""
from __future__ import annotations

import json

from conftest import REPO

SPEECH = REPO / "tests" / "data" / "speech.flac"


def test_reports_acceptance_and_equal_outputs(tiny_models, tmp_path, monkeypatch, capsys):
    from evaluation import assisted_benchmark

    for name in ("ASR_MODEL", "ASSISTANT_MODEL", "WARMUP", "CPU_THREADS"):  # the script sets them
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("DIARIZATION_MODEL", raising=False)
    out = tmp_path / "assisted.json"
    code = assisted_benchmark.main(["--model", str(tiny_models.whisper), "--draft", f"tiny={tiny_models.assistant}",
                                    "--clip", f"speech={SPEECH}:3", "--setting", "n=3,thr=0", "--e2e-setting", "n=3,thr=0",
                                    "--repeats", "1", "--e2e-repeats", "1", "--output", str(out)])
    results = json.loads(out.read_text())
    assert code == 0 and results["equal"] is True
    generate = next(iter(results["generate"].values()))["variants"]
    assert set(generate) == {"plain", "tiny:n=3,thr=0"}
    assert generate["tiny:n=3,thr=0"]["proposed"] >= generate["tiny:n=3,thr=0"]["accepted"] >= 0
    e2e = next(iter(results["e2e"].values()))["variants"]
    assert set(e2e) == {"plain b24", "plain b1", "tiny:n=3,thr=0"}
    assert "all assisted outputs equal plain greedy output: True" in capsys.readouterr().out


def test_step_cost_times_the_main_model_and_each_draft(tiny_models, tmp_path, monkeypatch):
    from evaluation import assisted_benchmark

    for name in ("ASR_MODEL", "ASSISTANT_MODEL", "WARMUP", "CPU_THREADS"):
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("DIARIZATION_MODEL", raising=False)
    out = tmp_path / "steps.json"
    code = assisted_benchmark.main(["--model", str(tiny_models.whisper), "--draft", f"tiny={tiny_models.assistant}",
                                    "--clip", f"speech={SPEECH}:3", "--step-cost", "--plain-only", "--skip-e2e",
                                    "--repeats", "1", "--output", str(out)])
    clip = next(iter(json.loads(out.read_text())["generate"].values()))
    assert code == 0 and set(clip["variants"]) == {"plain"}
    steps = clip["step_cost"]
    assert set(steps) == {"main", "tiny", "main, 4-token pass"} and steps["main"]["vs_main"] == 1.0
    assert steps["tiny"]["steps"] == steps["main"]["steps"] == clip["text_tokens"] + clip["windows"]
    assert all(row["step_ms"] > 0 for row in steps.values())
