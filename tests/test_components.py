"""`EndpointHandler` composed from components passed in, the one decoding plan, and the
timings named for what they measure."""
import numpy as np
import pytest

from config import InferenceConfig, ModelSettings, plan_decoding
from speech_endpoint.schema import SAMPLE_RATE, ClientError, Diarization, Transcript, Turn, Word
from support.audio_factory import speech, wav_bytes

SPEECHY = wav_bytes(speech(4.0), 16000)


def plan(parameters=None, *, has_assistant=True, device="cpu", duration=10.0, **settings):
    return plan_decoding(InferenceConfig.from_parameters(parameters or {}),
                         ModelSettings.from_values(asr_model="m", **settings),
                         has_assistant=has_assistant, device=device, duration=duration)


def test_settings_from_values_leave_the_environment_unread(monkeypatch):
    monkeypatch.setenv("MAX_BATCH_SIZE", "3")
    monkeypatch.setenv("DEVICE", "cuda")
    settings = ModelSettings.from_values(asr_model="m")
    assert (settings.max_batch_size, settings.device) == (64, "auto")
    assert ModelSettings.from_values(asr_model="m", max_batch_size=5).max_batch_size == 5


def test_auto_takes_the_assistant_on_a_gpu_for_short_audio_only():
    assert plan({"assisted": "auto"}, device="cuda:0", duration=10.0).use_assistant is True
    assert plan({"assisted": "auto"}, device="cuda:0", duration=31.0).use_assistant is False
    assert plan({"assisted": "auto"}, device="cpu", duration=10.0).use_assistant is False
    assert plan({"assisted": "auto"}, device="cuda:0", duration=None).use_assistant is False  # not decoded yet
    assert plan({"assisted": "auto"}, device="cuda:0", has_assistant=False).use_assistant is False
    assert plan({}, device="cuda:0", default_assisted="auto").use_assistant is True


def test_the_assistant_decodes_at_batch_one_and_greedy():
    options = plan({"assisted": True, "batch_size": 8})
    assert (options.use_assistant, options.batch_size, options.beam_size) == (True, 1, 1)
    assert plan({"batch_size": 8}).batch_size == 8


def test_what_the_request_asks_beats_a_default():
    assert (plan({"assisted": True}, default_beam_size=3).beam_size, plan({}, default_beam_size=3).beam_size) == (1, 3)
    options = plan({"beam_size": 2}, default_assisted=True)
    assert (options.use_assistant, options.beam_size) == (False, 2)
    assert plan({"chunk_length_s": 0}, default_beam_size=3).beam_size == 1  # sequential decoding is greedy


def test_the_batch_limit_clamps_the_default_and_refuses_what_was_asked():
    assert plan({}, max_batch_size=4).batch_size == 4
    with pytest.raises(ClientError, match="batch_size"):
        plan({"batch_size": 5}, max_batch_size=4)


@pytest.mark.parametrize("parameters, has_assistant, message", [
    ({"assisted": True}, False, "ASSISTANT_MODEL"),
    ({"chunk_length_s": 0, "beam_size": 2}, True, "sequential decoding"),
    ({"assisted": True, "beam_size": 2}, True, "speculative decoding is greedy"),
])
def test_refusals(parameters, has_assistant, message):
    with pytest.raises(ClientError, match=message):
        plan(parameters, has_assistant=has_assistant, duration=None)


class FakeRecogniser:
    """Two words, one per second, whatever the audio."""

    assistant = None
    multilingual = True

    def __init__(self):
        self.options = []

    def transcribe(self, audio, activity, options, progress=None):
        self.options.append(options)
        words = [Word(" Hello", 0.5, 1.0), Word(" there.", 2.5, 3.0)]
        return Transcript("Hello there.", words, "en")

    def warm_up(self):
        pass


class FakeVAD:
    frame_s = 0.032

    def probabilities(self, samples):
        return np.ones(int(len(samples) / SAMPLE_RATE / self.frame_s), np.float32)


class FakeDiarizer:
    params = {}
    embedding_dimension = None

    def __call__(self, audio, *, num_speakers=None, min_speakers=None, max_speakers=None, embeddings=False):
        turns = [Turn(0.0, 2.0, "a"), Turn(2.0, 4.0, "b")]
        return Diarization(exclusive=turns, full=turns)

    def embed(self, samples):
        raise AssertionError("no known speakers here")


def test_a_handler_from_components_answers_without_the_environment(monkeypatch):
    from handler import EndpointHandler

    monkeypatch.setenv("ASR_MODEL", "/nonexistent")  # never read
    asr = FakeRecogniser()
    handler = EndpointHandler.from_components(asr=asr, vad=FakeVAD(), diarizer=FakeDiarizer())
    out = handler({"inputs": SPEECHY, "parameters": {"batch_size": 3}})
    assert [(w["word"], w["speaker"]) for w in out["words"]] == [("Hello", "SPEAKER_00"), ("there.", "SPEAKER_01")]
    assert asr.options[0].batch_size == 3 and out["metadata"]["device"] == "cpu"
    timings = out["metadata"]["timings"]
    assert set(timings) == {"decode_s", "references_s", "speech_detection_s", "transcription_s",
                            "diarization_pipeline_s", "attribution_s", "asr_s", "redecode_s", "diarization_s",
                            "total_s"}
    assert timings["asr_s"] == pytest.approx(timings["references_s"] + timings["speech_detection_s"]
                                             + timings["transcription_s"], abs=2e-3)  # each rounded to 1 ms
    assert timings["diarization_s"] == pytest.approx(timings["diarization_pipeline_s"] + timings["attribution_s"],
                                                     abs=2e-3)
    assert sum(v for k, v in timings.items() if k not in ("asr_s", "diarization_s", "redecode_s", "total_s")) \
        <= timings["total_s"] + 4e-3


def test_components_give_what_the_environment_gives(make_handler, tiny_models):
    """The platform's constructor and `from_components` with the same models answer alike."""
    from handler import EndpointHandler

    loaded = make_handler(ASR_MODEL=str(tiny_models.whisper), WARMUP="false")
    composed = EndpointHandler.from_components(asr=loaded.asr, vad=loaded.vad,
                                               settings=ModelSettings.from_values(asr_model="m", warmup=False))
    data = {"inputs": SPEECHY, "parameters": {"language": "en"}}
    first, second = loaded(data), composed(data)
    for out in (first, second):
        out["metadata"].pop("timings")
    assert first == second
