"""End to end through `EndpointHandler(path)`, built the way the platform builds it, on tiny
random checkpoints (the words are gibberish: these tests pin the contract, not accuracy)."""
import base64

import numpy as np
import pytest

from support.audio_factory import bursts, encode, speech, wav_bytes
from speech_endpoint.schema import ClientError


@pytest.fixture(scope="module")
def handler(tiny_models):
    from conftest import handler_with

    with handler_with(ASR_MODEL=tiny_models.whisper, ASSISTANT_MODEL=tiny_models.assistant,
                      DIARIZATION_MODEL=tiny_models.diarization) as built:
        yield built


SPEECHY = wav_bytes(speech(4.0), 16000)


def check_contract(out, duration):
    assert set(out) >= {"text", "chunks", "speakers", "metadata"}
    assert isinstance(out["text"], str)
    last = 0.0
    for chunk in out["chunks"]:
        start, end = chunk["timestamp"]
        assert start is not None and end is not None
        assert 0 <= start <= end <= duration + 1e-6
        assert start >= last - 1e-6
        last = start
    for word in out.get("words", []):
        assert 0 <= word["start"] <= word["end"] <= duration + 1e-6
    starts = [w["start"] for w in out.get("words", [])]
    assert starts == sorted(starts)
    for utt in out["speakers"]:
        assert set(utt) == {"speaker", "text", "timestamp"}


def test_base64_and_raw_bytes_give_the_same_result(handler):
    params = {"diarize": False, "language": "en"}
    a = handler({"inputs": base64.b64encode(SPEECHY).decode(), "parameters": params})
    b = handler({"inputs": SPEECHY, "parameters": params})
    check_contract(a, 4.0)
    assert a["text"] == b["text"] and a["chunks"] == b["chunks"]
    assert a["metadata"]["duration"] == pytest.approx(4.0, abs=0.01)


@pytest.mark.parametrize("rate, channels", [(8000, 1), (44100, 2), (48000, 2)])
def test_any_rate_and_channel_count(handler, rate, channels):
    out = handler({"inputs": wav_bytes(speech(3.0, rate, channels), rate), "parameters": {"diarize": False}})
    check_contract(out, 3.0)
    assert out["metadata"]["duration"] == pytest.approx(3.0, abs=0.01)


def test_compressed_input(handler):
    out = handler({"inputs": encode(speech(3.0, 48000, 2), 48000, "webm"), "parameters": {"diarize": False}})
    check_contract(out, 3.1)


@pytest.mark.parametrize("samples", [np.zeros((5 * 16000, 1), np.float32),
                                     (0.001 * np.random.default_rng(0).standard_normal((20 * 16000, 1))).astype(np.float32),
                                     np.zeros((0, 1), np.float32),
                                     bursts(0.05)])
def test_silence_noise_and_empty_files_give_an_empty_result(handler, samples):
    out = handler({"inputs": wav_bytes(samples, 16000)})
    assert out["text"] == "" and out["chunks"] == [] and out["speakers"] == []
    assert out["metadata"]["speech_detected"] is False


def test_diarization_gives_every_word_exactly_one_speaker(handler):
    out = handler({"inputs": SPEECHY, "parameters": {"num_speakers": 2}})
    check_contract(out, 4.0)
    assert out["metadata"]["diarization"] is True
    if out.get("words"):
        assert all(isinstance(w["speaker"], str) for w in out["words"])
        assert " ".join(u["text"] for u in out["speakers"]).split() == [w["word"] for w in out["words"]]


def test_diarization_can_be_switched_off_per_request(handler):
    out = handler({"inputs": SPEECHY, "parameters": {"diarize": False}})
    assert out["speakers"] == [] and out["metadata"]["diarization"] is False


def test_assisted_output_equals_unassisted_under_greedy_decoding(handler):
    calls = []
    hook = handler.asr.assistant.register_forward_hook(lambda *a: calls.append(1))
    try:
        params = {"diarize": False, "language": "en", "batch_size": 1}
        plain = handler({"inputs": SPEECHY, "parameters": params})
        assisted = handler({"inputs": SPEECHY, "parameters": {**params, "assisted": True}})
    finally:
        hook.remove()
    assert calls, "the assistant was never called"
    assert assisted["metadata"]["assisted"] is True and plain["metadata"]["assisted"] is False
    assert assisted["text"] == plain["text"]
    without_probability = [{k: v for k, v in w.items() if k != "probability"} for w in plain["words"]]
    assert [{k: v for k, v in w.items() if k != "probability"} for w in assisted["words"]] == without_probability
    # read from generation's scores (plain) or from the alignment pass (assisted): the same model, the same numbers
    for a, b in zip(assisted["words"], plain["words"]):
        assert a["probability"] == pytest.approx(b["probability"], abs=0.01)


@pytest.mark.parametrize("params", [{"batch_size": 2}, {"batch_size": 1, "assisted": True}, {"chunk_length_s": 0}],
                         ids=["windows", "windows assisted", "sequential"])
def test_every_word_has_a_probability(handler, params):
    out = handler({"inputs": wav_bytes(speech(12.0), 16000), "parameters": {"diarize": False, **params}})
    assert out["words"]
    assert all(0.0 <= w["probability"] <= 1.0 for w in out["words"]), out["words"]


def test_beam_search_gives_timed_words_with_probabilities(handler):
    audio = wav_bytes(speech(12.0), 16000)
    out = handler({"inputs": audio, "parameters": {"diarize": False, "beam_size": 3, "batch_size": 2}})
    check_contract(out, 12.0)
    assert out["metadata"]["beam_size"] == 3 and out["metadata"]["assisted"] is False
    assert out["words"] and all(0.0 <= w["probability"] <= 1.0 for w in out["words"])
    # the same request again: generate() must not have changed the request's encoder output
    again = handler({"inputs": audio, "parameters": {"diarize": False, "beam_size": 3, "batch_size": 2}})
    assert again["text"] == out["text"] and again["words"] == out["words"]


def test_with_beams_batch_size_counts_sequences(handler):
    """Each beam keeps its own cross-attention cache: 4 sequences at beam 2 are 2 windows."""
    sizes = []
    hook = handler.asr.model.get_encoder().register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    try:
        out = handler({"inputs": wav_bytes(speech(12.0), 16000),
                       "parameters": {"diarize": False, "beam_size": 2, "batch_size": 4, "chunk_length_s": 2}})
    finally:
        hook.remove()
    assert out["words"] and sizes and max(sizes) == 2, sizes


def test_beams_are_refused_where_decoding_must_be_greedy(handler):
    for params in ({"assisted": True, "beam_size": 2}, {"chunk_length_s": 0, "beam_size": 2}):
        with pytest.raises(ClientError, match="'beam_size'"):
            handler({"inputs": SPEECHY, "parameters": params})
    assert handler({"inputs": SPEECHY, "parameters": {"diarize": False}})["metadata"]["beam_size"] == 1


def test_assisted_with_default_batch_size_runs_at_batch_one_and_says_so(handler):
    out = handler({"inputs": SPEECHY, "parameters": {"assisted": "true", "diarize": False}})
    assert out["metadata"]["batch_size"] == 1 and out["metadata"]["notes"]


def test_every_parameter(handler):
    params = {"task": "translate", "batch_size": "2", "chunk_length_s": "10", "language": "french",
              "timestamp_granularity": "word", "prompt": "Acme Corp.", "min_speakers": 1, "max_speakers": 3,
              "output_formats": ["srt", "vtt", "rttm"]}
    out = handler({"inputs": SPEECHY, "parameters": params})
    check_contract(out, 4.0)
    meta = out["metadata"]
    assert (meta["task"], meta["batch_size"], meta["chunk_length_s"], meta["language"]) == ("translate", 2, 10.0, "fr")
    assert out["vtt"].startswith("WEBVTT") and isinstance(out["srt"], str) and isinstance(out["rttm"], str)
    if out.get("words"):  # word granularity: one chunk per word
        assert len(out["chunks"]) == len(out["words"])


def test_sequential_long_form_mode(handler):
    out = handler({"inputs": SPEECHY, "parameters": {"chunk_length_s": 0, "diarize": False}})
    check_contract(out, 4.0)


def test_a_sequential_request_leaves_the_next_requests_as_they_were(handler):
    """transformers' word timestamps switch the model to eager attention and leave it so:
    the handler restores its own attention afterwards."""
    params = {"diarize": False, "language": "en"}
    before = handler({"inputs": SPEECHY, "parameters": params})
    implementation = handler.asr.model.config._attn_implementation
    handler({"inputs": SPEECHY, "parameters": {**params, "chunk_length_s": 0}})
    assert handler.asr.model.config._attn_implementation == implementation
    after = handler({"inputs": SPEECHY, "parameters": params})
    assert (after["text"], after["words"]) == (before["text"], before["words"])


def test_raw_pcm_declared_by_the_request(handler):
    pcm = (bursts(2.0, 8000)[:, 0] * 32767).astype("<i2").tobytes()
    out = handler({"inputs": pcm, "parameters": {"input_format": "pcm_s16le", "sampling_rate": 8000, "diarize": False}})
    assert out["metadata"]["duration"] == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("data, message", [
    ({"inputs": "@@@"}, "base64"),
    ({"inputs": ""}, "empty"),
    ({}, "no 'inputs'"),
    ({"inputs": b"not audio at all"}, "audio"),
    ({"inputs": SPEECHY, "parameters": {"batch_size": 0}}, "batch_size"),
    ({"inputs": SPEECHY, "parameters": {"batch_size": 10_000}}, "batch_size"),
    ({"inputs": SPEECHY, "parameters": "fast"}, "parameters"),
    ("just a string", "JSON object"),
])
def test_bad_requests_get_a_clear_error_and_the_handler_keeps_serving(handler, data, message):
    with pytest.raises(ClientError, match=message) as err:
        handler(data)
    assert "Traceback" not in str(err.value)
    out = handler({"inputs": SPEECHY, "parameters": {"diarize": False}})
    check_contract(out, 4.0)


def test_features_the_endpoint_lacks_are_client_errors(make_handler, tiny_models):
    bare = make_handler(ASR_MODEL=str(tiny_models.whisper), WARMUP="false")
    with pytest.raises(ClientError, match="ASSISTANT_MODEL"):
        bare({"inputs": SPEECHY, "parameters": {"assisted": True}})
    with pytest.raises(ClientError, match="DIARIZATION_MODEL"):
        bare({"inputs": SPEECHY, "parameters": {"num_speakers": 2}})
    # "auto" without an assistant is plain decoding, not an error
    assert bare({"inputs": SPEECHY, "parameters": {"assisted": "auto"}})["metadata"]["assisted"] is False


def test_full_whisper_assistant_also_works(make_handler, tiny_models):
    h = make_handler(ASR_MODEL=str(tiny_models.whisper), ASSISTANT_MODEL=str(tiny_models.assistant_full), WARMUP="false")
    plain = h({"inputs": SPEECHY, "parameters": {"language": "en", "batch_size": 1}})
    assisted = h({"inputs": SPEECHY, "parameters": {"language": "en", "assisted": True}})
    assert assisted["text"] == plain["text"] and assisted["metadata"]["assisted"] is True


def test_device_setting(make_handler, tiny_models):
    """DEVICE=cuda without a usable GPU stops start-up saying why; auto says where it runs."""
    import torch

    from speech_endpoint.whisper.precision import DeviceError

    if torch.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(DeviceError, match="DEVICE=cuda.*(CUDA|CPU wheel|no GPU was found)"):
        make_handler(ASR_MODEL=tiny_models.whisper, DEVICE="cuda", WARMUP="false")
    handler = make_handler(ASR_MODEL=tiny_models.whisper, DEVICE="auto", WARMUP="false")
    meta = handler({"inputs": SPEECHY, "parameters": {}})["metadata"]
    assert meta["device"] == "cpu" and meta["dtype"].startswith("float32")


def test_a_machine_without_an_nvidia_driver_is_told_no_gpu_was_found(monkeypatch):
    """The driver advice is for a machine with a GPU; without a driver the reason is plain."""
    import torch

    from speech_endpoint.whisper import precision as device

    if torch.cuda.is_available() or torch.version.cuda is None:
        pytest.skip("needs a CUDA build of torch without a usable GPU")
    monkeypatch.setattr(device, "NVIDIA_DRIVER_PATHS", ("/nonexistent/nvidia",))
    assert device.cuda_problem() == "no GPU was found: this machine has no NVIDIA driver"
    monkeypatch.setattr(device, "NVIDIA_DRIVER_PATHS", ("/",))  # a driver is there, torch still cannot use it
    assert "driver too old" in device.cuda_problem()


def test_what_a_request_asks_for_beats_the_endpoints_decoding_default(make_handler, tiny_models):
    params = {"diarize": False, "batch_size": 1, "language": "en"}
    beams = make_handler(ASR_MODEL=str(tiny_models.whisper), ASSISTANT_MODEL=str(tiny_models.assistant),
                         DEFAULT_BEAM_SIZE="3", WARMUP="false")
    meta = beams({"inputs": SPEECHY, "parameters": params})["metadata"]
    assert (meta["beam_size"], meta["assisted"]) == (3, False)
    meta = beams({"inputs": SPEECHY, "parameters": {**params, "assisted": True}})["metadata"]
    assert (meta["beam_size"], meta["assisted"]) == (1, True)
    assisting = make_handler(ASR_MODEL=str(tiny_models.whisper), ASSISTANT_MODEL=str(tiny_models.assistant),
                             DEFAULT_ASSISTED="true", WARMUP="false")
    meta = assisting({"inputs": SPEECHY, "parameters": {**params, "beam_size": 2}})["metadata"]
    assert (meta["beam_size"], meta["assisted"]) == (2, False)


@pytest.mark.parametrize("chunk_length_s", [30, 0])
def test_metadata_says_what_the_skipped_speech_guard_did(handler, chunk_length_s):
    out = handler({"inputs": wav_bytes(speech(12.0), 16000),
                   "parameters": {"diarize": False, "language": "en", "chunk_length_s": chunk_length_s}})
    check_contract(out, 12.0)
    meta = out["metadata"]
    redecoded = meta["redecoded"]
    assert set(redecoded) == {"stretches", "words", "speech_s", "loops_dropped"}
    assert 0 <= redecoded["speech_s"] <= meta["speech_s"] + 1e-6
    said = " ".join(meta["notes"])
    assert (redecoded["stretches"] > 0) == ("got no words" in said)
    assert (redecoded["loops_dropped"] > 0) == ("repeated itself" in said)
    assert 0 <= meta["timings"]["redecode_s"] <= meta["timings"]["asr_s"]
