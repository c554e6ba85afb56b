"""Settings: `ModelSettings` from the environment (once, at start-up), `InferenceConfig`
from each request's `parameters` (validated, unknown keys ignored), and `plan_decoding`,
the one place that decides how a request is decoded (assistant, beams, batch size)."""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Json,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from speech_endpoint.attribution.embedding_reuse import DEFAULT_EMBEDDING_STRIDE
from speech_endpoint.schema import SAMPLE_RATE, ClientError, ConfigurationError, DecodeOptions
from speech_endpoint.whisper.languages import normalize_language

MAX_BEAM_SIZE = 10  # beams cost time and memory in proportion; 10 is beyond any gain


class ModelSettings(BaseSettings):
    """Which models to serve and the endpoint's limits, read from environment variables
    (names case-insensitive; empty values count as unset)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_ignore_empty=True)

    asr_model: str = Field(min_length=1, description="Whisper checkpoint: hub id or local folder")
    assistant_model: str | None = Field(None, description="draft model for speculative decoding")
    diarization_model: str | None = Field(None, description="pyannote pipeline: hub id or folder")
    hf_token: SecretStr | None = Field(None, description="token for gated/private models")

    # What `assisted` means when a request does not say: false, true or "auto".
    default_assisted: bool | Literal["auto"] = False
    # "auto" uses the assistant on a GPU for audio up to this long (seed measurements: 2.4x
    # faster at 8 s, 1.2x slower at 60 s on an A10G with large-v3 + distil-large-v3), never
    # on a CPU (measured here: a trained draft is slower at every length).
    auto_assist_max_s: float = Field(30.0, ge=0)
    # `beam_size` when a request does not say: 1 is greedy; 5 (faster-whisper's) costs 1.8-2.9x on a CPU.
    default_beam_size: int = Field(1, ge=1, le=MAX_BEAM_SIZE)

    # auto: a GPU when torch can use one, else the CPU (the log and metadata say which);
    # cuda: a GPU or a start-up error saying why not; cpu: always the CPU.
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # torch threads on CPU (default: torch's choice, one per core). Replicas sharing cores
    # stall badly when each uses all of them: set 1-2 there.
    cpu_threads: int | None = Field(None, ge=1)
    # CPU only: Whisper's encoder and output layer in bfloat16 (35-39% faster, same words
    # measured); "auto" where the CPU computes bfloat16 natively (AVX512-BF16, AMX, Arm BF16).
    cpu_bf16: bool | Literal["auto"] = "auto"
    # CPU only: the decoder's weights in int8 (README: speed and WER); "auto" on x86 (AVX2).
    cpu_int8: bool | Literal["auto"] = "auto"

    # Step of pyannote's sliding 10 s segmentation window, as a share of it (pyannote: 0.1).
    # 0.2 halves the diarization's cost at +0.1 to +0.6 DER points (+1.9 on a call; README).
    diarization_step: float | None = Field(None, gt=0, le=1)
    # Embed every N-th window of the sliding segmentation, the others take matched embeddings
    # (speech_endpoint/attribution/embedding_reuse.py); 1 embeds every window, as pyannote does.
    diarization_embedding_stride: int = Field(DEFAULT_EMBEDDING_STRIDE, ge=1, le=100)
    # The pipeline's own parameters over its defaults, a JSON object such as
    # {"clustering": {"threshold": 0.6}}; names and types are checked against the loaded
    # pipeline at start-up (README, "Tuning diarization").
    diarization_params: Json[dict[str, Any]] | None = None
    # Known speakers: a reference names a diarized speaker when their cosine similarity
    # reaches this: the middle of the gap between other people and the same person across
    # real AMI meetings (README, "Known speakers on real voices").
    known_speaker_threshold: float = Field(0.5, ge=-1.0, le=1.0)
    max_known_speakers: int = Field(20, ge=0)
    max_reference_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_reference_s: float = Field(60.0, gt=0)
    min_reference_speech_s: float = Field(1.0, ge=0)

    max_payload_bytes: int = Field(200 * 1024 * 1024, ge=1)
    max_audio_s: float = Field(4 * 3600.0, gt=0)
    max_batch_size: int = Field(64, ge=1)
    # `multichannel` requests: at most this many channels (each is transcribed on its own).
    max_channels: int = Field(8, ge=2)
    # Run a short dummy request at start-up so the first client does not pay for lazy init.
    warmup: bool = True

    @model_validator(mode="after")
    def _decoding(self) -> "ModelSettings":
        if self.default_assisted is True and self.default_beam_size > 1:
            raise ValueError("DEFAULT_ASSISTED true needs DEFAULT_BEAM_SIZE 1 (speculative decoding is greedy)")
        if self.diarization_params and not self.diarization_model:
            raise ValueError("DIARIZATION_PARAMS needs DIARIZATION_MODEL (they set that pipeline's parameters)")
        return self

    @classmethod
    def from_env(cls, **overrides: Any) -> "ModelSettings":
        """Read the environment, `overrides` (settings by name, e.g. `asr_model`; None: the
        default, as if unset) over it; a missing or invalid variable stops start-up with a
        message naming it (never its value: the token is among them)."""
        values = {name: cls.model_fields[name].get_default() if value is None else value
                  for name, value in overrides.items() if value is not None or not cls.model_fields[name].is_required()}
        try:
            return cls(**values)
        except ValidationError as exc:
            # a check across settings has no location: its message names the variables
            names = [str(err["loc"][0]).upper() if err["loc"] else "" for err in exc.errors()]
            problems = "; ".join(f"{name}: {_plain(err)}" if name else _plain(err)
                                 for name, err in zip(names, exc.errors()))
            hint = (
                " (set ASR_MODEL to a Whisper model id such as openai/whisper-large-v3 "
                "or a local folder)"
                if "ASR_MODEL" in names
                else ""
            )
            raise ConfigurationError(f"Invalid endpoint settings: {problems}{hint}") from None

    @property
    def token(self) -> str | None:
        return self.hf_token.get_secret_value() if self.hf_token else None

    @classmethod
    def from_values(cls, **values: Any) -> "ModelSettings":
        """Settings from these values and the defaults only, the environment left unread
        (for tests and evaluation that pass components to `EndpointHandler.from_components`)."""
        return _ValuesOnly(**values)


class _ValuesOnly(ModelSettings):
    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **sources):  # type: ignore[override]
        return (init_settings,)


OutputFormat = Literal["srt", "vtt", "rttm"]
MAX_SPEAKERS = 100


class InferenceConfig(BaseModel):
    """Per-request parameters. Strings such as "24" or "true" are accepted because query
    strings carry only strings; anything else invalid is refused naming the field."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task: Literal["transcribe", "translate"] = "transcribe"
    batch_size: int = Field(24, ge=1)
    # None: the endpoint's default (ModelSettings.default_beam_size / default_assisted); 1 = greedy.
    beam_size: int | None = Field(None, ge=1, le=MAX_BEAM_SIZE)
    assisted: bool | Literal["auto"] | None = None
    # 0 = sequential long-form decoding (no chunking); otherwise chunk size in seconds.
    chunk_length_s: float = Field(30.0, ge=0, le=30)
    # Only used for raw PCM input (`input_format`); containers carry their own rate.
    sampling_rate: int = Field(SAMPLE_RATE, ge=1000, le=384000)
    input_format: Literal["auto", "pcm_s16le", "pcm_f32le"] = "auto"
    language: str | None = None
    # Bounded: pyannote fails on 256 or more (uint8 speaker counts); no real audio needs that.
    num_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    min_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    max_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    # None = on whenever the endpoint has a diarization model.
    diarize: bool | None = None
    timestamp_granularity: Literal["segment", "word"] = "segment"
    prompt: str | None = Field(None, max_length=1000)
    output_formats: tuple[OutputFormat, ...] = ()
    # name -> a short clip of that person alone (base64 audio) or a vector from
    # `speaker_embeddings` of an earlier response
    known_speakers: dict[str, str | list[float]] | None = None
    return_speaker_embeddings: bool = False
    # Stereo calls: each channel transcribed on its own as one speaker (SPEAKER_00 = the first).
    multichannel: bool = False

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string such as 'en' or 'english'")
        code = normalize_language(value)
        if code is None:
            # The value is not echoed back: clients sometimes put the wrong thing in a field.
            raise ValueError("unknown language; use a Whisper code like 'en' or a name like 'english'")
        return code

    @field_validator("output_formats", mode="before")
    @classmethod
    def _formats(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):  # "srt,vtt" from a query string, or a single name
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("known_speakers")
    @classmethod
    def _known_speakers(cls, value: dict[str, str | list[float]] | None) -> dict | None:
        if not value:
            return None
        for name, reference in value.items():
            if not name.strip() or len(name) > 64 or name != name.strip():
                raise ValueError("names must be 1-64 characters without leading or trailing spaces")
            if isinstance(reference, list) and not all(math.isfinite(x) for x in reference):
                raise ValueError(f"the vector of '{name[:64]}' has a value that is not a finite number")
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _speakers(self) -> "InferenceConfig":
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError("min_speakers must not exceed max_speakers")
        if self.num_speakers and (
            (self.min_speakers and self.num_speakers < self.min_speakers)
            or (self.max_speakers and self.num_speakers > self.max_speakers)
        ):
            raise ValueError("num_speakers must lie between min_speakers and max_speakers")
        if self.multichannel:
            clashes = [name for name in ("num_speakers", "min_speakers", "max_speakers", "known_speakers")
                       if getattr(self, name) is not None]
            clashes += [name for name in ("diarize", "return_speaker_embeddings") if getattr(self, name) is True]
            if clashes:
                raise ValueError(f"parameter 'multichannel': each channel is one speaker, so it cannot be combined "
                                 f"with {', '.join(clashes)} (they are for diarization, which does not run then)")
        return self

    @property
    def wants_speakers(self) -> bool:
        return (any(v is not None for v in (self.num_speakers, self.min_speakers, self.max_speakers))
                or bool(self.known_speakers) or self.return_speaker_embeddings)

    @classmethod
    def from_parameters(cls, parameters: Any) -> "InferenceConfig":
        """Validate a request's `parameters`; raises ClientError naming each bad field."""
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise ClientError("'parameters' must be a JSON object")
        try:
            return cls.model_validate(parameters)
        except ValidationError as exc:
            raise ClientError(_describe(exc)) from None


def plan_decoding(config: InferenceConfig, settings: ModelSettings, *, has_assistant: bool, device: str,
                  duration: float | None) -> DecodeOptions:
    """How a request is decoded, decided in one place: its batch size (at most
    MAX_BATCH_SIZE; 1 with the assistant), beams (the request's, else DEFAULT_BEAM_SIZE; 1 for
    sequential decoding) and whether the assistant runs. `assisted` (the request's, else
    DEFAULT_ASSISTED) "auto" takes the assistant where it wins: on a GPU, for audio up to
    AUTO_ASSIST_MAX_S (one window, decoded at batch 1 anyway), never on a CPU, where a trained
    draft was slower at every length (README). Refusals are ClientErrors; `duration` None (not
    decoded yet) checks the request only, "auto" then counting as no assistant."""
    batch_size = config.batch_size
    if batch_size > settings.max_batch_size:
        if "batch_size" in config.model_fields_set:
            raise ClientError(f"parameter 'batch_size': at most {settings.max_batch_size} on this endpoint")
        batch_size = settings.max_batch_size  # the default (24) must not refuse requests on a smaller limit
    assisted = config.assisted if config.assisted is not None else settings.default_assisted
    if assisted is True and not has_assistant:
        raise ClientError("parameter 'assisted': this endpoint has no ASSISTANT_MODEL configured")
    if config.chunk_length_s == 0 and (config.beam_size or 1) > 1:
        # transformers 4.51's word timestamps fail under beam search (beam_indices' shape)
        raise ClientError("parameter 'beam_size': sequential decoding (chunk_length_s 0) is greedy; "
                          "use beam_size 1 or chunk_length_s above 0")
    beam_size = 1 if config.chunk_length_s == 0 else config.beam_size or settings.default_beam_size
    if assisted is True and beam_size > 1:  # speculative decoding is greedy: what was asked beats a default
        if config.assisted is not None and config.beam_size is not None:
            raise ClientError("parameters 'assisted' and 'beam_size': speculative decoding is greedy, "
                              "so 'assisted: true' needs 'beam_size: 1'")
        if config.assisted is not None:
            beam_size = 1
        else:
            assisted = False
    auto = (assisted == "auto" and device != "cpu" and duration is not None
            and duration <= settings.auto_assist_max_s)
    use_assistant = has_assistant and beam_size == 1 and (assisted is True or auto)
    return DecodeOptions(task=config.task, language=config.language, chunk_length_s=config.chunk_length_s,
                         batch_size=1 if use_assistant else batch_size, use_assistant=use_assistant,
                         prompt=config.prompt, beam_size=beam_size)


def _plain(err: dict) -> str:
    msg = err.get("msg", "invalid value")
    return msg.removeprefix("Value error, ")


def _describe(exc: ValidationError) -> str:
    """One line per problem, naming the parameter; input values are not echoed back
    (they may be large or sensitive)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        # Unions add the member type to loc (e.g. assisted.bool): keep the field name only.
        field = loc.split(".")[0] if loc else ""
        parts.append(f"parameter '{field}': {_plain(err)}" if field else _plain(err))
    unique = list(dict.fromkeys(parts))
    return "Invalid request: " + "; ".join(unique)
