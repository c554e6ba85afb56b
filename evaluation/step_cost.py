"""CPU time of one decoding step (batch 1, with the key/value cache) of the main model and of
each draft, the cost lever of speculative decoding: a cycle of n draft tokens at acceptance a
yields about 1 + a + ... + a^n tokens for one verification pass and n draft steps.

Each model's decoder runs teacher-forced along the same token sequence (the decoder prompt,
then the main model's own greedy transcript of the window), one token at a time after the
prompt, as generate() runs it; every step's thread CPU time is recorded (with one torch
thread the compute runs on the calling thread), models interleaved and rotated per repeat,
and the median step is reported. The output layer is included: the main model's full one, a
draft's full one or its reduced one (`draft_vocab`). generate()'s own per-step overhead
(logits processors, stopping criteria, the verification bookkeeping) is not.
"""
from __future__ import annotations

import inspect
import statistics
import time

import torch


def _cache_name(decoder) -> str:
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def decoder_steps(model, encoded: torch.Tensor, ids: list[int], prompt: int, width: int = 1) -> list[float]:
    """CPU seconds of each step after the first `prompt` tokens of `ids`, `width` tokens a
    step (1: a decoding step; n + 1: the main model's verification of n draft tokens)."""
    decoder = model.model.decoder  # WhisperModel and the decoder-only draft's wrapper both hold one
    name = _cache_name(decoder)
    times = []
    with torch.inference_mode():
        out = decoder(input_ids=torch.tensor([ids[:prompt]]), encoder_hidden_states=encoded, use_cache=True)
        model.proj_out(out.last_hidden_state)
        for first in range(prompt, len(ids) - width + 1, width):
            started = time.thread_time()
            out = decoder(input_ids=torch.tensor([ids[first:first + width]]), encoder_hidden_states=encoded,
                          use_cache=True, **{name: out.past_key_values})
            model.proj_out(out.last_hidden_state)
            times.append(time.thread_time() - started)
    return times


def step_costs(models: dict, encoded: list[torch.Tensor], sequences: list[list[int]], prompt: int,
               repeats: int, verify: tuple[int, ...] = (4,)) -> dict:
    """{name: {"step_ms": median CPU ms a step, "vs_main": its ratio to the model named
    "main", "steps": steps timed}} over every window (encoder output, token sequence), and
    the main model's pass over N tokens for each N in `verify` as "main, N-token pass"."""
    runs = {name: (model, 1) for name, model in models.items()}
    for width in verify if "main" in models else ():
        if width > 1:
            runs[f"main, {width}-token pass"] = (models["main"], width)
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            model, width = runs[name]
            for enc, ids in zip(encoded, sequences):
                times[name].extend(decoder_steps(model, enc, ids, prompt, width))
    medians = {name: statistics.median(t) for name, t in times.items() if t}
    main = medians.get("main")
    return {name: {"step_ms": round(1000 * m, 3), "vs_main": round(m / main, 3) if main else None,
                   "steps": len(times[name])} for name, m in medians.items()}
