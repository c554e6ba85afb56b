"""What users see in the log while the endpoint decodes: no warnings transformers raises
against the arguments it is given (they repeat per window, and some will become errors)."""
import logging
import subprocess
import sys

import pytest

from support.server import REPO, clean_env
from speech_endpoint import compat

# Requests through the handler's three decoding paths: batched windows, OpenAI's sequential
# long-form (via transformers' pipeline), and speculative decoding with the assistant.
SCRIPT = """
import base64, sys
from handler import EndpointHandler
from support.audio_factory import speech, wav_bytes
handler = EndpointHandler(".")
audio = base64.b64encode(wav_bytes(speech(40.0), 16000)).decode()
for params in ({}, {"chunk_length_s": 0}, {"assisted": True}):
    handler({"inputs": audio, "parameters": {"language": "en", "diarize": False, **params}})
print("served", file=sys.stderr)
"""

# transformers 5: a generation config passed with arguments (deprecated, to become an error),
# `max_new_tokens` beside a checkpoint's `max_length` (per window); 4.x: its pipeline's own
# `generate(inputs=...)`; both: a batch "without attention mask" whose rows are never padded.
# Other library warnings (once per process) are not this test's business.
UNWANTED = ("Passing `generation_config` together with", "seem to have been set",
            "The input name `inputs` is deprecated", "The attention mask is not set")


def test_decoding_logs_no_warning_about_its_arguments(tiny_models):
    env = clean_env(ASR_MODEL=str(tiny_models.whisper), ASSISTANT_MODEL=str(tiny_models.assistant),
                    WARMUP="true", PYTHONPATH=f"{REPO}:{REPO / 'tests'}")
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and "served" in run.stderr, run.stderr[-3000:]
    for line in run.stderr.splitlines():
        assert not any(text in line for text in UNWANTED), line


@pytest.mark.skipif((compat.TRANSFORMERS_MAJOR or 0) < 5, reason="the filter exists for transformers 5")
def test_the_filter_drops_only_what_transformers_passes_itself(caplog):
    compat.quiet_generate()
    log = logging.getLogger("transformers.generation.utils")
    message = ("Passing `generation_config` together with generation-related arguments=({%s}) is deprecated "
               "and will be removed in future versions.")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log.warning(message % "'begin_suppress_tokens', 'suppress_tokens'")
        log.warning(message % "'max_new_tokens', 'use_cache', 'min_new_tokens'")
        log.warning(message % "'suppress_tokens', 'num_beams'")
    assert [r.getMessage() for r in caplog.records] == [message % "'suppress_tokens', 'num_beams'"]
