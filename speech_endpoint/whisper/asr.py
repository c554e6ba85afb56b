"""Whisper (and an optional speculative-decoding assistant) behind one `transcribe` call.

Two decoding strategies:
- windows (default, `chunk_length_s` > 0): the audio is cut at pauses into windows of at
  most `chunk_length_s`, the windows are decoded (greedy, or with `beam_size` beams) in
  batches of `batch_size` without timestamp tokens, and word times come from
  cross-attention alignment. Nothing is decoded twice, words are never cut, and Whisper's
  timestamp-mode repetitions at window edges cannot happen.
- sequential (`chunk_length_s` = 0, greedy): transformers' implementation of OpenAI's
  long-form algorithm (timestamp tokens, each window starting where the last segment ended).
Model I/O only: text and time post-processing lives in `speech_endpoint.attribution.segmentation`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from transformers import LogitsProcessorList

from speech_endpoint import compat
from speech_endpoint.whisper import precision, scores
from speech_endpoint.whisper.precision import Placement
from speech_endpoint.whisper.alignment import FRAMES_PER_SECOND, CrossAttentionRecorder, recorded_rows, teacher_forced, window_words
from speech_endpoint.whisper.scores import Suppression, TokenProbabilities
from speech_endpoint.whisper.languages import detect_language
from speech_endpoint.schema import SAMPLE_RATE, Audio, DecodeOptions, SpeechActivity, Transcript, Word
from speech_endpoint.whisper.sequential import transcribe_sequential
from speech_endpoint.speech.skipped_speech import guard
from speech_endpoint.speech.activity import speech_windows

log = logging.getLogger(__name__)
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAMES_PER_SECOND  # audio samples per encoder frame (20 ms)
MIN_WINDOW_S = 1.0
SEQUENTIAL_WINDOW_S = 30.0  # Whisper's own window: skipped speech after sequential decoding is cut to it
# speculative decoding's settings, read from the assistant's generation_config.json
ASSISTANT_SETTINGS = ("num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold")


class WhisperASR:
    """Loads Whisper once; `transcribe` turns 16 kHz audio into a `Transcript` with words."""

    def __init__(self, model_id: str, *, placement: Placement, assistant_id: str | None = None,
                 token: str | None = None):
        from transformers import AutoModelForSpeechSeq2Seq

        # int8 decoder weights need bfloat16 activations: not beside a draft (see _decoder_in_bf16)
        self.placement = replace(placement, cpu_int8=False) if assistant_id else placement
        self.device, self.dtype = placement.device, placement.dtype
        self.attention = precision.implementation()
        self.model = AutoModelForSpeechSeq2Seq.from_pretrained(model_id, **self._load_kwargs(token))
        self.model.to(self.device).eval()
        self.suppression = Suppression.take_from(self.model.generation_config)
        if placement.cpu_bf16:
            precision.encoder_in_bf16(self.model)
            precision.output_layer_in_bf16(self.model)
            if not assistant_id:  # see _decoder_in_bf16
                self._decoder_in_bf16(self.model)
        if self.placement.cpu_int8:
            precision.decoder_weights_in_int8(self.model)
        self.processor = compat.load_processor(model_id, token)
        self.tokenizer = self.processor.tokenizer
        self.assistant = self._load_assistant(assistant_id, token) if assistant_id else None
        compat.quiet_generate(self.assistant)
        self._pipe = None  # built on first sequential request
        gen = self.model.generation_config
        # half the decoder's positions, minus its prompt (or less, where the checkpoint says so)
        self.max_new_tokens = min(self.model.config.max_target_positions // 2 - 4, gen.max_new_tokens or 10**9)
        self.multilingual = bool(getattr(gen, "is_multilingual", True))
        self.eot = int(gen.eos_token_id if isinstance(gen.eos_token_id, int) else gen.eos_token_id[0])

    def _load_kwargs(self, token: str | None) -> dict[str, Any]:
        """`from_pretrained` arguments for the model and its draft: the same dtype and attention."""
        return {"token": token, "low_cpu_mem_usage": True, "attn_implementation": self.attention,
                **compat.dtype_kwargs(self.dtype)}

    def _load_assistant(self, assistant_id: str, token: str | None = None) -> torch.nn.Module:
        """distil-whisper ships a decoder-only `WhisperForCausalLM` that reuses the main
        encoder's output; a full smaller Whisper works as well."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSpeechSeq2Seq

        config = AutoConfig.from_pretrained(assistant_id, token=token)
        decoder_only = any("CausalLM" in arch for arch in (config.architectures or []))
        loader = AutoModelForCausalLM if decoder_only else AutoModelForSpeechSeq2Seq
        assistant = loader.from_pretrained(assistant_id, **self._load_kwargs(token)).to(self.device).eval()
        # generate() adapts these during a call and (transformers 4.x) writes them back to
        # the assistant's generation config: each request starts from the checkpoint's own.
        self.assistant_settings = {k: getattr(assistant.generation_config, k, None) for k in ASSISTANT_SETTINGS}
        if self.placement.cpu_bf16:
            precision.output_layer_in_bf16(assistant)
            self._decoder_in_bf16(assistant)
        scores.reduce_output(assistant)  # a draft over a reduced vocabulary (make_draft --vocab)
        return assistant

    def _decoder_in_bf16(self, model: torch.nn.Module) -> None:
        """A decoder's linear layers and cross-attention keys and values in bfloat16
        (`precision`). Not the main model's when a draft may verify against it:
        bfloat16 rounds each product, and the rows of a verification pass (several tokens at
        once) then differ by a rounding step from the same rows decoded one at a time, enough
        to flip a near tie (the 8 s dev clip's last word), so assisted output would no longer
        equal plain output. The draft's own numbers do not matter: every token is verified."""
        precision.decoder_linears_in_bf16(model)
        if self.attention == precision.NAME:
            precision.cross_attention_cache_in_bf16(model)

    # ---- public ---------------------------------------------------------------------

    def transcribe(self, audio: Audio, activity: SpeechActivity, options: DecodeOptions,
                   progress: Callable[[float, float], None] | None = None) -> Transcript:
        """Words of `audio`; windows are cut from `activity` (the request's one
        speech-activity pass), and speech that decoding skipped is decoded once more
        (`skipped_speech`). `progress(done_s, total_s)` is called as windows finish."""
        with torch.inference_mode():
            if options.chunk_length_s == 0:
                transcript = self._sequential(audio, options)
            else:
                transcript = self._windows(audio, activity, options, progress)
            # skipped speech is cut into windows as the first pass cut its own
            window_s = max(options.chunk_length_s or SEQUENTIAL_WINDOW_S, MIN_WINDOW_S)
            return guard(transcript, activity, len(audio.samples), audio.sample_rate,
                         sequential=options.chunk_length_s == 0, max_window_s=window_s,
                         decode=lambda spans: self._decode(audio, spans, transcript.language, options)[0])

    def warm_up(self) -> None:
        """The encoder and two decoding steps on a second of silence, so that the first
        request does not pay for lazy initialisation (CUDA context, kernels, caches)."""
        options = DecodeOptions(language="en" if self.multilingual else None, batch_size=1)
        with torch.inference_mode():
            features = self._features([np.zeros(SAMPLE_RATE, np.float32)])
            kwargs = {**self.generate_kwargs(options, options.language), **compat.new_tokens_kwargs(2)}
            self.model.generate(encoder_outputs=self.model.get_encoder()(features), return_timestamps=False, **kwargs,
                                logits_processor=LogitsProcessorList([self.suppression.processor()]))

    # ---- windows strategy ---------------------------------------------------------------

    def _windows(self, audio: Audio, activity: SpeechActivity, options: DecodeOptions, progress) -> Transcript:
        # Windows under a second would cost an encoder pass each for next to no audio.
        spans = speech_windows(activity, len(audio.samples), audio.sample_rate,
                               max(options.chunk_length_s, MIN_WINDOW_S))
        words, texts, language = self._decode(audio, spans, options.language, options, progress)
        return Transcript(" ".join(t for t in texts if t), words, language)

    def _decode(self, audio: Audio, spans: list[tuple[int, int]], language: str | None, options: DecodeOptions,
                progress=None) -> tuple[list[Word], list[str], str | None]:
        """Words and text of each [start, end) sample range, decoded in batches; the language
        detected from the first batch when not given."""
        # Each beam holds its own copy of the window's cross-attention keys and values
        # (large-v3: ~250 MB in float16), so `batch_size` counts beams: memory as greedy's.
        batch = options.windows_per_batch
        words: list[Word] = []
        texts: list[str] = []
        for first in range(0, len(spans), batch):
            group = spans[first:first + batch]
            features = self._features([audio.samples[s:e] for s, e in group])
            encoded = self.model.get_encoder()(features)
            if language is None and self.multilingual:
                language = detect_language(self.model, encoded.last_hidden_state, [e - s for s, e in group])
            token_lists, attention, probabilities = self._generate(features, encoded, language, options)
            if attention is None and any(token_lists):
                prefix = self._prompt_ids(options.prompt) + self._prefix(language, options.task)
                attention, probabilities = teacher_forced(self.model, prefix, token_lists, encoded.last_hidden_state,
                                                          self.eot)
            token_lists = self._guard(encoded, token_lists, probabilities, options)
            words.extend(self._align(group, token_lists, attention, probabilities, language))
            texts.extend(self.tokenizer.decode(t).strip() for t in token_lists)
            if progress:
                progress(group[-1][1] / audio.sample_rate, audio.duration)
        return words, texts, language

    def _features(self, pieces: list[np.ndarray]) -> torch.Tensor:
        return self.processor.feature_extractor(
            pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features.to(self.device, self.dtype)

    def _generate(self, features, encoded, language: str | None,
                  options: DecodeOptions) -> tuple[list[list[int]], list[torch.Tensor] | None, list | None]:
        """Text tokens per window, and their alignment-head attention and probabilities
        when they could be recorded during generation (None: compute them afterwards)."""
        kwargs = {"return_timestamps": False, **self.generate_kwargs(options, language)}
        if options.use_assistant or options.beam_size > 1:
            # Nothing is recorded (computed afterwards): speculative decoding runs rejected
            # draft tokens through the model, and beam search reorders its rows.
            if options.use_assistant:
                for key, value in self.assistant_settings.items():
                    setattr(self.assistant.generation_config, key, value)
                if self.assistant.config.is_encoder_decoder:
                    kwargs["input_features"] = features  # a full assistant runs its own encoder
            # generate() repeats the encoder output per beam in place: it gets a copy
            out = self.model.generate(encoder_outputs=type(encoded)(last_hidden_state=encoded.last_hidden_state),
                                      **kwargs, logits_processor=LogitsProcessorList(
                                          [self.suppression.processor(at_begin=not options.use_assistant)]))
            return [self._text_tokens(row.tolist()) for row in _sequences(out)], None, None
        probabilities = TokenProbabilities(self.eot)
        with CrossAttentionRecorder(self.model) as recorder:
            out = self.model.generate(encoder_outputs=encoded, **kwargs,
                                      logits_processor=LogitsProcessorList([self.suppression.processor(), probabilities]))
        sequences = [row.tolist() for row in _sequences(out)]
        token_lists = [self._text_tokens(row) for row in sequences]
        rows = recorded_rows(recorder, sequences, token_lists)
        probs = [probabilities.for_tokens(i, tokens) for i, tokens in enumerate(token_lists)]
        if rows is None or len(probabilities.runs) != 1 or any(p is None for p in probs):
            return token_lists, None, None
        return token_lists, recorder.logits(encoded.last_hidden_state, rows), probs

    def generate_kwargs(self, options: DecodeOptions, language: str | None) -> dict[str, Any]:
        """What both strategies pass to `generate`: greedy or beam search, task and language
        (multilingual models), the spelling prompt, and the assistant."""
        # At most half the decoder's context per window, as OpenAI's decoding: a window that
        # loops (music, noise) stops there instead of running past the position table.
        kwargs: dict[str, Any] = {**compat.greedy_generate_kwargs(), **compat.new_tokens_kwargs(self.max_new_tokens),
                                  "num_beams": options.beam_size}
        if self.multilingual:
            kwargs["task"] = options.task
            if language:
                kwargs["language"] = language
        if options.prompt:
            kwargs["prompt_ids"] = torch.as_tensor(self._prompt_ids(options.prompt), device=self.device)
        if options.use_assistant:
            kwargs["assistant_model"] = self.assistant
        return kwargs

    def _prompt_ids(self, prompt: str | None) -> list[int]:
        """<|startofprev|> and the prompt's last tokens (the prompt may take the other half
        of the decoder's context); [] without a prompt."""
        if not prompt:
            return []
        ids = [int(t) for t in self.tokenizer.get_prompt_ids(prompt, return_tensors="np")]
        return ids[:1] + ids[1:][-(self.max_new_tokens - 1):]

    def _text_tokens(self, sequence: list[int]) -> list[int]:
        """Generated text tokens only: whatever precedes the decoder prompt (a text prompt,
        on versions that return it) and every special or timestamp token (ids >= eot)."""
        sot = self.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        if sot in sequence:
            sequence = sequence[len(sequence) - sequence[::-1].index(sot):]
        return [t for t in sequence if t < self.eot]

    def _prefix(self, language: str | None, task: str) -> list[int]:
        tok = self.tokenizer
        prefix = [tok.convert_tokens_to_ids("<|startoftranscript|>")]
        if self.multilingual:
            prefix.append(tok.convert_tokens_to_ids(f"<|{language or 'en'}|>"))
            prefix.append(tok.convert_tokens_to_ids(f"<|{task}|>"))
        prefix.append(tok.convert_tokens_to_ids("<|notimestamps|>"))
        return prefix

    def _guard(self, encoded, token_lists: list[list[int]], probabilities, options: DecodeOptions) -> list[list[int]]:
        """Each window's tokens, or none where OpenAI's guards say no speech or a loop."""
        doubtful = [i for i, probs in enumerate(probabilities or []) if scores.doubtful(probs)]
        no_speech = dict(zip(doubtful, scores.no_speech_probabilities(
            self.model, encoded.last_hidden_state[doubtful], self._prompt_ids(options.prompt)))) if doubtful else {}
        return [tokens if not tokens or scores.keep(self.tokenizer.decode(tokens), probs, no_speech.get(i)) else []
                for i, (tokens, probs) in enumerate(zip(token_lists, probabilities or [[]] * len(token_lists)))]

    def _align(self, spans, token_lists, attention, probabilities, language) -> list[Word]:
        """Words of each window, timed from cross-attention + DTW and offset to the audio."""
        words: list[Word] = []
        for (start, end), tokens, qk, probs in zip(spans, token_lists, attention or [], probabilities or []):
            if tokens:
                words.extend(window_words(self.tokenizer, tokens, qk, probs, start / SAMPLE_RATE,
                                          (end - start) // SAMPLES_PER_FRAME, language))
        return words

    # ---- sequential strategy ------------------------------------------------------------

    def _sequential(self, audio: Audio, options: DecodeOptions) -> Transcript:
        if self._pipe is None:
            from transformers import pipeline

            self._pipe = pipeline("automatic-speech-recognition", model=self.model,
                                  tokenizer=self.tokenizer, feature_extractor=self.processor.feature_extractor,
                                  device=self.device)
        # timestamp tokens: transformers' own suppression, ahead of its timestamp processor
        kwargs = {**self.generate_kwargs(options, options.language), **self.suppression.generate_kwargs()}
        with precision.eager_for_token_timestamps(self.model):
            return transcribe_sequential(self._pipe, audio, kwargs, self.tokenizer, self.eot, options.language)


def _sequences(out) -> torch.Tensor:
    return out if torch.is_tensor(out) else out.sequences
