#!/usr/bin/env python
"""Tune the diarization pipeline's parameters (DIARIZATION_PARAMS) on your own recordings:
DER and cpWER for every value tried, chosen on one set of files and checked on others.

    OMP_NUM_THREADS=1 ASR_MODEL=openai/whisper-base DIARIZATION_MODEL=<pipeline> \\
        python -m evaluation.tune_diarization my-calls/tune --held-out my-calls/check \\
        --param clustering.threshold 0.5 0.6 0.7 0.75 --param segmentation.min_duration_off 0 0.2

Inputs, as `evaluation.evaluate` reads them: folders (every audio file in them), audio files,
or JSON / JSON-lines manifests of {"audio": path, "stm"?, "rttm"?, "txt"?, "uri"?}. Each
audio file needs its references beside it (or named in the manifest): `<stem>.rttm` (who
spoke when: `SPEAKER <uri> 1 <start> <dur> <NA> <NA> <speaker> <NA> <NA>`) for DER, and
`<stem>.stm` (who said what: `<uri> 1 <speaker> <start> <end> <text>`) for WER and cpWER.
The positional inputs are the tuning set; each `--held-out` adds a set that is only
reported on, so a value that merely fits the tuning files shows up as such.

The handler is built from the environment as the endpoint builds it (ASR_MODEL,
DIARIZATION_MODEL, DIARIZATION_STEP, DIARIZATION_EMBEDDING_STRIDE, DIARIZATION_PARAMS as the
starting point). Whisper runs
once per file (the handler's public stages); each value then diarizes, attributes and
renders that transcript. Values of the clustering and `segmentation.min_duration_off`
reuse the file's segmentation and speaker embeddings (pyannote's own tuning cache), so a
sweep costs about one diarization per file plus clustering.

Printed per set, one row per combination of `--param` values (the pipeline's starting
values first): DER at collar 0 and +-0.25 s (pyannote.metrics, overlaps scored), cpWER,
cpWER - WER (what speaker attribution costs), and on how many files the pipeline found the
reference's number of speakers. The row chosen on the tuning set (lowest DER, then cpWER;
`--select cpwer` for the other way round) is marked in every table; set it with
DIARIZATION_PARAMS only if it also wins on the held-out sets.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

from evaluation import evaluate  # noqa: E402
from speech_endpoint.attribution.pipeline_params import flatten, nest  # noqa: E402

COLLAR_S = 0.25


def grid(params: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Every combination of the `--param NAME VALUE...` values, as {dotted name: value}."""
    names = [p[0] for p in params]
    values = [[_value(v) for v in p[1:]] for p in params]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a choice such as "average"


def label(combo: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in combo.items()) or "(no parameters)"


class Tuner:
    """The endpoint's handler (Whisper once per file) and its own Diarizer for the values."""

    def __init__(self, pipeline: str | None, asr_model: str | None):
        from speech_endpoint.attribution.diarizer import Diarizer

        self.harness = evaluate.Harness(diarization_model=pipeline, asr_model=asr_model)
        s = self.harness.handler.settings
        if not s.diarization_model:
            raise SystemExit("set DIARIZATION_MODEL (or --pipeline) to the pipeline to tune")
        self.diarizer = Diarizer(s.diarization_model, token=s.token, device=self.harness.handler.asr.device,
                                 segmentation_step=s.diarization_step, params=s.diarization_params,
                                 embedding_stride=s.diarization_embedding_stride)
        self.start = flatten(self.diarizer.params)

    def file_scores(self, item: evaluate.Item, combos: list[dict[str, Any]], collar: float) -> list[dict]:
        """One scored condition per combination for one file."""
        from speech_endpoint.schema import Diarization
        from speech_endpoint.speech.activity import has_speech

        prepared = self.harness.prepare(item.audio.read_bytes(), {"output_formats": ["rttm"]})
        duration = float(prepared.audio.duration)
        config, reuse, out = prepared.request.config, {}, []
        ref_turns = [(t.start, t.end, t.speaker) for t in item.reference_turns(duration)]
        for combo in combos:
            self.diarizer.set_params(nest({**self.start, **combo}))
            diarization = (self.diarizer(prepared.audio, num_speakers=config.num_speakers, reuse=reuse,
                                         min_speakers=config.min_speakers, max_speakers=config.max_speakers)
                           if has_speech(prepared.activity) else Diarization())
            response = self.harness.respond(prepared, diarization)
            hyp_turns = evaluate.response_turns(response)
            scored = evaluate.score(kind="model", text=response["text"], words=response.get("words", []),
                                    speakers=response["speakers"], duration=duration,
                                    ref_text=item.reference_text(), stm_rows=item.stm_rows(),
                                    ref_turns=ref_turns, hyp_turns=hyp_turns, given_turns=None, collar=collar)
            scored["speakers_found"] = len({t[2] for t in hyp_turns})
            scored["count_right"] = scored["speakers_found"] == len({t[2] for t in ref_turns})
            out.append(scored)
        return out


def summarize(per_file: list[list[dict]], collar: float) -> list[dict]:
    """Pooled metrics per combination over a set's files."""
    rows = []
    for conditions in zip(*per_file):
        row = evaluate.pooled(list(conditions), collar)
        row["count_right"] = sum(c["count_right"] for c in conditions)
        row["files"] = len(conditions)
        rows.append(row)
    return rows


def choose(rows: list[dict], select: str) -> int:
    """Index of the best row: lowest DER (collar 0) then cpWER, or the other way round."""
    keys = ("der0", "cpwer") if select == "der" else ("cpwer", "der0")
    return min(range(len(rows)), key=lambda i: tuple(_or_inf(rows[i][k]) for k in keys))


def _or_inf(value: float | None) -> float:
    return float("inf") if value is None else value


def table(name: str, combos: list[dict], rows: list[dict], chosen: int, collar: float) -> list[str]:
    fmt = evaluate._fmt
    lines = [f"### {name} ({rows[0]['files']} files)", "",
             f"| parameters | DER (collar 0) | DER (±{collar:g} s) | cpWER | cpWER−WER | speaker count right |",
             "|---|---:|---:|---:|---:|---:|"]
    for i, (combo, row) in enumerate(zip(combos, rows)):
        mark = (" (start)" if i == 0 else "") + (" ← chosen" if i == chosen else "")
        lines.append(f"| {label(combo)}{mark} | {fmt(row['der0'])} | {fmt(row['derC'])} | {fmt(row['cpwer'])} | "
                     f"{fmt(row['cpwer_minus_wer'])} | {row['count_right']}/{row['files']} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="the tuning set: folders, audio files or manifests")
    parser.add_argument("--held-out", nargs="+", action="append", default=[], metavar="INPUT",
                        help="a set only reported on (repeat for several sets)")
    parser.add_argument("--param", nargs="+", action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter (dotted, e.g. clustering.threshold) and the values to try")
    parser.add_argument("--pipeline", help="the pyannote pipeline (default: DIARIZATION_MODEL)")
    parser.add_argument("--asr-model", help="Whisper model (default: ASR_MODEL)")
    parser.add_argument("--select", choices=("der", "cpwer"), default="der")
    parser.add_argument("--collar", type=float, default=COLLAR_S)
    parser.add_argument("--output", help="also write the numbers, per set and per file, to this JSON file")
    args = parser.parse_args(argv)
    if any(len(p) < 2 for p in args.param):
        parser.error("--param needs a name and at least one value")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    tuner = Tuner(args.pipeline or os.environ.get("DIARIZATION_MODEL"), args.asr_model)
    names = [p[0] for p in args.param]
    combos = [{n: tuner.start.get(n) for n in names}] + grid(args.param)
    combos = [c for i, c in enumerate(combos) if c not in combos[:i]]
    from speech_endpoint.attribution.pipeline_params import ParamsError

    for combo in combos:  # every name and value checked before any file is transcribed
        try:
            tuner.diarizer.set_params(nest(combo))
        except ParamsError as exc:
            raise SystemExit(f"--param: {exc}") from None
    sets = [("tuning set", args.inputs)] + [(f"held-out set {i}", s) for i, s in enumerate(args.held_out, 1)]
    results, files = [], {}
    for name, inputs in sets:
        items = [i for i in evaluate.discover(inputs) if i.rttm or i.stm]
        if not items:
            raise SystemExit(f"{name}: no audio file with an .rttm or .stm beside it")
        per_file = []
        for item in items:
            print(f"{name}: {item.uri}", file=sys.stderr, flush=True)
            per_file.append(tuner.file_scores(item, combos, args.collar))
        results.append((f"{name}: {', '.join(i.uri for i in items)}", summarize(per_file, args.collar)))
        files.update({item.uri: [{k: evaluate.flat_metrics(c, args.collar)[k] for k in ("der0", "cpwer")}
                                 | {"speakers_found": c["speakers_found"]} for c in conditions]
                      for item, conditions in zip(items, per_file)})
    chosen = choose(results[0][1], args.select)
    print(f"pipeline {tuner.harness.diarization_model}; starting values: {json.dumps(nest(tuner.start))}\n")
    for name, rows in results:
        print("\n".join(table(name, combos, rows, chosen, args.collar)))
    print(f"chosen on the tuning set: DIARIZATION_PARAMS='{json.dumps(nest(combos[chosen]))}'")
    if args.output:
        with open(args.output, "w") as out:
            json.dump({"start": nest(tuner.start), "combos": combos, "chosen": chosen,
                       "sets": {name: rows for name, rows in results}, "files": files}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
