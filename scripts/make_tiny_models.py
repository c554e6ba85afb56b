"""Build tiny random-weight checkpoints for offline tests (no model hub needed).

    python scripts/make_tiny_models.py OUT_DIR

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
* ``diarization/``: a pyannote.audio speaker-diarization pipeline built for the installed
  pyannote.audio major version (random segmentation and embedding models).

Everything is seeded (``torch.manual_seed``/``numpy``), so a build is deterministic, and it
takes a few seconds on one CPU thread.

What was found while building these (transformers 4.51.3 / torch 2.5.1 / pyannote.audio
3.4.0 and transformers 5.24.0 / torch 2.14.1 / pyannote.audio 4.0.7):

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
    ``return_timestamps="word"`` work. ``max_length`` is 448 (the decoder's size), and
    ``max_new_tokens`` is left unset so callers can pass their own (see ``max_new_tokens``
    of ``build_tiny_models`` to bound it). ``num_beams`` is 1: transformers 5's ASR
    pipeline otherwise defaults to beam search (5 beams), which silently ignores an
    assistant model. Language, task and other special tokens are in ``suppress_tokens``
    so random weights only emit text and timestamp tokens after the prompt (language
    detection ignores suppress_tokens, so it still works).

pyannote.audio 4
    ``Pipeline.from_pretrained(folder)`` (or ``folder/config.yaml``) reads config.yaml with
    ``$model/segmentation``, ``$model/embedding`` and ``$model/plda``; each subfolder holds
    ``pytorch_model.bin`` (a Lightning-style checkpoint: ``state_dict``,
    ``hyper_parameters``, ``pytorch-lightning_version``, plus what
    ``Model.on_save_checkpoint`` adds) or the two PLDA npz files. Clustering is VBx, whose
    PLDA is ``plda/xvec_transform.npz`` (mean1, mean2, lda) and ``plda/plda.npz`` (mu, tr,
    psi). The result is a ``DiarizeOutput`` (``.speaker_diarization``,
    ``.exclusive_speaker_diarization``).
pyannote.audio 3.4
    ``Pipeline.from_pretrained`` only accepts a path to the config.yaml *file* (a folder is
    taken as a hub repo id and fails offline), and its config.yaml names the two
    ``.bin`` files by absolute path; agglomerative clustering, no PLDA. The result is a
    bare ``Annotation``. The folder therefore is not relocatable on pyannote 3.
Both
    The embedding loader is picked by substring of its path (``speechbrain``, ``nvidia``,
    ``wespeaker`` select other loaders), so those words must not appear in the output
    path; ``build_tiny_models`` refuses such paths. The segmentation model is a small
    random ``PyanNet`` with powerset specifications (3 speakers, at most 2 per frame, 10 s
    chunks, like segmentation-3.0); the embedding model is a random ``XVectorMFCC`` (256
    dimensions). Random weights give arbitrary (but deterministic) speaker turns, and
    silence may or may not yield turns.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 0
SAMPLE_RATE = 16000
D_MODEL = 64
NUM_MEL_BINS = 80
MAX_SOURCE_POSITIONS = 1500
MAX_TARGET_POSITIONS = 448
NUM_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in steps of 0.02 s
EMBEDDING_DIM = 256
PLDA_DIM = 128
FORBIDDEN_PATH_WORDS = ("speechbrain", "nvidia", "wespeaker")


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
    suppress = sorted(
        [tid(t) for t in ("<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                          "<|startoflm|>", "<|startofprev|>", "<|nospeech|>")]
        + list(lang_to_id.values())
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
        begin_suppress_tokens=[tid(_bytes_to_unicode()[ord(" ")]), eot],
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


def _save_whisper(model, tokenizer, feature_extractor, generation_config, folder: Path):
    from transformers import WhisperProcessor

    model.generation_config = generation_config
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(
        folder
    )
    if not getattr(tokenizer, "is_fast", True):  # transformers 4: add tokenizer.json
        from transformers import WhisperTokenizerFast

        WhisperTokenizerFast.from_pretrained(folder).save_pretrained(folder)
    # save_pretrained may have rewritten it from the model: write ours last
    generation_config.save_pretrained(folder)


def build_whisper_models(out_dir: Path, *, max_new_tokens: int | None = None):
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
        ("assistant", 1, 1, WhisperForCausalLM),
        ("assistant-full", 1, 1, WhisperForConditionalGeneration),
    ):
        torch.manual_seed(SEED)
        config = _whisper_config(tokenizer, enc, dec, heads)
        model = cls(config).eval()
        generation_config = _generation_config(tokenizer, dec, heads)
        if max_new_tokens is not None:
            generation_config.max_new_tokens = max_new_tokens
        folder = out_dir / name
        _save_whisper(model, tokenizer, feature_extractor, generation_config, folder)
        folders[name] = folder
    return folders["whisper"], folders["assistant"], folders["assistant-full"]


# ---------------------------------------------------------------------------- pyannote


def _pyannote_major() -> int:
    from importlib.metadata import version

    return int(version("pyannote.audio").split(".")[0])


def _lightning_checkpoint(model) -> dict:
    try:
        from lightning import __version__ as pl_version
    except ImportError:  # pragma: no cover - pyannote 3 may only have pytorch_lightning
        from pytorch_lightning import __version__ as pl_version

    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": pl_version,
    }
    model.on_save_checkpoint(checkpoint)
    return checkpoint


def _segmentation_model():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    model = PyanNet(
        lstm={"hidden_size": 32, "num_layers": 1, "bidirectional": True, "monolithic": True},
        linear={"hidden_size": 32, "num_layers": 1},
        sample_rate=SAMPLE_RATE,
    )
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
    return model.eval()


def _embedding_model():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC

    model = XVectorMFCC(
        sample_rate=SAMPLE_RATE,
        # torchaudio's default 128 mel bands leave empty filters at n_fft 400 (a warning)
        mfcc={"melkwargs": {"n_mels": 64}},
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


def build_diarization(out_dir: Path) -> Path:
    """Build the pyannote pipeline folder for the installed pyannote.audio version."""
    import numpy as np
    import torch
    import yaml

    folder = Path(out_dir) / "diarization"
    (folder / "segmentation").mkdir(parents=True, exist_ok=True)
    (folder / "embedding").mkdir(parents=True, exist_ok=True)
    segmentation_bin = folder / "segmentation" / "pytorch_model.bin"
    embedding_bin = folder / "embedding" / "pytorch_model.bin"

    torch.manual_seed(SEED)
    torch.save(_lightning_checkpoint(_segmentation_model()), segmentation_bin)
    torch.manual_seed(SEED + 1)
    torch.save(_lightning_checkpoint(_embedding_model()), embedding_bin)

    major = _pyannote_major()
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


def build_tiny_models(out_dir: Path, *, max_new_tokens: int | None = None) -> TinyModels:
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
        whisper, assistant, assistant_full = build_whisper_models(
            out_dir, max_new_tokens=max_new_tokens
        )
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
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="also bound generation_config.max_new_tokens")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    models = build_tiny_models(args.out_dir, max_new_tokens=args.max_new_tokens)
    for name in ("whisper", "assistant", "assistant_full", "diarization"):
        print(f"{name}={getattr(models, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
