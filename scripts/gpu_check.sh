#!/usr/bin/env bash
# The GPU checks, on a machine with a CUDA device, in under 8 minutes: the tests marked
# `gpu` (float16 against float32 on the dev dialogue, word times, assisted = plain, pyannote
# on the GPU), the latency table with Whisper base and the real diarization pipeline, and
# the handler's latency with 5 beams.
# Everything comes from the working tree and the folders named below (no network needed).
#
#   WHISPER_MODEL_DIR=.../whisper-base DIALOGUE_DIR=.../dialogue \
#   DIARIZATION_MODEL_DIR=.../pyannote-campplus bash scripts/gpu_check.sh [OUT_DIR]
#
# Writes OUT_DIR (default gpu-results/): environment.txt, gpu-tests.log, latency.md/.json,
# latency-beam5.md/.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-gpu-results}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device here: nothing to check" >&2
    "$PYTHON" -c "from speech_endpoint.whisper.precision import cuda_problem; print(cuda_problem())" >&2 || true
    exit 2
fi
: "${WHISPER_MODEL_DIR:?set WHISPER_MODEL_DIR to a Whisper checkpoint folder}"
: "${DIALOGUE_DIR:?set DIALOGUE_DIR to the dialogue folder}"
: "${DIARIZATION_MODEL_DIR:?set DIARIZATION_MODEL_DIR to a pyannote pipeline folder}"
export PYTHONPATH="$DIARIZATION_MODEL_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYANNOTE_METRICS_ENABLED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

{ nvidia-smi || true; "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('transformers', transformers.__version__)"; } \
    > "$OUT/environment.txt" 2>&1

status=0
timeout 300 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$OUT/gpu-tests.log" || status=1

ASR_MODEL=$WHISPER_MODEL_DIR DIARIZATION_MODEL=$DIARIZATION_MODEL_DIR DEVICE=cuda \
    timeout 240 "$PYTHON" -m evaluation.benchmark --audio "$DIALOGUE_DIR/dialogue.wav" \
    --reference-text "$DIALOGUE_DIR/dialogue.txt" --runs 3 --only handler diarization reference \
    --output "$OUT/latency" || status=1
# what 5 beams cost on a GPU (1.8-2.9x greedy's time on a CPU): whether DEFAULT_BEAM_SIZE 5 pays there
ASR_MODEL=$WHISPER_MODEL_DIR DEVICE=cuda \
    timeout 60 "$PYTHON" -m evaluation.benchmark --audio "$DIALOGUE_DIR/dialogue.wav" \
    --reference-text "$DIALOGUE_DIR/dialogue.txt" --runs 3 --only handler --params '{"beam_size": 5}' \
    --output "$OUT/latency-beam5" || status=1
echo "gpu_check: results in $OUT (exit $status)"
exit $status
