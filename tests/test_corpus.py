"""evaluation/corpus.py: seeded synthetic conversations (espeak-ng) with RTTM/STM/TXT references."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation import corpus
from support.tools import require

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def espeak():
    """espeak-ng, or a skip (a failure under REQUIRE_SYSTEM_TOOLS=1, as in CI)."""
    return require("espeak-ng")
BACKCHANNEL_TEXTS = set(corpus.BACKCHANNELS)
QUICK = ["fast_alternation", "mixed_2spk"]  # short scenarios for the byte-level checks


def read_rttm(path: Path) -> list[tuple[str, float, float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        p = line.split()
        assert len(p) == 10 and p[0] == "SPEAKER" and p[2] == "1" and p[5] == p[6] == p[8] == p[9] == "<NA>", line
        rows.append((p[1], float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return rows


def read_stm(path: Path) -> list[tuple[str, str, float, float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        uri, channel, spk, start, end, text = line.split(maxsplit=5)
        assert channel == "1"
        rows.append((uri, spk, float(start), float(end), text))
    return rows


@pytest.fixture(scope="module")
def seed0(tmp_path_factory):
    """The whole seed-0 set, written once (about 5-10 s)."""
    require("espeak-ng")
    out = tmp_path_factory.mktemp("corpus-s0")
    entries = corpus.generate(out, seed=0)
    return out, entries


# ---------------------------------------------------------------- without espeak-ng
def seg(spk, text, start, end, overlay=False):
    sr = corpus.SAMPLE_RATE
    return corpus.Segment(spk, text, int(start * sr), int(end * sr), overlay)


def test_derive_tags_from_times_and_texts():
    segs = [
        seg("a", "Is it ready?", 0.0, 1.0),
        seg("b", "Yes.", 1.5, 1.8),                  # one-word turn answering a question
        seg("a", "Okay.", 1.9, 2.2),                 # gap 0.1: short; turn start
        seg("a", "The build is green again.", 2.5, 4.0),
        seg("b", "Mhm.", 3.0, 3.3, overlay=True),    # back-channel on top of a
        seg("b", "Right.", 6.5, 6.8),                # gap 2.5: long; then glued to a
        seg("a", "And we ship on Friday.", 6.9, 9.0),
    ]
    tags = set(corpus.derive_tags(segs))
    assert {"2-speakers", "oneword-turn", "question-oneword-answer", "gap-short", "oneword-turn-start",
            "backchannel-overlap", "gap-long", "oneword-then-other"} <= tags
    assert not tags & {"monologue", "fast-alternation", "oneword-turn-middle", "3-speakers"}


def test_derive_tags_monologue_and_fast_alternation():
    mono = [seg("a", f"Sentence number {i} goes here.", 3.2 * i, 3.2 * i + 3.0) for i in range(10)]
    assert "monologue" in corpus.derive_tags(mono)
    fast = [seg("ab"[i % 2], "Which one?", 1.5 * i, 1.5 * i + 1.0) for i in range(7)]
    assert "fast-alternation" in corpus.derive_tags(fast)
    assert "fast-alternation" not in corpus.derive_tags(fast[:5])


def test_resample_and_voiced_extent():
    t = np.arange(22050) / 22050
    y = corpus.resample(np.sin(2 * np.pi * 1000 * t), 22050, 16000)
    assert len(y) == 16000
    ref = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.abs(y[100:-100] - ref[100:-100]).max() < 1e-3
    assert np.abs(corpus.resample(np.sin(2 * np.pi * 10000 * t), 22050, 16000)[100:-100]).max() < 1e-3  # no alias
    x = np.zeros(16000)
    x[4000:12000] = 0.3 * np.sin(np.arange(8000) / 3)
    start, end = corpus.voiced_extent(x)
    assert abs(start - 4000) <= 80 and abs(end - 12000) <= 80
    assert corpus.voiced_extent(np.zeros(1000)) == (0, 0)


def test_scenarios_cover_required_tags_by_intent():
    intended = set().union(*(s.intended for s in corpus.SCENARIOS))
    assert set(corpus.REQUIRED_TAGS) <= intended | {f"{s.speakers}-speakers" for s in corpus.SCENARIOS}
    assert len(corpus.SCENARIOS) >= 16 and len(set(corpus.SCENARIO_NAMES)) == len(corpus.SCENARIOS)


# ---------------------------------------------------------------- with espeak-ng
def test_generated_set_covers_every_required_tag(espeak, seed0):
    out, entries = seed0
    assert len(entries) >= 16
    covered = set().union(*(e["tags"] for e in entries))
    assert set(corpus.REQUIRED_TAGS) <= covered, set(corpus.REQUIRED_TAGS) - covered
    by_name = {e["scenario"]: e for e in entries}
    for scenario in corpus.SCENARIOS:  # each scenario really produces what it is for
        assert set(scenario.intended) <= set(by_name[scenario.name]["tags"]), scenario.name
        assert f"{scenario.speakers}-speakers" in by_name[scenario.name]["tags"]


def test_files_and_manifest(espeak, seed0):
    out, entries = seed0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == entries
    for e in manifest:
        assert {"audio", "rttm", "stm", "txt", "uri", "tags"} <= set(e)
        info = sf.info(str(out / e["audio"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert corpus.MIN_DURATION <= info.duration <= corpus.MAX_DURATION
        assert abs(info.duration - e["duration"]) < 1e-3
        keys = [v["key"] for v in e["speakers"].values()]
        assert len(set(keys)) == len(keys)  # distinct voices; a pair the diarizer may mix only when needed
        confusable = any(frozenset((a, b)) in corpus.CONFUSABLE for a in keys for b in keys if a != b)
        assert confusable == ("confusable-voices" in e["tags"])
        assert not confusable or len(keys) == 4


def test_rttm_and_stm_agree_and_fit_the_audio(espeak, seed0):
    out, entries = seed0
    for e in entries:
        duration = sf.info(str(out / e["audio"])).duration
        rttm = read_rttm(out / e["rttm"])
        stm = read_stm(out / e["stm"])
        assert rttm and len(rttm) == len(stm)
        assert {r[0] for r in rttm} == {s[0] for s in stm} == {e["uri"]}
        starts = [s[2] for s in stm]
        assert starts == sorted(starts)
        for (_, r_start, r_end, r_spk), (_, s_spk, s_start, s_end, _) in zip(sorted(rttm, key=lambda r: (r[1], r[2])), stm):
            assert r_spk == s_spk and abs(r_start - s_start) < 1e-6 and abs(r_end - s_end) < 1e-6
            assert 0 <= s_start < s_end <= duration + 1e-3
        assert set(e["speakers"]) == {s[1] for s in stm}
        assert (out / e["txt"]).read_text().strip() == " ".join(s[4] for s in stm)
        # the audio is silent (noise floor) where nobody speaks, and voiced where the RTTM says
        audio, sr = sf.read(str(out / e["audio"]))
        voiced = np.zeros(len(audio), bool)
        for _, a, b, _ in rttm:
            voiced[int(a * sr):int(b * sr)] = True
        assert np.sqrt(np.mean(audio[~voiced] ** 2)) < 0.003
        for _, a, b, _ in rttm:
            assert np.abs(audio[int(a * sr):int(b * sr)]).max() > 0.05


def test_backchannels_overlap_the_other_speaker(espeak, seed0):
    out, entries = seed0
    found = 0
    for e in entries:
        stm = read_stm(out / e["stm"])
        for _, spk, start, end, text in stm:
            hosts = [r for r in stm if r[1] != spk and r[2] < start and end < r[3]]  # fully inside
            if text in BACKCHANNEL_TEXTS and hosts:
                found += 1
        if "backchannel-overlap" in e["tags"]:
            assert any(text in BACKCHANNEL_TEXTS and any(r[1] != spk and r[2] < start and end < r[3] for r in stm)
                       for _, spk, start, end, text in stm), e["uri"]
    assert found >= 8


def test_same_seed_same_bytes_and_only_selects(espeak, seed0, tmp_path):
    out, entries = seed0
    again = corpus.generate(tmp_path, seed=0, only=QUICK, jobs=1)  # fresh cache, other parallelism
    assert [e["scenario"] for e in again] == QUICK
    for e in again:
        for key in ("audio", "rttm", "stm", "txt"):
            assert (tmp_path / e[key]).read_bytes() == (out / e[key]).read_bytes(), e[key]


def test_other_seed_other_conversations(espeak, seed0):
    out, entries = seed0
    synth = corpus.Synth()
    for name in QUICK + ["oneword_glued"]:
        other = corpus.build(name, seed=1, synth=synth)
        assert other.uri == f"{name}_s1"
        mine = (out / f"{name}_s0.txt").read_text().strip()
        assert corpus.transcript(other).strip() != mine
    texts = {(out / e["txt"]).read_text() for e in entries}
    assert len(texts) == len(entries)


def test_cli(espeak, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evaluation.corpus", str(tmp_path), "--seed", "3",
                           "--only", "fast_alternation"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["uri"] for e in manifest] == ["fast_alternation_s3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json"] + [f"fast_alternation_s3.{x}" for x in ("wav", "rttm", "stm", "txt")])
    with pytest.raises(ValueError, match="unknown scenario"):
        corpus.generate(tmp_path, only=["nope"])
