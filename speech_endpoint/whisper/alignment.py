"""Word timings from Whisper's cross-attention, as OpenAI's `timing.py` computes them.

The decoder's inputs to the cross-attention of the alignment-head layers are recorded
while it generates (without timestamp tokens); the attention of those heads alone is then
computed from them, and dynamic time warping maps each token to audio frames (20 ms each).
This costs a few matrix products per window, far less than asking the model for all its
attentions. Where generation cannot be recorded (speculative decoding runs rejected draft
tokens through the model), one teacher-forced decoder pass over the tokens does the same.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from speech_endpoint.whisper.scores import teacher_forced_probabilities, word_probability
from speech_endpoint.schema import Word
from speech_endpoint.text import is_sentence_end

FRAMES_PER_SECOND = 50  # Whisper's encoder emits one frame per 20 ms
MEDIAN_WIDTH = 7
NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "my", "yue"}


class CrossAttentionRecorder:
    """Records what enters the cross-attention of the alignment-head layers while the
    decoder runs (as a context manager), so the attention weights can be computed for those
    heads alone. Works whether the decoder runs once over whole sequences or once per
    generated token: the recorded steps are concatenated along time."""

    def __init__(self, model):
        self.model = model
        self.heads = _alignment_heads(model)
        self.layers = sorted({layer for layer, _ in self.heads})
        self.steps: dict[int, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        self._handles: list = []

    def __enter__(self) -> "CrossAttentionRecorder":
        decoder = self.model.get_decoder()
        for layer in self.layers:
            def hook(module, args, kwargs, layer=layer):
                self.steps[layer].append(kwargs.get("hidden_states", args[0] if args else None))
            self._handles.append(decoder.layers[layer].encoder_attn.register_forward_pre_hook(hook, with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def first_step_length(self) -> int:
        return self.steps[self.layers[0]][0].shape[1]

    @property
    def length(self) -> int:
        return sum(step.shape[1] for step in self.steps[self.layers[0]])

    def logits(self, encoder_hidden: torch.Tensor, rows: Sequence[slice]) -> list[torch.Tensor]:
        """Per sequence i: pre-softmax attention [heads, rows[i], frames] of the alignment heads."""
        decoder = self.model.get_decoder()
        n_heads = self.model.config.decoder_attention_heads
        per_layer = {}
        for layer in self.layers:
            hidden = torch.cat(self.steps[layer], dim=1)
            attn = decoder.layers[layer].encoder_attn
            b, t, d = hidden.shape
            q = (attn.q_proj(hidden) * attn.scaling).view(b, t, n_heads, d // n_heads).transpose(1, 2)
            k = attn.k_proj(encoder_hidden).view(b, encoder_hidden.shape[1], n_heads, d // n_heads).transpose(1, 2)
            per_layer[layer] = (q.float(), k.float())
        return [torch.stack([per_layer[l][0][i, h, r] @ per_layer[l][1][i, h].T for l, h in self.heads]).cpu()
                for i, r in enumerate(rows)]


def teacher_forced(model, prefix: Sequence[int], token_batches: Sequence[Sequence[int]],
                   encoder_hidden: torch.Tensor, eot: int) -> tuple[list[torch.Tensor], list[list[float]]]:
    """One decoder pass over prefix + tokens + eot per sequence: the alignment-head logits
    [heads, len(tokens)+1, frames] of the rows that predict the text tokens and the
    end-of-text token, and the probability of each text token (`speech_endpoint.whisper.scores`)."""
    length = max(len(t) for t in token_batches) + len(prefix) + 1
    ids = torch.full((len(token_batches), length), eot, dtype=torch.long)
    for row, tokens in enumerate(token_batches):
        seq = list(prefix) + list(tokens) + [eot]
        ids[row, : len(seq)] = torch.tensor(seq)
    with CrossAttentionRecorder(model) as recorder:
        hidden = model.get_decoder()(input_ids=ids.to(encoder_hidden.device), encoder_hidden_states=encoder_hidden,
                                     use_cache=False).last_hidden_state
    rows = [slice(len(prefix) - 1, len(prefix) + len(tokens)) for tokens in token_batches]
    output = model.get_output_embeddings()
    probabilities = [teacher_forced_probabilities(output(hidden[i, r]), tokens, eot) if tokens else []
                     for i, (r, tokens) in enumerate(zip(rows, token_batches))]
    return recorder.logits(encoder_hidden, rows), probabilities


def recorded_rows(recorder: CrossAttentionRecorder, sequences: Sequence[Sequence[int]],
                  token_lists: Sequence[Sequence[int]]) -> list[slice] | None:
    """The rows of the decoder steps recorded during generation that predicted each
    sequence's text tokens and its end of text; None where they do not line up."""
    prompt = recorder.first_step_length  # the decoder prompt, fed in one step
    fed = recorder.length - prompt  # generated tokens fed back (the last one never is)
    rows = []
    for sequence, tokens in zip(sequences, token_lists):
        # Some versions return the decoder prompt too, some drop the final end-of-text.
        generated = list(sequence[-(fed + 1):] if len(sequence) > fed + 1 else sequence)
        if generated[: len(tokens)] != list(tokens) or len(tokens) > fed:
            return None
        rows.append(slice(prompt - 1, prompt + len(tokens)))
    return rows


def window_words(tokenizer, tokens: Sequence[int], qk: torch.Tensor, probabilities: Sequence[float],
                 offset: float, num_frames: int, language: str | None) -> list[Word]:
    """One window's words: times from its attention (DTW), offset to the audio, long words
    clamped; each word's probability from its tokens'."""
    starts, ends = token_times(qk, num_frames)
    words: list[Word] = []
    index = 0
    for text, toks in split_words(tokenizer, tokens, language):
        first, last = index, index + len(toks) - 1
        index += len(toks)
        if text.strip():
            words.append(Word(text, offset + float(starts[first]), offset + float(ends[last]),
                              probability=word_probability(probabilities[first:last + 1])))
    return clamp_long_words(words)


def _alignment_heads(model) -> list[tuple[int, int]]:
    heads = getattr(model.generation_config, "alignment_heads", None)
    if not heads:  # no alignment heads configured: use every head of the upper half
        n_layers = model.config.decoder_layers
        n_heads = model.config.decoder_attention_heads
        heads = [(l, h) for l in range(n_layers // 2, n_layers) for h in range(n_heads)]
    return [(int(l), int(h)) for l, h in heads]


def token_times(qk: torch.Tensor, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end time (s) of each row's token, from raw attention logits
    [heads, rows, frames]: softmax over the audio's frames, standardise per frame, median
    filter along time, average the heads, then DTW."""
    num_frames = max(1, min(num_frames, qk.shape[-1]))
    weights = torch.softmax(qk[:, :, :num_frames].float(), dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = median_filter((weights - mean) / (std + 1e-9), MEDIAN_WIDTH)
    matrix = weights.mean(dim=0).double().numpy()
    text_idx, time_idx = dtw(-matrix)
    jumps = np.concatenate([[True], np.diff(text_idx) > 0])
    jump_times = time_idx[jumps] / FRAMES_PER_SECOND  # one entry per row
    starts = jump_times[:-1] if len(jump_times) > 1 else jump_times
    ends = jump_times[1:] if len(jump_times) > 1 else jump_times
    return starts, ends


def median_filter(x: torch.Tensor, width: int) -> torch.Tensor:
    """Median over each odd `width` of the last dimension (reflected at the ends), as
    `unfold(...).median()` gives it, but sorted by an odd-even transposition network of
    elementwise min/max over shifted views: 5-7x faster than torch's median over small windows
    (4% of a 60 s request)."""
    if x.shape[-1] <= width // 2:  # too short to reflect-pad
        return x
    pad, n = width // 2, x.shape[-1]
    padded = torch.nn.functional.pad(x, (pad, pad), mode="reflect")
    rows = [padded[..., k:k + n] for k in range(width)]
    for phase in range(width):
        for i in range(phase % 2, width - 1, 2):
            rows[i], rows[i + 1] = torch.minimum(rows[i], rows[i + 1]), torch.maximum(rows[i], rows[i + 1])
    return rows[pad]


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment path through `cost` [rows, frames], vectorised over
    anti-diagonals (each cell depends only on the two previous diagonals)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c0, c1, c2 = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        choice = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        acc[i, j] = cost[i - 1, j - 1] + np.choose(choice, [c0, c1, c2])
        trace[i, j] = choice
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    arr = np.array([(a, b) for a, b in reversed(path) if a >= 0 and b >= 0]).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def split_words(tokenizer, tokens: Sequence[int], language: str | None) -> list[tuple[str, list[int]]]:
    """Group tokens into words: a word starts at a piece with a leading space (one piece,
    one word for languages written without spaces). Multi-token characters stay whole."""
    pieces: list[tuple[str, list[int]]] = []
    current: list[int] = []
    for token in tokens:
        current.append(token)
        text = tokenizer.decode(current)
        if "\ufffd" not in text:
            pieces.append((text, current))
            current = []
    if current:
        pieces.append((tokenizer.decode(current), current))
    if language in NO_SPACE_LANGUAGES:
        return pieces
    words: list[tuple[str, list[int]]] = []
    for text, toks in pieces:
        glue = words and (not words[-1][0].strip() or not text.startswith(" "))
        if glue:  # continues a word, or follows a bare space token
            words[-1] = (words[-1][0] + text, words[-1][1] + list(toks))
        else:
            words.append((text, list(toks)))
    return words


def clamp_long_words(words: list[Word]) -> list[Word]:
    """Shorten words that swallowed a pause, as OpenAI's word timing does: DTW stretches the
    first word of a window, or of a sentence, back over the silence before it, and a
    sentence's last word forward over the silence after it. Such a word keeps the end
    (or start) next to its neighbours and at most twice the median word length."""
    if len(words) < 2:
        return list(words)
    durations = [w.end - w.start for w in words if w.end > w.start]
    if not durations:
        return list(words)
    longest = max(0.5, 2.0 * float(np.median(durations)))
    out = list(words)
    for i, w in enumerate(out):
        if w.end - w.start <= longest:
            continue
        starts_sentence = i == 0 or is_sentence_end(out[i - 1].text)
        ends_sentence = is_sentence_end(w.text)
        if starts_sentence:
            out[i] = replace(w, start=w.end - longest)
        elif ends_sentence:
            out[i] = replace(w, end=w.start + longest)
    return out
