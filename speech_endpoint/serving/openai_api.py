"""OpenAI-compatible routes: POST /v1/audio/transcriptions and /v1/audio/translations.

The official `openai` client works against this server (`OpenAI(base_url=URL + "/v1",
api_key=API_TOKEN or any text)`). Requests are multipart/form-data as OpenAI defines them:

  file                       the audio (required; any container the handler decodes)
  model                      accepted (printable ASCII) and echoed in the `openai-model`
                             response header; it does not choose a checkpoint (ASR_MODEL does)
  language, prompt           passed to the handler (language: code or name)
  temperature                a number from 0 to 1, checked and then unused: the handler
                             always decodes greedily (temperature 0, no sampling, no
                             fallback), and verbose_json's segments say so (temperature 0.0)
  response_format            json (default), text, srt, vtt, verbose_json
  timestamp_granularities[]  word and/or segment (the name without [] too): what
                             verbose_json lists; segments when none is given
  num_speakers, min_speakers, max_speakers, diarize, multichannel
                             this endpoint's speaker options (multichannel: one speaker per
                             channel of a stereo call)
  stream                     false only: answers are not streamed
Other fields are ignored, as the handler ignores unknown parameters. The route maps them
onto the handler's parameters (task transcribe / translate; `output_formats` for srt and
vtt) and runs through the same queue, limits, token check and metrics as the platform's
route (`InferenceService`).

Answers: json {"text"}; text (plain); srt, vtt (the handler's subtitles, speaker-labelled
when diarization ran); verbose_json (`openai_format`). Errors are OpenAI's shape
{"error": {"message", "type", "param", "code"}}: 400 invalid_request_error for a bad or
missing field, an unsupported format or the handler's ClientError (param names the field);
401 (code invalid_api_key); 413 (code request_too_large); 503 server_error (Retry-After
while loading or busy); 504; 500.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from speech_endpoint.serving.inference import Parsed, Protocol
from speech_endpoint.serving.openai_format import verbose_json
from speech_endpoint.serving.parsing import RequestError, media_type

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
SPEAKER_FIELDS = ("num_speakers", "min_speakers", "max_speakers", "diarize", "multichannel")
MAX_FIELDS = 64
SAFE_MODEL = re.compile(r"^[\x20-\x7e]{1,128}$")  # echoed in a header: printable ASCII only
SUBTITLE_TYPES = {"srt": "text/plain; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
_PARAMETER = re.compile(r"parameter '(\w+)'")
# Handler parameters that come from a differently named form field.
_FIELD_OF_PARAMETER = {"output_formats": "response_format"}


@dataclass(frozen=True)
class Options:
    """One request's OpenAI options and the handler parameters they map onto."""

    task: str
    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    model: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def field_error(name: str, message: str) -> RequestError:
    return RequestError(f"parameter '{name}': {message}")


# ---- reading the form ----------------------------------------------------------------------


async def read_form(request: Request, body: bytes) -> FormData:
    """The multipart body (already read within the size limit) as Starlette's FormData."""
    if media_type(request.headers.get("content-type")) != "multipart/form-data":
        raise RequestError("Send multipart/form-data with the audio in the 'file' field (as OpenAI's API takes it)")

    async def chunks():
        yield body

    try:
        return await MultiPartParser(request.headers, chunks(), max_files=1, max_fields=MAX_FIELDS).parse()
    except (MultiPartException, ValueError) as exc:  # python-multipart's errors are ValueErrors
        raise RequestError(f"The multipart/form-data body could not be read: {str(exc)[:200]}") from None


def text_field(form: FormData, name: str) -> str | None:
    """A text field's stripped value; None when absent or empty."""
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_error(name, "must be a text field, not a file")
    return value.strip() or None


async def audio_of(form: FormData) -> bytes:
    upload = form.get("file")
    if upload is None:
        raise field_error("file", "required: the audio file to transcribe")
    if isinstance(upload, str):
        raise field_error("file", "must be a file upload, not a text field")
    audio = await upload.read()
    if not audio:
        raise field_error("file", "the uploaded file is empty")
    return audio


def granularities_of(form: FormData) -> tuple[str, ...]:
    values = [*form.getlist("timestamp_granularities[]"), *form.getlist("timestamp_granularities")]
    wanted: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise field_error("timestamp_granularities", "must be text fields")
        for item in (part.strip().lower() for part in value.split(",")):
            if item and item not in GRANULARITIES:
                raise field_error("timestamp_granularities", "each value must be 'word' or 'segment'")
            if item and item not in wanted:
                wanted.append(item)
    return tuple(wanted)


def options_from(form: FormData, task: str) -> Options:
    fmt = (text_field(form, "response_format") or "json").lower()
    if fmt == "diarized_json":
        raise field_error("response_format", "diarized_json is not supported here: use verbose_json, whose "
                                             "segments and words name their speaker")
    if fmt not in RESPONSE_FORMATS:
        raise field_error("response_format", f"unsupported; use one of {', '.join(RESPONSE_FORMATS)}")
    model = text_field(form, "model")
    if model is not None and not SAFE_MODEL.match(model):
        raise field_error("model", "must be printable ASCII, at most 128 characters")
    temperature = text_field(form, "temperature")
    if temperature is not None:
        # Checked for compatibility, then unused: the handler never samples (temperature 0,
        # no sampling and no temperature fallback), so no value changes the transcript.
        try:
            value = float(temperature)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise field_error("temperature", "must be a number from 0 to 1")
    if (text_field(form, "stream") or "false").lower() not in ("false", "0"):
        raise field_error("stream", "streaming is not supported; leave it out or send false")
    parameters: dict[str, Any] = {"task": task}
    for name in ("language", "prompt", *SPEAKER_FIELDS):
        value = text_field(form, name)
        if value is not None:
            parameters[name] = value
    if fmt in ("srt", "vtt"):
        parameters["output_formats"] = [fmt]
    return Options(task=task, response_format=fmt, granularities=granularities_of(form), model=model,
                   parameters=parameters)


def make_parse(task: str):
    async def parse(request: Request, body: bytes) -> Parsed:
        form = await read_form(request, body)
        try:
            options = options_from(form, task)
            audio = await audio_of(form)
        finally:
            await form.close()
        return Parsed({"inputs": audio, "parameters": options.parameters}, partial(render, options))

    return parse


# ---- answers -------------------------------------------------------------------------------


def _json(body: Any, headers: dict[str, str] | None) -> Response:
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")  # NaN: a 500
    return Response(data, media_type="application/json", headers=headers)


def render(options: Options, result: dict[str, Any]) -> Response:
    """The 200 answer in the request's response_format (runs on the worker thread)."""
    headers = {"openai-model": options.model} if options.model else None
    fmt = options.response_format
    if fmt == "verbose_json":
        return _json(verbose_json(result, options.task, options.granularities), headers)
    if fmt == "text":
        return Response((result.get("text") or "") + "\n", media_type="text/plain; charset=utf-8", headers=headers)
    if fmt in SUBTITLE_TYPES:
        return Response(result[fmt], media_type=SUBTITLE_TYPES[fmt], headers=headers)
    return _json({"text": result.get("text") or ""}, headers)


def openai_error(status: int, message: str, headers: dict[str, str] | None, extra: dict[str, Any]) -> Response:
    """OpenAI's error body; `param` is the form field a message names, when it names one."""
    if extra.get("request_id"):
        message = f"{message} (request id {extra['request_id']})"
    match = _PARAMETER.search(message) if status == 400 else None
    param = _FIELD_OF_PARAMETER.get(match.group(1), match.group(1)) if match else None
    code = {401: "invalid_api_key", 413: "request_too_large"}.get(status)
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


TRANSCRIPTIONS = Protocol(parse=make_parse("transcribe"), render=partial(render, Options("transcribe")),
                          error=openai_error)
TRANSLATIONS = Protocol(parse=make_parse("translate"), render=partial(render, Options("translate")),
                        error=openai_error)
# POST path -> protocol; app.INFERENCE_ROUTES includes these.
OPENAI_ROUTES = {"/v1/audio/transcriptions": TRANSCRIPTIONS, "/v1/audio/translations": TRANSLATIONS}
