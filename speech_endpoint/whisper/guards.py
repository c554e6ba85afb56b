"""OpenAI Whisper's guards against invented text, per decoded window, as rules that drop a
window's words (speech detection has already kept Whisper away from silence and noise):

- no speech: the model's own probability of <|nospeech|> at <|startoftranscript|> is above
  0.6 AND the window's mean token log-probability is below -1.0 (OpenAI's joint rule: a
  confident transcript survives a high no-speech probability);
- a loop: the window's text compresses by more than 2.4 (zlib of its UTF-8, OpenAI's
  measure, `text.compression_ratio`).

OpenAI's temperature fallback (re-decoding a failed window by sampling) is not used: it
swapped one invented text for another, made the output nondeterministic, and sampling with
an assistant breaks the equality of assisted and plain output (docs/benchmarks.md,
"Speech, not noise", has the measurements).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from speech_endpoint.text import COMPRESSION_RATIO_THRESHOLD, compression_ratio

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
