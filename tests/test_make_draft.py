"""scripts/make_draft.py end to end on the tiny checkpoints: a few training steps on a few
generated clips give a folder that loads as ASSISTANT_MODEL, assisted output equals plain
greedy output, and a rerun resumes (same cache, same batches) instead of starting over."""
import json

import pytest
import torch

from support.audio_factory import encode, speech, wav_bytes
from scripts import make_draft

pytest.importorskip("tqdm")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("draft-audio")
    for i in range(5):
        (folder / f"clip{i}.wav").write_bytes(wav_bytes(speech(2.0 + 1.5 * i, seed=i), 16000))
    (folder / "clip5.flac").write_bytes(encode(speech(6.0, seed=5), 16000, "flac"))
    return folder


def run(tiny_models, clips, out, steps, *extra):
    args = [str(tiny_models.whisper), str(clips), str(out), "--layers", "1", "--steps", str(steps),
            "--batch-size", "2", "--checkpoint-every", "2", "--seed", "3", *extra]
    assert make_draft.main(args) == 0
    return json.loads((out / "training.json").read_text())


def trained_weights(folder):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    return {k: v for k, v in model.state_dict().items() if ".layers." in k}


def test_layer_choice_spreads_from_first_to_last():
    assert make_draft.layer_choice(6, 2, "spread") == [0, 5]
    assert make_draft.layer_choice(32, 2, "spread") == [0, 31]
    assert make_draft.layer_choice(6, 3, "spread") == [0, 2, 5]  # rounds half to even
    assert make_draft.layer_choice(6, 2, "first") == [0, 1]
    assert make_draft.layer_choice(2, 4, "spread") == [0, 1]


def test_trained_draft_loads_as_assistant_and_resumes(tiny_models, clips, tmp_path, make_handler, capsys):
    out = tmp_path / "draft"
    first = run(tiny_models, clips, out, 6, "--run-steps", "4")  # as if stopped at step 4
    assert [h["step"] for h in first["history"]] == [2, 4] and first["windows"] == 6
    cache = sorted((out / "cache").glob("*.pt"))
    assert len(cache) == 6
    item = torch.load(cache[0], weights_only=False)
    assert item["encoder"].dtype == torch.float16 and item["encoder"].shape[0] == 1500
    assert item["hidden"].shape[0] == len(item["ids"])
    stamps = {p: p.stat().st_mtime_ns for p in cache}

    # the rerun continues from step 4 and recomputes nothing
    capsys.readouterr()
    second = run(tiny_models, clips, out, 6)
    assert "resuming at step 4 of 6" in capsys.readouterr().err
    assert [h["step"] for h in second["history"]] == [2, 4, 6]
    assert second["history"][:2] == first["history"]
    assert {p: p.stat().st_mtime_ns for p in cache} == stamps

    # ... and ends where an uninterrupted run ends
    straight = tmp_path / "straight"
    run(tiny_models, clips, straight, 6, "--cache-dir", str(out / "cache"))
    resumed, uninterrupted = trained_weights(out), trained_weights(straight)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.allclose(resumed[k], uninterrupted[k], atol=1e-6) for k in resumed)
    assert make_draft.main([str(tiny_models.whisper), "-", str(tmp_path / "cut"), "--layers", "1", "--steps", "0"]) == 0
    untrained = trained_weights(tmp_path / "cut")
    assert any(not torch.equal(resumed[k], v) for k, v in untrained.items()), "training changed nothing"

    handler = make_handler(ASR_MODEL=tiny_models.whisper, ASSISTANT_MODEL=out)
    assert type(handler.asr.assistant).__name__ == "WhisperForCausalLM"
    calls = []
    hook = handler.asr.assistant.register_forward_hook(lambda *a: calls.append(1))
    try:
        audio = wav_bytes(speech(4.0), 16000)
        plain = handler({"inputs": audio, "parameters": {"language": "en", "assisted": False, "batch_size": 1}})
        assisted = handler({"inputs": audio, "parameters": {"language": "en", "assisted": True}})
    finally:
        hook.remove()
    assert calls, "the draft was never called"
    assert assisted["metadata"]["assisted"] is True and plain["text"] and assisted["text"] == plain["text"]


def test_untrained_cut_keeps_the_teachers_layers(tiny_models, tmp_path):
    from transformers import AutoModelForCausalLM, WhisperForConditionalGeneration

    assert make_draft.main([str(tiny_models.whisper), "-", str(tmp_path / "cut"), "--layers", "1", "--steps", "0",
                            "--confidence-threshold", "0.2"]) == 0
    cut = AutoModelForCausalLM.from_pretrained(tmp_path / "cut")
    teacher = WhisperForConditionalGeneration.from_pretrained(tiny_models.whisper)
    assert cut.config.decoder_layers == 1 and cut.config.encoder_layers == teacher.config.encoder_layers
    mine, theirs = cut.model.decoder.layers[0].state_dict(), teacher.model.decoder.layers[0].state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert cut.generation_config.assistant_confidence_threshold == 0.2
    assert (tmp_path / "cut" / "tokenizer_config.json").exists()


def test_training_speech_is_seeded_and_not_from_the_dev_dialogue():
    import shutil

    import numpy as np

    from scripts import make_training_speech as gen

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    a, text_a = gen.clip(np.random.default_rng([0, 7]))
    b, text_b = gen.clip(np.random.default_rng([0, 7]))
    assert text_a == text_b and np.array_equal(a, b)
    assert 1.0 < len(a) / 16000 <= 29.5 and np.abs(a).max() <= 1.0
    dialogue_words = {"budget", "agenda", "hiring", "furniture", "desks", "chairs"}
    banks = " ".join(" ".join(bank) for bank in (gen.NAMES, gen.PEOPLE, gen.THINGS, gen.PLACES, gen.TEMPLATES))
    assert not dialogue_words & set(banks.lower().split())
