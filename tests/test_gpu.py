"""On a CUDA device (scripts/gpu_check.sh runs these; they skip elsewhere): float16 decoding
against float32, word times, assisted = plain, and pyannote on the GPU. The script's
CPU-side behaviour is checked everywhere."""
import subprocess
from pathlib import Path

import pytest
import torch

from evaluation import scoring

REPO = Path(__file__).resolve().parent.parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_the_gpu_script_is_sound_and_says_when_there_is_no_gpu():
    script = REPO / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the script would run for real")
    result = subprocess.run(["bash", str(script), "/tmp/gpu-check-out"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no CUDA device" in result.stderr


def handler_on(device: str, **env):
    from conftest import MODEL_ENV
    from handler import EndpointHandler

    with pytest.MonkeyPatch.context() as mp:
        for name in MODEL_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("DEVICE", device)
        for name, value in env.items():
            mp.setenv(name, str(value))
        return EndpointHandler(str(REPO))


@pytest.fixture(scope="module")
def dialogue(dialogue_dir):
    return (dialogue_dir / "dialogue.wav").read_bytes(), (dialogue_dir / "dialogue.txt").read_text()


@cuda
@pytest.mark.gpu
def test_float16_on_the_gpu_matches_float32_within_a_wer_point(real_whisper_dir, dialogue):
    audio, reference = dialogue
    gpu = handler_on("cuda", ASR_MODEL=real_whisper_dir)({"inputs": audio})
    cpu = handler_on("cpu", ASR_MODEL=real_whisper_dir)({"inputs": audio})
    assert gpu["metadata"]["dtype"] == "float16" and cpu["metadata"]["dtype"] == "float32"
    assert abs(scoring.wer(reference, gpu["text"]) - scoring.wer(reference, cpu["text"])) <= 0.01
    duration = gpu["metadata"]["duration"]
    starts = [w["start"] for w in gpu["words"]]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= duration for w in gpu["words"])


@cuda
@pytest.mark.gpu
def test_assisted_equals_plain_on_the_gpu(real_whisper_dir, dialogue, tmp_path):
    subprocess.run(["python", "-m", "scripts.make_cut_assistant", str(real_whisper_dir), str(tmp_path / "draft"),
                    "--layers", "2"], cwd=REPO, check=True)
    handler = handler_on("cuda", ASR_MODEL=real_whisper_dir, ASSISTANT_MODEL=tmp_path / "draft")
    audio, _ = dialogue
    plain = handler({"inputs": audio, "parameters": {"batch_size": 1}})
    assisted = handler({"inputs": audio, "parameters": {"assisted": True}})
    assert assisted["metadata"]["assisted"] and assisted["text"] == plain["text"]


@cuda
@pytest.mark.gpu
def test_pyannote_runs_on_the_gpu(real_whisper_dir, real_diarization_dir, dialogue):
    handler = handler_on("cuda", ASR_MODEL=real_whisper_dir, DIARIZATION_MODEL=real_diarization_dir)
    assert next(handler.diarizer.pipeline._segmentation.model.parameters()).is_cuda
    out = handler({"inputs": dialogue[0], "parameters": {"num_speakers": 2}})
    assert len({s["speaker"] for s in out["speakers"]}) == 2
