"""What Whisper's token scores may say and what they say: the suppression masks applied first,
a draft's output layer over the ids it may propose, each word's probability read back last,
and OpenAI's guards that drop a window by them.

Suppression: transformers' `SuppressTokensLogitsProcessor` and
`SuppressTokensAtBeginLogitsProcessor` rebuild a vocabulary-wide mask with `isin` at every
decoding step (a tenth of a batched step on a CPU: docs/benchmarks.md). `Suppression` takes
the two token lists out of the model's generation config (so transformers builds neither
processor) and hands `generate` one processor per call that applies the same masks, cached
per vocabulary size and device, first.

A draft's reduced output layer (`reduce_output`, for `make_draft --vocab`): only the rows of
the ids the draft may propose are multiplied, the rest of its logits are -inf, so the main
model verifies full-vocabulary ids and the output stays that of plain greedy decoding.

Word confidence, from the scores decoding computes anyway (no second decoder pass): a token's
probability is its softmax probability among the text tokens at the step that produced it, as
OpenAI's word timing computes it; a word's is the mean over its tokens, as OpenAI Whisper,
faster-whisper and whisperX report it, so that thresholds tuned there carry over (the minimum
would flag one doubtful piece more sharply, but punishes long words split into many tokens).

Guards against invented text, per decoded window (speech detection has already kept Whisper
away from silence and noise): no speech, when the model's own probability of <|nospeech|> at
<|startoftranscript|> is above 0.6 AND the window's mean token log-probability is below -1.0
(OpenAI's joint rule: a confident transcript survives a high no-speech probability); a loop,
when the window's text compresses by more than 2.4 (zlib of its UTF-8, OpenAI's measure,
`text.compression_ratio`). OpenAI's temperature fallback (re-decoding a failed window by
sampling) is not used: it swapped one invented text for another, made the output
nondeterministic, and sampling with an assistant breaks the equality of assisted and plain
output (docs/benchmarks.md, "Speech, not noise").
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import LogitsProcessor

from speech_endpoint.text import COMPRESSION_RATIO_THRESHOLD, compression_ratio


class Suppression:
    def __init__(self, suppress: Sequence[int] | None, begin_suppress: Sequence[int] | None):
        self.suppress = [int(t) for t in suppress or []]
        self.begin_suppress = [int(t) for t in begin_suppress or []]
        self._masks: dict[tuple[int, torch.device, bool], torch.Tensor] = {}

    @classmethod
    def take_from(cls, generation_config: Any) -> "Suppression":
        """The config's `suppress_tokens` and `begin_suppress_tokens`, removed from it."""
        taken = cls(generation_config.suppress_tokens, generation_config.begin_suppress_tokens)
        generation_config.suppress_tokens = None
        generation_config.begin_suppress_tokens = None
        return taken

    def generate_kwargs(self) -> dict[str, Any]:
        """The lists as `generate` arguments, for calls that must keep transformers' own
        processors (with timestamp tokens, whose processor has to see suppressed scores)."""
        return {"suppress_tokens": self.suppress or None, "begin_suppress_tokens": self.begin_suppress or None}

    def processor(self, at_begin: bool = True) -> "SuppressTokens":
        """A processor for one `generate` call; `at_begin=False` as transformers does for
        speculative decoding (the first token may be the end of text)."""
        return SuppressTokens(self, at_begin)

    def mask(self, size: int, device: torch.device, at_begin: bool) -> torch.Tensor:
        key = (size, device, at_begin)
        if key not in self._masks:
            mask = torch.zeros(size, dtype=torch.bool)
            ids = self.suppress + (self.begin_suppress if at_begin else [])
            mask[[t for t in ids if 0 <= t < size]] = True
            self._masks[key] = mask.to(device)
        return self._masks[key]


class SuppressTokens(LogitsProcessor):
    def __init__(self, suppression: Suppression, at_begin: bool):
        self.suppression = suppression
        self.at_begin = at_begin and bool(suppression.begin_suppress)
        self.begin_index: int | None = None

    def set_begin_index(self, begin_index: int) -> None:
        """Called by Whisper's `generate` with the decoder prompt's length."""
        self.begin_index = begin_index

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        begin = self.at_begin and input_ids.shape[-1] == self.begin_index
        return scores.masked_fill(self.suppression.mask(scores.shape[-1], scores.device, begin), -float("inf"))


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


NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


def mean_logprob(probabilities: Sequence[float]) -> float:
    return sum(math.log(max(p, 1e-12)) for p in probabilities) / len(probabilities) if probabilities else 0.0


def no_speech_probabilities(model, encoder_hidden: torch.Tensor, prompt_ids: Sequence[int]) -> list[float]:
    """P(<|nospeech|>) predicted at <|startoftranscript|> (after the text prompt, if any),
    per window: one decoder step."""
    gen = model.generation_config
    ids = torch.tensor([list(prompt_ids) + [gen.decoder_start_token_id]] * encoder_hidden.shape[0],
                       device=encoder_hidden.device)
    hidden = model.get_decoder()(input_ids=ids, encoder_hidden_states=encoder_hidden, use_cache=False).last_hidden_state
    logits = model.get_output_embeddings()(hidden[:, -1])
    return logits.float().softmax(dim=-1)[:, gen.no_timestamps_token_id - 1].tolist()  # <|nospeech|> precedes it


def keep(text: str, probabilities: Sequence[float], no_speech: float | None) -> bool:
    """Whether a window's words stand (see the module docstring). `no_speech` is only
    needed when the mean log-probability is below the threshold."""
    if compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD:
        return False
    return not (no_speech is not None and no_speech > NO_SPEECH_THRESHOLD
                and mean_logprob(probabilities) < LOGPROB_THRESHOLD)


def doubtful(probabilities: Sequence[float]) -> bool:
    """Whether the no-speech probability is needed to decide (low mean log-probability)."""
    return bool(probabilities) and mean_logprob(probabilities) < LOGPROB_THRESHOLD


# ---- a draft's output layer over its kept ids (make_draft --vocab, whisper.draft_vocab) ----

DRAFT_VOCAB = "draft_vocab"  # the config field naming them


class ReducedOutput(nn.Module):
    """An output layer over the rows `ids` of `weight`, returning `vocab_size`-wide logits:
    the kept ids' scores and -inf elsewhere."""

    def __init__(self, weight: torch.Tensor, ids: list[int], vocab_size: int, out_dtype: torch.dtype | None = None):
        super().__init__()
        index = torch.as_tensor(ids, dtype=torch.long, device=weight.device)
        self.register_buffer("ids", index, persistent=False)
        self.rows = nn.Parameter(weight.detach().index_select(0, index).contiguous(), requires_grad=False)
        self.vocab_size = vocab_size
        self.out_dtype = out_dtype

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        scores = F.linear(hidden.to(self.rows.dtype), self.rows)
        dtype = self.out_dtype or hidden.dtype
        logits = scores.new_full((*scores.shape[:-1], self.vocab_size), float("-inf"), dtype=dtype)
        logits.index_copy_(-1, self.ids, scores.to(dtype))
        return logits


def kept_ids(model: nn.Module) -> list[int] | None:
    ids = getattr(model.config, DRAFT_VOCAB, None)
    return [int(t) for t in ids] if ids else None


def reduce_output(model: nn.Module) -> bool:
    """Swap a draft's output layer (`proj_out`) for a `ReducedOutput` over the ids its config
    names; False (nothing changed) for a model without `draft_vocab`."""
    ids = kept_ids(model)
    if ids is None:
        return False
    layer = model.proj_out
    out_dtype = getattr(layer, "out_dtype", None)  # precision.BF16Linear returns float32
    model.proj_out = ReducedOutput(layer.weight, ids, model.config.vocab_size, out_dtype)
    return True
