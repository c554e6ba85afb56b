# Custom container for Hugging Face Inference Endpoints (or any Docker host): serves
# handler.py with `python -m scripts.serve` on port 80, health route /health.
#
#   docker build -t speech-endpoint .
#   docker run --gpus all -p 127.0.0.1:8080:80 -e ASR_MODEL=openai/whisper-large-v3 \
#       -e DIARIZATION_MODEL=pyannote/speaker-diarization-community-1 -e HF_TOKEN speech-endpoint
#
# No system FFmpeg is needed: PyAV and soundfile wheels bundle their libraries, and
# pyannote gets in-memory waveforms (it only warns that torchcodec cannot decode files).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    PYANNOTE_METRICS_ENABLED=0

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements-current.txt .
RUN pip install -r requirements-current.txt

COPY . .

EXPOSE 80

# Binds all interfaces without an API token: on Inference Endpoints the platform's proxy
# authenticates every request before it reaches the container. Elsewhere publish the port
# on loopback only (as above) or set API_TOKEN, which serve.py then requires on POST.
CMD ["python", "-m", "scripts.serve", "--host", "0.0.0.0", "--port", "80", "--allow-unauthenticated"]
