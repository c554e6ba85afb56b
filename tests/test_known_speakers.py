"""Speaker embeddings out, known speakers in: names instead of SPEAKER_xx where a reference
voice matches, SPEAKER_xx where none does, clear 400s for bad references."""
import base64
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_endpoint.schema import ClientError
from support.audio_factory import speech, wav_bytes

DATA = Path(__file__).resolve().parent / "data"
RATE = 16000


def b64(samples: np.ndarray) -> str:
    return base64.b64encode(wav_bytes(samples, RATE)).decode()


@pytest.fixture(scope="module")
def handler(tiny_models):
    from conftest import handler_with

    with handler_with(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization,
                      MAX_KNOWN_SPEAKERS=3) as built:
        yield built


AUDIO = wav_bytes(speech(8.0), RATE)


def test_speaker_embeddings_come_back_under_the_response_labels(handler):
    out = handler({"inputs": AUDIO, "parameters": {"return_speaker_embeddings": True}})
    vectors = out["speaker_embeddings"]
    assert vectors and set(vectors) >= {s["speaker"] for s in out["speakers"]}
    assert {len(v) for v in vectors.values()} == {handler.diarizer.embedding_dimension}


def test_a_returned_embedding_names_its_speaker_everywhere(handler):
    first = handler({"inputs": AUDIO, "parameters": {"return_speaker_embeddings": True}})
    label = first["speakers"][0]["speaker"]
    out = handler({"inputs": AUDIO, "parameters": {
        "known_speakers": {"Ann Lee": first["speaker_embeddings"][label]}, "output_formats": ["srt", "vtt", "rttm"]}})
    assert out["metadata"]["known_speakers"]["Ann Lee"]["matched"] is True
    assert out["metadata"]["known_speakers"]["Ann Lee"]["similarity"] == pytest.approx(1.0, abs=1e-3)
    named = {w["speaker"] for w in out["words"]}
    assert "Ann Lee" in named and label not in named
    assert any(s["speaker"] == "Ann Lee" for s in out["speakers"])
    assert "Ann_Lee" in out["rttm"] and "Ann Lee: " in out["srt"] and "<v Ann Lee>" in out["vtt"]
    others = {s["speaker"] for s in out["speakers"]} - {"Ann Lee"}
    assert all(re.fullmatch(r"SPEAKER_\d\d", s) for s in others)


@pytest.mark.parametrize("known, message", [
    ({"Ann": b64(speech(0.5)[:, 0])}, "speech"),  # too short
    ({"Ann": b64(np.zeros(3 * RATE, np.float32))}, "speech"),  # silent
    ({"Ann": base64.b64encode(b"not audio at all").decode()}, "audio"),
    ({"Ann": [0.1, 0.2, 0.3]}, "values"),
    ({"Ann": [0.1] * 3 + [float("nan")]}, "finite"),
    ({f"P{i}": [0.0] * 4 for i in range(4)}, "at most 3"),
    ({" Ann": [0.0]}, "names"),
    ({"Ann": "@@@"}, "base64"),
])
def test_bad_references_are_refused_clearly_and_the_next_request_is_served(handler, known, message):
    with pytest.raises(ClientError, match=message) as info:
        handler({"inputs": AUDIO, "parameters": {"known_speakers": known}})
    assert "known_speakers" in str(info.value) and "Traceback" not in str(info.value)
    assert handler({"inputs": AUDIO, "parameters": {"diarize": False}})["text"]


def test_known_speakers_need_a_pipeline_with_an_embedding_model(make_handler, tiny_models, tmp_path):
    from evaluation.oracle_diarization import write_oracle_pipeline

    rttm = tmp_path / "a.rttm"
    rttm.write_text("SPEAKER a 1 0.0 2.0 <NA> <NA> x <NA> <NA>\n")
    handler = make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=write_oracle_pipeline(tmp_path / "o", rttm),
                           WARMUP="false")
    with pytest.raises(ClientError, match="embedding model"):
        handler({"inputs": AUDIO, "parameters": {"known_speakers": {"Ann": [0.0]}}})


# ---- the real pipeline (segmentation-3.0 + CAM++) on the dev dialogue ---------------------


@pytest.mark.real_model
def test_references_from_one_half_name_the_speakers_of_the_other(real_whisper_dir, real_diarization_dir,
                                                                 dialogue_dir):
    """Clips of each speaker from the first half name them in the second half, for every
    word that plain attribution gets right; a voice not in the audio matches nobody."""
    from conftest import MODEL_ENV
    from evaluation.evaluate import Harness
    from evaluation.oracle_diarization import rttm_turns
    from speech_endpoint.speech.audio import decode

    samples = decode((dialogue_dir / "dialogue.wav").read_bytes()).samples
    turns = rttm_turns(dialogue_dir / "dialogue.rttm")
    half = 30.0

    def clip_of(speaker):  # their first two turns, wholly in the first half
        own = [t for t in turns if t.speaker == speaker and t.end <= half][:2]
        return b64(np.concatenate([samples[int(t.start * RATE):int(t.end * RATE)] for t in own]))

    stranger, _ = sf.read(DATA / "stranger.flac", dtype="float32")
    known = {"Alice": clip_of("alice"), "Bob": clip_of("bob"), "Stranger": b64(stranger)}
    with pytest.MonkeyPatch.context() as mp:
        for name in MODEL_ENV:
            mp.delenv(name, raising=False)
        harness = Harness(diarization_model=str(real_diarization_dir), asr_model=str(real_whisper_dir))
    second = wav_bytes(samples[int(half * RATE):], RATE)
    plain_prepared = harness.prepare(second, {})
    plain = harness.respond(plain_prepared, harness.diarize(plain_prepared))
    named_prepared = harness.prepare(second, {"known_speakers": known})
    named = harness.respond(named_prepared, harness.diarize(named_prepared))

    def truth(word):
        middle = half + (word["start"] + word["end"]) / 2
        return next((t.speaker for t in turns if t.start <= middle <= t.end), None)

    # plain labels mapped to the true speakers by majority
    votes = {}
    for w in plain["words"]:
        votes.setdefault(w["speaker"], []).append(truth(w))
    label_truth = {label: max(set(v), key=v.count) for label, v in votes.items()}
    right = [i for i, w in enumerate(plain["words"]) if label_truth[w["speaker"]] == truth(w)]
    assert len(right) > 0.8 * len(plain["words"])
    names = {"alice": "Alice", "bob": "Bob"}
    wrong = [named["words"][i] for i in right if named["words"][i]["speaker"] != names[truth(plain["words"][i])]]
    assert not wrong, wrong
    matches = named["metadata"]["known_speakers"]
    print("similarities:", matches)
    assert matches["Stranger"]["matched"] is False
    assert matches["Alice"]["similarity"] > 0.8 and matches["Bob"]["similarity"] > 0.8


# ---- real voices: AMI Meeting Corpus (CC BY 4.0), Carletta et al. 2005 --------------------


@pytest.mark.real_model
def test_a_voice_from_one_meeting_is_named_in_the_next_and_one_from_another_series_is_not(
        tiny_models, real_diarization_dir, ami_dev_dir):
    """MEE009's speech alone from ES2003a names MEE009's speaker in ES2003b at the default
    threshold; MEE068 (EN2001a), the other series' voice closest to ES2003b, names nobody,
    beside MEE009's reference or alone (then only the threshold keeps it out)."""
    from conftest import handler_with
    from evaluation.known_speakers_study import cut, diarize, load_clip, wav_b64
    from evaluation.speaker_pairs import majority_speakers, take

    source, target, other = (load_clip(next(ami_dev_dir.glob(f"{m}_*.wav"))) for m in ("ES2003a", "ES2003b", "EN2001a"))
    known = {"MEE009": wav_b64(cut(source.samples, take(source.alone["MEE009"], 10.0))),
             "MEE068": wav_b64(cut(other.samples, take(other.alone["MEE068"], 10.0)))}
    with handler_with(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=real_diarization_dir, WARMUP="false") as handler:
        references = handler.references(handler.check({"parameters": {"known_speakers": known}}))
        attribution = diarize(handler, target, references)
        named, matches = handler.identify(attribution, references)
        _, alone = handler.identify(attribution, {"MEE068": references["MEE068"]})
    by_name = {m.name: m for m in matches}
    print("similarities:", {m.name: round(m.similarity, 3) for m in matches + alone})
    owner = majority_speakers(attribution.turns, target.turns)
    assert owner.get(by_name["MEE009"].speaker) == "MEE009"
    assert "MEE009" in {t.speaker for t in named.turns}
    assert by_name["MEE068"].speaker is None and alone[0].speaker is None
