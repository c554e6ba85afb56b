#!/usr/bin/env python
"""Each attribution rule's gain per set of recordings, against plain maximum overlap: all
rules (`speech_endpoint.attribution.rules.RULES`), the rules before rule 2's "nearest" was
dropped, each rule removed, each rule alone; with the exact reference turns and with every
turn boundary moved by up to 0.25 s (`evaluation.attribution_study`'s jitter protocol, 5 seeds).

    ASR_MODEL=.../whisper-base OMP_NUM_THREADS=1 python -m evaluation.rule_ablation \\
        ami-dev=/work/shared/audio/ami-dev seed3=tests/data/corpus seed2=corpus-seed2/manifest.json \\
        --cache /tmp/ami-words --per-clip ami-dev

A set is NAME=PATH: a folder, audio file or manifest with .stm and .rttm references (Whisper
runs once per file through the handler's stages, cached in `--cache`), or a folder of
cached words (`<uri>.words.json` beside `<uri>.stm` and `<uri>.rttm`, as tests/data/corpus).
The metric is cpWER - WER per file (what the attribution costs); the language is English.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from evaluation.attribution_study import Variant, study, transcribe_cached
from evaluation.evaluate import Item, discover
from speech_endpoint.attribution.rules import DROPPED, RULES
from speech_endpoint.schema import Word

BASELINE = "max overlap"
SHIPPED = "all rules"
BEFORE = "before: all rules + shared"  # the rules shipped before the last change (see DROPPED)
WORSE = 0.01  # a file counts as worse than the baseline beyond this


def rule_variants(language: str | None = "en") -> dict[str, Variant]:
    """Plain maximum overlap (rule 0), all rules, the rules before the last change, each
    rule removed, each alone."""
    from diarization_utils import assign_speakers

    def variant(rules: tuple[str, ...] | None) -> Variant:
        return lambda words, d: assign_speakers(words, d.exclusive, full_turns=d.full, relabel=False,
                                                smooth=rules is not None, rules=rules or (), language=language)

    out = {BASELINE: variant(None), SHIPPED: variant(RULES), BEFORE: variant(RULES + ("shared",))}
    out.update({f"all rules + {d}": variant(RULES + (d,)) for d in DROPPED if d != "shared"})
    out.update({f"without {r}": variant(tuple(x for x in RULES if x != r)) for r in RULES})
    # "openers" is part of "edges", "takeback" and "overlapped" of "claims": alone, each comes with its rule
    parts = {"openers": ("edges", "openers"), "takeback": ("claims", "takeback"),
             "overlapped": ("claims", "overlapped")}
    out.update({f"only {r}": variant(parts.get(r, (r,))) for r in RULES})
    return out


def load(path: Path, cache: Path) -> tuple[list[Item], dict[str, list[Word]]]:
    """The set's items and Whisper's words for each."""
    cached = sorted(path.glob("*.words.json")) if path.is_dir() else []
    if cached:
        items, words = [], {}
        for p in cached:
            uri = p.name.removesuffix(".words.json")
            items.append(Item(uri=uri, audio=path / f"{uri}.wav", stm=path / f"{uri}.stm", rttm=path / f"{uri}.rttm"))
            words[uri] = [Word(t, s, e, probability=q) for t, s, e, q in json.loads(p.read_text())]
        return items, words
    items = [i for i in discover([path]) if i.stm and i.rttm]
    return items, transcribe_cached(items, cache, {})


def summary(rows: dict) -> str:
    """One line per variant: means, worst, files worse than the baseline, files within the
    issue's targets (exact <= 0.01, worst jitter seed <= 0.02)."""
    base = rows[BASELINE]
    lines = ["| variant | exact: mean / worst | worse than max overlap by > 0.01, exact / jitter mean | "
             "jitter ±0.25 s: mean / worst seed | within target: exact / jitter |", "|---|---|---|---|---|"]
    for name, per_file in rows.items():
        exact = [v["exact"] for v in per_file.values()]
        jitter = [v["jitter_mean"] for v in per_file.values()]
        worst_seed = [v["jitter_worst"] for v in per_file.values()]
        worse_exact = sum(v["exact"] > base[u]["exact"] + WORSE + 1e-9 for u, v in per_file.items())
        worse_jitter = sum(v["jitter_mean"] > base[u]["jitter_mean"] + WORSE + 1e-9 for u, v in per_file.items())
        ok_exact = sum(x <= 0.01 + 1e-9 for x in exact)
        ok_jitter = sum(x <= 0.02 + 1e-9 for x in worst_seed)
        lines.append(f"| {name} | {statistics.fmean(exact):.4f} / {max(exact):.3f} | {worse_exact} / {worse_jitter} | "
                     f"{statistics.fmean(jitter):.4f} / {max(worst_seed):.3f} | "
                     f"{ok_exact} / {ok_jitter} of {len(exact)} |")
    return "\n".join(lines)


def per_clip(rows: dict, names: list[str]) -> str:
    """cpWER - WER per file, exact / jitter mean, for `names`."""
    lines = ["| file | " + " | ".join(f"{n}: exact / jitter mean" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for uri in rows[BASELINE]:
        lines.append(f"| {uri} | " + " | ".join(f"{rows[n][uri]['exact']:.3f} / {rows[n][uri]['jitter_mean']:.3f}"
                                                for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--cache", type=Path, default=Path("study-cache"))
    parser.add_argument("--per-clip", nargs="*", default=[], metavar="NAME",
                        help="also a table per file for these sets")
    parser.add_argument("--output", type=Path, help="all scores as JSON")
    args = parser.parse_args(argv)
    chosen = rule_variants()
    results = {}
    for spec in args.sets:
        name, _, path = spec.partition("=")
        items, words = load(Path(path), args.cache)
        results[name] = rows = study(items, words, {}, chosen)
        print(f"## {name} ({len(items)} files)\n\n{summary(rows)}\n")
        if name in args.per_clip:
            print(per_clip(rows, [BASELINE, BEFORE, SHIPPED]) + "\n")
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
