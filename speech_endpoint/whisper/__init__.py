"""Whisper stage: the recogniser (`asr.WhisperASR`) and the only modules that touch
transformers internals (attention, alignment hooks, suppression, precision)."""
