"""Speech, not noise: Silero VAD's probabilities, the regions derived from them, and the
handler on generated non-speech (nothing reaches Whisper, nothing is invented)."""
import numpy as np
import pytest
import torch

from evaluation import noise
from speech_endpoint.schema import Audio
from speech_endpoint.speech.silero import FRAME_S, SileroVAD
from speech_endpoint.speech.activity import activity_from_probabilities, has_speech, speech_regions
from support.audio_factory import speech, wav_bytes

RATE = 16000


@pytest.fixture(scope="module")
def vad():
    return SileroVAD()


def test_loading_keeps_the_callers_thread_count():
    """Importing silero_vad sets torch to one thread; the endpoint's CPU_THREADS must hold."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = SileroVAD()
        model.probabilities(np.zeros(RATE, np.float32))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_batched_pass_is_in_use_and_matches_silero_frame_by_frame(vad):
    from silero_vad import load_silero_vad

    assert vad.batched
    samples = speech(6.3)[:, 0]
    padded = np.zeros(-(-len(samples) // 512) * 512, np.float32)
    padded[: len(samples)] = samples
    reference = load_silero_vad().audio_forward(torch.from_numpy(padded), RATE).numpy().reshape(-1)
    first = vad.probabilities(samples)
    vad.probabilities(noise.babble_like(3.0))  # another request in between leaves no state behind
    assert np.max(np.abs(first - reference)) < 1e-3
    np.testing.assert_array_equal(first, vad.probabilities(samples))


@pytest.mark.parametrize("n, frames", [(0, 0), (1, 1), (511, 1), (512, 1), (513, 2), (16000, 32)])
def test_one_probability_per_frame_the_last_one_padded(vad, n, frames):
    probs = vad.probabilities(np.zeros(n, np.float32))
    assert probs.shape == (frames,) and np.all((probs >= 0) & (probs <= 1))


def test_a_nan_sample_does_not_poison_the_rest(vad):
    samples = speech(3.0)[:, 0].copy()
    samples[100] = np.nan
    assert np.all(np.isfinite(vad.probabilities(samples)))


def test_regions_hysteresis_minimum_length_and_padding():
    assert speech_regions(np.zeros(100), FRAME_S, 3.2) == []
    assert speech_regions(np.ones(100), FRAME_S, 3.1) == [(0.0, 3.1)]
    probs = np.zeros(100)
    probs[10:16] = 0.9  # 0.19 s: shorter than MIN_SPEECH_S
    assert speech_regions(probs, FRAME_S, 3.2) == []
    probs[10:30] = 0.9
    probs[20:22] = 0.2  # a 64 ms dip is not a pause (MIN_SILENCE_S is 0.1 s)
    assert speech_regions(probs, FRAME_S, 3.2) == [(pytest.approx(0.29), pytest.approx(0.99))]
    probs[20:22] = 0.45  # above threshold - 0.15: still speech
    assert len(speech_regions(probs, FRAME_S, 3.2)) == 1


def test_regions_match_silero_get_speech_timestamps():
    from silero_vad import get_speech_timestamps_from_probs

    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 300))
        probs = np.repeat(rng.choice([0.02, 0.3, 0.4, 0.55, 0.9], size=n), rng.integers(1, 12, size=n))
        samples = probs.size * 512 - int(rng.integers(0, 512))
        ours = speech_regions(probs, FRAME_S, samples / RATE)
        theirs = get_speech_timestamps_from_probs(list(map(float, probs)), sampling_rate=RATE,
                                                   audio_length_samples=samples)
        assert len(ours) == len(theirs)
        np.testing.assert_allclose([x for r in ours for x in r],
                                   [d[k] / RATE for d in theirs for k in ("start", "end")], atol=1.01 / RATE)


def test_speech_is_found_and_generated_non_speech_is_not(vad):
    activity = activity_from_probabilities(vad.probabilities(speech(10.0)[:, 0]), FRAME_S, 10.0)
    assert has_speech(activity) and activity.speech_s > 6
    for name, make in noise.NON_SPEECH.items():
        samples = make(10.0, seed=3)
        activity = activity_from_probabilities(vad.probabilities(samples), FRAME_S, 10.0)
        assert not has_speech(activity), f"{name}: {activity.speech_s:.2f} s taken for speech"


@pytest.fixture(scope="module")
def handler(tiny_models):
    from conftest import handler_with

    with handler_with(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization) as built:
        yield built


@pytest.mark.parametrize("name", sorted(noise.NON_SPEECH))
def test_generated_non_speech_gives_an_empty_result(handler, name):
    out = handler({"inputs": wav_bytes(noise.NON_SPEECH[name](8.0, seed=5), RATE),
                   "parameters": {"output_formats": ["srt", "rttm"]}})
    assert out["text"] == "" and out["chunks"] == [] and out["speakers"] == [] and not out.get("words")
    assert out["srt"] == "" and out["rttm"] == ""
    assert out["metadata"]["speech_detected"] is False


def test_no_window_reaches_into_music_between_two_turns(handler):
    samples, (start, end) = noise.with_insert(speech(4.0)[:, 0], noise.music_notes(6.0, seed=2), speech(4.0)[:, 0])
    activity = handler.speech(Audio(samples))
    speech_frames = np.flatnonzero(activity.mask) * activity.frame_s
    assert not np.any((speech_frames > start + 0.3) & (speech_frames < end - 0.3))
    out = handler({"inputs": wav_bytes(samples, RATE), "parameters": {"diarize": False}})
    assert all(not (start + 0.3 < (w["start"] + w["end"]) / 2 < end - 0.3) for w in out.get("words", []))


# ---- with the real Whisper base (skips without WHISPER_MODEL_DIR / DIALOGUE_DIR) ----------

# WER of the energy gate this replaced, on the same audio (evaluation.robustness, float32,
# current stack). Silero measured 27.4%, 63.0% and 6.2%: 0 dB is 1.4 points worse, by where
# the windows fall (pooled over 38 corpus conversations the two window settings tried are
# within 0.14 points), so the bound allows two points of that variance on either stack.
ENERGY_GATE_WER = {"dialogue + pink noise 5 dB SNR": 0.363, "dialogue + pink noise 0 dB SNR": 0.616,
                   "dialogue attenuated 35 dB": 0.069}
WINDOW_VARIANCE = 0.02


@pytest.fixture(scope="module")
def real_handler(real_whisper_dir):
    from conftest import handler_with

    with handler_with(ASR_MODEL=real_whisper_dir, CPU_BF16="false", CPU_INT8="false") as built:  # float32, as measured
        yield built


@pytest.fixture(scope="module")
def dialogue_cases(dialogue_dir):
    from evaluation.robustness import dialogue_cases

    return {case.name: case for case in dialogue_cases(dialogue_dir)}


@pytest.mark.real_model
@pytest.mark.parametrize("name", sorted(noise.NON_SPEECH))
def test_real_whisper_invents_nothing_on_non_speech(real_handler, name):
    out = real_handler({"inputs": wav_bytes(noise.NON_SPEECH[name](20.0, seed=0), RATE)})
    assert out["text"] == "" and out["chunks"] == [] and not out.get("words")


@pytest.mark.real_model
def test_real_whisper_puts_no_word_inside_music_between_turns(real_handler, dialogue_cases):
    from evaluation.robustness import run_case, words_inside

    case = dialogue_cases["dialogue with 12 s of music between turns"]
    out = real_handler({"inputs": wav_bytes(case.samples, RATE)})
    assert out["words"] and words_inside(out, case.forbidden) == []
    assert run_case(real_handler, case)["wer"] <= 0.10


@pytest.mark.real_model
@pytest.mark.parametrize("name", sorted(ENERGY_GATE_WER), ids=lambda n: f"{n}: gate {ENERGY_GATE_WER[n]:.1%}")
def test_degraded_speech_keeps_its_words(real_handler, dialogue_cases, dialogue_dir, name):
    """Speech detection keeps the speech (at least 95% of the reference's speaking time),
    and the words with it."""
    from evaluation.oracle_diarization import rttm_turns
    from evaluation.robustness import run_case

    turns = rttm_turns(dialogue_dir / "dialogue.rttm")
    spoken = sum(t.end - t.start for t in turns)
    row = run_case(real_handler, dialogue_cases[name])
    assert row["speech_s"] >= 0.95 * spoken, row
    assert row["wer"] <= ENERGY_GATE_WER[name] + WINDOW_VARIANCE, row
