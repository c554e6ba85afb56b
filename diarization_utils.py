"""Who said which word: the public entry the platform layout names.

The logic lives in `speech_endpoint.attribution.speakers` (words joined to diarization
turns, repaired by `speech_endpoint.attribution.rules`, cut into segments and utterances);
this module re-exports its entry points (and `group_utterances`, from
`speech_endpoint.attribution.segmentation`) so `import diarization_utils` keeps working.
"""
from __future__ import annotations

from speech_endpoint.attribution.segmentation import group_utterances
from speech_endpoint.attribution.speakers import (
    assign_speakers,
    attribute,
    relabel_in_order,
    rename_speakers,
    speaker_label_map,
)

__all__ = [
    "attribute",
    "rename_speakers",
    "assign_speakers",
    "speaker_label_map",
    "relabel_in_order",
    "group_utterances",
]
