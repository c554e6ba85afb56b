#!/usr/bin/env python
"""Known speakers on real voices: references from one AMI meeting name speakers in another.

    OMP_NUM_THREADS=1 PYTHONPATH=$DIARIZATION_MODEL_DIR ASR_MODEL=$WHISPER_MODEL_DIR \\
        DIARIZATION_MODEL=$DIARIZATION_MODEL_DIR python -m evaluation.known_speakers_study $AMI_DEV_DIR

AMI speaker labels are global participant IDs, so a person recurs across the meetings of a
series (EN2006a/b, ES2003a/b, EN2001a/e) and sometimes across series (FEE083 in EN2005a and
EN2009b). A reference is a clip of one person's speech alone (the gold turns where nobody
else speaks, the first `--reference-s` seconds, at least `--min-reference-s`), sent through
the handler's own reference stage (decoded, speech found, embedded with the pipeline's
model). It is scored against the other clips two ways:

  (a) oracle turns: against each person's own speech alone in another clip, embedded the
      same way. Same person = true pair; different person, other series = impostor;
      different person, same series = co-participant (in the same room in the other meeting).
  (b) end to end: each clip diarized by the handler's pipeline, then `identify` with every
      reference from the other clips at once and with each reference alone (then only the
      threshold keeps a voice out). A diarized speaker is a person's when that person has
      most of its time (gold turns). A true pair (the person speaks >= `--min-reference-s`
      alone there) is named when its reference names the person's speaker. A wrong name is
      an impostor's ("absent": the person does not speak in the clip) or "misplaced" (the
      person speaks there, but the named speaker is mostly someone else's: a pipeline merge).

Prints the score distributions (min / quantiles / max) and, per threshold, the share of true
pairs named and the wrong names. Naming is decided on diarized speakers, so Whisper does not
run. Data: AMI Meeting Corpus (CC BY 4.0), Carletta et al. 2005.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import argparse  # noqa: E402
import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from evaluation import in_process  # noqa: E402
from evaluation.oracle_diarization import rttm_turns  # noqa: E402
from evaluation.speaker_pairs import (  # noqa: E402
    alone_spans, e2e_scores, majority_speakers, named_rates, quantiles, series, take, total)
from speech_endpoint.schema import SAMPLE_RATE, Transcript, Turn  # noqa: E402
from speech_endpoint.attribution.speaker_names import cosine_matrix  # noqa: E402

THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(11))  # 0.30 .. 0.80


# ---- the handler's stages -----------------------------------------------------------------


@dataclass
class Clip:
    meeting: str
    samples: np.ndarray
    turns: list[Turn]
    alone: dict[str, list[tuple[float, float]]]


def load_clip(wav: Path) -> Clip:
    """A clip and its gold turns (`<clip>.rttm` beside it)."""
    from speech_endpoint.speech.audio import decode

    samples = decode(wav.read_bytes()).samples
    turns = rttm_turns(wav.with_suffix(".rttm"))
    return Clip(wav.stem.split("_")[0], samples, turns, alone_spans(turns, len(samples) / SAMPLE_RATE))


def load_clips(folder: Path) -> list[Clip]:
    return [load_clip(wav) for wav in sorted(folder.glob("*.wav")) if wav.with_suffix(".rttm").is_file()]


def wav_b64(samples: np.ndarray) -> str:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


def cut(samples: np.ndarray, spans) -> np.ndarray:
    return np.concatenate([samples[int(s * SAMPLE_RATE):int(e * SAMPLE_RATE)] for s, e in spans])


def embed_clip(handler, samples: np.ndarray) -> list[float] | None:
    """The vector the handler makes of a `known_speakers` clip; None when it refuses it."""
    from speech_endpoint.schema import ClientError

    try:
        request = handler.check({"parameters": {"known_speakers": {"x": wav_b64(samples)}}})
        return handler.references(request)["x"]
    except ClientError:
        return None


def diarize(handler, clip: Clip, references: dict[str, list[float]], gold_count: bool = False):
    """The handler's diarization of `clip`, attributed (no words): its speakers' vectors and
    turns under the response's labels. `gold_count`: num_speakers from the gold turns."""
    parameters = {"known_speakers": references}
    if gold_count:
        parameters["num_speakers"] = len({t.speaker for t in clip.turns})
    data = {"inputs": wav_b64(clip.samples), "parameters": parameters}
    request = handler.check(data)
    audio = handler.decode(data, request)
    activity = handler.speech(audio)
    return handler.attribute(Transcript("", [], None), handler.diarize(audio, activity, request))


# ---- the study ----------------------------------------------------------------------------


def study(handler, clips: list[Clip], *, reference_s: float, min_reference_s: float,
          min_target_s: float, gold_count: bool = False) -> dict:
    refs, targets, refused = {}, {}, []  # "person@meeting" -> vector
    for clip in clips:
        for person, spans in clip.alone.items():
            key = f"{person}@{clip.meeting}"
            if total(spans) >= min_reference_s:
                if v := embed_clip(handler, cut(clip.samples, take(spans, reference_s))):
                    refs[key] = v
                else:
                    refused.append(f"{key} ({total(spans):.1f} s alone in the gold turns)")
            if total(spans) >= min_target_s and (v := embed_clip(handler, cut(clip.samples, spans))):
                targets[key] = v
    # (a) oracle turns
    names, labels = list(refs), list(targets)
    sim = cosine_matrix(np.asarray([refs[n] for n in names]), np.asarray([targets[t] for t in labels]))
    oracle = {"same": [], "impostor": [], "co-participant": []}
    for i, r in enumerate(names):
        for j, t in enumerate(labels):
            (rp, rm), (tp, tm) = r.split("@"), t.split("@")
            if rm == tm:
                continue
            kind = "same" if rp == tp else "co-participant" if series(rm) == series(tm) else "impostor"
            oracle[kind].append((r, t, float(sim[i, j])))
    # (b) end to end
    e2e = []
    for clip in clips:
        own = {k: v for k, v in refs.items() if not k.endswith("@" + clip.meeting)}
        if not any(total(s) > 0 for s in clip.alone.values()):
            continue
        attribution = diarize(handler, clip, own, gold_count)
        owner = majority_speakers(attribution.turns, clip.turns)
        present = {p for p, s in clip.alone.items() if total(s) >= min_reference_s}
        e2e.append({"meeting": clip.meeting, "embeddings": attribution.embeddings, "owner": owner,
                    "present": sorted(present), "speakers": sorted({t.speaker for t in clip.turns}),
                    "references": sorted(own),
                    "default": [(m.name, m.speaker, m.similarity) for m in
                                handler.identify(attribution, own)[1]]})
    return {"references": refs, "refused": refused, "oracle": oracle, "e2e": e2e}


def report(result: dict) -> str:
    refs, lines = result["references"], []
    lines.append(f"references: {len(refs)} ({', '.join(refs)})")
    lines.append(f"refused by the handler: {', '.join(result['refused']) or 'none'}")
    lines.append("\n(a) oracle turns: reference vs the person's own speech alone in another clip")
    for kind, rows in result["oracle"].items():
        lines.append(f"  {kind:15s} {quantiles([s for *_, s in rows])}")
    for kind in ("impostor", "co-participant"):
        top = sorted(result["oracle"][kind], key=lambda r: -r[2])[:3]
        lines.append(f"  highest {kind}: " + "; ".join(f"{r} vs {t} {s:.3f}" for r, t, s in top))
    lines.append("  lowest same: " + "; ".join(f"{r} vs {t} {s:.3f}" for r, t, s in
                                                 sorted(result["oracle"]["same"], key=lambda r: r[2])[:3]))
    lines.append("\n  threshold | same named | impostors over | co-participants over")
    for thr in THRESHOLDS:
        o = result["oracle"]
        over = lambda kind: sum(s >= thr for *_, s in o[kind])  # noqa: E731
        lines.append(f"  {thr:.2f} | {over('same')}/{len(o['same'])} | {over('impostor')}/{len(o['impostor'])}"
                     f" | {over('co-participant')}/{len(o['co-participant'])}")
    lines.append("\n(b) end to end (handler diarization + identify): reference vs diarized speakers")
    scores = e2e_scores(result["e2e"], refs)
    for kind, rows in scores.items():
        lines.append(f"  {kind:15s} {quantiles([s for *_, s in rows])}")
    for kind in ("absent", "misplaced"):
        top = sorted(scores[kind], key=lambda r: -r[2])[:3]
        lines.append(f"  highest {kind}: " + "; ".join(f"{r} vs {t} {s:.3f}" for r, t, s in top))
    for clip in result["e2e"]:
        shown = [f"{n} -> {s} ({v:.2f})" for n, s, v in clip["default"] if s or n.split("@")[0] in clip["present"]]
        lines.append(f"  {clip['meeting']}: speakers (majority) {clip['owner']}; at the default threshold: "
                     + (", ".join(shown) or "nobody named"))
    for single in (False, True):
        lines.append(f"\n  {'each reference alone' if single else 'all references at once'}: threshold | "
                     "true pairs named | impostors (absent) named | names on another's speaker (misplaced)")
        for thr in THRESHOLDS:
            r = named_rates(result["e2e"], refs, thr, single)
            lines.append(f"  {thr:.2f} | {r['named']}/{r['true']} ({r['no_own_speaker']} without a speaker of "
                         f"their own) | {r['absent']} | {r['misplaced']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="ami-dev: <clip>.wav with <clip>.rttm (AMI global speaker IDs)")
    parser.add_argument("--reference-s", type=float, default=10.0, help="reference length, at most (s)")
    parser.add_argument("--min-reference-s", type=float, default=3.0, help="speech alone a reference needs (s)")
    parser.add_argument("--min-target-s", type=float, default=1.0, help="speech alone a target needs in (a)")
    parser.add_argument("--gold-count", action="store_true", help="(b) with num_speakers from the gold turns")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    args = parser.parse_args(argv)
    handler = in_process.build_handler(WARMUP="false", MAX_KNOWN_SPEAKERS="1000")  # every other clip's
    if handler.diarizer is None:
        raise SystemExit("set DIARIZATION_MODEL (a pyannote pipeline with an embedding model)")
    result = study(handler, load_clips(args.folder), reference_s=args.reference_s,
                   min_reference_s=args.min_reference_s, min_target_s=args.min_target_s, gold_count=args.gold_count)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, default=str, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
