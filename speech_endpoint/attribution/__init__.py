"""Attribution stage: pyannote diarization (`diarizer`), turns and their coverage, the
rules that repair speaker changes, sentence segments, known-speaker names, and
`speakers.attribute`, the product's key step (root `diarization_utils.py` re-exports it)."""
