"""Speculative decoding on CPU: token acceptance, generate time and end-to-end handler time,
plain against assisted, for several drafts and settings, with an output-equality check.

    python -m evaluation.assisted_benchmark --model /work/shared/models/whisper-base \\
        --draft cut=/tmp/draft-cut --draft trained=/work/scratch/draft-base \\
        --clip dialogue=/work/shared/audio/dialogue/dialogue.wav:8,15,30,60 --clip telephone=sample.wav \\
        --setting default --setting n=5,thr=0 --e2e-setting n=5,thr=0 --output bench.json

Clips are the first N seconds of a file (`name=path:N,N,...`; the whole file without N).
Each clip is cut into windows and encoded once, as the handler does (Silero VAD, windows of
at most 30 s). Part 1, generate: every window is decoded greedily at batch 1 by plain
`generate` and by assisted `generate` for every draft x setting, variants interleaved and
rotated from repeat to repeat; each reports its median wall time and CPU time
(time.thread_time: with one torch thread the compute runs on the calling thread, so this
ignores time lost to other processes on shared cores), and the draft's token acceptance:
transformers' `AssistedCandidateGenerator.update_candidate_strategy(input_ids, scores,
num_matches)` is wrapped, counting `scores.shape[1] - 1` proposed and `num_matches`
accepted candidate tokens per verification round. Part 2, end to end: the handler (no
diarization, language en) on each clip, plain at the request's batch size (24) and at
batch 1, and assisted for every draft with `--e2e-setting`; wall and CPU time, medians.
Every assisted output is checked against plain greedy output (tokens, and handler text).
`--step-cost` adds, per clip, the CPU time of one decoding step of the main model and of each
draft at batch 1 (`evaluation.step_cost`: teacher-forced along the plain transcript, output
layer included), and its ratio to the main model's; `--plain-only` leaves the assisted
generate calls out of part 1 (the step costs alone, e.g. of untrained drafts).

Settings: `default` is whatever the draft's generation_config says (transformers 5:
20 tokens, constant, adaptive confidence threshold starting at 0.4); otherwise
comma-separated `n=` (num_assistant_tokens), `thr=` (assistant_confidence_threshold; 0
turns the early stop and its adaptation off), `schedule=` (constant, heuristic,
heuristic_transient). Settings are reset before every call.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

def parse_setting(text: str) -> dict:
    if text == "default":
        return {}
    keys = {"n": "num_assistant_tokens", "thr": "assistant_confidence_threshold",
            "schedule": "num_assistant_tokens_schedule"}
    out = {}
    for part in text.split(","):
        key, value = part.split("=")
        name = keys[key]
        out[name] = value if key == "schedule" else (int(value) if key == "n" else float(value))
    return out


def parse_clip(text: str) -> tuple[str, Path, list[float | None]]:
    name, rest = text.split("=", 1)
    path, _, lengths = rest.partition(":")
    return name, Path(path), [float(x) for x in lengths.split(",")] if lengths else [None]


class Acceptance:
    """Counts candidate tokens proposed and accepted across assisted generate calls."""

    def __init__(self):
        self.proposed = self.accepted = self.rounds = 0

    @contextlib.contextmanager
    def watching(self):
        from transformers.generation import candidate_generator as cg

        original = cg.AssistedCandidateGenerator.update_candidate_strategy

        def counted(generator, input_ids, scores, num_matches):
            self.rounds += 1
            self.proposed += int(scores.shape[1]) - 1
            self.accepted += int(num_matches)
            return original(generator, input_ids, scores, num_matches)

        cg.AssistedCandidateGenerator.update_candidate_strategy = counted
        try:
            yield self
        finally:
            cg.AssistedCandidateGenerator.update_candidate_strategy = original


@contextlib.contextmanager
def timed():
    out = {}
    wall, cpu = time.perf_counter(), time.thread_time()
    yield out
    out["wall"], out["cpu"] = time.perf_counter() - wall, time.thread_time() - cpu


def apply_settings(asr, draft, settings: dict, base: dict) -> None:
    asr.assistant = draft
    asr.assistant_settings = {**base, **settings}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--draft", action="append", default=[], help="name=path (repeatable)")
    p.add_argument("--clip", action="append", default=[], help="name=path[:seconds,seconds,...] (repeatable)")
    p.add_argument("--setting", action="append", default=[], help="assistant setting for part 1 (repeatable)")
    p.add_argument("--variant", action="append", default=[],
                   help="DRAFT:SETTING for part 1 instead of every draft x --setting (repeatable)")
    p.add_argument("--e2e-setting", default="default", help="assistant setting for part 2")
    p.add_argument("--e2e-drafts", default=None, help="comma-separated drafts for part 2 (default: all)")
    p.add_argument("--e2e-clips", default=None, help="comma-separated clip labels for part 2 (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--e2e-repeats", type=int, default=2)
    p.add_argument("--skip-generate", action="store_true")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--step-cost", action="store_true", help="also time one decoding step of each model (part 1)")
    p.add_argument("--plain-only", action="store_true", help="part 1 without the assisted generate calls")
    p.add_argument("--verify-widths", default="4",
                   help="with --step-cost: also time the main model's pass over this many tokens (comma-separated)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    import os

    import torch

    torch.set_num_threads(args.threads)
    for name in ("ASR_MODEL", "ASSISTANT_MODEL", "DIARIZATION_MODEL"):
        os.environ.pop(name, None)
    first_draft = args.draft[0].split("=", 1)[1]
    os.environ.update(ASR_MODEL=args.model, ASSISTANT_MODEL=first_draft, WARMUP="1", CPU_THREADS=str(args.threads))
    from handler import EndpointHandler
    from speech_endpoint.speech import audio as audio_io
    from speech_endpoint.whisper.asr import ASSISTANT_SETTINGS

    handler = EndpointHandler(".")
    asr = handler.asr
    drafts = {}
    for spec in args.draft:
        name, path = spec.split("=", 1)
        drafts[name] = asr._load_assistant(path)
    bases = {name: {k: getattr(d.generation_config, k, None) for k in ASSISTANT_SETTINGS} for name, d in drafts.items()}
    results: dict = {"model": args.model, "drafts": dict(s.split("=", 1) for s in args.draft), "threads": args.threads,
                     "generate": {}, "e2e": {}, "equal": True}

    clips = []  # (label, samples)
    for spec in args.clip:
        name, path, lengths = parse_clip(spec)
        samples = audio_io.decode(path.read_bytes()).samples
        for n in lengths:
            piece = samples if n is None else samples[: int(n * 16000)]
            clips.append((f"{name}-{len(piece) / 16000:.0f}s", piece))

    if not args.skip_generate:
        results["generate"] = part_generate(args, handler, asr, drafts, bases, clips)
    if not args.skip_e2e:
        results["e2e"] = part_e2e(args, handler, asr, drafts, bases, clips)
    results["equal"] = all(row.get("equal_to_plain", True) for part in ("generate", "e2e")
                           for clip in results[part].values() for row in clip["variants"].values())
    print(report(results))
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))
    return 0 if results["equal"] else 1


def part_generate(args, handler, asr, drafts, bases, clips) -> dict:
    import torch
    from transformers import LogitsProcessorList
    from transformers.modeling_outputs import BaseModelOutput

    from speech_endpoint.schema import DecodeOptions
    from speech_endpoint.schema import Audio
    from speech_endpoint.speech.activity import speech_windows

    pairs = [v.split(":", 1) for v in args.variant] or [(d, s) for d in drafts for s in (args.setting or ["default"])]
    variants = [("plain", None, None)] + ([] if args.plain_only else [(f"{d}:{s}", d, s) for d, s in pairs])
    out = {}
    for label, samples in clips:
        spans = speech_windows(handler.speech(Audio(samples)), len(samples), 16000, 30.0)
        with torch.inference_mode():
            encoded = [asr.model.get_encoder()(asr._features([samples[s:e]])).last_hidden_state for s, e in spans]
        rows = {name: {"wall": [], "cpu": []} for name, _, _ in variants}
        outputs: dict[str, list] = {}
        for r in range(args.repeats):
            shift = r % len(variants)
            for name, draft, setting in variants[shift:] + variants[:shift]:
                options = DecodeOptions(language="en", batch_size=1, use_assistant=draft is not None)
                if draft:
                    apply_settings(asr, drafts[draft], parse_setting(setting), bases[draft])
                tokens, wall, cpu, acc = [], 0.0, 0.0, Acceptance()
                for enc in encoded:
                    if draft:  # what WhisperASR._generate does before each assisted call
                        for key, value in asr.assistant_settings.items():
                            setattr(asr.assistant.generation_config, key, value)
                    kwargs = {"return_timestamps": False, **asr.generate_kwargs(options, "en")}
                    # the handler's token suppression (not at the beginning when assisted, as there)
                    processors = LogitsProcessorList([asr.suppression.processor(at_begin=draft is None)])
                    with torch.inference_mode(), acc.watching(), timed() as t:
                        result = asr.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), **kwargs,
                                                    logits_processor=processors)
                    wall, cpu = wall + t["wall"], cpu + t["cpu"]
                    sequences = result if torch.is_tensor(result) else result.sequences
                    tokens.append(asr._text_tokens(sequences[0].tolist()))
                rows[name]["wall"].append(wall)
                rows[name]["cpu"].append(cpu)
                if draft:
                    rows[name].update(proposed=acc.proposed, accepted=acc.accepted, rounds=acc.rounds)
                outputs.setdefault(name, []).append(tokens)
        reference = outputs["plain"][0]
        for name, row in rows.items():
            row["equal_to_plain"] = all(o == reference for o in outputs[name])
        out[label] = {"windows": len(spans), "text_tokens": sum(len(t) for t in reference),
                      "variants": _medians(rows)}
        if args.step_cost:
            from evaluation.step_cost import step_costs

            prompt = asr._prefix("en", "transcribe")
            out[label]["step_cost"] = step_costs({"main": asr.model, **drafts}, encoded,
                                                 [prompt + t + [asr.eot] for t in reference], len(prompt), args.repeats,
                                                 tuple(int(w) for w in args.verify_widths.split(",")))
        print(json.dumps({label: out[label]}), flush=True)
    return out


def part_e2e(args, handler, asr, drafts, bases, clips) -> dict:
    import io

    import soundfile as sf

    wanted = set(args.e2e_clips.split(",")) if args.e2e_clips else None
    variants = [("plain b24", None, {"assisted": False}), ("plain b1", None, {"assisted": False, "batch_size": 1})]
    chosen = args.e2e_drafts.split(",") if args.e2e_drafts else list(drafts)
    variants += [(f"{d}:{args.e2e_setting}", d, {"assisted": True}) for d in chosen]
    out = {}
    for label, samples in clips:
        if wanted and label not in wanted:
            continue
        buffer = io.BytesIO()
        sf.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
        payload = buffer.getvalue()
        rows = {name: {"wall": [], "cpu": [], "asr_s": []} for name, _, _ in variants}
        texts: dict[str, list] = {}
        for r in range(args.e2e_repeats):
            shift = r % len(variants)
            for name, draft, params in variants[shift:] + variants[:shift]:
                if draft:
                    apply_settings(asr, drafts[draft], parse_setting(args.e2e_setting), bases[draft])
                with timed() as t:
                    response = handler({"inputs": payload, "parameters": {"language": "en", **params}})
                rows[name]["wall"].append(t["wall"])
                rows[name]["cpu"].append(t["cpu"])
                rows[name]["asr_s"].append(response["metadata"]["timings"]["asr_s"])
                texts.setdefault(name, []).append(response["text"])
        reference = texts["plain b24"][0]
        for name, row in rows.items():
            row["equal_to_plain"] = all(t == reference for t in texts[name])
        out[label] = {"variants": _medians(rows)}
        print(json.dumps({label: out[label]}), flush=True)
    return out


def _medians(rows: dict) -> dict:
    out = {}
    for name, row in rows.items():
        summary = {k: (round(statistics.median(v), 3) if isinstance(v, list) else v) for k, v in row.items()}
        summary["runs"] = len(row["wall"])
        if row.get("proposed"):
            summary["acceptance"] = round(row["accepted"] / row["proposed"], 3)
        out[name] = summary
    return out


def report(results: dict) -> str:
    lines = []
    for part in ("generate", "e2e"):
        for label, clip in results[part].items():
            plain = clip["variants"].get("plain") or clip["variants"].get("plain b1")
            for name, row in clip["variants"].items():
                speed = plain["cpu"] / row["cpu"] if row["cpu"] else float("nan")
                extra = f"  acceptance {row['acceptance']:.2f} ({row['accepted']}/{row['proposed']})" \
                    if "acceptance" in row else ""
                lines.append(f"{part:8s} {label:16s} {name:28s} wall {row['wall']:7.2f}  cpu {row['cpu']:7.2f}  "
                             f"speed-up (cpu, vs plain b1) {speed:4.2f}  equal {row['equal_to_plain']}{extra}")
    for label, clip in results["generate"].items():
        for name, row in clip.get("step_cost", {}).items():
            lines.append(f"step     {label:16s} {name:28s} {row['step_ms']:7.2f} ms a step (cpu, median of "
                         f"{row['steps']})  {row['vs_main']:.3f} of the main model's")
    lines.append(f"all assisted outputs equal plain greedy output: {results['equal']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
