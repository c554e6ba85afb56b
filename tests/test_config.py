"""Settings from the environment and per-request parameter validation."""
import pytest
from hypothesis import given, settings, strategies as st

from config import ConfigurationError, InferenceConfig, ModelSettings
from speech_endpoint.schema import ClientError


def test_defaults_match_the_established_contract():
    cfg = InferenceConfig.from_parameters({})
    assert (cfg.task, cfg.batch_size, cfg.chunk_length_s, cfg.sampling_rate) == ("transcribe", 24, 30, 16000)
    assert cfg.language is None and cfg.assisted is None and cfg.num_speakers is None


def test_none_parameters_mean_defaults_and_unknown_keys_are_ignored():
    assert InferenceConfig.from_parameters(None) == InferenceConfig()
    assert InferenceConfig.from_parameters({"temperature": 3, "whatever": [1]}) == InferenceConfig()


def test_query_string_values_are_accepted():
    cfg = InferenceConfig.from_parameters(
        {"batch_size": "8", "chunk_length_s": "15.5", "assisted": "false", "num_speakers": "2",
         "diarize": "true", "output_formats": "srt, vtt"})
    assert cfg.batch_size == 8 and cfg.chunk_length_s == 15.5 and cfg.assisted is False
    assert cfg.num_speakers == 2 and cfg.diarize is True and cfg.output_formats == ("srt", "vtt")


@pytest.mark.parametrize("value, code", [("en", "en"), ("English", "en"), ("<|fr|>", "fr"), ("german", "de"), (" ES ", "es")])
def test_language_codes_and_names(value, code):
    assert InferenceConfig.from_parameters({"language": value}).language == code


def test_beam_size_defaults_to_the_endpoint_and_accepts_strings():
    assert InferenceConfig.from_parameters({}).beam_size is None
    assert InferenceConfig.from_parameters({"beam_size": "5"}).beam_size == 5


def test_default_assisted_and_default_beams_contradict(monkeypatch):
    monkeypatch.setenv("ASR_MODEL", "m")
    monkeypatch.setenv("DEFAULT_ASSISTED", "true")
    monkeypatch.setenv("DEFAULT_BEAM_SIZE", "5")
    with pytest.raises(ConfigurationError, match="DEFAULT_BEAM_SIZE"):
        ModelSettings.from_env()
    monkeypatch.setenv("DEFAULT_ASSISTED", "auto")
    assert ModelSettings.from_env().default_beam_size == 5


def test_assisted_accepts_auto():
    assert InferenceConfig.from_parameters({"assisted": "auto"}).assisted == "auto"


@pytest.mark.parametrize("params, field", [
    ({"task": "summarize"}, "task"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "many"}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"chunk_length_s": 31}, "chunk_length_s"),
    ({"chunk_length_s": -1}, "chunk_length_s"),
    ({"chunk_length_s": "nan"}, "chunk_length_s"),
    ({"sampling_rate": 10}, "sampling_rate"),
    ({"language": "klingon"}, "language"),
    ({"language": 5}, "language"),
    ({"num_speakers": 0}, "num_speakers"),
    ({"min_speakers": -2}, "min_speakers"),
    ({"max_speakers": "x"}, "max_speakers"),
    ({"assisted": "maybe"}, "assisted"),
    ({"timestamp_granularity": "char"}, "timestamp_granularity"),
    ({"output_formats": ["pdf"]}, "output_formats"),
    ({"input_format": "mp5"}, "input_format"),
    ({"prompt": "x" * 1001}, "prompt"),
    ({"beam_size": 0}, "beam_size"),
    ({"beam_size": 11}, "beam_size"),
])
def test_each_invalid_parameter_is_refused_by_name(params, field):
    with pytest.raises(ClientError) as err:
        InferenceConfig.from_parameters(params)
    assert f"'{field}'" in str(err.value)
    assert "Traceback" not in str(err.value)


def test_min_above_max_speakers_is_refused():
    with pytest.raises(ClientError, match="min_speakers"):
        InferenceConfig.from_parameters({"min_speakers": 3, "max_speakers": 2})


def test_parameters_must_be_an_object():
    with pytest.raises(ClientError, match="parameters"):
        InferenceConfig.from_parameters(["batch_size", 2])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["task", "batch_size", "chunk_length_s", "language", "num_speakers",
                                        "min_speakers", "max_speakers", "assisted", "sampling_rate",
                                        "output_formats", "timestamp_granularity", "diarize", "junk"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True),
                                 st.text(max_size=12), st.lists(st.text(max_size=4), max_size=3))))
def test_any_parameters_either_parse_to_valid_config_or_raise_client_error(params):
    try:
        cfg = InferenceConfig.from_parameters(params)
    except ClientError as err:
        assert str(err).startswith("Invalid request")
        return
    assert cfg.batch_size >= 1 and 0 <= cfg.chunk_length_s <= 30
    assert cfg.task in ("transcribe", "translate")
    if cfg.min_speakers and cfg.max_speakers:
        assert cfg.min_speakers <= cfg.max_speakers


def test_missing_asr_model_names_the_variable(monkeypatch):
    monkeypatch.delenv("ASR_MODEL", raising=False)
    with pytest.raises(ConfigurationError, match="ASR_MODEL"):
        ModelSettings.from_env()


def test_settings_are_case_insensitive_and_token_is_secret(monkeypatch):
    monkeypatch.setenv("asr_model", "openai/whisper-tiny")
    monkeypatch.setenv("HF_TOKEN", "hf_FAKEtoken1234567890")
    s = ModelSettings.from_env()
    assert s.asr_model == "openai/whisper-tiny" and s.token == "hf_FAKEtoken1234567890"
    assert "hf_FAKE" not in repr(s) and "hf_FAKE" not in str(s) and "hf_FAKE" not in s.model_dump_json()


def test_invalid_setting_message_never_shows_the_token(monkeypatch):
    monkeypatch.setenv("ASR_MODEL", "x")
    monkeypatch.setenv("HF_TOKEN", "hf_FAKEtoken1234567890")
    monkeypatch.setenv("MAX_BATCH_SIZE", "zero")
    with pytest.raises(ConfigurationError) as err:
        ModelSettings.from_env()
    assert "MAX_BATCH_SIZE" in str(err.value) and "hf_FAKE" not in str(err.value)


def test_cpu_threads_setting(monkeypatch):
    monkeypatch.setenv("ASR_MODEL", "x")
    monkeypatch.setenv("CPU_THREADS", "2")
    assert ModelSettings.from_env().cpu_threads == 2
    monkeypatch.setenv("CPU_THREADS", "0")
    with pytest.raises(ConfigurationError, match="CPU_THREADS"):
        ModelSettings.from_env()
