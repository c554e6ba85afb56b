"""Which language a request's speech is in, from Whisper's first decoding step (model I/O;
the weighting of several windows is `languages.most_likely_language`)."""
from __future__ import annotations

import numpy as np
import torch

from speech_endpoint.languages import most_likely_language
from speech_endpoint.schema import SAMPLE_RATE

# A first window this short, or this unsure of its language, does not decide it alone.
SHORT_WINDOW_S = 15.0
SURE_LANGUAGE = 0.5  # faster-whisper's language_detection_threshold


def detect_language(model, hidden: torch.Tensor, lengths: list[int]) -> str | None:
    """The first window's language (as OpenAI's long-form), unless that window is short
    or unsure: then the language of all windows in `hidden` (encoder output, one row per
    window of `lengths` samples), weighted by length. On the corpus a 3 s opening read as
    Finnish (0.46) and made every window Finnish; over three windows English has 0.73.
    A window costs a decoder step (~40 ms, base, 1 CPU thread)."""
    tokens = list(model.generation_config.lang_to_id)
    probs = language_probabilities(model, hidden[:1], tokens)
    if len(lengths) > 1 and (lengths[0] < SHORT_WINDOW_S * SAMPLE_RATE or probs.max() < SURE_LANGUAGE):
        probs = np.concatenate([probs, language_probabilities(model, hidden[1:], tokens)])
    return most_likely_language(tokens, probs, lengths[:len(probs)])


def language_probabilities(model, hidden: torch.Tensor, tokens: list[str]) -> np.ndarray:
    """Per window, the probabilities of the language `tokens` at the first step."""
    from transformers.modeling_outputs import BaseModelOutput

    config = model.generation_config
    start = torch.full((hidden.shape[0], 1), config.decoder_start_token_id, device=hidden.device)
    logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), decoder_input_ids=start,
                   use_cache=False).logits[:, -1]
    scores = logits[:, [config.lang_to_id[t] for t in tokens]].float()
    return torch.softmax(scores, dim=-1).cpu().numpy()
