"""Building blocks of the speech endpoint: audio decoding, Whisper ASR, diarization I/O,
output formats and the local server. `handler.py` at the repo root wires them together."""
