"""SRT / WebVTT / RTTM rendering. Pure (no torch, no I/O) so it is cheap to call on every
request and easy to test against real parsers.

Subtitles are built in two steps: `cues_from` turns segments (no diarization) or utterances
(diarization: each cue names its speaker) into cues (`Utterance`s, speaker None without
diarization), splitting long ones at word boundaries; `to_srt` / `to_vtt` only format. Timestamps are rounded once, to integer
milliseconds, so every format shows the same times and rounding can never make a cue end
before it starts.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from speech_endpoint.schema import Segment, Turn, Utterance, Word, sort_turns
from speech_endpoint.attribution.segmentation import monotonic

__all__ = ["MAX_CUE_CHARS", "MAX_CUE_SECONDS", "cues_from", "parse_rttm", "to_rttm", "to_srt", "to_vtt"]

# Common subtitle guidelines: two lines of 42 characters, on screen for at most ~7 s.
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARS = 84


# ---- building cues ------------------------------------------------------------------


def cues_from(
    items: Sequence[Segment | Utterance],
    words: Sequence[Word] | None = None,
    *,
    max_seconds: float = MAX_CUE_SECONDS,
    max_chars: int = MAX_CUE_CHARS,
) -> list[Utterance]:
    """One cue per segment/utterance; one longer than `max_seconds` or `max_chars` is split
    at word boundaries when `words` (with timings) cover its text, else kept whole.

    Split pieces are cut from the item's own text (words only supply the cut points and
    their times), so the subtitles always read exactly like the transcript; when the words
    do not match the item's text (e.g. a different decoding pass), nothing is split rather
    than risking wrong text. Items with empty text give no cue.
    """
    items = [item for item in items if _clean(item.text)]
    if not items:
        return []
    owned = _words_per_item(items, words) if words else {}
    cues: list[Utterance] = []
    for index, item in enumerate(items):
        speaker = getattr(item, "speaker", None)
        whole = Utterance(speaker, _clean(item.text), float(item.start), float(item.end))
        too_long = (whole.end - whole.start) > max_seconds or len(whole.text) > max_chars
        pieces = None
        if too_long and owned.get(index):
            pieces = _split(item, owned[index], speaker, max_seconds, max_chars)
        cues.extend(pieces or [whole])
    return cues


def _words_per_item(items: Sequence[Segment | Utterance], words: Sequence[Word]) -> dict[int, list[Word]]:
    """Give each word to exactly one item: the (same-speaker) item nearest its midpoint.

    Looking only at the neighbours found by bisection keeps this O(W log N); it is exact for
    non-overlapping items, and a rare miss only means that item is not split.
    """
    order = sorted(range(len(items)), key=lambda i: (items[i].start, items[i].end))
    starts = [items[i].start for i in order]
    owned: dict[int, list[Word]] = {}
    for word in words:
        if not word.text.strip() or not (math.isfinite(word.start) and math.isfinite(word.end)):
            continue
        mid = (word.start + max(word.start, word.end)) / 2
        k = bisect_right(starts, mid) - 1
        best, best_distance = None, math.inf
        for j in range(max(k - 1, 0), min(k + 2, len(order))):
            item = items[order[j]]
            speaker = getattr(item, "speaker", None)
            if speaker is not None and word.speaker is not None and speaker != word.speaker:
                continue
            distance = max(item.start - mid, mid - item.end, 0.0)
            if distance < best_distance:
                best, best_distance = order[j], distance
        if best is not None:
            owned.setdefault(best, []).append(word)
    for group in owned.values():
        group.sort(key=lambda w: w.start)
    return owned


def _split(item: Segment | Utterance, words: list[Word], speaker: str | None,
           max_seconds: float, max_chars: int) -> list[Utterance] | None:
    """Cut `item` into cues of whole words, or None when the words don't spell its text."""
    text = item.text
    offsets: list[int] = []  # where each word starts in `text`
    pos = 0
    for word in words:
        token = word.text.strip()
        found = text.find(token, pos)
        if found < 0 or text[pos:found].strip():
            return None
        offsets.append(found)
        pos = found + len(token)
    if text[pos:].strip():
        return None

    def piece_text(a: int, b: int) -> str:  # words a..b inclusive, with what follows them
        end = offsets[b + 1] if b + 1 < len(words) else len(text)
        return _clean(text[offsets[a] if a else 0:end])

    item_start, item_end = float(item.start), float(item.end)

    def span(a: int, b: int) -> tuple[float, float]:
        """Word times, widened to the item's bounds at its two ends (not past max_seconds)."""
        start, end = words[a].start, max(words[b].end, words[a].start)
        if a == 0:
            start = min(start, max(item_start, end - max_seconds))
        if b == len(words) - 1:
            end = max(end, min(item_end, start + max_seconds))
        return start, end

    def fits(a: int, b: int, seconds: float, chars: float) -> bool:
        start, end = span(a, b)
        return end - start <= seconds and len(piece_text(a, b)) <= chars

    def group(seconds: float, chars: float, hard: bool) -> list[tuple[int, int]]:
        groups: list[tuple[int, int]] = []
        a = 0
        for b in range(1, len(words)):
            # Hard limits: break before the word that would overflow. Balanced pass: break
            # as soon as the piece reached its share, so pieces come out of similar size.
            if (not fits(a, b, seconds, chars)) if hard else (
                not fits(a, b, max_seconds, max_chars) or not fits(a, b - 1, seconds, chars)
            ):
                groups.append((a, b - 1))
                a = b
        groups.append((a, len(words) - 1))
        return groups

    greedy = group(max_seconds, max_chars, hard=True)
    if len(greedy) < 2:
        return None  # e.g. one very long word: nothing to cut
    n = len(greedy)
    total_start, total_end = span(0, len(words) - 1)
    balanced = group((total_end - total_start) / n, len(_clean(text)) / n, hard=False)
    groups = balanced if len(balanced) == n else greedy

    spans = monotonic((span(a, b) for a, b in groups), floor=item_start, ceiling=item_end)
    return [Utterance(speaker, piece_text(a, b), start, end) for (a, b), (start, end) in zip(groups, spans)]


def _clean(text: str) -> str:
    """One line, single spaces: a blank line inside a cue would end it in both formats."""
    return " ".join(text.split())


# ---- SRT / WebVTT -------------------------------------------------------------------


def to_srt(cues: Iterable[Segment | Utterance]) -> str:
    """SubRip text: numbered cues, `HH:MM:SS,mmm` times, speaker as a `SPEAKER_00: ` prefix.

    SRT has no escaping, so `-->` in the text (which would read as a timing line) becomes
    `->`. No cues gives an empty string, which is a valid empty SRT file.
    """
    blocks = []
    for number, (start, end, text, speaker) in enumerate(_prepared(cues), 1):
        line = f"{speaker}: {text}" if speaker else text
        line = line.replace("-->", "->")
        blocks.append(f"{number}\n{_timestamp(start, ',', True)} --> {_timestamp(end, ',', True)}\n{line}\n")
    return "\n".join(blocks)


def to_vtt(cues: Iterable[Segment | Utterance]) -> str:
    """WebVTT text: `WEBVTT` header, `[HH:]MM:SS.mmm` times (hours only when needed),
    speaker as a voice span `<v SPEAKER_00>`, and `&`, `<`, `>` escaped (so `-->` cannot
    occur in a cue). No cues gives just the header, a valid empty file."""
    blocks = ["WEBVTT\n"]
    for start, end, text, speaker in _prepared(cues):
        line = _vtt_escape(text)
        if speaker:
            line = f"<v {_vtt_escape(speaker)}>{line}"
        blocks.append(f"{_timestamp(start, '.', False)} --> {_timestamp(end, '.', False)}\n{line}\n")
    return "\n".join(blocks)


def _prepared(cues: Iterable[Segment | Utterance]) -> list[tuple[int, int, str, str | None]]:
    """(start_ms, end_ms, text, speaker) sorted by time, empty cues dropped.

    Both times are rounded to whole milliseconds first; an end that would not be after its
    start is pushed to start + 1 ms, since WebVTT requires end > start.
    """
    out = []
    for cue in cues:
        text = _clean(cue.text)
        if not text:
            continue
        start = _ms(cue.start)
        end = max(_ms(cue.end), start + 1)
        speaker = getattr(cue, "speaker", None)
        out.append((start, end, text, (_clean(speaker) or None) if speaker else None))
    out.sort(key=lambda c: (c[0], c[1]))
    return out


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timestamp(ms: int, decimal: str, always_hours: bool) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    clock = f"{minutes:02d}:{seconds:02d}{decimal}{millis:03d}"
    return f"{hours:02d}:{clock}" if hours or always_hours else clock


def _ms(seconds: float) -> int:
    """Seconds -> whole milliseconds, half up; negative times clamp to 0."""
    value = float(seconds)
    if not math.isfinite(value):
        raise ValueError(f"timestamp must be a finite number of seconds, got {value!r}")
    return max(0, math.floor(value * 1000 + 0.5))


# ---- RTTM ---------------------------------------------------------------------------


def to_rttm(turns: Sequence[Turn], file_id: str = "audio") -> str:
    """NIST RTTM, the format diarization scorers read: one `SPEAKER` line per turn, sorted by
    start. Overlapping turns are kept (this is the full diarization, not the exclusive one
    used to align words). Turns shorter than a millisecond are dropped: RTTM durations are
    positive. Fields are space-separated, so whitespace in names becomes `_`."""
    file_field = _rttm_field(file_id) or "audio"
    rows = []
    for turn in turns:
        start, end = _ms(turn.start), _ms(turn.end)
        if end > start:
            rows.append((start, end, _rttm_field(turn.speaker) or "unknown"))
    rows.sort()
    return "".join(
        f"SPEAKER {file_field} 1 {_seconds(start)} {_seconds(end - start)} <NA> <NA> {speaker} <NA> <NA>\n"
        for start, end, speaker in rows
    )


def _rttm_field(value: str) -> str:
    return re.sub(r"\s+", "_", str(value).strip())


def _seconds(ms: int) -> str:
    """Integer ms -> `S.mmm`, exact (no float rounding), so start + duration == end."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def parse_rttm(text: str, source: str = "<rttm>") -> dict[str, list[Turn]]:
    """SPEAKER lines of RTTM text as {file id: turns sorted by time}. Other line types,
    comments and blank lines are skipped; zero or negative durations are dropped."""
    by_uri: dict[str, list[Turn]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        if len(parts) < 8:
            raise ValueError(f"{source}:{number}: an RTTM SPEAKER line needs at least 8 fields")
        uri, start, duration, speaker = parts[1], float(parts[3]), float(parts[4]), parts[7]
        if duration > 0:
            by_uri.setdefault(uri, []).append(Turn(start, start + duration, speaker))
    return {uri: sort_turns(turns) for uri, turns in by_uri.items()}
