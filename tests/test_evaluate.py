"""Fast checks (no real model) of the evaluation tooling: scoring, the oracle diarization
test double, and scripts/evaluate.py's scoring, aggregation and report writer."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from evaluation import oracle_diarization as oracle
from evaluation import scoring
from speech_endpoint.render.formats import parse_rttm
from speech_endpoint.schema import Turn, sort_turns
from speech_endpoint.attribution.turns import exclusive_turns


def rows(turns, digits=None):
    """Turns as (start, end, speaker) tuples, times rounded to `digits` when given."""
    r = (lambda x: round(x, digits)) if digits is not None else (lambda x: x)
    return [(r(t.start), r(t.end), t.speaker) for t in turns]

REPO = Path(__file__).resolve().parent.parent

RTTM = """\
SPEAKER talk 1 0.500 3.000 <NA> <NA> alice <NA> <NA>
SPEAKER talk 1 4.000 3.000 <NA> <NA> bob <NA> <NA>
;; a comment
SPEAKER talk 1 6.500 2.500 <NA> <NA> alice <NA> <NA>
SPEAKER talk 1 7.200 0.300 <NA> <NA> bob <NA> <NA>
SPEAKER talk 1 9.500 0.000 <NA> <NA> bob <NA> <NA>
"""
# alice 0.5-3.5, bob 4-7, alice 6.5-9 (hand-over overlap 6.5-7), bob 7.2-7.5 (back-channel)


@pytest.fixture(scope="module")
def evaluate():
    from evaluation import evaluate as module

    return module


@pytest.fixture
def rttm(tmp_path) -> Path:
    path = tmp_path / "talk.rttm"
    path.write_text(RTTM)
    return path


# ---- scoring ------------------------------------------------------------------------------


def test_wer_counts_use_whisper_normaliser():
    assert scoring.wer_counts("Hello, World!", "hello world") == (0, 2)
    errors, words = scoring.wer_counts("the cat sat", "the cat sat down")
    assert (errors, words) == (1, 3)
    assert scoring.wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)


def test_cpwer_details_finds_the_speaker_mapping():
    reference = {"alice": "good morning everyone", "bob": "morning to you"}
    hypothesis = {"SPEAKER_00": "morning to you", "SPEAKER_01": "good morning everyone"}
    details = scoring.cpwer_details(reference, hypothesis)
    assert details["cpwer"] == 0.0 == scoring.cpwer(reference, hypothesis)
    assert details["mapping"] == {"alice": "SPEAKER_01", "bob": "SPEAKER_00"}
    # one word under the wrong speaker costs a deletion and an insertion
    moved = {"SPEAKER_00": "morning to you everyone", "SPEAKER_01": "good morning"}
    details = scoring.cpwer_details(reference, moved)
    assert (details["errors"], details["ref_words"]) == (2, 6)
    assert details["cpwer"] == pytest.approx(scoring.cpwer(reference, moved))
    # more reference speakers than hypothesis speakers: the extra one maps to nothing
    details = scoring.cpwer_details(reference, {"SPEAKER_00": "good morning everyone morning to you"})
    assert None in details["mapping"].values()


def test_speaker_mismatches_align_by_text_then_by_time():
    rows = [("alice", 0.0, 2.0, "Good morning."), ("bob", 2.0, 4.0, "Hi there.")]
    words = [
        {"word": "Good", "start": 0.1, "end": 0.5, "speaker": "S0"},
        # timed inside alice's row, but it is bob's word "Hi": judged by text
        {"word": "morning.", "start": 0.5, "end": 1.0, "speaker": "S0"},
        {"word": "Hi", "start": 1.9, "end": 1.95, "speaker": "S0"},
        {"word": "there.", "start": 2.5, "end": 3.0, "speaker": "S1"},
        {"word": "uh", "start": 3.2, "end": 3.4, "speaker": "S0"},  # inserted: judged by time
    ]
    found = scoring.speaker_mismatches(words, rows, {"alice": "S0", "bob": "S1"})
    assert [(m["word"], m["reference"], m["hypothesis"], m["by"]) for m in found] == [
        ("Hi", "bob", "alice", "text"), ("uh", "bob", "alice", "time")]


def test_label_mapping_by_overlap():
    rttm_rows = [("spk1", 0.0, 3.0), ("spk2", 3.0, 6.0), ("spk1", 6.0, 8.0)]
    stm_rows = [("Diane", 0.1, 2.9, "a"), ("Sheila", 3.1, 5.9, "b"), ("Diane", 6.0, 8.0, "c")]
    assert scoring.label_mapping_by_overlap(rttm_rows, stm_rows) == {"spk1": "Diane", "spk2": "Sheila"}
    assert scoring.label_mapping_by_overlap([], stm_rows) == {}


def test_diarization_scores_and_collar_convention():
    reference = [(0.0, 5.0, "a"), (5.0, 10.0, "b")]
    shifted = [(0.0, 5.2, "x"), (5.2, 10.0, "y")]
    exact = scoring.diarization_scores(reference, reference, duration=10.0)
    assert exact["der"] == 0.0 and exact["jer"] == 0.0
    zero = scoring.diarization_scores(reference, shifted, duration=10.0)
    assert zero["der"] == pytest.approx(0.02) and zero["confusion"] == pytest.approx(0.2)
    assert zero["jer"] > 0
    # collar 0.25 s on each side of every reference boundary forgives a 0.2 s shift
    wide = scoring.diarization_scores(reference, shifted, duration=10.0, collar=0.25)
    assert wide["der"] == 0.0 and wide["total"] == pytest.approx(9.0)
    # ... but not a 0.3 s one
    assert scoring.diarization_scores(reference, [(0, 5.3, "x"), (5.3, 10, "y")], duration=10.0,
                                      collar=0.25)["der"] > 0
    missed = scoring.diarization_scores(reference, [], duration=10.0)
    assert missed["der"] == 1.0
    combined = scoring.combine_diarization_scores([zero, missed])
    assert combined["der"] == pytest.approx((0.2 + 10.0) / 20.0)


def test_a_reference_the_collar_swallows_scores_on_both_stacks():
    # 0.4 s of speech, all within the collar (AMI EN2001d has such a clip): nothing to score
    tiny = scoring.diarization_scores([(3.0, 3.4, "a")], [(3.0, 3.4, "x")], duration=10.0, collar=0.25)
    assert tiny["total"] == 0.0 and tiny["speaker_count"] == 0.0 and tiny["speaker_error"] == 0.0


# ---- oracle turns -------------------------------------------------------------------------


def test_rttm_parsing(rttm):
    turns = oracle.rttm_turns(rttm)
    assert rows(turns) == [(0.5, 3.5, "alice"), (4.0, 7.0, "bob"), (6.5, 9.0, "alice"),
                           (7.2, 7.5, "bob")]  # the zero-length turn is dropped
    assert parse_rttm(RTTM)["talk"] == turns
    with pytest.raises(ValueError, match="uri"):
        oracle.rttm_turns(rttm, uri="other")
    assert oracle.crop_turns(turns, 7.0)[-1] == Turn(6.5, 7.0, "alice")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jitter_moves_every_boundary_within_bounds_reproducibly(rttm, seed):
    turns = oracle.rttm_turns(rttm)
    moved = oracle.jitter_turns(turns, 0.25, seed=seed, duration=9.2)
    assert moved == oracle.jitter_turns(turns, 0.25, seed=seed, duration=9.2)
    assert moved != turns
    assert len(moved) == len(turns)  # none of these turns is short enough to vanish
    for original, new in zip(turns, moved):
        assert new.speaker == original.speaker
        assert abs(new.start - original.start) <= 0.25 + 1e-9
        assert abs(new.end - min(original.end, 9.2)) <= 0.25 + 1e-9 or new.end == 9.2
        assert 0.0 <= new.start < new.end <= 9.2
    assert oracle.jitter_turns(turns, 0.25, seed=seed + 10) != moved
    assert oracle.jitter_turns(turns, 0.0, seed=seed) == turns


def test_jitter_drops_a_turn_whose_boundaries_cross():
    tiny = [Turn(1.0, 1.05, "a")]
    survivors = [len(oracle.jitter_turns(tiny, 0.5, seed=s)) for s in range(50)]
    assert 0 in survivors and 1 in survivors


# ---- the oracle as a pyannote pipeline ------------------------------------------------------


def _annotation_turns(annotation):
    return [(round(seg.start, 6), round(seg.end, 6), label)
            for seg, _, label in annotation.itertracks(yield_label=True)]


def _full_and_exclusive(output):
    full = getattr(output, "speaker_diarization", output)
    return full, getattr(output, "exclusive_speaker_diarization", None)


def test_oracle_loads_with_pipeline_from_pretrained(tmp_path, rttm):
    import torch
    from pyannote.audio import Pipeline

    from speech_endpoint import compat

    folder = oracle.write_oracle_pipeline(tmp_path / "oracle", rttm)
    assert (folder / "config.yaml").is_file()
    pipeline = Pipeline.from_pretrained(compat.pipeline_source(str(folder)))
    assert isinstance(pipeline, oracle.OracleDiarization)
    output = pipeline({"waveform": torch.zeros(1, 16000 * 10), "sample_rate": 16000}, num_speakers=2)
    full, exclusive = _full_and_exclusive(output)
    assert _annotation_turns(full) == rows(oracle.rttm_turns(rttm), 6)
    if compat.PYANNOTE_MAJOR >= 4:
        from pyannote.audio.pipelines.speaker_diarization import DiarizeOutput

        assert isinstance(output, DiarizeOutput)
        assert _annotation_turns(exclusive) == rows(exclusive_turns(oracle.rttm_turns(rttm)), 6)


def test_jittered_oracle_matches_the_in_process_turns(tmp_path, rttm):
    import torch
    from pyannote.audio import Pipeline

    from speech_endpoint import compat

    folder = oracle.write_oracle_pipeline(tmp_path / "jitter", rttm, jitter=0.25, seed=3)
    pipeline = Pipeline.from_pretrained(compat.pipeline_source(str(folder)))
    samples = 16000 * 8  # shorter than the turns: they are cut at 8 s
    first = pipeline({"waveform": torch.zeros(1, samples), "sample_rate": 16000})
    again = pipeline({"waveform": torch.zeros(1, samples), "sample_rate": 16000})
    full, _ = _full_and_exclusive(first)
    expected, _ = oracle.oracle_turns(rttm, jitter=0.25, seed=3, duration=8.0)
    assert _annotation_turns(full) == rows(expected, 6)
    assert _annotation_turns(full) == _annotation_turns(_full_and_exclusive(again)[0])
    assert max(e for _, e, _ in _annotation_turns(full)) <= 8.0
    for moved, original in zip(expected, oracle.rttm_turns(rttm)):
        assert moved.speaker == original.speaker and abs(moved.start - original.start) <= 0.25 + 1e-9


def test_the_endpoint_diarizer_loads_the_oracle_folder(tmp_path, rttm):
    from speech_endpoint.attribution.diarizer import Diarizer
    from speech_endpoint.schema import Audio

    diarizer = Diarizer(str(oracle.write_oracle_pipeline(tmp_path / "oracle", rttm)))
    result = diarizer(Audio(np.zeros(16000 * 10, dtype=np.float32)))
    assert result.full == oracle.rttm_turns(rttm)
    # one rule on both pyannote versions (4: in the oracle's DiarizeOutput; 3: in the endpoint)
    assert rows(result.exclusive, 6) == rows(exclusive_turns(oracle.rttm_turns(rttm)), 6)


def test_bad_oracle_settings_are_refused(tmp_path, rttm):
    with pytest.raises(FileNotFoundError):
        oracle.write_oracle_pipeline(tmp_path / "x", tmp_path / "missing.rttm")
    with pytest.raises(ValueError):
        oracle.write_oracle_pipeline(tmp_path / "x", rttm, jitter=-1)


def test_handler_with_oracle_diarization_model(make_handler, tiny_models, tmp_path, rttm):
    """DIARIZATION_MODEL=<oracle folder>: the response's RTTM is the reference, relabelled."""
    from support.audio_factory import speech, wav_bytes

    handler = make_handler(ASR_MODEL=tiny_models.whisper,
                           DIARIZATION_MODEL=oracle.write_oracle_pipeline(tmp_path / "oracle", rttm))
    out = handler({"inputs": wav_bytes(speech(10.0), 16000), "parameters": {"output_formats": ["rttm"]}})
    turns = [(round(t.start, 3), round(t.end, 3)) for t in sort_turns(
        t for ts in parse_rttm(out["rttm"]).values() for t in ts)]
    assert turns == [(round(t.start, 3), round(t.end, 3)) for t in oracle.rttm_turns(rttm)]
    assert out["metadata"]["diarization"] is True


# ---- evaluate.py ----------------------------------------------------------------------------


def test_discover_folder_and_manifest(tmp_path, evaluate):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "a.rttm").write_text(RTTM)
    (tmp_path / "b.flac").write_bytes(b"fLaC")
    (tmp_path / "notes.md").write_text("not audio")
    items = evaluate.discover([tmp_path])
    assert [(i.uri, bool(i.txt), bool(i.stm), bool(i.rttm)) for i in items] == [
        ("a", True, False, True), ("b", False, False, False)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": "b.flac", "uri": "bee", "txt": "a.txt"}) + "\n")
    (item,) = evaluate.discover([manifest])
    assert item.uri == "bee" and item.txt == (tmp_path / "a.txt").resolve()
    assert items[0].reference_text() == "hello"


def fake_file(evaluate, uri="talk"):
    """A result as evaluate_item builds it, from made-up responses."""
    stm = [("alice", 0.5, 3.5, "Good morning everyone."), ("bob", 4.0, 7.0, "Morning. Shall we start?")]
    ref_turns = [(0.5, 3.5, "alice"), (4.0, 7.0, "bob")]
    words = [("Good", 0.6, 0.9), ("morning", 0.9, 1.4), ("everyone.", 1.4, 2.0),
             ("Morning.", 4.1, 4.6), ("Shall", 5.0, 5.3), ("we", 5.3, 5.5), ("start?", 5.5, 6.0)]

    def response_words(labels):
        return [{"word": w, "start": s, "end": e, "speaker": spk} for (w, s, e), spk in zip(words, labels)]

    def speakers(labels):
        out = []
        for (w, s, e), spk in zip(words, labels):
            if out and out[-1]["speaker"] == spk:
                out[-1]["text"] += " " + w
                out[-1]["timestamp"][1] = e
            else:
                out.append({"speaker": spk, "text": w, "timestamp": [s, e]})
        return out

    text = " ".join(w for w, _, _ in words)
    right = ["SPEAKER_00"] * 3 + ["SPEAKER_01"] * 4
    wrong = ["SPEAKER_00"] * 4 + ["SPEAKER_01"] * 3  # "Morning." under alice
    common = dict(text=text, duration=8.0, ref_text=" ".join(r[3] for r in stm), stm_rows=stm,
                  ref_turns=ref_turns, collar=0.25)
    hyp_exact = [(0.5, 3.5, "SPEAKER_00"), (4.0, 7.0, "SPEAKER_01")]
    hyp_jitter = [(0.6, 4.7, "SPEAKER_00"), (4.7, 7.1, "SPEAKER_01")]
    conditions = {
        "exact": evaluate.score(kind="exact", words=response_words(right), speakers=speakers(right),
                                hyp_turns=hyp_exact, given_turns=ref_turns, **common),
        "jitter-seed0": evaluate.score(kind="jitter", words=response_words(right), speakers=speakers(right),
                                       hyp_turns=hyp_exact, given_turns=ref_turns, extra={"seed": 0}, **common),
        "jitter-seed1": evaluate.score(kind="jitter", words=response_words(wrong), speakers=speakers(wrong),
                                       hyp_turns=hyp_jitter, given_turns=[(0.6, 4.7, "alice"), (4.7, 7.1, "bob")],
                                       extra={"seed": 1}, **common),
        "nearest-chunk-end": evaluate.score(kind="nearest-chunk-end", words=response_words(wrong),
                                            speakers=speakers(wrong), hyp_turns=None, given_turns=ref_turns,
                                            **common),
    }
    return {"uri": uri, "audio": f"{uri}.wav", "duration": 8.0, "hypothesis_text": text,
            "reference": {"turns": [list(t) for t in ref_turns], "stm": [list(r) for r in stm]},
            "replay_consistent": True, "notes": [], "conditions": conditions}


def test_score_of_one_condition(evaluate):
    file = fake_file(evaluate)
    exact, wrong = file["conditions"]["exact"], file["conditions"]["jitter-seed1"]
    assert exact["wer"] == 0.0 and exact["cpwer"] == 0.0 and exact["misattributed"] == []
    assert exact["diarization"]["0"]["der"] == 0.0
    assert wrong["cpwer"] == pytest.approx(2 / 7) and wrong["cpwer_minus_wer"] == pytest.approx(2 / 7)
    (flip,) = wrong["misattributed"]
    assert (flip["word"], flip["reference"], flip["hypothesis"], flip["turns_say"]) == (
        "Morning.", "bob", "alice", "alice")
    assert wrong["diarization"]["0"]["der"] > 0 and wrong["diarization"]["0.25"]["der"] < wrong["diarization"]["0"]["der"]
    assert "diarization" not in file["conditions"]["nearest-chunk-end"]


def test_summary_pools_files_and_folds_seeds(evaluate):
    files = [fake_file(evaluate, "one"), fake_file(evaluate, "two")]
    summary = evaluate.summarize(files, 0.25)
    rows = summary["one"]
    assert list(rows)[:3] == ["exact", "jitter (mean of 2 seeds)", "jitter (worst seed)"]
    assert rows["jitter (mean of 2 seeds)"]["cpwer_minus_wer"] == pytest.approx(1 / 7)
    assert rows["jitter (worst seed)"]["cpwer_minus_wer"] == pytest.approx(2 / 7)
    assert summary["overall"]["jitter-seed1"]["cpwer"] == pytest.approx(4 / 14)
    assert summary["overall"]["exact"]["misattributed"] == 0
    checks = {(c["scope"], c["condition"]): c for c in evaluate.target_checks(summary)}
    assert checks[("overall", "exact")]["ok"] is True
    assert checks[("overall", "jitter (mean of 2 seeds)")]["ok"] is False  # 14% > 3%


def test_report_writer(tmp_path, evaluate):
    result = {"settings": {"asr_model": "fake", "diarization": "oracle-jitter", "jitter": 0.25,
                           "seeds": [0, 1], "collar": 0.25, "parameters": {}},
              "files": [fake_file(evaluate)]}
    report = evaluate.write_report(result, tmp_path / "out")
    text = report.read_text()
    assert "| exact | 0.0% | 0.0% | 0.0% | 0.0% | 0.0% |" in text
    assert "jitter (worst seed)" in text and "nearest-chunk-end" in text
    assert "**PASS**" in text and "**FAIL**" in text
    assert "| jitter-seed1 | Morning. |" in text
    png = tmp_path / "out" / "talk.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    assert width > 500 and height > 200
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"]["overall"]["exact"]["wer"] == 0.0
    assert any(c["condition"] == "exact" for c in saved["targets"])


def test_window_starts_scores_one_window_per_start(tiny_models, tmp_path, capsys):
    from evaluation import window_starts
    from support.audio_factory import speech, wav_bytes

    audio = tmp_path / "call.wav"
    audio.write_bytes(wav_bytes(speech(4.0), 16000))
    audio.with_suffix(".stm").write_text("call 1 a 0.5 3.5 good morning\n")
    assert window_starts.main([str(tiny_models.whisper), str(audio), "--starts", "0", "1.5"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "%" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| 0", "| 1.5"]
