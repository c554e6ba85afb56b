"""A draft over a reduced output vocabulary (`make_draft --vocab`, speech_endpoint.whisper.draft_vocab):
the kept ids are the teacher's most frequent tokens plus the specials, the reduced layer
scores exactly the kept rows, and end to end on the tiny models the draft loads as
ASSISTANT_MODEL, proposes kept ids only, and assisted output equals plain greedy output
(verification by the full model is unchanged, so this holds by construction)."""
import json

import pytest
import torch

from speech_endpoint.whisper import draft_vocab, scores
from support.audio_factory import speech, wav_bytes

pytest.importorskip("tqdm")


def test_choose_keeps_the_most_frequent_text_tokens_and_every_special():
    transcripts = [[50, 7, 7, 9, 100, 101], [7, 9, 9, 3, 100], [3, 12]]  # ids >= 100 are specials here
    assert draft_vocab.choose(transcripts, 2, eot=100, specials=[100, 101, 102]) == [7, 9, 100, 101, 102]
    # ties go to the lower id; beyond the tokens seen, the lowest unused ids (merge order)
    assert draft_vocab.choose(transcripts, 1, eot=100, specials=[]) == [7]
    assert draft_vocab.choose(transcripts, 3, eot=100, specials=[]) == [3, 7, 9]
    assert draft_vocab.choose(transcripts, 7, eot=100, specials=[]) == [0, 1, 3, 7, 9, 12, 50]
    assert draft_vocab.choose(transcripts, 500, eot=100, specials=[100]) == list(range(101))
    assert draft_vocab.special_ids(120, eot=100, no_timestamps=105, timestamps=False) == list(range(100, 106))
    assert draft_vocab.special_ids(120, eot=100, no_timestamps=105, timestamps=True) == list(range(100, 120))


def test_reduced_output_scores_the_kept_rows_only():
    torch.manual_seed(0)
    full = torch.nn.Linear(8, 30, bias=False)
    kept = [0, 4, 5, 17, 29]
    layer = scores.ReducedOutput(full.weight, kept, 30)
    hidden = torch.randn(2, 3, 8)
    logits, reference = layer(hidden), full(hidden)
    assert logits.shape == reference.shape
    assert torch.allclose(logits[..., kept], reference[..., kept], atol=1e-6)
    others = [i for i in range(30) if i not in kept]
    assert torch.isneginf(logits[..., others]).all()
    assert set(logits.argmax(-1).flatten().tolist()) <= set(kept)


def test_a_model_without_draft_vocab_is_left_alone():
    from types import SimpleNamespace

    model = SimpleNamespace(config=SimpleNamespace(vocab_size=30), proj_out=torch.nn.Linear(8, 30, bias=False))
    before = model.proj_out
    assert scores.reduce_output(model) is False and model.proj_out is before


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("draft-vocab-audio")
    for i in range(4):
        (folder / f"clip{i}.wav").write_bytes(wav_bytes(speech(2.0 + 1.5 * i, seed=10 + i), 16000))
    return folder


@pytest.mark.parametrize("steps", [0, 2])
def test_reduced_draft_loads_as_assistant_and_changes_nothing(tiny_models, clips, tmp_path, make_handler, steps):
    from transformers import AutoConfig, AutoTokenizer

    from scripts import make_draft

    out = tmp_path / "draft"
    k = 6
    assert make_draft.main([str(tiny_models.whisper), str(clips), str(out), "--layers", "1", "--steps", str(steps),
                            "--batch-size", "2", "--checkpoint-every", "2", "--seed", "3", "--vocab", str(k)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_models.whisper)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    no_ts = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    kept = AutoConfig.from_pretrained(out).draft_vocab
    assert len([t for t in kept if t < eot]) == k and set(range(eot, no_ts + 1)) <= set(kept) and max(kept) == no_ts
    if steps:
        assert json.loads((out / "training.json").read_text())["step"] == steps

    handler = make_handler(ASR_MODEL=tiny_models.whisper, ASSISTANT_MODEL=out)
    assistant = handler.asr.assistant
    assert type(assistant).__name__ == "WhisperForCausalLM"
    assert isinstance(assistant.proj_out, scores.ReducedOutput) and assistant.proj_out.rows.shape[0] == len(kept)
    proposals: list[int] = []
    hook = assistant.register_forward_hook(
        lambda module, args, output: proposals.extend(output.logits[:, -1].argmax(-1).tolist()))
    try:
        audio = wav_bytes(speech(4.0, seed=21), 16000)
        plain = handler({"inputs": audio, "parameters": {"language": "en", "assisted": False, "batch_size": 1}})
        assisted = handler({"inputs": audio, "parameters": {"language": "en", "assisted": True}})
    finally:
        hook.remove()
    assert proposals, "the draft was never called"
    assert set(proposals) <= set(kept)
    assert assisted["metadata"]["assisted"] is True and plain["text"] and assisted["text"] == plain["text"]
    assert [w["word"] for w in assisted["words"]] == [w["word"] for w in plain["words"]]


def test_reduces_a_bfloat16_output_layer_and_returns_float32():
    from types import SimpleNamespace

    from speech_endpoint.whisper.precision import BF16Linear

    torch.manual_seed(1)
    full = torch.nn.Linear(8, 30, bias=False)
    model = SimpleNamespace(config=SimpleNamespace(vocab_size=30, draft_vocab=[2, 3, 11]), proj_out=BF16Linear(full))
    assert scores.reduce_output(model) is True
    hidden = torch.randn(1, 2, 8)
    logits = model.proj_out(hidden)
    assert logits.dtype == torch.float32 and model.proj_out.rows.dtype == torch.bfloat16
    assert torch.allclose(logits[..., [2, 3, 11]], full(hidden)[..., [2, 3, 11]], atol=0.1)


def test_training_does_not_resume_over_another_vocabulary(tiny_models, clips, tmp_path):
    from scripts import make_draft

    out = tmp_path / "draft"
    common = [str(tiny_models.whisper), str(clips), str(out), "--layers", "1", "--steps", "4", "--batch-size", "2",
              "--checkpoint-every", "2", "--seed", "3"]
    assert make_draft.main([*common, "--vocab", "6", "--run-steps", "2"]) == 0
    with pytest.raises(SystemExit, match="another draft vocabulary"):
        make_draft.main([*common, "--vocab", "5"])
    assert make_draft.main([*common, "--vocab", "6"]) == 0  # the same vocabulary resumes
    assert json.loads((out / "training.json").read_text())["step"] == 4
