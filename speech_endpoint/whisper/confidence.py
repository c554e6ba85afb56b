"""Word confidence: the probability Whisper gave each word, from the scores decoding
computes anyway (no second decoder pass).

A token's probability is its softmax probability among the text tokens at the step that
produced it, as OpenAI's word timing computes it. A word's probability is the mean over
its tokens, as OpenAI Whisper, faster-whisper and whisperX report it, so that thresholds
tuned there carry over (the minimum would flag one doubtful piece more sharply, but it
punishes long words that happen to be split into many tokens).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import LogitsProcessor

KEEP_STEPS = 64  # scored positions kept for read-back: more than any assistant proposes at once


class TokenProbabilities(LogitsProcessor):
    """A logits processor, appended last to `generate`'s: it keeps the text-token
    log-probabilities of recent steps, keyed by the position they predict, and reads the
    token actually chosen there back from the next step's input (so sampled tokens are
    scored right, too). Generation that starts again at the prompt (sequential long-form:
    one run per 30 s window) opens a new run."""

    def __init__(self, eot: int):
        self.eot = eot
        self.runs: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []  # position -> (tokens, probs) per row
        self._scored: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # position -> (scores, their logsumexp)
        self._start = None  # input length at the first step of the current run

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        if self._start is None or length <= self._start:
            self.runs.append({})
            self._scored.clear()
            self._start = length
        previous = self._scored.get(length - 1)
        if previous is not None and previous[0].shape[0] == input_ids.shape[0]:
            self._resolve(length - 1, input_ids[:, length - 1], previous)
        # the scores themselves are kept (this processor runs last: nothing changes them)
        self._scored[length] = (scores, torch.logsumexp(scores[:, : self.eot].float(), dim=-1))
        for old in [k for k in self._scored if k < length - KEEP_STEPS]:
            del self._scored[old]
        return scores

    def _resolve(self, position: int, tokens: torch.Tensor, scored: tuple[torch.Tensor, torch.Tensor]) -> None:
        scores, lse = scored
        tokens = tokens.to(scores.device)
        text = tokens < self.eot
        probs = torch.zeros(len(tokens))
        if text.any():
            probs[text.cpu()] = (scores[text, tokens[text]].float() - lse[text]).exp().cpu()
        self.runs[-1][position] = (tokens.cpu().numpy(), probs.numpy())

    def segments(self, row: int, run: int = -1) -> list[list[tuple[int, float]]]:
        """(token, probability) of the text tokens generated for `row`, in order, split
        where timestamp tokens separate segments; the last token only if a later step read
        it back (see `for_tokens`)."""
        resolved = self.runs[run] if self.runs else {}
        out: list[list[tuple[int, float]]] = [[]]
        for position in sorted(resolved):
            token, prob = int(resolved[position][0][row]), float(resolved[position][1][row])
            if token == self.eot:
                break  # end of text; after it a finished row only repeats padding
            if token < self.eot:
                out[-1].append((token, prob))
            elif out[-1]:  # a timestamp or other special token ends a segment
                out.append([])
        return [segment for segment in out if segment]

    def for_tokens(self, row: int, tokens: Sequence[int]) -> list[float] | None:
        """Probabilities of `tokens`, the text tokens generation returned for `row` (one
        run); None when the records do not line up with them."""
        got = [pair for segment in self.segments(row) for pair in segment]
        if [t for t, _ in got] == list(tokens):
            return [p for _, p in got]
        if tokens and [t for t, _ in got] == list(tokens[:-1]) and self._scored:
            scores, lse = self._scored[max(self._scored)]  # stopped at the length limit: never read back
            return [p for _, p in got] + [float((scores[row, tokens[-1]].float() - lse[row]).exp())]
        return None


def teacher_forced_probabilities(logits: torch.Tensor, tokens: Sequence[int], eot: int) -> list[float]:
    """Probabilities of `tokens` from the logits of the rows that predicted them."""
    logprobs = torch.log_softmax(logits[: len(tokens), :eot].float(), dim=-1)
    return logprobs[torch.arange(len(tokens)), torch.as_tensor(list(tokens))].exp().tolist()


def word_probability(probs: Sequence[float]) -> float:
    return float(np.mean(probs)) if len(probs) else 0.0
