"""CPU_INT8: the decoder's weights in int8 (one scale per output row) with bfloat16
activations compute what the float32 layers compute within rounding, replace exactly the
per-step layers, and stay off where a draft verifies against the decoder."""
import pytest
import torch
from torch import nn

from speech_endpoint.whisper import precision
from support.audio_factory import speech, wav_bytes

pytestmark = pytest.mark.skipif(not hasattr(torch.ops.aten, "_weight_int8pack_mm"),
                                reason="this torch has no weight-only int8 CPU kernel")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 64), (2, 5, 64)])
def test_int8_linear_is_the_linear_layer_within_rounding(bias, shape):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=bias)
    x = torch.randn(*shape)
    quantized = precision.Int8Linear(linear)
    with torch.inference_mode():
        expected, got = linear(x), quantized(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert quantized.weight.dtype == torch.int8
    # int8 weights (1/254 of each row's range) and bfloat16 activations (8-bit mantissa)
    assert (got - expected).norm() / expected.norm() < 0.02


def test_many_rows_are_computed_by_the_layer_it_was_made_from():
    """The int8 kernel's time grows with every row: a prompt, beams or many windows at once
    go through the dense layer, exactly."""
    torch.manual_seed(1)
    linear = nn.Linear(64, 48)
    quantized = precision.Int8Linear(linear)
    many, few = torch.randn(2, precision.Int8Linear.MAX_ROWS, 64), torch.randn(precision.Int8Linear.MAX_ROWS, 64)
    with torch.inference_mode():
        assert torch.equal(quantized(many), linear(many))
        assert not torch.equal(quantized(few), linear(few))  # the int8 kernel, within rounding


def test_only_the_decoders_per_step_layers_become_int8(tiny_models):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_models.whisper).eval()
    precision.decoder_weights_in_int8(model)
    decoder = model.get_decoder()
    for layer in decoder.layers:
        assert all(isinstance(getattr(layer.self_attn, n), precision.Int8Linear) for n in ("q_proj", "k_proj", "v_proj", "out_proj"))
        assert isinstance(layer.encoder_attn.q_proj, precision.Int8Linear)
        # computed once per window from 1500 frames: not a weight-bound step
        assert not isinstance(layer.encoder_attn.k_proj, precision.Int8Linear)
        assert isinstance(layer.fc1, precision.Int8Linear) and isinstance(layer.fc2, precision.Int8Linear)
    assert isinstance(model.proj_out, precision.Int8Linear)
    assert not any(isinstance(m, precision.Int8Linear) for m in model.get_encoder().modules())
    # the input embeddings the output layer was tied to keep their float32 weights
    assert decoder.embed_tokens.weight.dtype == torch.float32


def test_handler_says_it_runs_int8_weights_and_serves_words(make_handler, tiny_models):
    handler = make_handler(ASR_MODEL=str(tiny_models.whisper), CPU_INT8="true", WARMUP="false")
    out = handler({"inputs": wav_bytes(speech(4.0), 16000), "parameters": {"language": "en"}})
    assert "int8 decoder weights (CPU_INT8)" in out["metadata"]["dtype"]
    assert isinstance(handler.asr.model.proj_out, precision.Int8Linear)
    words = out["words"]
    assert all(0 <= w["start"] <= w["end"] <= 4.0 for w in words)


def test_off_when_a_draft_verifies_against_the_decoder(make_handler, tiny_models):
    """A verification pass computes several rows at once; rounded activations would let its
    rows differ from the same rows decoded one at a time (as with bfloat16)."""
    handler = make_handler(ASR_MODEL=str(tiny_models.whisper), ASSISTANT_MODEL=str(tiny_models.assistant),
                           CPU_INT8="true", WARMUP="false")
    assert not any(isinstance(m, precision.Int8Linear) for m in handler.asr.model.modules())
    assert handler.placement.cpu_int8 is False and "int8" not in handler.placement.dtype_name  # the metadata's dtype


def test_off_when_set_false(make_handler, tiny_models):
    handler = make_handler(ASR_MODEL=str(tiny_models.whisper), CPU_INT8="false", WARMUP="false")
    assert not any(isinstance(m, precision.Int8Linear) for m in handler.asr.model.modules())
    assert handler.placement.cpu_int8 is False
