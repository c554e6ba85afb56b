"""Speech stage: audio in, where speech is (Silero VAD), windows cut where speech is least
likely, word times fitted to speech, and the guard that re-decodes speech left without
words. No Whisper internals here (re-decoding is a callback)."""
