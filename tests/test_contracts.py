"""Contracts with library internals: each test asserts that an internal of transformers or
pyannote.audio the code relies on is still REACHED, on the tiny models and on both stacks.

These internals break silently on an upgrade (a hook that stops firing, a call that stops
being made, an attribute that is read with a default): decoding still works, only slower or
with worse word times. Golden files catch some of it, but they skip without ../shared.

- Whisper's `generate` calls `set_begin_index` on our suppression processor (else the
  first-token suppression never applies) and builds none of its own suppression processors
  once `Suppression` took the lists from the generation config;
- transformers 5 routes Whisper's attention, and its masks, through `AttentionInterface`
  under our name (`config._attn_implementation`), with `sdpa_attention_forward`'s output
  layout, also after the sequential strategy's switch to eager attention and back;
- the cross-attention modules of the alignment layers are called with the decoder's hidden
  states, so the recorder's hooks rebuild the very attention weights the model computed,
  and greedy decoding is aligned from what generation recorded (no second decoder pass);
- the bfloat16 output and decoder layers, replaced by attribute name, are what `generate` runs;
- pyannote's `_segmentation` (an `Inference` whose `step` is honoured), `_embedding` (the
  model the pipeline embeds with), its training-mode cache (`reuse`), and the output's
  exclusive turns and speaker vectors (read with defaults).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

# Production modules, in one block (they may move: repoint them here).
from speech_endpoint import compat
from speech_endpoint.attribution.diarizer import Diarizer
from speech_endpoint.schema import SAMPLE_RATE, Audio, DecodeOptions, SpeechActivity
from speech_endpoint.whisper import asr as asr_module
from speech_endpoint.whisper import precision as attention  # the custom attention lives with the precision code
from speech_endpoint.whisper.alignment import CrossAttentionRecorder
from speech_endpoint.whisper.asr import WhisperASR
from speech_endpoint.whisper.precision import BF16Linear, Placement
from speech_endpoint.whisper.scores import Suppression

from support.audio_factory import speech as speech_samples
from support.server import make_fast_whisper

TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5
FRAME_S = 0.032
SECONDS = 4.0
PROMPT = 4  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>: the decoder prompt
GREEDY = DecodeOptions(language="en", chunk_length_s=30.0, batch_size=2)


def speech(seconds: float) -> np.ndarray:
    """The test clip's two voices, mono float32 at 16 kHz."""
    return speech_samples(seconds)[:, 0]


def audio_and_activity(seconds: float = SECONDS) -> tuple[Audio, SpeechActivity]:
    """Generated speech, all of it marked as speech (one window)."""
    audio = Audio(speech(seconds))
    frames = int(seconds / FRAME_S)
    return audio, SpeechActivity(frame_s=FRAME_S, scores=np.ones(frames, np.float32), mask=np.ones(frames, bool))


@pytest.fixture(scope="module")
def whisper(tiny_models, tmp_path_factory):
    """The tiny Whisper without timestamp tokens: it ends each window with end-of-text
    after 23 tokens (the 12-token cap of the server tests' copy would cut it first)."""
    return make_fast_whisper(tiny_models.whisper, tmp_path_factory.mktemp("contracts") / "whisper", max_new_tokens=40)


def load_asr(whisper, cpu_bf16: bool = False) -> WhisperASR:
    return WhisperASR(str(whisper), placement=Placement("cpu", torch.float32, cpu_bf16=cpu_bf16))


class Calls:
    """Wraps a function and counts calls, keeping the arguments' shapes."""

    def __init__(self, function):
        self.function = function
        self.shapes: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.shapes.append(tuple(tuple(a.shape) for a in args if torch.is_tensor(a)))
        return self.function(*args, **kwargs)

    def __len__(self) -> int:
        return len(self.shapes)


# ---- Whisper generate and our logits processors -----------------------------------------------


def test_generate_sets_the_begin_index_on_our_suppression_processor(whisper, monkeypatch):
    """Whisper's `generate` calls `set_begin_index(prompt length)` on every logits processor
    that has it; ours applies `begin_suppress_tokens` only at that index."""
    handed_out = []
    processor = Suppression.processor

    def record(self, at_begin=True):
        handed_out.append(processor(self, at_begin))
        return handed_out[-1]

    monkeypatch.setattr(Suppression, "processor", record)
    asr = load_asr(whisper)
    assert asr.suppression.begin_suppress, "the tiny model's generation config has begin_suppress_tokens"
    asr.warm_up()
    asr.transcribe(*audio_and_activity(), GREEDY)
    asr.transcribe(*audio_and_activity(), DecodeOptions(language="en", beam_size=2))
    prompt = PROMPT
    assert len(handed_out) >= 3
    assert [p.begin_index for p in handed_out] == [prompt] * len(handed_out), \
        "Whisper's generate no longer calls set_begin_index on logits processors"


def test_generate_builds_none_of_its_own_suppression_processors(whisper, monkeypatch):
    """`Suppression.take_from` empties the generation config's lists so that `generate`
    builds neither of transformers' per-step `isin` processors (the windows strategy)."""
    from transformers.generation import logits_process

    calls = {}
    for name in ("SuppressTokensLogitsProcessor", "SuppressTokensAtBeginLogitsProcessor"):
        cls = getattr(logits_process, name)
        calls[name] = Calls(cls.__call__)
        monkeypatch.setattr(cls, "__call__", lambda self, *a, _spy=calls[name]: _spy(self, *a))
    asr = load_asr(whisper)
    transcript = asr.transcribe(*audio_and_activity(), GREEDY)
    assert transcript.words, "the tiny Whisper emits words"
    counts = {name: len(spy) for name, spy in calls.items()}
    assert not any(counts.values()), f"generate ran transformers' own suppression processors: {counts}"


# ---- our attention, routed by transformers 5 ---------------------------------------------------


@pytest.mark.skipif(not TRANSFORMERS_5, reason="transformers 4.x picks attention classes by name: SDPA")
def test_our_attention_and_masks_run_in_whisper_also_after_eager_word_timestamps(whisper, monkeypatch):
    """Loaded with `attn_implementation=NAME`, every attention call of Whisper goes through
    our function (matmul for decoding steps and bfloat16 keys, head by head for the bfloat16
    encoder, transformers' `sdpa_attention_forward` for the rest) with [batch, heads, rows,
    dim] queries, and masks through `sdpa_mask`. The sequential strategy's word timestamps
    switch `config._attn_implementation` to eager; ours is back afterwards."""
    from transformers.integrations import sdpa_attention
    from transformers import masking_utils

    spies = {"matmul": Calls(attention.matmul_attention), "head_by_head": Calls(attention.head_by_head_attention),
             "sdpa": Calls(sdpa_attention.sdpa_attention_forward), "mask": Calls(masking_utils.sdpa_mask)}
    monkeypatch.setattr(attention, "matmul_attention", spies["matmul"])
    monkeypatch.setattr(attention, "head_by_head_attention", spies["head_by_head"])
    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spies["sdpa"])  # read when registering
    monkeypatch.setattr(masking_utils, "sdpa_mask", spies["mask"])
    asr = load_asr(whisper, cpu_bf16=True)
    assert asr.model.config._attn_implementation == attention.NAME

    asr.transcribe(*audio_and_activity(), GREEDY)
    counts = {name: len(spy) for name, spy in spies.items()}
    assert all(counts.values()), f"not reached: {[name for name, n in counts.items() if not n]}"
    heads = {asr.model.config.encoder_attention_heads, asr.model.config.decoder_attention_heads}
    for name in ("matmul", "head_by_head", "sdpa"):
        query = spies[name].shapes[0][0 if name != "sdpa" else 1]  # sdpa_attention_forward(module, query, ...)
        assert len(query) == 4 and query[1] in heads, (name, query)

    asr.transcribe(*audio_and_activity(), DecodeOptions(language="en", chunk_length_s=0))
    assert asr.model.config._attn_implementation == attention.NAME
    before = len(spies["matmul"])
    asr.transcribe(*audio_and_activity(), GREEDY)
    assert len(spies["matmul"]) > before, "the window strategy no longer reaches our attention after sequential"


@pytest.mark.skipif(not TRANSFORMERS_5, reason="transformers 4.x keeps SDPA (no AttentionInterface for Whisper)")
@pytest.mark.parametrize("rows", [1, 6])
def test_our_attention_returns_the_layout_of_sdpa_attention_forward(rows):
    """Ours stands in for `sdpa_attention_forward`: the same [batch, rows, heads, dim] output."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(rows)
    query, key, value = torch.randn(2, 4, rows, 16), torch.randn(2, 4, 30, 16), torch.randn(2, 4, 30, 16)
    module = torch.nn.Module()
    module.is_causal = False
    expected, _ = sdpa_attention_forward(module, query, key, value, None, scaling=0.25)
    for ours in (attention.matmul_attention, attention.head_by_head_attention):
        out = ours(query, key, value, 0.25)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_the_attention_implementation_is_the_configs_after_sequential_word_timestamps(whisper):
    """Both stacks: what the model was loaded with is still `config._attn_implementation`
    after a sequential request (transformers 5's word timestamps set it to eager)."""
    asr = load_asr(whisper)
    assert asr.model.config._attn_implementation == asr.attention
    transcript = asr.transcribe(*audio_and_activity(), DecodeOptions(language="en", chunk_length_s=0))
    assert isinstance(transcript.text, str)
    assert asr.model.config._attn_implementation == asr.attention


# ---- the alignment hooks on cross-attention ------------------------------------------------


def test_the_recorder_rebuilds_the_cross_attention_weights_the_model_computed(whisper):
    """The hooks on `decoder.layers[i].encoder_attn` receive the decoder's hidden states, and
    q_proj / k_proj / scaling rebuild the alignment heads' weights: the same as the model's
    own (eager attention, output_attentions) within float32 rounding."""
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(whisper, attn_implementation="eager").eval()
    torch.manual_seed(0)
    with torch.inference_mode():
        encoded = model.get_encoder()(torch.randn(2, 80, 3000)).last_hidden_state
        ids = torch.randint(0, 256, (2, 7))
        with CrossAttentionRecorder(model) as recorder:
            out = model(encoder_outputs=(encoded,), decoder_input_ids=ids, output_attentions=True, use_cache=False)
        assert recorder.heads and all(len(recorder.steps[layer]) == 1 for layer in recorder.layers), \
            "the cross-attention hooks did not fire once per decoder pass"
        assert recorder.steps[recorder.layers[0]][0].shape == (2, 7, model.config.d_model)
        logits = recorder.logits(encoded, [slice(0, 7)] * 2)
    assert [tuple(x.shape) for x in logits] == [(len(recorder.heads), 7, encoded.shape[1])] * 2
    for row in range(2):
        expected = torch.stack([out.cross_attentions[layer][row, head] for layer, head in recorder.heads])
        torch.testing.assert_close(logits[row].softmax(dim=-1), expected, rtol=1e-4, atol=1e-6)


def test_greedy_decoding_is_aligned_from_what_generation_recorded(whisper, monkeypatch):
    """`generate` feeds the prompt in one step, then one token a step through the hooked
    cross-attention, and calls our probabilities processor at every step: the words are
    timed from that record, without the teacher-forced pass kept for speculative decoding."""
    recorders, fallback = [], Calls(asr_module.teacher_forced)

    class Recorder(CrossAttentionRecorder):
        def __enter__(self):
            recorders.append(self)
            return super().__enter__()

    monkeypatch.setattr(asr_module, "CrossAttentionRecorder", Recorder)
    monkeypatch.setattr(asr_module, "teacher_forced", fallback)
    asr = load_asr(whisper)
    transcript = asr.transcribe(*audio_and_activity(), GREEDY)
    assert transcript.words and all(w.probability > 0 for w in transcript.words)
    assert recorders and len(fallback) == 0, "generation's record did not line up: teacher-forced pass"
    for recorder in recorders:
        steps = [s.shape[1] for s in recorder.steps[recorder.layers[0]]]
        assert steps[0] == PROMPT and set(steps[1:]) == {1}, steps


# ---- bfloat16 layers ------------------------------------------------------------------------


def test_generate_runs_the_bfloat16_output_layer_and_decoder_layers(whisper, monkeypatch):
    """`precision` replaces `proj_out` and the decoder's Linear layers by attribute name:
    they must be what `generate` runs (not only what `get_output_embeddings` returns)."""
    seen, generating = set(), []
    forward = BF16Linear.forward

    def record(self, x):
        if generating:
            seen.add(id(self))
        return forward(self, x)

    monkeypatch.setattr(BF16Linear, "forward", record)
    asr = load_asr(whisper, cpu_bf16=True)
    generate = asr.model.generate

    def flagged(*args, **kwargs):
        generating.append(True)
        try:
            return generate(*args, **kwargs)
        finally:
            generating.pop()

    monkeypatch.setattr(asr.model, "generate", flagged)
    assert isinstance(asr.model.get_output_embeddings(), BF16Linear)
    asr.transcribe(*audio_and_activity(), GREEDY)
    assert id(asr.model.get_output_embeddings()) in seen, "generate scores with another layer than `proj_out`"
    decoder = [m for m in asr.model.get_decoder().modules() if isinstance(m, BF16Linear)]
    assert decoder and all(id(m) in seen for m in decoder), "a replaced decoder layer is never run by generate"


# ---- pyannote's pipeline internals ----------------------------------------------------------


def test_pyannote_segmentation_step_embedding_model_and_training_cache(tiny_models, monkeypatch):
    """`compat` reads `_segmentation` (an Inference: `step`, `duration`) to set the window's
    step, `_embedding` for known speakers (the model the pipeline itself embeds with), and
    the `reuse` of tuning relies on training mode caching in the input mapping."""
    diarizer = Diarizer(str(tiny_models.diarization), segmentation_step=0.2)
    pipeline = diarizer.pipeline
    inference = getattr(pipeline, "_segmentation", None)
    assert inference is not None, "pyannote's pipeline has no `_segmentation`"
    assert inference.step == pytest.approx(0.2 * inference.duration)
    model = compat.embedding_model(pipeline)
    assert model is not None, "pyannote's pipeline has no `_embedding`"
    assert diarizer.embedding_dimension == int(model.dimension) > 0
    assert len(diarizer.embed(speech(3.0))) == diarizer.embedding_dimension

    call = type(model).__call__
    embedded = Calls(call)  # calls on this very object
    monkeypatch.setattr(type(model), "__call__", lambda self, *a, **k: (embedded if self is model else call)(self, *a, **k))
    audio, reuse = Audio(speech(12.0)), {}
    result = diarizer(audio, num_speakers=2, embeddings=True, reuse=reuse)
    assert result.full and len(embedded) > 0, "the pipeline embeds with another model than `_embedding`"
    cached = reuse["file"]
    assert {"training_cache/segmentation", "training_cache/embeddings"} <= set(cached), sorted(cached)
    assert cached["training_cache/segmentation"].sliding_window.step == pytest.approx(0.2 * inference.duration), \
        "the segmentation ran with another step than `_segmentation.step`"
    calls = len(embedded)
    assert diarizer(audio, num_speakers=2, embeddings=True, reuse=reuse) == result
    assert len(embedded) == calls, "the training cache was not reused: embeddings computed again"


def test_pyannote_output_carries_exclusive_turns_and_one_vector_per_speaker(tiny_models):
    """Read with defaults, so a rename would pass silently: pyannote 4's
    `exclusive_speaker_diarization` (else turns are derived here) and `speaker_embeddings`
    (pyannote 3: the tuple asked for with `return_embeddings`), one row per label of the full
    diarization (else known speakers and `return_speaker_embeddings` get nothing)."""
    pipeline = Diarizer(str(tiny_models.diarization)).pipeline
    output, vectors = compat.run_diarization(pipeline, speech(12.0), SAMPLE_RATE, True, num_speakers=2)
    exclusive, full = compat.diarization_turns(output)
    labels = {turn.speaker for turn in full}
    assert labels and set(vectors) == labels, f"speaker vectors {sorted(vectors)} for labels {sorted(labels)}"
    assert {len(v) for v in vectors.values()} == {int(compat.embedding_model(pipeline).dimension)}
    if (compat.PYANNOTE_MAJOR or 0) >= 4:
        assert exclusive is not None, "pyannote 4's output has no `exclusive_speaker_diarization`"
        assert {turn.speaker for turn in exclusive} <= labels
