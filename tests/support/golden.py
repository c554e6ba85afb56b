"""Golden responses: the handler's answers to the dev dialogue with the real Whisper base
and the exact oracle diarization, kept in tests/golden/ per transformers major version
(the two stacks decode a few words differently). tests/test_golden.py compares against
them; regenerate them only when a change of behaviour is intended, and say so:

    WHISPER_MODEL_DIR=... DIALOGUE_DIR=... PYTHONPATH=tests python -m support.golden
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from speech_endpoint.compat import TRANSFORMERS_MAJOR

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
CASES = {
    "diarized": {"output_formats": ["srt", "vtt", "rttm"]},
    "words": {"diarize": False, "timestamp_granularity": "word", "output_formats": ["srt"]},
    "sequential": {"diarize": False, "chunk_length_s": 0},
}


def golden_path() -> Path:
    return GOLDEN_DIR / f"dialogue-transformers{TRANSFORMERS_MAJOR}.json"


def comparable(response: dict) -> dict:
    """The response without its timings (the only part that may differ run to run)."""
    metadata = {k: v for k, v in response.get("metadata", {}).items() if k != "timings"}
    return {**response, "metadata": metadata}


def responses(handler, audio: bytes) -> dict:
    return {name: {"parameters": params,
                   "response": comparable(handler({"inputs": audio, "parameters": params}))}
            for name, params in CASES.items()}


def handler_env(whisper_dir: str | Path, rttm: Path, workdir: Path) -> dict[str, str | None]:
    """The endpoint's settings for the golden run: real Whisper, the exact oracle over
    `rttm`, nothing else (None: unset)."""
    from evaluation.oracle_diarization import write_oracle_pipeline

    return {"ASR_MODEL": str(whisper_dir), "DIARIZATION_MODEL": str(write_oracle_pipeline(workdir / "exact", rttm)),
            "ASSISTANT_MODEL": None, "HF_TOKEN": None, "CPU_BF16": "false",
            "CPU_INT8": "false"}  # float32: the same on every CPU


def build_handler():
    """`EndpointHandler(repo)` with the settings in the environment, as the platform builds it."""
    from handler import EndpointHandler

    return EndpointHandler(str(Path(__file__).resolve().parents[2]))


def main() -> int:
    import torch

    torch.set_num_threads(1)
    dialogue = Path(os.environ["DIALOGUE_DIR"])
    with tempfile.TemporaryDirectory() as tmp:
        env = handler_env(os.environ["WHISPER_MODEL_DIR"], dialogue / "dialogue.rttm", Path(tmp))
        os.environ.update({k: v for k, v in env.items() if v is not None})
        for name in (k for k, v in env.items() if v is None):
            os.environ.pop(name, None)
        handler = build_handler()
        result = responses(handler, (dialogue / "dialogue.wav").read_bytes())
    golden_path().write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(golden_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
