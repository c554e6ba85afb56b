"""Build tiny checkpoints for offline tests (no model hub needed), in about a second.

    PYTHONPATH=tests python -m support.tiny_models OUT_DIR

writes four folders under OUT_DIR and prints their paths:

* ``whisper/``: a multilingual ``WhisperForConditionalGeneration`` (d_model 64, 2 encoder
  + 2 decoder layers, 80 mel bins, 1500 source positions so it takes real 30 s windows of
  16 kHz audio, 448 target positions) with a ``WhisperProcessor`` (tokenizer + feature
  extractor) and a hand-built ``generation_config.json``.
* ``assistant/``: a ``WhisperForCausalLM`` (decoder only, 1 layer, d_model 64 like the
  main model so it reuses the main encoder's outputs), the form distil-whisper ships as an
  assistant; load it with ``AutoModelForCausalLM.from_pretrained``. Same tokenizer.
* ``assistant-full/``: a smaller full ``WhisperForConditionalGeneration`` (1 + 1 layers)
  with the same tokenizer, the other assistant form.
* ``diarization/``: a pyannote.audio speaker-diarization pipeline for the *installed*
  pyannote.audio major version (a folder built on one stack does not load on the other).

Builds are seeded and deterministic. Weights are random, then a few are set by hand so that
the models behave like trained ones in the ways tests care about (and stay fast):

Whisper (the same on every input audio)
    Language detection picks ``<|en|>``. Each 30 s window decodes to 3 segments,
    ``<|0.00|>`` "h vqac" ``<|1.00|><|1.00|>`` "bvq vx" ``<|2.00|><|2.00|>`` "my b i"
    ``<|3.00|>`` ``<|endoftext|>`` (lowercase letters and spaces only, so there are words),
    i.e. text "h vqacbvq vxmy b i", about 25 decoding steps instead of 448 (a random
    decoder never emits end-of-text: 7-20 s a call on one CPU thread, and mostly
    timestamp tokens). Word timestamps spread over the segments ("h" 0.00-0.06, " vqac"
    0.06-0.86, "bvq" 0.96-1.34, ...), because the alignment heads attend to the frames
    where each token is "spoken". How: the decoder's position embeddings are large and
    each points along a class direction (language / text / timestamp near t / end) shared
    by that class's token embeddings (tied with the output layer); see _shape_decoder and
    _shape_cross_attention. The assistants are shaped the same way but pick other
    letters, so speculative decoding sees both accepted and rejected candidates, and its
    output must equal the main model's. Consequences for tests: chunked decoding of long
    audio (chunk_length_s) gets the same tokens from every chunk, and the pipeline's
    chunk merge then keeps only the first chunk's text and leaves the last end
    timestamp ``None``; sequential long-form decoding gives 3 segments per window.
Diarization
    Segmentation is pyannote's debug ``SimpleSegmentationModel`` (MFCC, BiLSTM, linear)
    set up as an energy detector: frames louder than about -60 dBFS are one speaker,
    silence and zero padding are non-speech (a random PyanNet, as in STACK.md, marks
    everything as speech, even past the end of a short file). The embedding model is a
    random ``XVectorMFCC``; speakers come from clustering its embeddings (the 60 s
    two-speaker dialogue comes out as one speaker; ``num_speakers=2`` gives two).

What was found on the two stacks (transformers 4.51.3 / torch 2.5.1 / pyannote.audio
3.4.0, and transformers 5.24.0 / torch 2.14.1 / pyannote.audio 4.0.7):

Tokenizer
    A 256-entry byte-level vocabulary with no merges is enough. ``<|endoftext|>`` comes
    next, then the Whisper special tokens in Whisper's order (startoftranscript, one token
    per language in ``tokenization_whisper.LANGUAGES``, translate, transcribe, startoflm,
    startofprev, nospeech, notimestamps), then the 1501 timestamp tokens ``<|0.00|>`` ..
    ``<|30.00|>`` as ordinary (non-special) added tokens. The tokenizer decodes timestamps
    with ``timestamp_begin = all_special_ids[-1] + 1``, so ``<|notimestamps|>`` must be the
    last special id and ``<|0.00|>`` the next id. transformers 5's ``WhisperTokenizer`` is
    tokenizers-backed and takes ``vocab=dict, merges=list`` and the specials as
    ``extra_special_tokens``; transformers 4.51 needs files (``vocab_file``,
    ``merges_file``) and ``additional_special_tokens`` (``extra_special_tokens`` is
    rejected). 4.51's ``WhisperProcessor`` refuses a ``WhisperTokenizerFast``, so the slow
    tokenizer is built and saved, then the fast one is loaded from the folder and saved
    too, so the folder also holds ``tokenizer.json``.
Generation config
    Built fresh: ``GenerationConfig.from_model_config`` makes ``generate()`` rebuild it from
    config.json, dropping lang_to_id / no_timestamps_token_id. ``task: "transcribe"`` and no
    ``forced_decoder_ids`` (4.51 raises "You have explicitly specified forced_decoder_ids"
    when the pipeline also passes ``language``/``task``). ``alignment_heads`` make
    ``return_timestamps="word"`` work. ``max_length`` is 448 (the decoder's size),
    ``max_new_tokens`` unset, ``num_beams`` 1 (transformers 5's ASR pipeline otherwise
    uses beam search, which silently drops an assistant model). Language, task and
    other special tokens, and all bytes but a-z and space, are in ``suppress_tokens``
    (language detection ignores suppress_tokens, so it still works).
Assistant
    ``generate()`` checks that a decoder-only assistant has the main model's
    ``encoder_layers``, ``encoder_attention_heads`` and ``encoder_ffn_dim`` ("don't have
    compatible encoder-dependent input shapes" otherwise), so the ``WhisperForCausalLM``
    config keeps the main model's encoder sizes (2 layers) while having 1 decoder layer.
Pipeline differences, 4.51 vs 5.24 (seen with these models; see tests/test_tiny_models.py)
    * Long-form sequential decoding (audio > 30 s, ``return_timestamps=True``, no
      ``chunk_length_s``): 4.51 returns segment timestamps relative to each 30 s window
      (they restart at 0: (25.0, 0.0), (5.0, 10.0) with the real whisper-base too); 5.24
      returns absolute times. Word timestamps are absolute on both.
    * ``return_language=True`` without a ``language``: 5.24 reports the detected
      language ("english"); 4.51 reports ``None``.
    * ``return_timestamps="word"`` with an assistant model: 4.51 raises RuntimeError ("The
      size of tensor a (4) must match the size of tensor b (2)"); 5.24 works.
    * Both: an assistant needs batch size 1 ("assisted generate is only supported for
      batch_size = 1"); ``pipeline(..., assistant_model=m)`` and
      ``generate_kwargs={"assistant_model": m}`` both work.
pyannote.audio 4
    ``Pipeline.from_pretrained(folder)`` (or ``folder/config.yaml``) reads config.yaml with
    ``$model/segmentation``, ``$model/embedding`` and ``$model/plda``; each subfolder holds
    ``pytorch_model.bin`` (a Lightning-style checkpoint: ``state_dict``,
    ``hyper_parameters``, ``pytorch-lightning_version``, plus what
    ``Model.on_save_checkpoint`` adds, which needs ``specifications`` set, also on the
    embedding model) or the two PLDA npz files. Clustering is VBx, whose PLDA is
    ``plda/xvec_transform.npz`` (mean1, mean2, lda) and ``plda/plda.npz`` (mu, tr, psi).
    The result is a ``DiarizeOutput`` (``.speaker_diarization``,
    ``.exclusive_speaker_diarization``). A pyannote-3 config.yaml loaded on pyannote 4
    falls back to downloading the default PLDA (fails offline).
pyannote.audio 3.4
    ``Pipeline.from_pretrained`` only accepts the path of the config.yaml *file* (a folder
    is taken as a hub repo id: HFValidationError), and its config.yaml names the two
    ``.bin`` files by absolute path; agglomerative clustering, no PLDA. The result is a
    bare ``Annotation``. The folder is therefore not relocatable on pyannote 3.
Both
    The embedding loader is picked by substring of its path (``speechbrain``, ``nvidia``,
    ``wespeaker`` select other loaders), so ``build_tiny_models`` refuses output paths with
    those words. The segmentation window is 10 s (powerset: 3 speakers, at most 2 per
    frame, like segmentation-3.0), stepped by 5 s instead of 1 s, and the x-vector MFCC hop
    is 20 ms: the 512-channel x-vector TDNN dominates the CPU time.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from speech_endpoint.compat import PYANNOTE_MAJOR
from speech_endpoint.schema import SAMPLE_RATE

SEED = 0
D_MODEL = 64
NUM_MEL_BINS = 80
MAX_SOURCE_POSITIONS = 1500
MAX_TARGET_POSITIONS = 448
NUM_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in steps of 0.02 s
EMBEDDING_DIM = 256
PLDA_DIM = 128
FORBIDDEN_PATH_WORDS = ("speechbrain", "nvidia", "wespeaker")
# Whisper shaping (see _shape_decoder)
SEGMENT_EDGES = (0.0, 1.0, 2.0, 3.0)  # seconds, within each 30 s window
TEXT_PER_SEGMENT = 6  # tokens (letters or spaces) per segment
SPACE_BOOST = 0.1  # how much more a space scores than a letter
CROSS_ATTENTION_SHARPNESS = 1.0
# Diarization: energy detector on MFCC c0 (ortho DCT of dB mel power, 128 mel bands);
# speech at normal levels is about -250..-60, -60 dBFS noise about -460, zeros -1131
VAD_C0_THRESHOLD = -450.0
VAD_SLOPE = 1.0 / 20.0
SEGMENTATION_STEP = 0.5  # 10 s windows every 5 s (real pipelines: every 1 s)


@dataclass(frozen=True)
class TinyModels:
    whisper: Path  # WhisperForConditionalGeneration + WhisperProcessor + generation config
    assistant: Path  # WhisperForCausalLM (decoder only), same tokenizer
    assistant_full: Path  # smaller WhisperForConditionalGeneration, same tokenizer
    diarization: Path  # pyannote pipeline folder holding config.yaml

    @property
    def diarization_config(self) -> Path:
        """The config.yaml file (the form pyannote.audio 3 needs)."""
        return self.diarization / "config.yaml"


# ---------------------------------------------------------------------------- Whisper


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (byte-level BPE alphabet)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _special_tokens() -> list[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return (
        ["<|startoftranscript|>"]
        + [f"<|{code}|>" for code in LANGUAGES]
        + [
            "<|translate|>",
            "<|transcribe|>",
            "<|startoflm|>",
            "<|startofprev|>",
            "<|nospeech|>",
            "<|notimestamps|>",
        ]
    )


def _build_tokenizer():
    import tempfile

    import transformers
    from tokenizers import AddedToken

    byte_chars = _bytes_to_unicode()
    vocab = {byte_chars[b]: i for i, b in enumerate(sorted(byte_chars))}
    vocab["<|endoftext|>"] = len(vocab)
    specials = _special_tokens()
    major = int(transformers.__version__.split(".")[0])

    if major >= 5:
        from transformers import WhisperTokenizer

        tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
        tokenizer.add_special_tokens({"extra_special_tokens": specials})
    else:
        # WhisperProcessor 4.51 only accepts the slow tokenizer; _save_whisper adds the
        # fast tokenizer.json next to it (AutoTokenizer, hence the pipeline, loads that).
        from transformers import WhisperTokenizer

        with tempfile.TemporaryDirectory() as work_dir:
            vocab_file = Path(work_dir) / "vocab.json"
            merges_file = Path(work_dir) / "merges.txt"
            vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            merges_file.write_text("#version: 0.2\n", encoding="utf-8")
            tokenizer = WhisperTokenizer(
                vocab_file=str(vocab_file), merges_file=str(merges_file)
            )
        tokenizer.add_special_tokens({"additional_special_tokens": specials})

    tokenizer.add_tokens(
        [
            AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False, normalized=False)
            for i in range(NUM_TIMESTAMPS)
        ]
    )
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.model_max_length = MAX_TARGET_POSITIONS

    ids = tokenizer.convert_tokens_to_ids(specials)
    assert ids == list(range(257, 257 + len(specials))), ids
    no_ts = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    assert tokenizer.all_special_ids[-1] == no_ts, tokenizer.all_special_ids[-3:]
    assert tokenizer.convert_tokens_to_ids("<|0.00|>") == no_ts + 1
    assert tokenizer.convert_tokens_to_ids("<|30.00|>") == no_ts + NUM_TIMESTAMPS
    assert len(tokenizer) == no_ts + 1 + NUM_TIMESTAMPS
    return tokenizer


def _generation_config(tokenizer, num_decoder_layers: int, num_heads: int):
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tid = tokenizer.convert_tokens_to_ids
    eot = tid("<|endoftext|>")
    lang_to_id = {f"<|{code}|>": tid(f"<|{code}|>") for code in LANGUAGES}
    byte_chars = _bytes_to_unicode()
    allowed_bytes = set(b"abcdefghijklmnopqrstuvwxyz ")
    suppress = sorted(
        [tid(t) for t in ("<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                          "<|startoflm|>", "<|startofprev|>", "<|nospeech|>")]
        + list(lang_to_id.values())
        + [tid(byte_chars[b]) for b in range(256) if b not in allowed_bytes]
    )
    # cross-attention heads of the last decoder layer drive word-level timestamps
    alignment_heads = [[num_decoder_layers - 1, h] for h in range(num_heads)]
    config = GenerationConfig(
        decoder_start_token_id=tid("<|startoftranscript|>"),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=True,
        lang_to_id=lang_to_id,
        task_to_id={"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")},
        task="transcribe",
        no_timestamps_token_id=tid("<|notimestamps|>"),
        prev_sot_token_id=tid("<|startofprev|>"),
        max_initial_timestamp_index=50,
        begin_suppress_tokens=[tid(byte_chars[ord(" ")]), eot],
        suppress_tokens=suppress,
        alignment_heads=alignment_heads,
        return_timestamps=False,
        max_length=MAX_TARGET_POSITIONS,
        num_beams=1,
        do_sample=False,
    )
    return config


def _whisper_config(tokenizer, encoder_layers: int, decoder_layers: int, heads: int):
    from transformers import WhisperConfig

    gen_ids = dict(
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    return WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=NUM_MEL_BINS,
        d_model=D_MODEL,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * D_MODEL,
        decoder_ffn_dim=4 * D_MODEL,
        max_source_positions=MAX_SOURCE_POSITIONS,
        max_target_positions=MAX_TARGET_POSITIONS,
        median_filter_width=7,
        **gen_ids,
    )


def _position_plan() -> list[tuple[str, float | None]]:
    """What the decoder output at each position predicts (the token at position + 1).

    Prompt with timestamps: <|startoftranscript|> <|en|> <|transcribe|> (positions 0-2);
    without, <|notimestamps|> follows at position 3 (a timestamp there is never used)."""
    plan: list[tuple[str, float | None]] = [("lang", None), ("text", None)]
    plan.append(("time", SEGMENT_EDGES[0]))  # first timestamp (forced by the processor)
    for i, end in enumerate(SEGMENT_EDGES[1:]):
        plan += [("text", None)] * TEXT_PER_SEGMENT
        plan.append(("time", end))  # segment end
        if i < len(SEGMENT_EDGES) - 2:
            plan.append(("time", end))  # next segment start
    plan.append(("eos", None))
    return plan


def _shape_decoder(model, tokenizer, variety_seed: int) -> None:
    """Make the decoder follow _position_plan whatever the audio.

    The position embeddings get norm 200 and point along the direction of the class their
    position should predict, so the residual stream, and after the final LayerNorm the
    logits (output layer tied to the token embeddings), follow the plan: the per-layer
    attention and MLP contributions of random weights are tiny next to it. Token
    embeddings of a class share that class's direction: letters and space (plus a small
    per-letter random part, matched by a per-position random part, which picks the
    letter), timestamps (plus bumps centred on SEGMENT_EDGES, so a position favours the
    timestamp nearest its edge among those the timestamp processor allows), end of text,
    and <|en|>. The directions are orthonormal and zero-mean (LayerNorm removes means)."""
    import math

    import torch

    decoder = model.get_decoder()
    emb = decoder.embed_tokens.weight  # tied with proj_out
    pos = decoder.embed_positions.weight
    d = emb.shape[1]
    tid = tokenizer.convert_tokens_to_ids
    g = torch.Generator().manual_seed(SEED)
    m = torch.randn(d, d, generator=g)
    m -= m.mean(dim=0, keepdim=True)  # LayerNorm removes the mean: stay orthogonal to it
    basis = torch.linalg.qr(m)[0][:, : d - 1].T  # orthonormal, zero-mean rows
    c_text, c_time, c_eos, c_lang = basis[0], basis[1], basis[2], basis[3]
    n_edges = len(SEGMENT_EDGES)
    c_edges = basis[4 : 4 + n_edges]
    variety = basis[4 + n_edges :]  # subspace for per-token / per-position variety

    def unit_in_variety(gen):
        v = torch.randn(variety.shape[0], generator=gen) @ variety
        return v / v.norm()

    byte_chars = _bytes_to_unicode()
    letters = [tid(byte_chars[b]) for b in b"abcdefghijklmnopqrstuvwxyz"]
    space = tid(byte_chars[ord(" ")])
    no_ts = tid("<|notimestamps|>")
    with torch.no_grad():
        for token in letters + [space]:
            emb[token] = 2.0 * c_text + unit_in_variety(g)
        emb[space] += SPACE_BOOST * c_text  # a space every few letters
        for i in range(NUM_TIMESTAMPS):
            t = i * 0.02
            bumps = sum(
                math.exp(-(((t - edge) / 0.3) ** 2)) * c_edges[k]
                for k, edge in enumerate(SEGMENT_EDGES)
            )
            emb[no_ts + 1 + i] = 1.5 * c_time + 1.5 * bumps
        emb[tokenizer.eos_token_id] = 2.0 * c_eos
        emb[tid("<|en|>")] = 1.5 * c_lang

        gv = torch.Generator().manual_seed(variety_seed)
        plan = _position_plan()
        for p in range(pos.shape[0]):
            kind, when = plan[p] if p < len(plan) else ("eos", None)
            if kind == "lang":
                direction = c_lang
            elif kind == "text":
                direction = c_text + unit_in_variety(gv)
            elif kind == "time":
                direction = c_time + c_edges[SEGMENT_EDGES.index(when)]
            else:
                direction = c_eos
            # large, so the residual stream (and the final LayerNorm) follows the plan
            pos[p] = 200.0 * direction / direction.norm()


def _position_times() -> list[float]:
    """When (seconds into the window) the token at each decoder position is spoken."""
    times = [0.0, 0.0, 0.0, SEGMENT_EDGES[0]]  # prompt, then <|0.00|> / <|notimestamps|>
    for i, (start, end) in enumerate(zip(SEGMENT_EDGES, SEGMENT_EDGES[1:])):
        step = (end - start) / TEXT_PER_SEGMENT
        times += [start + (j + 0.5) * step for j in range(TEXT_PER_SEGMENT)]
        times += [end] * (2 if i < len(SEGMENT_EDGES) - 2 else 1)
    times.append(SEGMENT_EDGES[-1])  # <|endoftext|>
    return times


def _shape_cross_attention(model, heads: int, sharpness: float = CROSS_ATTENTION_SHARPNESS):
    """Make the alignment heads (last decoder layer) look at the frames where each token
    is "spoken" (see _position_times), so word-level timestamps spread over the segments.

    The encoder output is dominated by its sinusoidal position embedding (the random conv
    features are much smaller), so a key made of the sinusoid features of mid-range
    frequencies, against a query made of the same features at the target frame, peaks
    at that frame. The queries come from the (large, planned) decoder position
    embeddings through a least-squares q_proj."""
    import torch

    encoder, decoder = model.get_encoder(), model.get_decoder()
    d = encoder.embed_positions.weight.shape[1]
    head_dim = d // heads
    n_freq = d // 2
    sinus = encoder.embed_positions.weight.detach()  # (frames, d): [sin | cos]
    sinus = torch.nn.functional.layer_norm(sinus, (d,))
    # frequencies from about 0.55 rad/frame (0.2 s periods) down to 1500-frame scales
    freqs = list(range(2, min(n_freq, 2 + heads * (head_dim // 2))))
    select = torch.zeros(heads, head_dim, d)
    for h in range(heads):
        for k, i in enumerate(freqs[h::heads][: head_dim // 2]):
            select[h, 2 * k, i] = 1.0  # sin
            select[h, 2 * k + 1, n_freq + i] = 1.0  # cos
    w_k = select.reshape(heads * head_dim, d)  # k = W_k LN(encoder output)

    positions = decoder.embed_positions.weight.detach()
    times = _position_times()
    rows = torch.nn.functional.layer_norm(positions[: len(times)], (d,))  # LN(x_p)
    frames = torch.tensor([round(t / 0.02) for t in times])
    targets = sharpness * (w_k @ sinus[frames].T).T  # (positions, heads * head_dim)
    # q = W_q LN(x_p); float64, so BLAS rounding differences don't reach the float32 weights
    w_q = torch.linalg.lstsq(rows.double(), targets.double()).solution.T.float() + 0.0  # + 0.0 turns -0.0 into 0.0: its sign varies with the BLAS (torch 2.5)
    attention = decoder.layers[-1].encoder_attn
    with torch.no_grad():
        attention.k_proj.weight.copy_(w_k)
        attention.q_proj.weight.copy_(w_q)
        attention.q_proj.bias.zero_()


def _save_whisper(model, tokenizer, feature_extractor, generation_config, folder: Path):
    from transformers import WhisperProcessor

    model.generation_config = generation_config
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(
        folder
    )
    # transformers 5 folds the feature extractor into processor_config.json; also write
    # preprocessor_config.json, as real checkpoints have (and transformers 4 reads)
    feature_extractor.save_pretrained(folder)
    if not getattr(tokenizer, "is_fast", True):  # transformers 4: add tokenizer.json
        from transformers import WhisperTokenizerFast

        WhisperTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    # save_pretrained may have rewritten it from the model: write ours last
    generation_config.save_pretrained(folder)


def build_whisper_models(out_dir: Path):
    """Build the three Whisper folders; returns (whisper, assistant, assistant_full)."""
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForCausalLM,
        WhisperForConditionalGeneration,
    )

    out_dir = Path(out_dir)
    tokenizer = _build_tokenizer()
    feature_extractor = WhisperFeatureExtractor(
        feature_size=NUM_MEL_BINS, sampling_rate=SAMPLE_RATE, chunk_length=30
    )
    heads = 2
    folders = {}
    for name, enc, dec, cls in (
        ("whisper", 2, 2, WhisperForConditionalGeneration),
        # validate_assistant() compares encoder_layers/heads/ffn even for a decoder-only
        # assistant (it reuses the main encoder's outputs): keep them equal to the main's
        ("assistant", 2, 1, WhisperForCausalLM),
        ("assistant-full", 1, 1, WhisperForConditionalGeneration),
    ):
        torch.manual_seed(SEED)
        config = _whisper_config(tokenizer, enc, dec, heads)
        model = cls(config).eval()
        _shape_decoder(model, tokenizer, variety_seed=SEED if name == "whisper" else SEED + 1)
        if name == "whisper":
            _shape_cross_attention(model, heads)
        generation_config = _generation_config(tokenizer, dec, heads)
        folder = out_dir / name
        _save_whisper(model, tokenizer, feature_extractor, generation_config, folder)
        folders[name] = folder
    return folders["whisper"], folders["assistant"], folders["assistant-full"]


# ---------------------------------------------------------------------------- pyannote


def _segmentation_model():
    """pyannote's debug SimpleSegmentationModel (MFCC -> BiLSTM -> linear), shaped into an
    energy detector: the first MFCC coefficient (c0, proportional to the frame's mean log
    mel energy) passes through one LSTM unit per direction (input gate open, forget gate
    closed, so it has no memory) and the classifier maps it to "speaker#1" above
    ``VAD_C0_THRESHOLD`` and to non-speech below. So silence and zero padding give no
    speech (a random PyanNet finds "speech" everywhere, even past the end of a short
    file), and anything louder than about -60 dBFS is one local speaker per chunk; the
    speakers come from clustering the (random) embeddings of the chunks."""
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation.debug import SimpleSegmentationModel

    model = SimpleSegmentationModel(sample_rate=SAMPLE_RATE)
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=10.0,
        min_duration=10.0,
        warm_up=(0.0, 0.0),
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    model.build()
    lstm, classifier = model.lstm, model.classifier
    hidden = lstm.hidden_size
    big = 20.0
    with torch.no_grad():
        for suffix in ("", "_reverse"):
            w_ih = getattr(lstm, f"weight_ih_l0{suffix}")
            w_hh = getattr(lstm, f"weight_hh_l0{suffix}")
            b_ih = getattr(lstm, f"bias_ih_l0{suffix}")
            b_hh = getattr(lstm, f"bias_hh_l0{suffix}")
            for t in (w_ih, w_hh, b_ih, b_hh):
                t.zero_()
            # gate blocks [input, forget, cell, output]; unit 0 carries the detector
            b_ih[0:hidden] = big  # input gate open
            b_ih[hidden : 2 * hidden] = -big  # forget gate closed: no memory
            b_ih[3 * hidden : 4 * hidden] = big  # output gate open
            w_ih[2 * hidden, 0] = VAD_SLOPE
            b_ih[2 * hidden] = -VAD_SLOPE * VAD_C0_THRESHOLD
        # powerset classes: {} {1} {2} {3} {1,2} {1,3} {2,3}
        classifier.weight.zero_()
        classifier.bias.fill_(-10.0)
        classifier.bias[0] = 0.0
        classifier.bias[1] = 0.0
        for unit in (0, hidden):  # forward and backward detector units
            classifier.weight[0, unit] = -5.0
            classifier.weight[1, unit] = 5.0
    return model.eval()


def _embedding_model(kind: str = "xvector"):
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34, XVectorMFCC

    if kind == "resnet":  # the architecture of speaker-diarization-3.1's embedding (slow on CPU)
        model = WeSpeakerResNet34(sample_rate=SAMPLE_RATE)
    else:
        model = XVectorMFCC(
            sample_rate=SAMPLE_RATE,
            # 64 mel bands: torchaudio's default 128 leave empty filters at n_fft 400 (a
            # warning); hop 20 ms instead of 12.5 ms: the 512-channel TDNN dominates the
            # pipeline's run time on CPU
            mfcc={"melkwargs": {"n_mels": 64, "n_fft": 400, "hop_length": 320}},
            dimension=EMBEDDING_DIM,
        )
    # on_save_checkpoint stores specifications; an embedding model's are a representation
    model.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0
    )
    return model.eval()


def _write_plda(folder: Path, rng) -> None:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    lda = rng.standard_normal((EMBEDDING_DIM, PLDA_DIM)) / np.sqrt(EMBEDDING_DIM)
    np.savez(
        folder / "xvec_transform.npz",
        mean1=rng.standard_normal(EMBEDDING_DIM) * 0.01,
        mean2=rng.standard_normal(PLDA_DIM) * 0.01,
        lda=lda,
    )
    # tr: well-conditioned (orthogonal) transform; psi: positive between-class variances
    q, _ = np.linalg.qr(rng.standard_normal((PLDA_DIM, PLDA_DIM)))
    np.savez(
        folder / "plda.npz",
        mu=rng.standard_normal(PLDA_DIM) * 0.01,
        tr=q,
        psi=np.sort(rng.uniform(0.5, 50.0, PLDA_DIM))[::-1].copy(),
    )


def build_diarization(out_dir: Path, embedding: str = "xvector") -> Path:
    """Build the pyannote pipeline folder for the installed pyannote.audio version; `embedding`
    "resnet" gives it a random WeSpeaker ResNet34 (both 256-dimensional) in a folder of its own."""
    import numpy as np
    import torch
    import yaml

    from evaluation.shared_frames_cost import lightning_checkpoint

    folder = Path(out_dir) / ("diarization" if embedding == "xvector" else f"diarization-{embedding}")
    (folder / "segmentation").mkdir(parents=True, exist_ok=True)
    (folder / "embedding").mkdir(parents=True, exist_ok=True)
    segmentation_bin = folder / "segmentation" / "pytorch_model.bin"
    embedding_bin = folder / "embedding" / "pytorch_model.bin"

    torch.manual_seed(SEED)
    torch.save(lightning_checkpoint(_segmentation_model()), segmentation_bin)
    torch.manual_seed(SEED + 1)
    torch.save(lightning_checkpoint(_embedding_model(embedding)), embedding_bin)

    major = PYANNOTE_MAJOR
    if major >= 4:
        _write_plda(folder / "plda", np.random.default_rng(SEED))
        config = {
            "dependencies": {"pyannote.audio": "4.0.0"},
            "pipeline": {
                "name": "pyannote.audio.pipelines.SpeakerDiarization",
                "params": {
                    "clustering": "VBxClustering",
                    "segmentation": "$model/segmentation",
                    "embedding": "$model/embedding",
                    "plda": "$model/plda",
                    "segmentation_step": SEGMENTATION_STEP,
                    "embedding_exclude_overlap": True,
                    "embedding_batch_size": 8,
                    "segmentation_batch_size": 8,
                },
            },
            "params": {
                "segmentation": {"min_duration_off": 0.0},
                "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
            },
        }
    else:
        config = {
            "version": "3.1.0",
            "pipeline": {
                "name": "pyannote.audio.pipelines.SpeakerDiarization",
                "params": {
                    "clustering": "AgglomerativeClustering",
                    "segmentation": str(segmentation_bin.resolve()),
                    "embedding": str(embedding_bin.resolve()),
                    "segmentation_step": SEGMENTATION_STEP,
                    "embedding_exclude_overlap": True,
                    "embedding_batch_size": 8,
                    "segmentation_batch_size": 8,
                },
            },
            "params": {
                "segmentation": {"min_duration_off": 0.0},
                "clustering": {"method": "centroid", "min_cluster_size": 12,
                               "threshold": 0.7045654963945799},
            },
        }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


# ---------------------------------------------------------------------------- entry


def build_tiny_models(out_dir: Path) -> TinyModels:
    """Build all tiny checkpoints under out_dir (created if needed)."""
    import torch

    out_dir = Path(out_dir).resolve()
    bad = [w for w in FORBIDDEN_PATH_WORDS if w in str(out_dir)]
    if bad:
        raise ValueError(
            f"{out_dir}: pyannote picks its embedding loader by path substring; "
            f"avoid {bad} in the output path"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    rng_state = torch.random.get_rng_state()
    try:
        whisper, assistant, assistant_full = build_whisper_models(out_dir)
        diarization = build_diarization(out_dir)
    finally:
        torch.random.set_rng_state(rng_state)  # don't disturb the caller's seed
    return TinyModels(
        whisper=whisper,
        assistant=assistant,
        assistant_full=assistant_full,
        diarization=diarization,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    models = build_tiny_models(args.out_dir)
    for name in ("whisper", "assistant", "assistant_full", "diarization"):
        print(f"{name}={getattr(models, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
