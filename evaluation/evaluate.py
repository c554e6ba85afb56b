#!/usr/bin/env python
"""Evaluate the endpoint on audio with references: WER, DER/JER, cpWER, and the old
reference's speaker attribution for comparison.

    OMP_NUM_THREADS=1 ASR_MODEL=/work/shared/models/whisper-base \\
        python -m evaluation.evaluate /work/shared/audio/dialogue --diarization oracle-jitter \\
        --jitter 0.25 --seed 0 --seeds 5 --output eval-out

Inputs (positional, any mix): a folder (every audio file in it), an audio file, or a JSON /
JSON-lines manifest of {"audio": path, "txt"?, "stm"?, "rttm"?, "uri"?} (paths relative to
the manifest). References default to the audio's siblings `<stem>.txt` (transcript),
`<stem>.stm` (who said what: `file channel speaker start end text`) and `<stem>.rttm`
(reference turns).

The handler runs in-process, built as the platform builds it (`EndpointHandler(repo)`, settings
from the environment: ASR_MODEL, ASSISTANT_MODEL, ...; `--asr-model` overrides ASR_MODEL), and is
called with `{"inputs": <audio bytes>, "parameters": {..., "output_formats": ["rttm"]}}`.

`--diarization`:
  oracle         the oracle test double (evaluation/oracle_diarization.py) over the file's own .rttm,
                 loaded through `Pipeline.from_pretrained(folder)` like any pyannote pipeline;
  oracle-jitter  as oracle, plus the same turns with every boundary moved at random by up to
                 `--jitter` seconds, for seeds `--seed` .. `--seed + --seeds - 1`;
  model          DIARIZATION_MODEL from the environment (a real pyannote pipeline);
  none           no diarization (WER only).
With a diarization, the OLD reference attribution (`nearest_chunk_end_speakers`: whole
sentence chunks given to the speaker whose turn ends nearest) is scored on the same ASR
output and the same turns, as "nearest-chunk-end".

Whisper runs once per file: the handler's public stages are called in turn (check,
decode, speech, transcribe), then every condition diarizes (each pipeline loaded with the
handler's own `Diarizer`), attributes and renders that one transcript.

Metrics (per file and overall; overall = summed errors over summed reference sizes):
  WER       jiwer on Whisper's English normaliser (evaluation/scoring.py), hypothesis `text`;
  cpWER     concatenated minimum-permutation WER of the response's `speakers` against the
            .stm speakers (normalised the same way); cpWER - WER is what the attribution costs;
  DER, JER  pyannote.metrics on the response's `rttm` (full diarization) against the .rttm,
            over the whole file, overlapped speech scored, at collar 0 and at collar +-C s
            (md-eval convention: C seconds forgiven on each side of every reference
            boundary, i.e. pyannote.metrics collar=2C; `--collar`, default 0.25);
  misattributed words: response words whose speaker (mapped to the reference by cpWER's
            assignment) is not the .stm speaker of the reference word they align with
            (words Whisper inserted: the .stm speaker at their time), with what the given
            turns said there (so a flip can be told apart: boundary vs smoothing).
Writes to `--output`: report.md (tables, target check), results.json, <uri>.png timelines.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from evaluation import in_process  # noqa: E402
from evaluation import oracle_diarization as oracle  # noqa: E402
from evaluation import scoring  # noqa: E402
from evaluation.baseline import nearest_chunk_end_speakers  # noqa: E402
from speech_endpoint.render.formats import parse_rttm  # noqa: E402
from speech_endpoint.schema import Segment, Turn, sort_turns  # noqa: E402

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac"})
MODES = ("oracle", "oracle-jitter", "model", "none")
# The targets for cpWER - WER.
TARGET_EXACT = 0.02
TARGET_JITTER = 0.03


# ---- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One audio file and its references (each optional)."""

    uri: str
    audio: Path
    txt: Path | None = None
    stm: Path | None = None
    rttm: Path | None = None

    def stm_rows(self) -> list[tuple[str, float, float, str]]:
        return sorted(scoring.read_stm(self.stm), key=lambda r: (r[1], r[2])) if self.stm else []

    def reference_text(self) -> str | None:
        if self.txt:
            return self.txt.read_text()
        rows = self.stm_rows()
        return " ".join(r[3] for r in rows) if rows else None

    def rttm_uri(self) -> str | None:
        """Which recording of the .rttm is this file's: None when it holds only one."""
        if not self.rttm:
            return None
        uris = oracle.read_rttm(self.rttm)
        return None if len(uris) <= 1 else self.uri

    def reference_turns(self, duration: float | None = None) -> list[Turn]:
        if not self.rttm:
            return []
        return oracle.crop_turns(oracle.rttm_turns(self.rttm, self.rttm_uri()), duration)


def _sibling(audio: Path, suffix: str) -> Path | None:
    path = audio.with_suffix(suffix)
    return path if path.is_file() else None


def _item(audio: Path, uri: str | None = None, **refs: Path | None) -> Item:
    audio = audio.resolve()
    found = {k: (Path(v).resolve() if v else _sibling(audio, f".{k}")) for k, v in
             {"txt": refs.get("txt"), "stm": refs.get("stm"), "rttm": refs.get("rttm")}.items()}
    return Item(uri=uri or audio.stem, audio=audio, **found)


def discover(paths: Sequence[str | Path]) -> list[Item]:
    """Items from folders, audio files and manifests (see the module docstring)."""
    items: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            items += [_item(p) for p in sorted(path.iterdir())
                      if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
        elif path.suffix.lower() in (".json", ".jsonl"):
            text = path.read_text()
            entries = json.loads(text) if path.suffix.lower() == ".json" else [
                json.loads(line) for line in text.splitlines() if line.strip()]
            for entry in entries:
                resolve = lambda v: (path.parent / v) if v else None  # noqa: E731
                items.append(_item(resolve(entry["audio"]), entry.get("uri"),
                                   **{k: resolve(entry.get(k)) for k in ("txt", "stm", "rttm")}))
        elif path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
            items.append(_item(path))
        else:
            raise SystemExit(f"{raw}: not a folder, an audio file or a .json/.jsonl manifest")
    uris = [i.uri for i in items]
    if len(set(uris)) != len(uris):
        raise SystemExit(f"duplicate file names (uris) among the inputs: {sorted(uris)}")
    return items


# ---- the handler, in-process --------------------------------------------------------------


@dataclass
class Prepared:
    """One file through the handler's stages up to its transcript (Whisper ran once)."""

    request: Any
    audio: Any
    activity: Any
    options: Any
    transcript: Any
    references: dict


class Harness:
    """One `EndpointHandler`, driven through its public stages: each file is transcribed
    once, then diarized and attributed under every condition (other pipelines are loaded
    with the same `Diarizer` class the handler uses)."""

    def __init__(self, *, diarization_model: str | None, asr_model: str | None = None, keep_env: bool = False):
        env: dict[str, str | None] = {} if keep_env else {"DIARIZATION_MODEL": diarization_model}
        if asr_model:
            env["ASR_MODEL"] = asr_model
        started = time.perf_counter()
        self.handler = in_process.build_handler(**env)
        self.load_s = time.perf_counter() - started
        self.asr_model = self.handler.settings.asr_model
        self.diarization_model = self.handler.settings.diarization_model

    def prepare(self, audio_bytes: bytes, parameters: dict) -> Prepared:
        h = self.handler
        data = {"inputs": audio_bytes, "parameters": parameters}
        request = h.check(data)
        audio = h.decode(data, request)
        references = h.references(request)
        activity = h.speech(audio)
        options = h.decode_options(request, audio.duration)
        transcript = h.fit_to_speech(h.transcribe(audio, activity, options), activity)
        return Prepared(request, audio, activity, options, transcript, references)

    def diarize(self, prepared: Prepared, pipeline: str | Path | None = None):
        """The handler's own diarization, or that of the pipeline folder `pipeline`."""
        if pipeline is None:
            return self.handler.diarize(prepared.audio, prepared.activity, prepared.request)
        from speech_endpoint.attribution.diarizer import Diarizer

        config = prepared.request.config
        return Diarizer(str(pipeline), device=self.handler.asr.device)(
            prepared.audio, num_speakers=config.num_speakers, min_speakers=config.min_speakers,
            max_speakers=config.max_speakers, embeddings=bool(config.known_speakers))

    def respond(self, prepared: Prepared, diarization) -> dict:
        """The response the handler gives for this transcript and diarization."""
        h = self.handler
        attribution, matches = h.identify(h.attribute(prepared.transcript, diarization), prepared.references)
        from request import Outcome

        return h.render(Outcome(prepared.request, prepared.audio, prepared.activity, prepared.options,
                                prepared.transcript, attribution, matches=matches))


# ---- scoring one response ---------------------------------------------------------------


def _rows(turns) -> list[tuple[float, float, str]]:
    """Turns as (start, end, speaker) rows, the form the scoring functions take."""
    return [(t.start, t.end, t.speaker) for t in turns]


def _turn_rows(turns) -> list[list]:
    return [[round(float(t[0]), 3), round(float(t[1]), 3), str(t[2])] for t in turns]


def response_turns(response: dict) -> list[tuple[float, float, str]]:
    """The full diarization a response carries in `rttm` (its SPEAKER_xx labels)."""
    by_uri = parse_rttm(response.get("rttm") or "", source="response rttm")
    return _rows(sort_turns(t for turns in by_uri.values() for t in turns))


def _nearest(times: Sequence[float], t: float) -> float | None:
    return min(times, key=lambda b: abs(b - t)) if times else None


def score(*, kind: str, text: str, words: list[dict], speakers: list[dict], duration: float,
          ref_text: str | None, stm_rows: list, ref_turns: list, hyp_turns: list | None,
          given_turns: list | None, collar: float, extra: dict | None = None) -> dict:
    """Every metric of one condition. `words`: response words (with speakers or None);
    `speakers`: response `speakers`; `hyp_turns`: the full diarization the response
    returned (for DER/JER; None: not scored); `given_turns`: the turns the words were
    attributed against, labelled with reference names where possible (for explaining
    misattributed words)."""
    result: dict[str, Any] = {"kind": kind, **(extra or {})}
    if ref_text is not None:
        errors, ref_words = scoring.wer_counts(ref_text, text)
        result.update(wer=errors / (ref_words or 1), wer_errors=errors, wer_ref_words=ref_words)
    diarized = kind != "asr"
    if diarized and stm_rows:
        hyp = scoring.speaker_texts([(s["speaker"], s["text"]) for s in speakers])
        cp = scoring.cpwer_details(scoring.speaker_texts(stm_rows), hyp)
        result.update(cpwer=cp["cpwer"], cp_errors=cp["errors"], cp_ref_words=cp["ref_words"],
                      mapping=cp["mapping"])
        if "wer" in result:
            result["cpwer_minus_wer"] = cp["cpwer"] - result["wer"]
        mismatches = scoring.speaker_mismatches(words, stm_rows, cp["mapping"])
        ref_bounds = sorted({b for r in stm_rows for b in (float(r[1]), float(r[2]))})
        given_bounds = sorted({b for t in (given_turns or []) for b in (float(t[0]), float(t[1]))})
        for m in mismatches:
            middle = (m["start"] + m["end"]) / 2
            m["turns_say"] = (scoring.reference_speaker_at([(t[2], t[0], t[1]) for t in given_turns],
                                                           m["start"], m["end"]) if given_turns else None)
            ref_b, given_b = _nearest(ref_bounds, middle), _nearest(given_bounds, middle)
            m["reference_boundary"] = ref_b
            m["given_boundary"] = given_b
        result["misattributed"] = mismatches
    if diarized and hyp_turns is not None and ref_turns:
        result["diarization"] = {
            "0": scoring.diarization_scores(ref_turns, hyp_turns, duration=duration, collar=0.0),
            str(collar): scoring.diarization_scores(ref_turns, hyp_turns, duration=duration, collar=collar),
        }
    result["words"] = [[w["word"], w["start"], w["end"], w.get("speaker")] for w in words]
    result["speakers"] = [[s["speaker"], s["timestamp"][0], s["timestamp"][1], s["text"]] for s in speakers]
    result["hyp_turns"] = _turn_rows(hyp_turns or [])
    result["given_turns"] = _turn_rows(given_turns or [])
    return result


def old_attribution(plain: dict, words: list[dict], turns: Sequence) -> tuple[list[dict], list[dict]]:
    """The OLD reference attribution on one ASR result: `nearest_chunk_end_speakers` over the
    chunks of a no-diarization response and `turns`. Returns (speakers, words) in response
    shape; each word takes the speaker of the utterance holding its middle (None: the old
    code dropped its chunk)."""
    segments = [Segment(c["text"], float(c["timestamp"][0]), float(c["timestamp"][1])) for c in plain["chunks"]]
    utterances = nearest_chunk_end_speakers(segments, [Turn(float(s), float(e), str(spk)) for s, e, spk in turns])
    speakers = [{"speaker": u.speaker, "text": u.text, "timestamp": [round(u.start, 3), round(u.end, 3)]}
                for u in utterances]
    labelled = []
    for w in words:
        middle = (float(w["start"]) + float(w["end"])) / 2
        owner = next((u.speaker for u in utterances if u.start - 1e-6 <= middle <= u.end + 1e-6), None)
        labelled.append({**w, "speaker": owner})
    return speakers, labelled


# ---- one file -----------------------------------------------------------------------------


def evaluate_item(harness: Harness, item: Item, *, mode: str, jitter: float = 0.25,
                  seeds: Sequence[int] = (0,), collar: float = 0.25, parameters: dict | None = None,
                  workdir: Path | None = None) -> dict:
    """Run one file through the handler under every condition of `mode` and score it."""
    parameters = dict(parameters or {})
    audio_bytes = item.audio.read_bytes()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="evaluate-"))
    diarize = mode != "none" and (mode == "model" or item.rttm is not None)
    formats = list(parameters.pop("output_formats", []) or [])
    request = {"inputs": audio_bytes, "parameters": {
        **parameters, "output_formats": sorted(set(formats) | ({"rttm"} if diarize else set()))}}
    if not diarize:
        request["parameters"]["diarize"] = False
    notes: list[str] = []
    if mode in ("oracle", "oracle-jitter") and item.rttm is None:
        notes.append("no .rttm: diarization conditions skipped")
    if diarize and not item.stm:
        notes.append("no .stm: cpWER not computed")
    if item.txt is None and not item.stm:
        notes.append("no .txt or .stm: WER not computed")

    responses: dict[str, dict] = {}
    extras: dict[str, dict] = {}
    given: dict[str, list] = {}
    oracle_mode = diarize and mode in ("oracle", "oracle-jitter")
    rttm_uri = item.rttm_uri()
    started = time.perf_counter()
    prepared = harness.prepare(audio_bytes, request["parameters"])
    duration = float(prepared.audio.duration)
    if oracle_mode:
        folder = oracle.write_oracle_pipeline(workdir / item.uri / "exact", item.rttm, uri=rttm_uri)
        first = harness.respond(prepared, harness.diarize(prepared, folder))
        given["exact"] = _rows(oracle.oracle_turns(item.rttm, duration=duration, uri=rttm_uri)[1])
    else:
        first = harness.respond(prepared, harness.diarize(prepared) if diarize else None)
    first_s = time.perf_counter() - started
    responses["exact" if oracle_mode else ("model" if diarize else "asr")] = first
    if oracle_mode and mode == "oracle-jitter":
        for seed in seeds:
            folder = oracle.write_oracle_pipeline(workdir / item.uri / f"jitter-{seed}", item.rttm,
                                                  jitter=jitter, seed=seed, uri=rttm_uri)
            key = f"jitter-seed{seed}"
            responses[key] = harness.respond(prepared, harness.diarize(prepared, folder))
            extras[key] = {"seed": seed, "jitter": jitter}
            given[key] = _rows(oracle.oracle_turns(item.rttm, jitter=jitter, seed=seed, duration=duration,
                                                   uri=rttm_uri)[1])
    plain = harness.respond(prepared, None) if diarize else None

    ref_turns = item.reference_turns(duration)
    stm_rows = item.stm_rows()
    ref_text = item.reference_text()
    # RTTM and STM may name the speakers differently: explain and plot with the STM names
    names = scoring.label_mapping_by_overlap([(t.speaker, t.start, t.end) for t in ref_turns], stm_rows)
    given = {k: [(t[0], t[1], names.get(t[2], t[2])) for t in v] for k, v in given.items()}
    common = dict(duration=duration, ref_text=ref_text, stm_rows=stm_rows, ref_turns=ref_turns, collar=collar)
    conditions: dict[str, dict] = {}
    for key, response in responses.items():
        kind = "jitter" if key.startswith("jitter") else key
        hyp_turns = response_turns(response) if diarize else None
        given_turns = given.get(key)
        if given_turns is None and hyp_turns is not None:
            given_turns = hyp_turns  # model: its own turns (relabelled below once mapped)
        conditions[key] = score(kind=kind, text=response["text"], words=response.get("words", []),
                                speakers=response["speakers"], hyp_turns=hyp_turns, given_turns=given_turns,
                                extra=extras.get(key), **common)
        if kind == "model" and "mapping" in conditions[key]:  # explain with reference names
            back = {h: r for r, h in conditions[key]["mapping"].items() if h is not None}
            named = [(s, e, back.get(spk, spk)) for s, e, spk in hyp_turns]
            conditions[key] = score(kind=kind, text=response["text"], words=response.get("words", []),
                                    speakers=response["speakers"], hyp_turns=hyp_turns, given_turns=named,
                                    **common)
    if diarize:
        base = "exact" if oracle_mode else "model"
        turns = (_rows(oracle.oracle_turns(item.rttm, duration=duration, uri=rttm_uri)[0]) if oracle_mode
                 else response_turns(first))
        speakers, words = old_attribution(plain, first.get("words", []), turns)
        given_old = ([(t[0], t[1], names.get(t[2], t[2])) for t in turns] if oracle_mode
                     else conditions[base]["given_turns"])
        conditions["nearest-chunk-end"] = score(kind="nearest-chunk-end", text=first["text"], words=words,
                                                speakers=speakers, hyp_turns=None, given_turns=given_old,
                                                extra={"turns_from": base}, **common)
    return {
        "uri": item.uri,
        "audio": str(item.audio),
        "references": {k: str(v) for k, v in (("txt", item.txt), ("stm", item.stm), ("rttm", item.rttm)) if v},
        "duration": duration,
        "hypothesis_text": first["text"],
        "reference": {"turns": _turn_rows((t.start, t.end, names.get(t.speaker, t.speaker)) for t in ref_turns),
                      "stm": [list(r) for r in stm_rows], "rttm_to_stm_names": names},
        "first_request_s": round(first_s, 3),
        "timings": first["metadata"].get("timings"),
        "language": first["metadata"].get("language"),
        "notes": notes,
        "conditions": conditions,
    }


# ---- aggregation --------------------------------------------------------------------------

METRICS = ("wer", "cpwer", "cpwer_minus_wer", "der0", "derC", "jer0", "jerC", "misattributed")


def flat_metrics(condition: dict, collar: float) -> dict[str, float | None]:
    """The table's numbers for one condition of one file."""
    d = condition.get("diarization") or {}
    zero, wide = d.get("0"), d.get(str(collar))
    return {
        "wer": condition.get("wer"),
        "cpwer": condition.get("cpwer"),
        "cpwer_minus_wer": condition.get("cpwer_minus_wer"),
        "der0": zero["der"] if zero else None,
        "derC": wide["der"] if wide else None,
        "jer0": zero["jer"] if zero else None,
        "jerC": wide["jer"] if wide else None,
        "misattributed": len(condition["misattributed"]) if "misattributed" in condition else None,
    }


def pooled(conditions: list[dict], collar: float) -> dict[str, float | None]:
    """Overall numbers of one condition over files: summed errors / summed sizes."""
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    with_wer = [c for c in conditions if "wer" in c]
    if with_wer:
        out["wer"] = sum(c["wer_errors"] for c in with_wer) / (sum(c["wer_ref_words"] for c in with_wer) or 1)
    with_cp = [c for c in conditions if "cpwer" in c]
    if with_cp:
        out["cpwer"] = sum(c["cp_errors"] for c in with_cp) / (sum(c["cp_ref_words"] for c in with_cp) or 1)
        both = [c for c in with_cp if "wer" in c]
        if both:
            wer = sum(c["wer_errors"] for c in both) / (sum(c["wer_ref_words"] for c in both) or 1)
            cp = sum(c["cp_errors"] for c in both) / (sum(c["cp_ref_words"] for c in both) or 1)
            out["cpwer_minus_wer"] = cp - wer
        out["misattributed"] = sum(len(c.get("misattributed", [])) for c in with_cp)
    for key, tag in (("0", "0"), (str(collar), "C")):
        parts = [c["diarization"][key] for c in conditions if c.get("diarization")]
        if parts:
            combined = scoring.combine_diarization_scores(parts)
            out[f"der{tag}"], out[f"jer{tag}"] = combined["der"], combined["jer"]
    return out


def _mean_worst(rows: list[dict]) -> tuple[dict, dict]:
    mean, worst = {}, {}
    for key in METRICS:
        values = [r[key] for r in rows if r.get(key) is not None]
        mean[key] = statistics.fmean(values) if values else None
        worst[key] = max(values) if values else None
    return mean, worst


ORDER = ("exact", "jitter", "model", "asr", "nearest-chunk-end")


def summarize(files: list[dict], collar: float) -> dict[str, dict]:
    """Rows per file and overall: one per condition, jitter seeds folded into
    "jitter (mean of N seeds)" and "jitter (worst seed)" next to the per-seed rows."""
    def rows_of(conds: dict[str, dict], per_key) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        jitter_keys = sorted((k for k in conds if k.startswith("jitter")),
                             key=lambda k: conds[k].get("seed", 0))
        for kind in ORDER:
            if kind == "jitter":
                if jitter_keys:
                    seed_rows = {k: per_key(k) for k in jitter_keys}
                    mean, worst = _mean_worst(list(seed_rows.values()))
                    rows[f"jitter (mean of {len(jitter_keys)} seeds)"] = mean
                    rows["jitter (worst seed)"] = worst
                    rows.update(seed_rows)
            elif kind in conds:
                rows[kind] = per_key(kind)
        return rows

    out = {f["uri"]: rows_of(f["conditions"], lambda k, f=f: flat_metrics(f["conditions"][k], collar))
           for f in files}
    union: dict[str, dict] = {}
    for f in files:
        for key, cond in f["conditions"].items():
            union.setdefault(key, cond)
    out["overall"] = rows_of(union, lambda k: pooled(
        [f["conditions"][k] for f in files if k in f["conditions"]], collar))
    return out


def target_checks(summary: dict[str, dict]) -> list[dict]:
    """The issue's targets, per file and overall: cpWER - WER <= 0.02 with exact turns,
    <= 0.03 (mean over seeds) with jittered turns."""
    checks = []
    for scope, rows in summary.items():
        exact = rows.get("exact", {}).get("cpwer_minus_wer")
        if exact is not None:
            checks.append({"scope": scope, "condition": "exact", "value": exact, "target": TARGET_EXACT,
                           "ok": exact <= TARGET_EXACT + 1e-12})
        mean_key = next((k for k in rows if k.startswith("jitter (mean")), None)
        if mean_key and rows[mean_key].get("cpwer_minus_wer") is not None:
            value = rows[mean_key]["cpwer_minus_wer"]
            checks.append({"scope": scope, "condition": mean_key, "value": value, "target": TARGET_JITTER,
                           "ok": value <= TARGET_JITTER + 1e-12,
                           "worst": rows["jitter (worst seed)"]["cpwer_minus_wer"]})
    return checks


# ---- report ---------------------------------------------------------------------------------


def _fmt(value: float | None, percent: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


def _table(rows: dict[str, dict], collar: float) -> list[str]:
    c = f"±{collar:g}s"
    lines = [f"| condition | WER | cpWER | cpWER−WER | DER (collar 0) | DER ({c}) | JER (collar 0) | JER ({c}) | misattributed words |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in rows.items():
        mis = m.get("misattributed")
        mis_text = "–" if mis is None else (f"{mis:.1f}" if isinstance(mis, float) and not mis.is_integer() else str(int(mis)))
        lines.append(f"| {name} | {_fmt(m.get('wer'))} | {_fmt(m.get('cpwer'))} | {_fmt(m.get('cpwer_minus_wer'))} | "
                     f"{_fmt(m.get('der0'))} | {_fmt(m.get('derC'))} | {_fmt(m.get('jer0'))} | {_fmt(m.get('jerC'))} | {mis_text} |")
    return lines


def _mismatch_lines(file: dict) -> list[str]:
    lines = []
    for name, cond in file["conditions"].items():
        for m in cond.get("misattributed", []):
            why = "(aligned by time) " if m.get("by") == "time" else ""
            if m.get("turns_say") is not None:
                why += ("the given turns say " + str(m["turns_say"])
                       + (" (a boundary error)" if m["turns_say"] != m["reference"]
                           else " (the attribution went against the turns)"))
            lines.append(f"| {name} | {m['word']} | {m['start']:.2f}–{m['end']:.2f} | {m['reference']} | "
                         f"{m['hypothesis']} | {_fmt(m.get('reference_boundary'), False)} | "
                         f"{_fmt(m.get('given_boundary'), False)} | {why} |")
    if not lines:
        return ["No misattributed words."]
    return ["| condition | word | time (s) | reference | hypothesis | nearest ref boundary | nearest given boundary | why |",
            "|---|---|---|---|---|---:|---:|---|", *lines]


def write_report(result: dict, out_dir: str | Path, *, plots: bool = True) -> Path:
    """report.md, results.json and (with `plots`) one <uri>.png per file under out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = result["settings"]
    collar = float(settings.get("collar", 0.25))
    summary = summarize(result["files"], collar)
    checks = target_checks(summary)
    result = {**result, "summary": summary, "targets": checks}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))

    lines = [
        "# Endpoint evaluation", "",
        f"- ASR model: `{settings.get('asr_model')}`; diarization: **{settings.get('diarization')}**"
        + (f" (every boundary moved by U(±{settings['jitter']:g}) s, seeds {settings['seeds']})"
           if settings.get("diarization") == "oracle-jitter" else ""),
        f"- request parameters: `{json.dumps(settings.get('parameters', {}))}`",
        "- WER: jiwer after Whisper's English normaliser. cpWER: per-speaker concatenated WER "
        "(response `speakers` vs .stm), best speaker assignment. Overall = summed errors / summed "
        "reference words.",
        f"- DER/JER: pyannote.metrics, response `rttm` vs .rttm, whole file, overlap scored; collar 0 "
        f"and collar ±{collar:g} s (md-eval convention, {collar:g} s on each side of each reference "
        f"boundary = pyannote.metrics collar={2 * collar:g}).",
        "- nearest-chunk-end: the OLD reference attribution (`nearest_chunk_end_speakers`) on the same "
        "ASR output (sentence chunks of a no-diarization response) and the exact turns.",
        "- misattributed words: response words whose speaker (mapped by cpWER's assignment) is not "
        "the .stm speaker of the reference word they align with (text alignment; words Whisper "
        "inserted are judged by time). RTTM speaker names are shown as the .stm names they overlap most.",
        "",
    ]
    if checks:
        lines += ["## Targets (cpWER − WER)", ""]
        for c in checks:
            worst = f", worst seed {_fmt(c['worst'])}" if "worst" in c else ""
            lines.append(f"- {c['scope']} / {c['condition']}: {_fmt(c['value'])} "
                         f"(target ≤ {_fmt(c['target'])}{worst}) — **{'PASS' if c['ok'] else 'FAIL'}**")
        lines.append("")
    lines += ["## Overall", "", *_table(summary["overall"], collar), ""]
    for file in result["files"]:
        lines += [f"## {file['uri']} ({file['duration']:.1f} s)", ""]
        if file.get("notes"):
            lines += [f"- note: {n}" for n in file["notes"]]
        lines += ["", *_table(summary[file["uri"]], collar), ""]
        if plots:
            png = plot_timeline(file, out / f"{file['uri']}.png")
            lines += [f"![timeline]({png.name})", ""]
        lines += ["### Misattributed words", "", *_mismatch_lines(file), ""]
        lines += ["### Hypothesis", "", "> " + file.get("hypothesis_text", ""), ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def plot_timeline(file: dict, path: str | Path) -> Path:
    """Reference turns above the hypothesis of each condition (utterances coloured by the
    reference speaker they map to, the given turns as a thin bar, misattributed words
    marked with red x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    ref_speakers = list(dict.fromkeys([t[2] for t in file["reference"]["turns"]]
                                      + [r[0] for r in file["reference"]["stm"]]))
    palette = plt.get_cmap("tab10")
    color = {s: palette(i % 10) for i, s in enumerate(ref_speakers)}
    conds = file["conditions"]
    jitter_keys = [k for k in conds if k.startswith("jitter")]
    worst = max(jitter_keys, key=lambda k: (conds[k].get("cpwer") or 0.0), default=None)
    shown = [k for k in ("exact", worst, "model", "nearest-chunk-end", "asr") if k and k in conds]
    lanes = ["reference", *shown]
    duration = max(float(file.get("duration") or 1.0), 1.0)
    fig, ax = plt.subplots(figsize=(min(max(10.0, duration / 3), 30.0), 1.0 + 0.8 * len(lanes)))
    for lane, name in enumerate(lanes):
        y = len(lanes) - 1 - lane
        if name == "reference":
            for s, e, spk in file["reference"]["turns"]:
                ax.barh(y, e - s, left=s, height=0.6, color=color.get(spk, "grey"))
            continue
        cond = conds[name]
        back = {h: r for r, h in (cond.get("mapping") or {}).items() if h is not None}
        for spk, s, e, _ in cond.get("speakers", []):
            ax.barh(y + 0.1, max(e - s, 0.02), left=s, height=0.45,
                    color=color.get(back.get(spk), "lightgrey"), edgecolor="black", linewidth=0.3)
        for s, e, spk in cond.get("given_turns", []):
            ax.barh(y - 0.25, e - s, left=s, height=0.1, color=color.get(spk, "grey"), alpha=0.8)
        for m in cond.get("misattributed", []):
            ax.plot((m["start"] + m["end"]) / 2, y + 0.42, "x", color="red", markersize=6)
    labels = []
    for name in lanes:
        if name == "reference":
            labels.append("reference (.rttm)")
            continue
        cp = conds[name].get("cpwer")
        labels.append(f"{name}\ncpWER {_fmt(cp)}" if cp is not None else name)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(labels[::-1], fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{file['uri']}: utterances by mapped speaker; thin bar = turns given; x = misattributed word",
                 fontsize=9)
    ax.legend(handles=[Patch(color=color[s], label=s) for s in ref_speakers], loc="upper right",
              fontsize=7, ncol=max(1, len(ref_speakers)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- entry ----------------------------------------------------------------------------------


def run(items: Sequence[Item], *, mode: str, jitter: float, seeds: Sequence[int], collar: float,
        parameters: dict, asr_model: str | None = None, log=print) -> dict:
    """Evaluate every item; returns the result dict `write_report` takes."""
    if mode == "model" and not os.environ.get("DIARIZATION_MODEL"):
        raise SystemExit("--diarization model needs DIARIZATION_MODEL set to a pyannote pipeline")
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        workdir = Path(tmp)
        first_oracle = None
        if mode in ("oracle", "oracle-jitter"):
            with_rttm = [i for i in items if i.rttm]
            if with_rttm:  # the handler starts with an oracle folder as DIARIZATION_MODEL, like users'
                first_oracle = str(oracle.write_oracle_pipeline(workdir / "startup", with_rttm[0].rttm,
                                                                uri=with_rttm[0].rttm_uri()))
        harness = Harness(diarization_model=first_oracle, asr_model=asr_model, keep_env=(mode == "model"))
        log(f"handler loaded in {harness.load_s:.1f} s (ASR {harness.asr_model})")
        files = []
        for item in items:
            started = time.perf_counter()
            files.append(evaluate_item(harness, item, mode=mode, jitter=jitter, seeds=seeds, collar=collar,
                                       parameters=parameters, workdir=workdir))
            log(f"{item.uri}: {time.perf_counter() - started:.1f} s")
    return {
        "settings": {
            "asr_model": harness.asr_model,
            "diarization_model": harness.diarization_model if mode == "model" else None,
            "diarization": mode, "jitter": jitter if mode == "oracle-jitter" else 0.0,
            "seeds": list(seeds) if mode == "oracle-jitter" else [], "collar": collar,
            "parameters": parameters, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "handler_load_s": round(harness.load_s, 3),
        },
        "files": files,
    }


def _parameter(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("use key=value")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="folders, audio files or .json/.jsonl manifests")
    parser.add_argument("--output", "-o", type=Path, required=True, help="folder for report.md, results.json, PNGs")
    parser.add_argument("--diarization", choices=MODES, default="oracle")
    parser.add_argument("--jitter", type=float, default=0.25, help="oracle-jitter: max boundary move (s)")
    parser.add_argument("--seed", type=int, default=0, help="oracle-jitter: first seed")
    parser.add_argument("--seeds", type=int, default=5, help="oracle-jitter: how many seeds")
    parser.add_argument("--collar", type=float, default=0.25,
                        help="DER/JER collar, seconds on each side of a reference boundary (md-eval)")
    parser.add_argument("--asr-model", help="overrides ASR_MODEL")
    parser.add_argument("--language", help="request parameter 'language' (default: detected)")
    parser.add_argument("--param", action="append", type=_parameter, default=[],
                        help="extra request parameter key=value (JSON values), repeatable")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if args.jitter < 0 or args.seeds < 1:
        parser.error("--jitter must be >= 0 and --seeds >= 1")

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    items = discover(args.inputs)
    if not items:
        parser.error("no audio files found")
    parameters = dict(args.param)
    if args.language:
        parameters["language"] = args.language
    seeds = list(range(args.seed, args.seed + args.seeds))
    result = run(items, mode=args.diarization, jitter=args.jitter, seeds=seeds, collar=args.collar,
                 parameters=parameters, asr_model=args.asr_model,
                 log=lambda msg: print(msg, file=sys.stderr, flush=True))
    report = write_report(result, args.output, plots=not args.no_plots)
    summary = json.loads((args.output / "results.json").read_text())["summary"]["overall"]
    print("\n".join(_table(summary, args.collar)))
    print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
