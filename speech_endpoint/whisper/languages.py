"""Whisper language names and codes ("en", "english", "English", "<|en|>" -> "en"), and the
request's language: from Whisper's first decoding step (model I/O, `detect_language`),
weighted over several windows (`most_likely_language`). torch is imported where it is
used, so the settings and the server can read the tables without it."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from speech_endpoint.schema import SAMPLE_RATE

# A first window this short, or this unsure of its language, does not decide it alone.
SHORT_WINDOW_S = 15.0
SURE_LANGUAGE = 0.5  # faster-whisper's language_detection_threshold


@lru_cache(maxsize=1)
def _tables() -> tuple[frozenset[str], dict[str, str]]:
    # Whisper's own table, so every language the model knows is accepted and no other.
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    return frozenset(LANGUAGES), dict(TO_LANGUAGE_CODE)


def normalize_language(value: str) -> str | None:
    """The Whisper code for a code or name (case-insensitive), or None if unknown."""
    codes, by_name = _tables()
    key = value.strip().lower().removeprefix("<|").removesuffix("|>")
    if key in codes:
        return key
    return by_name.get(key)


def language_name(code: str) -> str | None:
    """Whisper's lower-case English name for a code ("en" -> "english"), or None."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return LANGUAGES.get(code.strip().lower()) if code else None


def most_likely_language(tokens: Sequence[str], probabilities: np.ndarray, weights: Sequence[float]) -> str | None:
    """The language whose probability, averaged over windows (rows of `probabilities`,
    columns in the order of `tokens`, e.g. "<|en|>") with `weights`, is highest."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    mean = (np.asarray(probabilities, dtype=np.float64) * w[:, None]).sum(axis=0)
    return normalize_language(tokens[int(np.argmax(mean))])


def detect_language(model, hidden: torch.Tensor, lengths: list[int]) -> str | None:
    """The first window's language (as OpenAI's long-form), unless that window is short
    or unsure: then the language of all windows in `hidden` (encoder output, one row per
    window of `lengths` samples), weighted by length. On the corpus a 3 s opening read as
    Finnish (0.46) and made every window Finnish; over three windows English has 0.73.
    A window costs one decoder step."""
    tokens = list(model.generation_config.lang_to_id)
    probs = language_probabilities(model, hidden[:1], tokens)
    if len(lengths) > 1 and (lengths[0] < SHORT_WINDOW_S * SAMPLE_RATE or probs.max() < SURE_LANGUAGE):
        probs = np.concatenate([probs, language_probabilities(model, hidden[1:], tokens)])
    return most_likely_language(tokens, probs, lengths[:len(probs)])


def language_probabilities(model, hidden: torch.Tensor, tokens: list[str]) -> np.ndarray:
    """Per window, the probabilities of the language `tokens` at the first step."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    config = model.generation_config
    start = torch.full((hidden.shape[0], 1), config.decoder_start_token_id, device=hidden.device)
    logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), decoder_input_ids=start,
                   use_cache=False).logits[:, -1]
    scores = logits[:, [config.lang_to_id[t] for t in tokens]].float()
    return torch.softmax(scores, dim=-1).cpu().numpy()
