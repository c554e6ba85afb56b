"""The CPU attention paths compute what SDPA computes, and Whisper decodes the same with them."""
import pytest
import torch
import torch.nn.functional as F
import transformers

from speech_endpoint.whisper import precision


def sdpa_layout(query, key, value, scaling):
    return F.scaled_dot_product_attention(query, key, value, scale=scaling).transpose(1, 2)


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("scaling", [None, 1.0, 0.3])
def test_matmul_attention_is_sdpa(scaling, rows):
    torch.manual_seed(0)
    query, key, value = torch.randn(3, 8, rows, 64), torch.randn(3, 8, 150, 64), torch.randn(3, 8, 150, 64)
    out = precision.matmul_attention(query, key, value, scaling)
    assert out.shape == (3, rows, 8, 64)
    torch.testing.assert_close(out, sdpa_layout(query, key, value, scaling), rtol=1e-5, atol=1e-5)


def test_bfloat16_keys_and_values_give_the_querys_dtype_within_rounding():
    torch.manual_seed(3)
    query, key, value = torch.randn(2, 8, 3, 64), torch.randn(2, 8, 150, 64), torch.randn(2, 8, 150, 64)
    out = precision.matmul_attention(query, key.bfloat16(), value.bfloat16(), 0.125)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, sdpa_layout(query, key, value, 0.125), rtol=0.05, atol=0.02)


def test_head_by_head_attention_is_sdpa_within_bfloat16_rounding():
    torch.manual_seed(1)
    query, key, value = (torch.randn(2, 4, 120, 32).bfloat16() for _ in range(3))
    out = precision.head_by_head_attention(query, key, value, 0.2)
    reference = sdpa_layout(query.float(), key.float(), value.float(), 0.2)
    assert out.shape == (2, 120, 4, 32) and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.02)


def test_used_where_transformers_routes_whisper_through_attention_interface():
    """Transformers 5 (the current stack) gets the CPU paths; 4.x (the platform's) keeps SDPA."""
    expected = precision.NAME if int(transformers.__version__.split(".")[0]) >= 5 else "sdpa"
    assert precision.implementation() == expected


def test_whisper_decodes_the_same_tokens_as_with_sdpa(tiny_models):
    """float32: the same numbers up to summation order, so the same greedy tokens."""
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(2)
    features = torch.randn(2, 80, 3000)
    tokens = {}
    for name in ("sdpa", precision.implementation()):
        model = WhisperForConditionalGeneration.from_pretrained(tiny_models.whisper, attn_implementation=name).eval()
        with torch.inference_mode():
            tokens[name] = model.generate(features, max_new_tokens=12, do_sample=False, num_beams=1).tolist()
    assert len(set(map(str, tokens.values()))) == 1


def test_sequential_and_window_requests_alternate_with_a_bfloat16_decoder(make_handler, tiny_models):
    """The sequential strategy's word timestamps run on eager attention with float32 keys and
    values; the window strategy before and after it gives the same words."""
    from support.audio_factory import speech, wav_bytes

    handler = make_handler(ASR_MODEL=str(tiny_models.whisper), CPU_BF16="true", WARMUP="false")
    audio = wav_bytes(speech(4.0), 16000)
    params = {"language": "en", "diarize": False}
    before = handler({"inputs": audio, "parameters": params})
    sequential = handler({"inputs": audio, "parameters": {**params, "chunk_length_s": 0}})
    after = handler({"inputs": audio, "parameters": params})
    assert isinstance(sequential["text"], str)
    assert (after["text"], after["words"]) == (before["text"], before["words"])
