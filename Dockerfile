# Custom container for Hugging Face Inference Endpoints (or any Docker host): serves
# handler.py with `python -m scripts.serve` on port 80, health route /health.
#
#   docker build -t speech-endpoint .
#   docker run --gpus all -p 127.0.0.1:8080:80 -e ASR_MODEL=openai/whisper-large-v3 \
#       -e DIARIZATION_MODEL=pyannote/speaker-diarization-community-1 -e HF_TOKEN speech-endpoint
#
# No system FFmpeg is needed: PyAV and soundfile wheels bundle their libraries, and
# pyannote gets in-memory waveforms (it only warns that torchcodec cannot decode files).
#
# GPU driver: the pinned torch (2.14.1 from PyPI) is built for CUDA 13.0, which needs an
# NVIDIA driver >= 580. With an older driver torch sees no GPU: the endpoint then says so
# at start-up (DEVICE=cuda refuses to start; DEVICE=auto runs on the CPU and reports
# device "cpu" in every response and in /metrics). For such a host, build with a torch
# for the driver's CUDA, e.g. CUDA 12.6 (driver >= 560):
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t speech-endpoint .
FROM python:3.11-slim

# Empty: torch from PyPI as pinned (CUDA 13). Else the index to take the same torch and
# torchaudio versions from, built for another CUDA.
ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    PYANNOTE_METRICS_ENABLED=0

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements-current.txt .
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" \
            $(grep -E '^(torch|torchaudio)==' requirements-current.txt); \
    fi && \
    pip install -r requirements-current.txt

COPY . .

EXPOSE 80

# Binds all interfaces without an API token: on Inference Endpoints the platform's proxy
# authenticates every request before it reaches the container. Elsewhere publish the port
# on loopback only (as above) or set API_TOKEN, which serve.py then requires on POST.
CMD ["python", "-m", "scripts.serve", "--host", "0.0.0.0", "--port", "80", "--allow-unauthenticated"]
