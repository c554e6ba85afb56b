"""Building blocks of the speech endpoint, one folder per stage; `handler.py` at the repo
root wires them together.

Layers, bottom to top (a module imports only its own layer or lower ones; checked by
tests/test_architecture.py):
  base         `schema` (typed records, the client and configuration errors, and what the
               handler needs from each model, as Protocols), `text` (punctuation, word
               lists by language), `compat` (the one place that knows library versions)
  speech/      audio decoding, speech detection (Silero VAD), windows, word times, the
               skipped-speech guard
  whisper/     Whisper: loading, device, precision (bfloat16, int8) and attention, decoding, alignment,
               token scores (suppression, confidence, guards), languages (names, codes,
               detection); the only place that touches transformers internals
  attribution/ pyannote diarization, turns, coverage, the attribution rules, sentence
               segments, known-speaker names: who said which word
  render/      the response JSON and the SRT / VTT / RTTM formats
  serving/     the local HTTP server (a stand-in for the platform's container); imports
               base and whisper/ (language names)
`whisper/` and `attribution/` are siblings: neither imports the other.
"""
