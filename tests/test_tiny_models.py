"""The tiny offline checkpoints of scripts/make_tiny_models.py load and run through the
real transformers / pyannote.audio code paths, on both stacks (transformers 4.51 +
pyannote.audio 3.4, and transformers 5 + pyannote.audio 4).

Some tests pin down library behaviour that differs between the two stacks (marked
"stack difference"): if one starts failing after an upgrade, the library changed."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speech_endpoint.compat import PYANNOTE_MAJOR
from support import tiny_models as mtm

transformers = pytest.importorskip("transformers")
TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])
SR = 16000
EXPECTED_TEXT = "h vqacbvq vxmy b i"
EXPECTED_SEGMENTS = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]


def _noise(seconds: float, seed: int = 0, level: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SR)) * level).astype(np.float32)


def _inputs(audio: np.ndarray) -> dict:
    # the pipeline pops "raw"/"sampling_rate" out of the dict: build a fresh one each call
    return {"raw": audio.copy(), "sampling_rate": SR}


def _dtype_kwargs() -> dict:
    # transformers 5 deprecates torch_dtype= for dtype=; 4.51 only knows torch_dtype=
    key = "dtype" if TRANSFORMERS_MAJOR >= 5 else "torch_dtype"
    return {key: torch.float32}


@pytest.fixture(scope="module")
def asr(tiny_models):
    from transformers import pipeline

    return pipeline(
        "automatic-speech-recognition",
        model=str(tiny_models.whisper),
        device="cpu",
        **_dtype_kwargs(),
    )


@pytest.fixture(scope="module")
def causal_assistant(tiny_models):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_models.assistant), **_dtype_kwargs())


@pytest.fixture(scope="module")
def diarization_pipeline(tiny_models):
    from pyannote.audio import Pipeline

    return Pipeline.from_pretrained(str(tiny_models.diarization / "config.yaml"))


# ------------------------------------------------------------------------- build


def test_build_layout(tiny_models):
    assert isinstance(tiny_models, mtm.TinyModels)
    for folder in (tiny_models.whisper, tiny_models.assistant, tiny_models.assistant_full):
        for name in ("config.json", "generation_config.json", "tokenizer_config.json",
                     "preprocessor_config.json", "tokenizer.json"):
            assert (folder / name).is_file(), folder / name
    assert (tiny_models.diarization / "config.yaml").is_file()
    assert tiny_models.diarization_config == tiny_models.diarization / "config.yaml"
    for name in ("wespeaker", "speechbrain", "nvidia"):
        assert name not in str(tiny_models.diarization)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".safetensors", ".json", ".npz")
    }


def test_build_is_deterministic_and_fast(tmp_path):
    import time

    start = time.perf_counter()
    first = mtm.build_tiny_models(tmp_path / "a")
    elapsed = time.perf_counter() - start
    second = mtm.build_tiny_models(tmp_path / "b")
    assert elapsed < 20  # about 1 s once torch/transformers/pyannote are imported
    for field in ("whisper", "assistant", "assistant_full"):
        one, two = _digest(getattr(first, field)), _digest(getattr(second, field))
        assert one and one == two, field
    seg_a = torch.load(first.diarization / "segmentation" / "pytorch_model.bin",
                       weights_only=False)["state_dict"]
    seg_b = torch.load(second.diarization / "segmentation" / "pytorch_model.bin",
                       weights_only=False)["state_dict"]
    assert all(torch.equal(seg_a[k], seg_b[k]) for k in seg_a)


def test_build_does_not_disturb_global_seed(tmp_path):
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    mtm.build_tiny_models(tmp_path)  # seeds internally, then restores the RNG state
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("word", ["speechbrain", "nvidia", "wespeaker"])
def test_build_refuses_paths_that_confuse_pyannote(tmp_path, word):
    with pytest.raises(ValueError, match=word):
        mtm.build_tiny_models(tmp_path / f"my-{word}-models")


def test_cli_prints_paths(tmp_path, capsys):
    assert mtm.main([str(tmp_path / "cli")]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert set(lines) == {"whisper", "assistant", "assistant_full", "diarization"}
    for path in lines.values():
        assert Path(path).is_dir()


# ---------------------------------------------------------------- whisper files


def test_tokenizer_invariants(tiny_models):
    from transformers import AutoTokenizer, WhisperProcessor
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    processor = WhisperProcessor.from_pretrained(str(tiny_models.whisper))
    fast = AutoTokenizer.from_pretrained(str(tiny_models.whisper))
    config = json.loads((tiny_models.whisper / "config.json").read_text())
    for tokenizer in (processor.tokenizer, fast):
        no_ts = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
        assert tokenizer.all_special_ids[-1] == no_ts
        assert tokenizer.convert_tokens_to_ids("<|0.00|>") == no_ts + 1
        assert tokenizer.convert_tokens_to_ids("<|30.00|>") == no_ts + 1501
        assert len(tokenizer) == config["vocab_size"]
        for code in LANGUAGES:
            assert tokenizer.convert_tokens_to_ids(f"<|{code}|>") != tokenizer.unk_token_id
        ids = tokenizer("hello world", add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == "hello world"
    assert processor.feature_extractor.feature_size == 80
    assert processor.feature_extractor.sampling_rate == SR


def test_generation_config(tiny_models):
    from transformers import GenerationConfig

    for folder in (tiny_models.whisper, tiny_models.assistant, tiny_models.assistant_full):
        gen = GenerationConfig.from_pretrained(str(folder))
        assert gen.is_multilingual
        assert gen.task == "transcribe"
        assert getattr(gen, "forced_decoder_ids", None) is None
        assert gen.lang_to_id["<|en|>"] and gen.task_to_id == {
            "transcribe": gen.task_to_id["transcribe"],
            "translate": gen.task_to_id["translate"],
        }
        assert gen.no_timestamps_token_id and gen.alignment_heads
        assert gen.num_beams == 1 and gen.max_length == 448


def test_model_configs(tiny_models):
    main = json.loads((tiny_models.whisper / "config.json").read_text())
    assert (main["d_model"], main["encoder_layers"], main["decoder_layers"]) == (64, 2, 2)
    assert (main["num_mel_bins"], main["max_source_positions"]) == (80, 1500)
    assert main["max_target_positions"] == 448
    assistant = json.loads((tiny_models.assistant / "config.json").read_text())
    assert assistant["architectures"] == ["WhisperForCausalLM"]
    assert (assistant["d_model"], assistant["decoder_layers"]) == (64, 1)
    assert assistant["vocab_size"] == main["vocab_size"]
    full = json.loads((tiny_models.assistant_full / "config.json").read_text())
    assert full["architectures"] == ["WhisperForConditionalGeneration"]
    assert (full["encoder_layers"], full["decoder_layers"]) == (1, 1)
    assert full["vocab_size"] == main["vocab_size"]


def test_assistant_loads_with_auto_causal_lm(causal_assistant):
    assert type(causal_assistant).__name__ == "WhisperForCausalLM"


# ------------------------------------------------------------------ ASR pipeline


def test_pipeline_plain(asr):
    assert asr(_inputs(_noise(8)))["text"] == EXPECTED_TEXT


def test_pipeline_silence_and_short_audio(asr):
    assert asr(_inputs(np.zeros(SR * 3, np.float32)))["text"] == EXPECTED_TEXT
    assert asr(_inputs(_noise(0.2)))["text"] == EXPECTED_TEXT


def test_pipeline_segment_timestamps(asr):
    out = asr(_inputs(_noise(8)), return_timestamps=True)
    assert out["text"] == EXPECTED_TEXT
    assert [tuple(c["timestamp"]) for c in out["chunks"]] == EXPECTED_SEGMENTS
    assert "".join(c["text"] for c in out["chunks"]) == EXPECTED_TEXT


def test_pipeline_word_timestamps(asr):
    out = asr(_inputs(_noise(8)), return_timestamps="word")
    words = out["chunks"]
    assert "".join(w["text"] for w in words) == EXPECTED_TEXT
    assert [w["text"].strip() for w in words] == ["h", "vqac", "bvq", "vx", "my", "b", "i"]
    starts = [w["timestamp"][0] for w in words]
    assert starts == sorted(starts)
    for word in words:
        start, end = word["timestamp"]
        assert 0.0 <= start <= end <= 3.0
    assert words[-1]["timestamp"][1] > 2.0  # spread over the three segments


@pytest.mark.parametrize("kind", [True, "word"])
def test_pipeline_chunked_batched(asr, kind):
    out = asr(_inputs(_noise(45)), return_timestamps=kind, chunk_length_s=30, batch_size=2)
    assert out["text"] == EXPECTED_TEXT  # identical chunks: the merge keeps one copy
    assert out["chunks"]
    assert out["chunks"][0]["timestamp"][0] == 0.0


def test_pipeline_chunked_short_audio(asr):
    out = asr(_inputs(_noise(5)), return_timestamps=True, chunk_length_s=30, batch_size=4)
    assert [tuple(c["timestamp"]) for c in out["chunks"]] == EXPECTED_SEGMENTS


def test_pipeline_long_form_sequential(asr):
    """Stack difference: 4.51 returns window-relative segment times in long-form."""
    out = asr(_inputs(_noise(45)), return_timestamps=True)
    spans = [tuple(c["timestamp"]) for c in out["chunks"]]
    assert out["text"] == EXPECTED_TEXT * 2
    if TRANSFORMERS_MAJOR >= 5:
        assert spans == EXPECTED_SEGMENTS + [(s + 30, e + 30) for s, e in EXPECTED_SEGMENTS]
    else:
        assert spans == EXPECTED_SEGMENTS * 2
    words = asr(_inputs(_noise(45)), return_timestamps="word")["chunks"]
    assert words[-1]["timestamp"][0] >= 30.0  # word times are absolute on both


@pytest.mark.parametrize(
    "generate_kwargs",
    [
        {"language": "en", "task": "transcribe"},
        {"language": "english"},
        {"language": "fr", "task": "translate"},
        {"task": "transcribe"},
        {},
    ],
)
def test_pipeline_language_and_task(asr, generate_kwargs):
    out = asr(_inputs(_noise(8)), return_timestamps=True, generate_kwargs=generate_kwargs)
    assert out["text"] == EXPECTED_TEXT


def test_language_detection(asr):
    features = asr.feature_extractor(_noise(8), sampling_rate=SR, return_tensors="pt")
    lang_ids = asr.model.detect_language(features.input_features)
    assert asr.tokenizer.convert_ids_to_tokens(lang_ids.tolist()) == ["<|en|>"]


def test_pipeline_return_language(asr):
    """Stack difference: only transformers 5 reports the language (4.51 gives None)."""
    expected = "english" if TRANSFORMERS_MAJOR >= 5 else None
    for generate_kwargs in ({}, {"language": "en"}):
        out = asr(_inputs(_noise(8)), return_timestamps=True, return_language=True,
                  generate_kwargs=generate_kwargs)
        assert [c["language"] for c in out["chunks"]] == [expected] * 3


class _CountCalls:
    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, *args):
        self.calls += 1


@pytest.mark.parametrize("timestamps", [False, True])
def test_speculative_decoding_causal_assistant(asr, causal_assistant, timestamps):
    counter = _CountCalls(causal_assistant)
    try:
        out = asr(
            _inputs(_noise(8)),
            return_timestamps=timestamps,
            generate_kwargs={"assistant_model": causal_assistant, "num_beams": 1},
        )
    finally:
        counter.handle.remove()
    assert counter.calls > 0  # the assistant was really used, not silently dropped
    assert out["text"] == EXPECTED_TEXT  # greedy speculative decoding == plain greedy
    if timestamps:
        assert [tuple(c["timestamp"]) for c in out["chunks"]] == EXPECTED_SEGMENTS


def test_speculative_decoding_full_assistant(asr, tiny_models):
    from transformers import AutoModelForSpeechSeq2Seq

    assistant = AutoModelForSpeechSeq2Seq.from_pretrained(
        str(tiny_models.assistant_full), **_dtype_kwargs()
    )
    counter = _CountCalls(assistant)
    out = asr(_inputs(_noise(8)), generate_kwargs={"assistant_model": assistant, "num_beams": 1})
    assert counter.calls > 0
    assert out["text"] == EXPECTED_TEXT


def test_pipeline_constructed_with_assistant(tiny_models, causal_assistant):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(tiny_models.whisper),
                   assistant_model=causal_assistant, device="cpu", **_dtype_kwargs())
    counter = _CountCalls(causal_assistant)
    try:
        assert asr(_inputs(_noise(8)))["text"] == EXPECTED_TEXT
    finally:
        counter.handle.remove()
    assert counter.calls > 0


def test_assistant_needs_batch_size_one(asr, causal_assistant):
    with pytest.raises(ValueError, match="batch_size = 1"):
        asr(_inputs(_noise(45)), return_timestamps=True, chunk_length_s=30, batch_size=2,
            generate_kwargs={"assistant_model": causal_assistant, "num_beams": 1})


def test_word_timestamps_with_assistant(asr, causal_assistant):
    """Stack difference: word timestamps + assistant only work on transformers 5."""
    kwargs = dict(return_timestamps="word",
                  generate_kwargs={"assistant_model": causal_assistant, "num_beams": 1})
    if TRANSFORMERS_MAJOR >= 5:
        words = asr(_inputs(_noise(8)), **kwargs)["chunks"]
        assert "".join(w["text"] for w in words) == EXPECTED_TEXT
    else:
        with pytest.raises(RuntimeError, match="must match the size"):
            asr(_inputs(_noise(8)), **kwargs)


# ------------------------------------------------------------------- diarization


def _annotation(output):
    """pyannote 4 returns DiarizeOutput, pyannote 3 a bare Annotation."""
    return getattr(output, "speaker_diarization", output)


def _turns(output):
    return [(seg.start, seg.end, label)
            for seg, _, label in _annotation(output).itertracks(yield_label=True)]


def test_diarization_loads_from_folder_on_pyannote_4(tiny_models):
    from pyannote.audio import Pipeline

    if PYANNOTE_MAJOR < 4:
        pytest.skip("pyannote.audio 3 loads only from the config.yaml path")
    pipeline = Pipeline.from_pretrained(str(tiny_models.diarization))
    assert type(pipeline).__name__ == "SpeakerDiarization"


def test_diarization_noise(diarization_pipeline):
    waveform = torch.from_numpy(_noise(12, seed=1))[None]
    output = diarization_pipeline({"waveform": waveform, "sample_rate": SR})
    turns = _turns(output)
    assert turns
    assert all(0.0 <= start < end <= 12.0 + 0.05 for start, end, _ in turns)
    if PYANNOTE_MAJOR >= 4:
        assert type(output).__name__ == "DiarizeOutput"
        assert list(output.exclusive_speaker_diarization.itertracks())
    else:
        assert type(output).__name__ == "Annotation"


def test_diarization_silence_has_no_speech(diarization_pipeline):
    output = diarization_pipeline({"waveform": torch.zeros(1, SR * 5), "sample_rate": SR})
    assert _turns(output) == []


def test_diarization_speech_only_where_loud(diarization_pipeline):
    audio = np.concatenate([np.zeros(SR * 3), _noise(4, seed=2), np.zeros(SR * 3)])
    output = diarization_pipeline(
        {"waveform": torch.from_numpy(audio.astype(np.float32))[None], "sample_rate": SR}
    )
    turns = _turns(output)
    assert turns
    assert min(t[0] for t in turns) == pytest.approx(3.0, abs=0.1)
    assert max(t[1] for t in turns) == pytest.approx(7.0, abs=0.1)


@pytest.mark.parametrize(
    "kwargs, n_labels",
    [({"num_speakers": 2}, {2}), ({"min_speakers": 1, "max_speakers": 3}, {1, 2, 3}),
     ({"min_speakers": 2, "max_speakers": 2}, {2}), ({"max_speakers": 1}, {1})],
)
def test_diarization_speaker_counts(diarization_pipeline, kwargs, n_labels):
    waveform = torch.from_numpy(_noise(20, seed=3))[None]
    output = diarization_pipeline({"waveform": waveform, "sample_rate": SR}, **kwargs)
    assert len(_annotation(output).labels()) in n_labels


def test_diarization_silence_with_num_speakers(diarization_pipeline):
    output = diarization_pipeline(
        {"waveform": torch.zeros(1, SR * 5), "sample_rate": SR}, num_speakers=2
    )
    assert _turns(output) == []


def test_diarization_sample_wav(diarization_pipeline):
    """The 30 s two-speaker telephone sample shipped in the pyannote.audio wheel."""
    import pyannote.audio
    import soundfile as sf

    wav = Path(pyannote.audio.__file__).parent / "sample" / "sample.wav"
    if not wav.is_file():
        pytest.skip("no sample.wav in this pyannote.audio")
    audio, sr = sf.read(str(wav), dtype="float32")
    waveform = torch.from_numpy(np.atleast_2d(audio.T).copy())
    output = diarization_pipeline({"waveform": waveform, "sample_rate": sr}, num_speakers=2)
    turns = _turns(output)
    assert turns and all(end <= len(audio) / sr + 0.05 for _, end, _ in turns)
    # random embeddings: num_speakers=2 may still end with a single label here
    assert 1 <= len(_annotation(output).labels()) <= 2


def test_environment_is_offline():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
