"""Attribution rules measured against many conversations: what each costs or gains in
cpWER - WER under exact turns, turns with every boundary moved by up to +-0.25 s (several
seeds), and the real diarization pipeline's turns.

Whisper runs once per file through the handler's stages; its words are cached as JSON
(`--cache`), so rule variants are compared on the same words in seconds. Real-pipeline
turns are cached the same way.

    ASR_MODEL=.../whisper-base python -m evaluation.attribution_study corpus-seed0/manifest.json \\
        --cache study-cache --variants all --output study.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from evaluation import oracle_diarization as oracle
from evaluation import scoring
from evaluation.evaluate import Item, discover
from speech_endpoint.schema import Diarization, Turn, Word
from speech_endpoint.attribution.turns import exclusive_turns

JITTER = 0.25
SEEDS = range(5)


def _digest(item: Item) -> str:
    """The audio's fingerprint: a regenerated file is never matched to stale results."""
    import hashlib

    return hashlib.sha1(item.audio.read_bytes()).hexdigest()[:12]


def transcribe_cached(items: list[Item], cache: Path, parameters: dict) -> dict[str, list[Word]]:
    """The handler's words for every item, from the cache when there."""
    cache.mkdir(parents=True, exist_ok=True)
    out, harness = {}, None
    for item in items:
        path = cache / f"{item.uri}-{_digest(item)}.words.json"
        if not path.is_file():
            if harness is None:
                from evaluation.evaluate import Harness

                harness = Harness(diarization_model=None, asr_model=os.environ.get("ASR_MODEL"))
            words = harness.prepare(item.audio.read_bytes(), {**parameters, "diarize": False}).transcript.words
            path.write_text(json.dumps([[w.text, w.start, w.end, w.probability] for w in words]))
        out[item.uri] = [Word(t, s, e, probability=p) for t, s, e, p in json.loads(path.read_text())]
    return out


def pipeline_turns_cached(items: list[Item], cache: Path, pipeline: str | None) -> dict[str, Diarization]:
    """The real pipeline's diarization of every item (cached); {} without a pipeline."""
    if not pipeline:
        return {}
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    out, diarizer = {}, None
    for item in items:
        path = cache / f"{item.uri}-{_digest(item)}.pipeline.json"
        if not path.is_file():
            diarizer = diarizer or Diarizer(pipeline)
            d = diarizer(decode(item.audio.read_bytes()))
            path.write_text(json.dumps({"exclusive": [[t.start, t.end, t.speaker] for t in d.exclusive],
                                        "full": [[t.start, t.end, t.speaker] for t in d.full]}))
        data = json.loads(path.read_text())
        out[item.uri] = Diarization(exclusive=[Turn(*t) for t in data["exclusive"]],
                                    full=[Turn(*t) for t in data["full"]])
    return out


def oracle_diarization(item: Item, duration: float, jitter: float = 0.0, seed: int = 0) -> Diarization:
    full = oracle.jitter_turns(item.reference_turns(duration), jitter, seed, duration)
    return Diarization(exclusive=exclusive_turns(full), full=full)


def cp_minus_wer(item: Item, words: list[Word]) -> float:
    """cpWER - WER of attributed words (speakers' words concatenated in time order)."""
    stm = item.stm_rows()
    text = "".join(w.text for w in words)
    errors, ref_words = scoring.wer_counts(" ".join(r[3] for r in stm), text)
    hyp = scoring.speaker_texts([(w.speaker, w.text) for w in words if w.speaker is not None])
    cp = scoring.cpwer_details(scoring.speaker_texts(stm), hyp)
    return cp["cpwer"] - errors / (ref_words or 1)


Variant = Callable[[list[Word], Diarization], list[Word]]


def nearest_chunk_end(words: list[Word], d: Diarization) -> list[Word]:
    """The old reference attribution: whole sentence chunks to the speaker whose turn ends
    nearest; each word takes its chunk's speaker (None: the old code dropped the chunk)."""
    from evaluation.baseline import nearest_chunk_end_speakers
    from speech_endpoint.attribution.segmentation import segments_from_words

    utterances = nearest_chunk_end_speakers(segments_from_words(words), d.full)
    return [replace(w, speaker=next((u.speaker for u in utterances
                                     if u.start - 1e-6 <= (w.start + w.end) / 2 <= u.end + 1e-6), None))
            for w in words]


def variants() -> dict[str, Variant]:
    """The rule sets compared (speech_endpoint/attribution/rules.py numbers the rules): each takes
    the words and a diarization, returns the words with speakers (the diarizer's labels). The
    conversations are English, so the English word lists apply."""
    from diarization_utils import assign_speakers

    def variant(full: bool = True, **options) -> Variant:
        return lambda words, d: assign_speakers(words, d.exclusive, full_turns=d.full if full else None,
                                                relabel=False, language="en", **options)

    return {
        "nearest chunk end (old reference)": nearest_chunk_end,
        "max overlap, exclusive turns": variant(full=False, smooth=False),
        "rule 0: max overlap, full turns": variant(smooth=False),
        "rules 0 + 1 (edges)": variant(rules=("edges", "openers")),
        "rules 0 + 2 (claims)": variant(rules=("claims", "takeback")),
        "rules 0 + 1 + 2": variant(rules=("edges", "openers", "claims", "takeback")),
        "rules 0 + 1 + 2 + 3, no boundary margin": variant(margin=0.0),
        "rules 0 + 1 + 2 + 3 (the endpoint's)": variant(),
    }


def per_conversation(items: list[Item], words: dict[str, list[Word]], pipeline: dict[str, Diarization],
                     variant: Variant) -> str:
    """Per conversation, for one variant: WER, cpWER - WER and tcpWER (collar 5 s) with
    exact turns and the real pipeline's, and the pipeline's DER / JER (collar 0)."""
    from evaluation.tcpwer import tcpwer

    lines = ["| conversation | WER | exact: cpWER - WER / tcpWER | real pipeline: DER / JER | real pipeline: "
             "cpWER - WER / tcpWER |", "|---|---|---|---|---|"]
    for item in items:
        ws, stm = words[item.uri], item.stm_rows()
        duration = max([w.end for w in ws] + [t.end for t in item.reference_turns()] + [0.0])
        wer = scoring.wer(" ".join(r[3] for r in stm), "".join(w.text for w in ws))

        def scores(d: Diarization) -> str:
            out = variant([replace(w) for w in ws], d)
            timed = [{"word": w.text, "start": w.start, "end": w.end, "speaker": w.speaker} for w in out]
            return f"{cp_minus_wer(item, out):.3f} / {tcpwer(stm, timed)['tcpwer']:.1%}"

        cells = [f"{wer:.1%}", scores(oracle_diarization(item, duration)), "–", "–"]
        if item.uri in pipeline:
            ref = [(t.start, t.end, t.speaker) for t in item.reference_turns(duration)]
            hyp = [(t.start, t.end, t.speaker) for t in pipeline[item.uri].full]
            der = scoring.diarization_scores(ref, hyp, duration=duration)
            cells[2] = f"{der['der']:.1%} / {der['jer']:.1%}"
            cells[3] = scores(pipeline[item.uri])
        lines.append(f"| {item.uri} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study(items: list[Item], words: dict[str, list[Word]], pipeline: dict[str, Diarization],
          chosen: dict[str, Variant]) -> dict:
    rows = {}
    for item in items:
        duration = max([w.end for w in words[item.uri]] + [t.end for t in item.reference_turns()] + [0.0])
        conditions = {"exact": oracle_diarization(item, duration)}
        conditions.update({f"jitter{seed}": oracle_diarization(item, duration, JITTER, seed) for seed in SEEDS})
        if item.uri in pipeline:
            conditions["pipeline"] = pipeline[item.uri]
        # a jitter that moves a short turn's start past its end drops the turn: the words
        # spoken in it then have no turn of their speaker, which no merge can repair
        kept = {c for c, d in conditions.items()
                if c.startswith("jitter") and len(d.full) == len(conditions["exact"].full)}
        for name, variant in chosen.items():
            scores = {c: cp_minus_wer(item, variant([replace(w) for w in words[item.uri]], d))
                      for c, d in conditions.items()}
            jittered = [v for c, v in scores.items() if c.startswith("jitter")]
            rows.setdefault(name, {})[item.uri] = {
                "exact": scores["exact"], "jitter_worst": max(jittered), "jitter_mean": statistics.fmean(jittered),
                "jitter_kept_worst": max((scores[c] for c in kept), default=None),
                "pipeline": scores.get("pipeline")}
    return rows


def table(rows: dict) -> str:
    lines = ["| variant | exact: worst / mean | jitter +-0.25 s: worst seed / mean | jitter, seeds that dropped no turn: "
             "worst / mean | real pipeline: worst / mean | conversations within target: exact <= 0.01 / jitter <= 0.02 |",
             "|---|---|---|---|---|---|"]
    for name, per_file in rows.items():
        cells = []
        for key, pick in (("exact", max), ("jitter_worst", max), ("jitter_kept_worst", max), ("pipeline", max)):
            values = [v[key] for v in per_file.values() if v[key] is not None]
            cells.append(f"{pick(values):.3f} / {statistics.fmean(values):.3f}" if values else "–")
        exact_ok = sum(v["exact"] <= 0.01 + 1e-9 for v in per_file.values())
        jitter_ok = sum(v["jitter_worst"] <= 0.02 + 1e-9 for v in per_file.values())
        cells.append(f"{exact_ok} / {jitter_ok} of {len(per_file)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="folders, audio files or manifests (with .stm and .rttm)")
    parser.add_argument("--cache", type=Path, default=Path("study-cache"))
    parser.add_argument("--pipeline", default=os.environ.get("DIARIZATION_MODEL"),
                        help="a real pyannote pipeline folder (default: DIARIZATION_MODEL)")
    parser.add_argument("--variants", nargs="*", default=["all"])
    parser.add_argument("--output", type=Path)
    parser.add_argument("--per-conversation", metavar="VARIANT", help="also a table per conversation for VARIANT")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    items = [i for i in discover(args.inputs) if i.stm and i.rttm]
    all_variants = variants()
    chosen = all_variants if args.variants == ["all"] else {k: all_variants[k] for k in args.variants}
    words = transcribe_cached(items, args.cache, {})
    pipeline = pipeline_turns_cached(items, args.cache, args.pipeline)
    rows = study(items, words, pipeline, chosen)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    if args.per_conversation:
        print()
        print(per_conversation(items, words, pipeline, all_variants[args.per_conversation]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
