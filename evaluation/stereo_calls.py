"""Generated stereo calls (one espeak-ng voice per channel, the other side's speech leaking
in at a low level) and the measurement of `multichannel` requests on them.

    python -m evaluation.stereo_calls --seeds 0 1 2 3 [--held-out] [--margins off 3 6 10]
        [--crosstalk-db -20] [--delay-s 0.03] [--seconds 16] [--mono-diarized] [--write DIR]
    python -m evaluation.stereo_calls --frames --seeds 0 1 2 3 4 5 [--held-out] [--margins 3 6 10]
    python -m evaluation.stereo_calls [--frames] --ami AMI_DEV_DIR (calls of real speech, below)

Each call: two speakers taking turns with short gaps, interruptions (0.2-0.6 s of overlap)
and back-channels said over the other; channel k holds speaker k at full level plus every
other speaker `crosstalk_db` down and `delay_s` late (handset leakage, echo), over a faint
noise floor. `--held-out` draws voices from a pool the crosstalk guard was not tuned with
and varies crosstalk level, delay and the level gap between the sides per call.

`--frames` measures the guard alone, fast (Silero, no Whisper), over fixed conditions
(crosstalk level / delay / level gap between the sides): the share of each speaker's
reference speech their channel keeps (all of it, and where both talk at once) and the
share of the other speaker's solo speech it lets through.

Per call and setting it prints WER, cpWER, cpWER - WER and the words given to a speaker who
was silent at that time (crosstalk duplicates), from the handler's public stages:
`--margins off` is the guard switched off (every channel's VAD speech counts); a number is
the guard's margin in dB. `--mono-diarized` adds the mono downmix through the usual
diarization path (needs DIARIZATION_MODEL_DIR) for comparison. Needs WHISPER_MODEL_DIR.
`--ami` builds calls of real speech instead, in memory (`ami_call`): the solo utterances of an
ami-dev clip's two main speakers, one per channel (AMI Meeting Corpus, CC BY 4.0).
"""
from __future__ import annotations

import argparse
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from evaluation.corpus import SAMPLE_RATE, TOPICS, VOICES, Bank, Segment, Synth, Timeline, Voice, draw_voices
from evaluation.scoring import cpwer_details, wer

SPEAKERS = ("alice", "bob")  # channel 0, channel 1
# Voices never used to tune the guard (the corpus pool, VOICES, was).
HELD_OUT_VOICES: tuple[Voice, ...] = (
    Voice("f3_female", "en-us+f3", 60, 165),
    Voice("m3_male", "en+m3", 35, 155),
    Voice("scot_male", "en-gb-scotland", 45, 170),
    Voice("f5_female", "en-us+f5", 70, 175),
)


@dataclass
class StereoCall:
    uri: str
    segments: list[Segment]  # speaker = SPEAKERS[channel]
    channels: np.ndarray  # (samples, 2) float32, 16 kHz
    settings: dict

    @property
    def duration(self) -> float:
        return len(self.channels) / SAMPLE_RATE

    def stm_rows(self) -> list[tuple[str, float, float, str]]:
        return [(s.speaker, s.start_s, s.end_s, s.text) for s in sorted(self.segments, key=lambda s: s.start)]


def build_call(seed: int, *, seconds: float = 16.0, crosstalk_db: float = -20.0, delay_s: float = 0.03,
               level_gap_db: float = 0.0, pool: Sequence[Voice] = VOICES, synth: Synth | None = None,
               noise_dbfs: float = -60.0) -> StereoCall:
    """One call of about `seconds`; channel 1 is `level_gap_db` louder than channel 0."""
    rng = np.random.default_rng([seed, zlib.crc32(b"stereo_call")])
    topic = sorted(TOPICS)[int(rng.integers(len(TOPICS)))]
    voices = dict(zip(SPEAKERS, draw_voices(rng, 2, pool)))
    t = Timeline(rng, synth or Synth(), voices, {s: 0.0 for s in SPEAKERS})
    t.change_gap = (0.1, 0.6)
    b = Bank(rng, topic)
    a, c = SPEAKERS
    t.say(a, b.pick("opener"))
    who, step = 1, 0
    while t.duration < seconds - 3:
        r = 0.0 if step == 1 else t.rng.random()  # every call has an interruption
        speaker, other = SPEAKERS[who], SPEAKERS[1 - who]
        if r < 0.3:  # the other cuts in before this one ends
            seg = t.say(speaker, b.statement())
            t.say(other, b.statement(), gap=-float(t.rng.uniform(0.2, 0.6)))
            who = 1 - who
        elif r < 0.55:
            seg = t.say(speaker, b.statement())
            t.backchannel(other, b.backchannel(), seg)
        elif r < 0.75:
            t.say(speaker, b.question())
            t.say(other, b.answer())
            who = 1 - who
        else:
            t.turn(speaker, [b.statement() for _ in range(int(t.rng.integers(1, 3)))])
        who, step = 1 - who, step + 1
    t.say(SPEAKERS[who], b.pick("closer"))
    settings = {"voices": {s: v.key for s, v in voices.items()}, "crosstalk_db": crosstalk_db,
                "delay_s": delay_s, "level_gap_db": level_gap_db, "topic": topic}
    channels = _stereo(t.segments, t.clips, crosstalk_db, delay_s, level_gap_db, rng, noise_dbfs)
    return StereoCall(f"call_s{seed}", sorted(t.segments, key=lambda s: s.start), channels, settings)


def _stereo(segments: Sequence[Segment], clips: Sequence[np.ndarray], crosstalk_db: float, delay_s: float,
            level_gap_db: float, rng: np.random.Generator, noise_dbfs: float) -> np.ndarray:
    """(samples, 2): each speaker on their channel, leaking into the other's."""
    total = max(seg.end for seg in segments) + int(0.8 * SAMPLE_RATE)
    own = np.zeros((2, total))
    for seg, clip in zip(segments, clips):
        own[SPEAKERS.index(seg.speaker), seg.start:seg.end] += clip
    delay = int(round(delay_s * SAMPLE_RATE))
    leak = 10 ** (crosstalk_db / 20)
    out = np.zeros((total, 2))
    for k in range(2):
        other = np.concatenate([np.zeros(delay), own[1 - k, :total - delay]])
        out[:, k] = own[k] + leak * other + rng.standard_normal(total) * 10 ** (noise_dbfs / 20)
    out[:, 1] *= 10 ** (level_gap_db / 20)
    out *= 0.89 / max(0.89, np.abs(out).max())
    return out.astype(np.float32)


def ami_call(ami_dir: Path, clip: str, *, crosstalk_db: float = -20.0, delay_s: float = 0.03) -> StereoCall | None:
    """A call of real speech: the solo utterances (no other speaker's turn overlaps them) of
    an AMI clip's two most talkative speakers, one per channel, taking turns with 0.2-0.7 s
    gaps (the second change overlapping by 0.4 s) until one runs out, then the rest of the
    other's. None unless both have one.
    Built in memory from AMI_DEV_DIR (AMI Meeting Corpus, CC BY 4.0, Carletta et al. 2005)."""
    from evaluation.scoring import read_stm

    audio, rate = sf.read(ami_dir / f"{clip}.wav", dtype="float64")
    rows = read_stm(ami_dir / f"{clip}.stm")
    turns = [(line.split()[7], float(line.split()[3]), float(line.split()[3]) + float(line.split()[4]))
             for line in (ami_dir / f"{clip}.rttm").read_text().splitlines() if line.strip()]
    solo = [r for r in rows if r[3].strip() and r[2] - r[1] > 0.3
            and not any(spk != r[0] and a < r[2] and r[1] < b for spk, a, b in turns)]
    talkers = sorted({r[0] for r in solo}, key=lambda spk: -sum(r[2] - r[1] for r in solo if r[0] == spk))[:2]
    by = [[r for r in solo if r[0] == spk] for spk in talkers]
    if len(by) < 2:
        return None
    rng = np.random.default_rng(zlib.crc32(clip.encode()))
    segments, clips, cursor = [], [], int(0.5 * SAMPLE_RATE)
    order = [(k, u) for pair in zip(*by) for k, u in enumerate(pair)]
    n = min(len(u) for u in by)
    order += [(k, u) for k, rest in enumerate(by) for u in rest[n:]]
    for i, (k, (_, start, end, text)) in enumerate(order):
        piece = audio[int(start * rate):int(end * rate)]
        gap = -0.4 if i == 2 else float(rng.uniform(0.2, 0.7))
        begin = max(0, cursor + int(gap * SAMPLE_RATE)) if i else cursor
        segments.append(Segment(SPEAKERS[k], text, begin, begin + len(piece)))
        clips.append(piece)
        cursor = max(cursor, begin + len(piece))
    channels = _stereo(segments, clips, crosstalk_db, delay_s, 0.0, rng, -70.0)
    settings = {"voices": {SPEAKERS[k]: spk for k, spk in enumerate(talkers)}, "crosstalk_db": crosstalk_db,
                "delay_s": delay_s, "level_gap_db": 0.0, "topic": "ami"}
    return StereoCall(f"ami_{clip}", sorted(segments, key=lambda s: s.start), channels, settings)


def held_out_call(seed: int, synth: Synth | None = None, seconds: float = 16.0) -> StereoCall:
    """A call from the held-out voices, with its own crosstalk level, delay and level gap."""
    rng = np.random.default_rng([seed, zlib.crc32(b"held_out")])
    return build_call(seed, seconds=seconds, crosstalk_db=float(rng.uniform(-26, -15)),
                      delay_s=float(rng.uniform(0.005, 0.2)), level_gap_db=float(rng.uniform(-4, 4)),
                      pool=HELD_OUT_VOICES, synth=synth)


def wav_bytes(call: StereoCall) -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, call.channels, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def score(call: StereoCall, words: list[dict]) -> dict:
    """WER of the merged text, cpWER by speaker (channel labels mapped by the best
    permutation), and the words whose speaker was silent then (crosstalk duplicates)."""
    rows = call.stm_rows()
    reference = " ".join(text for *_, text in rows)
    hypothesis = " ".join(w["word"] for w in words)
    by_speaker: dict[str, list[str]] = {}
    for w in words:
        by_speaker.setdefault(w["speaker"], []).append(w["word"])
    ref_speakers: dict[str, list[str]] = {}
    for speaker, *_, text in rows:
        ref_speakers.setdefault(speaker, []).append(text)
    cp = cpwer_details({k: " ".join(v) for k, v in ref_speakers.items()},
                       {k: " ".join(v) for k, v in by_speaker.items()})
    label = {f"SPEAKER_{k:02d}": s for k, s in enumerate(SPEAKERS)}

    def speaking(w: dict) -> bool:
        middle = (w["start"] + w["end"]) / 2
        return any(s == label.get(w["speaker"]) and a - 0.3 <= middle <= b + 0.3 for s, a, b, _ in rows)

    silent = sum(1 for w in words if not speaking(w))
    w_ = wer(reference, hypothesis)
    return {"wer": w_, "cpwer": cp["cpwer"], "diff": cp["cpwer"] - w_, "silent_words": silent, "words": len(words)}


FRAME_CONDITIONS = {  # name -> build_call arguments
    "-20 dB, 30 ms": {"crosstalk_db": -20.0, "delay_s": 0.03},
    "-15 dB, 150 ms": {"crosstalk_db": -15.0, "delay_s": 0.15},
    "-20 dB, 30 ms, side 2 +6 dB": {"crosstalk_db": -20.0, "delay_s": 0.03, "level_gap_db": 6.0},
    "-12 dB, 60 ms": {"crosstalk_db": -12.0, "delay_s": 0.06},
}


def guard_frames(handler, call: StereoCall, margin_db: float | None) -> tuple[float, float, float]:
    """(own speech kept, own speech kept where both talk, other's solo speech let through),
    over 32 ms frames against the reference turns, from the handler's `channel_speech`."""
    request = handler.check({"parameters": {"multichannel": True}})
    channels = handler.decode_channels({"inputs": wav_bytes(call)}, request)
    prepared = handler.channel_speech(channels, margin_db=margin_db)
    masks = [c.activity.mask for c in prepared]
    t = (np.arange(len(masks[0])) + 0.5) * prepared[0].activity.frame_s
    ref = np.zeros((2, len(t)), bool)
    for speaker, a, b, _ in call.stm_rows():
        ref[SPEAKERS.index(speaker)] |= (t >= a) & (t < b)
    both = ref[0] & ref[1]
    kept = sum((masks[k] & ref[k]).sum() for k in range(2)) / max(1, ref.sum())
    kept_both = sum((masks[k] & both).sum() for k in range(2)) / max(1, 2 * both.sum())
    solo = [ref[1 - k] & ~ref[k] for k in range(2)]
    leaked = sum((masks[k] & solo[k]).sum() for k in range(2)) / max(1, sum(x.sum() for x in solo))
    return float(kept), float(kept_both), float(leaked)


def frames_study(handler, conditions: dict[str, list[StereoCall]], margins: Sequence[float | None]) -> None:
    print("| conditions | margin | own speech kept | kept where both talk | other's solo speech let through |\n"
          "|---|---|---|---|---|")
    for name, calls in conditions.items():
        for margin in margins:
            r = np.mean([guard_frames(handler, call, margin) for call in calls], axis=0)
            label = "guard off" if margin is None else f"{margin:g} dB"
            print(f"| {name} | {label} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} |", flush=True)


def run_multichannel(handler, call: StereoCall, margin_db: float | None, language: str = "en") -> list[dict]:
    """The handler's `multichannel` stages with the guard at `margin_db` (None: off)."""
    import time

    request = handler.check({"inputs": b"", "parameters": {"multichannel": True, "language": language}})
    channels = handler.decode_channels({"inputs": wav_bytes(call)}, request)
    prepared = handler.channel_speech(channels, margin_db=margin_db)
    options = handler.decode_options(request, channels[0].duration)
    transcripts = handler.transcribe_channels(prepared, options)
    attribution = handler.attribute_channels(transcripts, prepared)
    out = handler.render_call(request, prepared, options, transcripts, attribution, {"total_s": time.perf_counter()})
    return out.get("words", [])


def run_mono_diarized(handler, call: StereoCall, language: str = "en") -> list[dict]:
    out = handler({"inputs": wav_bytes(call), "parameters": {"language": language, "num_speakers": 2}})
    return out.get("words", [])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.stereo_calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--held-out", action="store_true", help="held-out voices, crosstalk, delays, level gaps")
    parser.add_argument("--margins", nargs="+", default=["off", "6"], help="'off' or the guard's margin in dB")
    parser.add_argument("--frames", action="store_true", help="measure the guard alone (no Whisper)")
    parser.add_argument("--crosstalk-db", type=float, default=-20.0)
    parser.add_argument("--delay-s", type=float, default=0.03)
    parser.add_argument("--seconds", type=float, default=16.0)
    parser.add_argument("--mono-diarized", action="store_true", help="also the mono downmix, diarized")
    parser.add_argument("--write", type=Path, help="write each call's .wav and .stm here")
    parser.add_argument("--ami", type=Path, help="calls of real speech from this ami-dev folder instead")
    args = parser.parse_args(argv)
    model = os.environ.get("WHISPER_MODEL_DIR")
    if not model:
        print("set WHISPER_MODEL_DIR", file=sys.stderr)
        return 2
    os.environ.update({"ASR_MODEL": model, "WARMUP": "false"})
    diarizer = os.environ.get("DIARIZATION_MODEL_DIR") if args.mono_diarized else None
    if diarizer:
        os.environ["DIARIZATION_MODEL"] = diarizer
    else:
        os.environ.pop("DIARIZATION_MODEL", None)
    import torch

    torch.set_num_threads(1)
    from handler import EndpointHandler

    handler = EndpointHandler("")
    synth = Synth()
    settings = [("off", None) if m == "off" else (f"{float(m):g} dB", float(m)) for m in args.margins]
    totals: dict[str, list[dict]] = {}
    if args.ami:
        import json

        clips = [e["name"] for e in json.loads((args.ami / "manifest.json").read_text())]
        calls = [c for c in (ami_call(args.ami, clip, crosstalk_db=args.crosstalk_db, delay_s=args.delay_s)
                             for clip in clips) if c is not None]
        conditions = {f"AMI real speech, {args.crosstalk_db:g} dB, {1000 * args.delay_s:g} ms": calls}
    elif args.held_out:
        calls = [held_out_call(seed, synth, args.seconds) for seed in args.seeds]
        conditions = {"held-out voices, random conditions": calls}
    else:
        calls = [build_call(seed, seconds=args.seconds, crosstalk_db=args.crosstalk_db, delay_s=args.delay_s,
                            synth=synth) for seed in args.seeds]
        conditions = {name: [build_call(seed, synth=synth, **kw) for seed in args.seeds]
                      for name, kw in FRAME_CONDITIONS.items()} if args.frames else {}
    if args.frames:
        frames_study(handler, conditions, [None if m == "off" else float(m) for m in args.margins])
        return 0
    print("| call | setting | WER | cpWER | cpWER - WER | words of a silent speaker |\n|---|---|---|---|---|---|")
    for call in calls:
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            sf.write(args.write / f"{call.uri}.wav", call.channels, SAMPLE_RATE, subtype="PCM_16")
            (args.write / f"{call.uri}.stm").write_text("".join(f"{call.uri} 1 {s} {a:.3f} {b:.3f} {t}\n"
                                                              for s, a, b, t in call.stm_rows()))
        s = call.settings
        name = (f"{call.uri} ({s['voices']['alice']}/{s['voices']['bob']}, {s['crosstalk_db']:.0f} dB, "
                f"{1000 * s['delay_s']:.0f} ms, gap {s['level_gap_db']:+.1f} dB, {call.duration:.1f} s)")
        runs = [(label, lambda m=margin: run_multichannel(handler, call, m)) for label, margin in settings]
        if diarizer:
            runs.append(("mono, diarized", lambda: run_mono_diarized(handler, call)))
        for label, run in runs:
            r = score(call, run())
            totals.setdefault(label, []).append(r)
            print(f"| {name} | {label} | {r['wer']:.3f} | {r['cpwer']:.3f} | {r['diff']:.3f} | "
                  f"{r['silent_words']}/{r['words']} |", flush=True)
    for label, rows in totals.items():
        print(f"| mean over {len(rows)} | {label} | {np.mean([r['wer'] for r in rows]):.3f} | "
              f"{np.mean([r['cpwer'] for r in rows]):.3f} | {np.mean([r['diff'] for r in rows]):.3f} "
              f"(max {max(r['diff'] for r in rows):.3f}) | {sum(r['silent_words'] for r in rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
