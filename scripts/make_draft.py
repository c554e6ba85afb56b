"""Build a speculative-decoding draft (ASSISTANT_MODEL) for a Whisper checkpoint, and train it
on the checkpoint's own transcripts of your audio.

    python -m scripts.make_draft TEACHER AUDIO OUT_DIR [--steps 600] [--batch-size 16]

TEACHER is a Whisper checkpoint (folder or hub id). AUDIO is a folder (searched
recursively), an audio file, or a text file listing audio files one per line; anything the
endpoint decodes (speech_endpoint.speech.audio.decode). OUT_DIR ends up holding a decoder-only
`WhisperForCausalLM` (the form distil-whisper ships) with config, weights, tokenizer,
feature extractor and generation_config: set ASSISTANT_MODEL=OUT_DIR.

The draft: `--layers` (2) decoder layers initialised from the teacher's, spread from its
first to its last layer (distil-whisper's choice: first and last for 2), its embeddings,
position table, final layer norm and output layer (tied to the embeddings, kept frozen);
the teacher's encoder output is shared at inference, so the draft has no encoder.
`--steps 0` stops there (no audio needed: pass - as AUDIO): the untrained cut draft that
scripts/make_cut_assistant.py makes (with `--init first`: the first layers, as it always did).

`--vocab K`: the draft proposes only the K tokens the teacher writes most often in its own
transcripts of AUDIO (the cache stage's; filled up to K with the lowest unused ids, which a
byte-pair vocabulary gives its commonest tokens), plus Whisper's special tokens (and the
timestamp tokens with --vocab-timestamps); the ids go into the draft's config (`draft_vocab`) and the
endpoint computes its output layer over those rows only (speech_endpoint.whisper.scores.reduce_output), trained
so (KL and cross-entropy over the kept ids). Output stays identical to plain greedy decoding:
the main model verifies every proposal. With `--steps 0` it needs AUDIO (for the counts).

Training, in two resumable stages (rerun the same command to continue where it stopped):
1. cache: the audio is cut at pauses into windows of at most 30 s with the endpoint's own
   speech detector and window cutter, the teacher transcribes each greedily (language
   detected per window unless --language) and its encoder output (fp16, 1500 x d_model)
   and its final decoder hidden states along its transcript (fp16, tokens x d_model) are
   stored, one file per window in --cache-dir. The teacher's logits are recomputed from
   those hidden states through the shared frozen output layer: exact, and 1 KB a token
   instead of 100 KB. whisper-base: 1.5 MB a window (1500 x 512 x 2 bytes, + ~60 KB).
2. train: AdamW on the draft's decoder layers and final layer norm, loss = KL(teacher ||
   draft) at temperature 1 + cross-entropy on the teacher's tokens (the pseudo-labels),
   over every position from <|notimestamps|> on. Batches are drawn by a seeded generator
   per step, so a resumed run sees the same batches as an uninterrupted one. A checkpoint
   (trainable weights + optimizer) and the model folder are written every
   --checkpoint-every steps and at the end. Progress: tqdm bars; every checkpoint logs the
   draft's top-1 agreement with the teacher on held-out windows (roughly the share of
   draft tokens speculative decoding accepts).

Measured cost (whisper-base teacher, 1 CPU thread each on 2 shared, heavily loaded cores):
cache 4-15 s a window per process (encoder 1.2 s of it unloaded; 480 windows of 2-28 s took
32 min in two parallel --cache-only runs), 1.5 MB a window on disk; training 5-15 s a step at
batch 16 (150 steps: 19 min), peak memory 2.8 GB + 1.5 MB per window held (--memory-windows). For whisper-base, held-out agreement
levelled off at 0.75 after ~125 steps on 456 windows (more audio, not more steps, is what
helps). A GPU (--device cuda) makes both stages far faster.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".webm", ".m4a", ".aac", ".amr", ".mp4", ".wma"}
CHECKPOINT = "training-checkpoint.pt"


# ---- the draft model ---------------------------------------------------------------------

def layer_choice(teacher_layers: int, layers: int, init: str) -> list[int]:
    """Which teacher decoder layers initialise the draft's: "spread" = evenly from the first
    to the last (2 of 6: [0, 5]); "first" = the first `layers`."""
    if init == "first" or layers >= teacher_layers:
        return list(range(min(layers, teacher_layers)))
    if layers == 1:
        return [0]
    return [round(i * (teacher_layers - 1) / (layers - 1)) for i in range(layers)]


def cut_draft(teacher, layers: int = 2, init: str = "spread"):
    """A `WhisperForCausalLM` holding `layers` of the teacher's decoder layers, its
    embeddings, position table, final layer norm and output layer. Its config keeps the
    teacher's encoder sizes (generate() checks a decoder-only assistant against them)."""
    from transformers import WhisperForCausalLM

    config = teacher.config.to_dict()
    config.update(decoder_layers=layers, architectures=["WhisperForCausalLM"])
    config.pop("_name_or_path", None)
    draft = WhisperForCausalLM(type(teacher.config).from_dict(config))
    decoder, target = teacher.model.decoder, draft.model.decoder
    target.embed_tokens.load_state_dict(decoder.embed_tokens.state_dict())
    target.embed_positions.load_state_dict(decoder.embed_positions.state_dict())
    target.layer_norm.load_state_dict(decoder.layer_norm.state_dict())
    for mine, theirs in enumerate(layer_choice(len(decoder.layers), layers, init)):
        target.layers[mine].load_state_dict(decoder.layers[theirs].state_dict())
    draft.proj_out.load_state_dict(teacher.proj_out.state_dict())
    draft.generation_config = copy.deepcopy(teacher.generation_config)
    return draft.to(next(teacher.parameters()).dtype)


def save_draft(draft, teacher_source: str, out_dir: Path, dtype=None, assistant_settings: dict | None = None) -> Path:
    """The folder ASSISTANT_MODEL loads: weights (in `dtype`), config, generation config
    (with the speculative-decoding settings), tokenizer and feature extractor."""
    from speech_endpoint.compat import load_processor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = copy.deepcopy(draft).to(dtype) if dtype is not None else draft
    for key, value in (assistant_settings or {}).items():
        setattr(saved.generation_config, key, value)
    saved.save_pretrained(out_dir)
    load_processor(teacher_source).save_pretrained(out_dir)
    return out_dir


def load_teacher(source: str, device: str):
    import torch
    from transformers import WhisperForConditionalGeneration

    from speech_endpoint.compat import dtype_kwargs

    from transformers import AutoConfig

    saved = _saved_dtype(AutoConfig.from_pretrained(source))  # before loading in float32 overwrites it
    teacher = WhisperForConditionalGeneration.from_pretrained(source, **dtype_kwargs(torch.float32))
    return teacher.to(device).eval(), saved


def _saved_dtype(config):
    import torch

    name = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return name if isinstance(name, torch.dtype) else getattr(torch, str(name).removeprefix("torch."), torch.float32)


# ---- stage 1: windows and the teacher's targets ------------------------------------------

def audio_files(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return [path]
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [(path.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines]


def windows_of(files: list[Path], cache_dir: Path) -> list[dict]:
    """[{file, start, end, key}] of every <= 30 s speech window, cut as the handler cuts
    them; remembered in cache_dir/windows.json (recomputed when the file list changes)."""
    from speech_endpoint.speech import audio as audio_io
    from speech_endpoint.schema import SAMPLE_RATE
    from speech_endpoint.speech.silero import SileroVAD
    from speech_endpoint.speech.activity import activity_from_probabilities, speech_windows
    from tqdm import tqdm

    index = cache_dir / "windows.json"
    names = [str(f.resolve()) for f in files]
    if index.exists():
        saved = json.loads(index.read_text())
        if saved["files"] == names:
            return saved["windows"]
    vad = SileroVAD()
    out = []
    for f in tqdm(files, desc="windows", unit="file"):
        audio = audio_io.decode(f.read_bytes())
        activity = activity_from_probabilities(vad.probabilities(audio.samples), vad.frame_s, audio.duration)
        for start, end in speech_windows(activity, len(audio.samples), SAMPLE_RATE, 30.0):
            if end - start >= int(0.5 * SAMPLE_RATE):
                key = hashlib.sha1(f"{f.resolve()}:{start}:{end}".encode()).hexdigest()[:20]
                out.append({"file": str(f.resolve()), "start": int(start), "end": int(end), "key": key})
    index.write_text(json.dumps({"files": names, "windows": out}))
    return out


def cache_targets(teacher, processor, windows: list[dict], cache_dir: Path, device: str,
                  language: str | None, batch_size: int) -> list[Path]:
    """Encoder output, transcript and decoder hidden states of every window, one .pt file
    each; windows already cached are skipped."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput
    from tqdm import tqdm

    from speech_endpoint.speech import audio as audio_io
    from speech_endpoint.compat import greedy_generate_kwargs, new_tokens_kwargs
    from speech_endpoint.whisper.languages import normalize_language
    from speech_endpoint.schema import SAMPLE_RATE

    tokenizer = processor.tokenizer
    gen = teacher.generation_config
    eot = int(gen.eos_token_id if isinstance(gen.eos_token_id, int) else gen.eos_token_id[0])
    multilingual = bool(getattr(gen, "is_multilingual", True))
    max_new = min(teacher.config.max_target_positions // 2 - 4, gen.max_new_tokens or 10 ** 9)
    todo = [w for w in windows if not (cache_dir / f"{w['key']}.pt").exists()]
    loaded: dict[str, object] = {}
    bar = tqdm(total=len(windows), initial=len(windows) - len(todo), desc="teacher targets", unit="window")
    for first in range(0, len(todo), batch_size):
        group = todo[first:first + batch_size]
        pieces = []
        for w in group:
            if w["file"] not in loaded:
                loaded = {w["file"]: audio_io.decode(Path(w["file"]).read_bytes()).samples}
            pieces.append(loaded[w["file"]][w["start"]:w["end"]])
        features = processor.feature_extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            encoded = teacher.get_encoder()(features.to(device)).last_hidden_state
            if multilingual and not language:
                ids = teacher.detect_language(encoder_outputs=BaseModelOutput(last_hidden_state=encoded))
                langs = [normalize_language(tokenizer.convert_ids_to_tokens(int(i))) for i in ids.reshape(-1)]
            else:
                langs = [language] * len(group)
            sequences: list[list[int] | None] = [None] * len(group)
            for lang in sorted(set(langs), key=str):
                rows = [i for i, lg in enumerate(langs) if lg == lang]
                kwargs = {**greedy_generate_kwargs(), **new_tokens_kwargs(max_new), "return_timestamps": False}
                if multilingual:
                    kwargs.update(task="transcribe", language=lang)
                out = teacher.generate(encoder_outputs=BaseModelOutput(last_hidden_state=encoded[rows]), **kwargs)
                out = out if torch.is_tensor(out) else out.sequences
                prefix = _prefix(tokenizer, lang if multilingual else None)
                for row, seq in zip(rows, out.tolist()):
                    sequences[row] = prefix + _text_after_prefix(seq, prefix, eot)
            length = max(len(s) for s in sequences)
            ids = torch.full((len(group), length), eot, dtype=torch.long)
            for i, s in enumerate(sequences):
                ids[i, :len(s)] = torch.tensor(s)
            hidden = teacher.model.decoder(input_ids=ids.to(device), encoder_hidden_states=encoded).last_hidden_state
        for i, w in enumerate(group):
            n = len(sequences[i])
            item = {"encoder": encoded[i].half().cpu().clone(), "ids": torch.tensor(sequences[i], dtype=torch.int32),
                    "hidden": hidden[i, :n].half().cpu().clone(), "prefix": len(_prefix(tokenizer, langs[i] if multilingual else None)),
                    "text": tokenizer.decode([t for t in sequences[i] if t < eot]).strip()}
            tmp = cache_dir / f"{w['key']}.tmp"
            torch.save(item, tmp)
            os.replace(tmp, cache_dir / f"{w['key']}.pt")
        bar.update(len(group))
    bar.close()
    return [cache_dir / f"{w['key']}.pt" for w in windows]


def _prefix(tokenizer, language: str | None) -> list[int]:
    tid = tokenizer.convert_tokens_to_ids
    prefix = [tid("<|startoftranscript|>")]
    if language:
        prefix += [tid(f"<|{language}|>"), tid("<|transcribe|>")]
    return prefix + [tid("<|notimestamps|>")]


def _text_after_prefix(sequence: list[int], prefix: list[int], eot: int) -> list[int]:
    """Generated tokens after the decoder prompt, up to and with the first end-of-text
    (generate returns the prompt on some versions, not on others)."""
    sot = prefix[0]
    if sot in sequence:
        sequence = sequence[sequence.index(sot) + len(prefix):]
    if eot in sequence:
        sequence = sequence[:sequence.index(eot) + 1]
    return sequence


# ---- stage 2: distillation ----------------------------------------------------------------

def _batch(items: list[dict], device: str, eot: int):
    import torch

    length = max(len(it["ids"]) for it in items)
    ids = torch.full((len(items), length), eot, dtype=torch.long)
    hidden = torch.zeros(len(items), length, items[0]["hidden"].shape[-1])
    mask = torch.zeros(len(items), length - 1, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["ids"])
        ids[i, :n] = it["ids"].long()
        hidden[i, :n] = it["hidden"].float()
        mask[i, it["prefix"] - 1:n - 1] = True  # positions that predict the transcript and its end
    encoder = torch.stack([it["encoder"].float() for it in items])
    return ids.to(device), hidden.to(device), mask.to(device), encoder.to(device)


def losses(draft, items: list[dict], device: str, eot: int, vocab=None):
    """(KL(teacher || draft), cross-entropy on the teacher's tokens, top-1 agreement) over
    the batch's transcript positions. With `vocab` (a tensor of kept ids) the draft scores
    only those ids: KL against the teacher's distribution renormalised over them,
    cross-entropy where the teacher's token is kept, agreement against the teacher's
    full-vocabulary choice (what verification accepts)."""
    import torch
    import torch.nn.functional as F

    ids, teacher_hidden, mask, encoder = _batch(items, device, eot)
    hidden = draft.model.decoder(input_ids=ids[:, :-1], encoder_hidden_states=encoder).last_hidden_state
    weight = draft.proj_out.weight
    kept = weight if vocab is None else weight[vocab]
    draft_logits = (hidden[mask] @ kept.T).float()
    labels = ids[:, 1:][mask]
    with torch.no_grad():
        teacher_logits = (teacher_hidden[:, :-1][mask] @ weight.T).float()
        teacher_choice = teacher_logits.argmax(-1)
        if vocab is not None:
            teacher_logits = teacher_logits[:, vocab]
            position = torch.full((weight.shape[0],), -100, dtype=torch.long, device=labels.device)
            position[vocab] = torch.arange(len(vocab), device=labels.device)
            labels = position[labels]
        teacher_logp = F.log_softmax(teacher_logits, -1)
    logp = F.log_softmax(draft_logits, -1)
    kl = F.kl_div(logp, teacher_logp, log_target=True, reduction="batchmean")
    ce = F.nll_loss(logp, labels, ignore_index=-100) if (labels >= 0).any() else logp.sum() * 0
    proposed = draft_logits.argmax(-1)
    agree = ((proposed if vocab is None else vocab[proposed]) == teacher_choice).float().mean()
    return kl, ce, agree


def draft_vocabulary(cached: list[Path], k: int, config, generation_config, timestamps: bool) -> list[int]:
    """The ids a `--vocab K` draft keeps: the K most frequent tokens of the teacher's
    cached transcripts and the special tokens (speech_endpoint.whisper.draft_vocab)."""
    import torch

    from speech_endpoint.whisper import draft_vocab

    eot = int(generation_config.eos_token_id if isinstance(generation_config.eos_token_id, int)
              else generation_config.eos_token_id[0])
    specials = draft_vocab.special_ids(config.vocab_size, eot, int(generation_config.no_timestamps_token_id), timestamps)
    transcripts = (torch.load(p, weights_only=False)["ids"].tolist() for p in cached)
    return draft_vocab.choose(transcripts, k, eot, specials)


def train(draft, files: list[Path], out_dir: Path, args, eot: int, on_checkpoint) -> dict:
    import numpy as np
    import torch
    from tqdm import tqdm

    from speech_endpoint.whisper.scores import kept_ids

    kept = kept_ids(draft)
    vocab = torch.tensor(kept, dtype=torch.long, device=args.device) if kept else None
    for p in draft.parameters():
        p.requires_grad_(False)
    trainable = list(draft.model.decoder.layers.parameters()) + list(draft.model.decoder.layer_norm.parameters())
    for p in trainable:
        p.requires_grad_(True)
    names = [n for n, p in draft.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    state_path = out_dir / CHECKPOINT
    step, history = 0, []
    if state_path.exists():
        state = torch.load(state_path, map_location=args.device, weights_only=False)
        params = dict(draft.named_parameters())
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        if state.get("vocab") != kept:
            raise SystemExit(f"{state_path} was trained over another draft vocabulary (--vocab, or its audio, changed)")
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], state.get("history", [])
        print(f"resuming at step {step} of {args.steps}", file=sys.stderr)
    order = np.random.default_rng(args.seed).permutation(len(files))
    held = max(1, len(files) // 20) if len(files) >= 8 else 0
    held_out = [files[i] for i in order[:held]] or [files[order[0]]]
    train_files = [files[i] for i in order[held:]]
    cache: dict[Path, dict] = {}

    def item(path: Path) -> dict:
        if path not in cache:
            cache[path] = torch.load(path, weights_only=False)
            if len(cache) > args.memory_windows:
                cache.pop(next(iter(cache)))
        return cache[path]

    def evaluate() -> float:
        draft.eval()
        with torch.no_grad():
            scores = [losses(draft, [item(p)], args.device, eot, vocab)[2].item() for p in held_out[:64]]
        draft.train()
        return float(np.mean(scores))

    def save(step: int) -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"step": step, "trainable": {n: p.detach().cpu() for n, p in draft.named_parameters() if n in names},
                    "optimizer": optimizer.state_dict(), "history": history, "seed": args.seed, "vocab": kept}, tmp)
        os.replace(tmp, state_path)
        on_checkpoint(step)

    warmup = max(1, args.steps // 20)
    draft.train()
    bar = tqdm(total=args.steps, initial=step, desc="training", unit="step")
    started = time.perf_counter()
    stop = args.steps if args.run_steps is None else min(args.steps, step + args.run_steps)
    while step < stop:
        rng = np.random.default_rng([args.seed, step])
        batch = [item(train_files[i]) for i in rng.choice(len(train_files), min(args.batch_size, len(train_files)),
                                                           replace=False)]
        lr = args.lr * min((step + 1) / warmup, max(0.0, (args.steps - step) / max(1, args.steps - warmup)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device.startswith("cuda")):
            kl, ce, agree = losses(draft, batch, args.device, eot, vocab)
        loss = args.kl_weight * kl + args.ce_weight * ce
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(kl=f"{kl.item():.3f}", ce=f"{ce.item():.3f}", agree=f"{agree.item():.2f}")
        if step % args.checkpoint_every == 0 or step == stop:
            held_agree = evaluate()
            history.append({"step": step, "kl": kl.item(), "ce": ce.item(), "train_agree": agree.item(),
                            "held_out_agree": held_agree, "seconds": time.perf_counter() - started})
            bar.write(json.dumps(history[-1]))
            save(step)
    bar.close()
    return {"step": step, "history": history, "held_out": len(held_out), "train": len(train_files)}


# ---- command line -------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", help="Whisper checkpoint (folder or hub id)")
    parser.add_argument("audio", help="folder, audio file, or text file listing audio files ('-' with --steps 0)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--layers", type=int, default=2, help="decoder layers of the draft (default 2)")
    parser.add_argument("--init", choices=("spread", "first"), default="spread",
                        help="initialise from layers spread first..last (default) or the first ones")
    parser.add_argument("--steps", type=int, default=150, help="training steps; 0: save the untrained cut draft")
    parser.add_argument("--vocab", type=int, default=None,
                        help="the draft proposes only the K tokens most frequent in the teacher's transcripts "
                             "of AUDIO, plus the special tokens (default: the whole vocabulary)")
    parser.add_argument("--vocab-timestamps", action="store_true",
                        help="with --vocab: keep the timestamp tokens too (sequential decoding uses them)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per training step")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (5%% warm-up, linear decay)")
    parser.add_argument("--kl-weight", type=float, default=1.0)
    parser.add_argument("--ce-weight", type=float, default=1.0)
    parser.add_argument("--run-steps", type=int, default=None,
                        help="stop this run after this many steps (rerun the command to continue)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--language", help="transcribe in this language instead of detecting it per window")
    parser.add_argument("--cache-dir", type=Path, help="where the teacher's targets go (default OUT_DIR/cache)")
    parser.add_argument("--cache-only", action="store_true",
                        help="stop after caching the teacher's targets (e.g. to cache parts of the audio in parallel)")
    parser.add_argument("--cache-batch-size", type=int, default=8, help="windows the teacher transcribes together")
    parser.add_argument("--memory-windows", type=int, default=2000, help="cached windows kept in memory")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--num-assistant-tokens", type=int, default=None,
                        help="written to the draft's generation_config (transformers' default: 20)")
    parser.add_argument("--confidence-threshold", type=float, default=None,
                        help="assistant_confidence_threshold written to the draft's generation_config "
                             "(transformers' default: 0.4, adapted during generation)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    from speech_endpoint.compat import load_processor

    teacher, saved_dtype = load_teacher(args.teacher, args.device)
    draft = cut_draft(teacher, args.layers, args.init).float().to(args.device)
    settings = {k: v for k, v in (("num_assistant_tokens", args.num_assistant_tokens),
                                  ("assistant_confidence_threshold", args.confidence_threshold)) if v is not None}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.steps == 0 and not args.vocab:
        print(save_draft(draft, args.teacher, args.out_dir, saved_dtype, settings))
        return 0
    cache_dir = args.cache_dir or args.out_dir / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp = {"teacher": str(args.teacher), "vocab": teacher.config.vocab_size, "d_model": teacher.config.d_model,
             "language": args.language}
    stamp_path = cache_dir / "teacher.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) != stamp:
        raise SystemExit(f"{cache_dir} holds another teacher's targets ({stamp_path.read_text()}); use --cache-dir")
    stamp_path.write_text(json.dumps(stamp))
    files = audio_files(args.audio)
    if not files:
        raise SystemExit(f"no audio found in {args.audio}")
    processor = load_processor(args.teacher)
    windows = windows_of(files, cache_dir)
    if not windows:
        raise SystemExit("no speech found in the audio")
    started = time.perf_counter()
    cached = cache_targets(teacher, processor, windows, cache_dir, args.device, args.language, args.cache_batch_size)
    cache_s = time.perf_counter() - started
    if args.cache_only:
        print(cache_dir)
        return 0
    gen = teacher.generation_config
    if args.vocab:
        draft.config.draft_vocab = draft_vocabulary(cached, args.vocab, teacher.config, gen, args.vocab_timestamps)
    if args.steps == 0:
        print(save_draft(draft, args.teacher, args.out_dir, saved_dtype, settings))
        return 0
    eot = int(gen.eos_token_id if isinstance(gen.eos_token_id, int) else gen.eos_token_id[0])
    del teacher
    report = train(draft, cached, args.out_dir, args, eot,
                   on_checkpoint=lambda step: save_draft(draft, args.teacher, args.out_dir, saved_dtype, settings))
    save_draft(draft, args.teacher, args.out_dir, saved_dtype, settings)  # also when there was nothing left to train
    size = sum(p.stat().st_size for p in cached)
    report.update(windows=len(windows), cache_mb=round(size / 2 ** 20, 1),
                  cache_mb_per_window=round(size / 2 ** 20 / len(cached), 2), cache_s_this_run=round(cache_s, 1))
    (args.out_dir / "training.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "history"}))
    print(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
