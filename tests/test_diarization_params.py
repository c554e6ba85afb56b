"""DIARIZATION_PARAMS: the pipeline's own parameters set at start-up (checked against what
the loaded pipeline declares, the rest kept), reported in `metadata`, and tuned with
`evaluation.tune_diarization` on recordings with references."""
import json

import pytest

from config import ConfigurationError, ModelSettings
from speech_endpoint.attribution.pipeline_params import ParamSpec, ParamsError, check, merge
from support.audio_factory import speech, wav_bytes

RATE = 16000
AUDIO = wav_bytes(speech(8.0), RATE)
SPECS = {"clustering.threshold": ParamSpec("float", 0.0, 2.0), "clustering.min_cluster_size": ParamSpec("int", 1, 20),
         "clustering.method": ParamSpec("choice", choices=("average", "centroid")),
         "segmentation.min_duration_off": ParamSpec("float", 0.0, 1.0)}


# ---- checking and merging (pure) ------------------------------------------------------------


def test_overrides_are_typed_and_merged_over_the_current_values():
    checked, notes = check({"clustering": {"threshold": 1, "min_cluster_size": 4}}, SPECS)
    assert checked == {"clustering.threshold": 1.0, "clustering.min_cluster_size": 4} and notes == []
    assert isinstance(checked["clustering.threshold"], float)
    current = {"segmentation": {"min_duration_off": 0.0}, "clustering": {"method": "centroid", "threshold": 0.75,
                                                                          "min_cluster_size": 12}}
    assert merge(current, checked) == {"segmentation": {"min_duration_off": 0.0},
                                       "clustering": {"method": "centroid", "threshold": 1.0, "min_cluster_size": 4}}


@pytest.mark.parametrize("overrides, message", [
    ({"clustering": {"treshold": 0.5}}, "unknown parameter 'clustering.treshold'; this pipeline has: "
                                        "clustering.method, clustering.min_cluster_size, clustering.threshold, "
                                        "segmentation.min_duration_off"),
    ({"segmentation_step": 0.2}, "set it with DIARIZATION_STEP"),
    ({"clustering": 0.5}, "'clustering' is a group of parameters"),
    ({"clustering": {"threshold": "0.5"}}, "'clustering.threshold' must be a number, not a string"),
    ({"clustering": {"threshold": True}}, "'clustering.threshold' must be a number"),
    ({"clustering": {"min_cluster_size": 2.5}}, "'clustering.min_cluster_size' must be a whole number, not 2.5"),
    ({"clustering": {"method": "mean"}}, "'clustering.method' must be one of average, centroid"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(overrides, SPECS)


def test_a_value_outside_the_tuning_range_is_noted_not_refused():
    checked, notes = check({"segmentation": {"min_duration_off": 1.5}}, SPECS)
    assert checked == {"segmentation.min_duration_off": 1.5}
    assert notes and "[0, 1]" in notes[0]


# ---- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    ('{"clustering": {"threshold": 0.6}', "DIARIZATION_PARAMS: Invalid JSON"),
    ("[0.6]", "DIARIZATION_PARAMS: Input should be a valid dictionary"),
])
def test_settings_refuse_params_that_are_not_a_json_object(monkeypatch, value, message):
    monkeypatch.setenv("ASR_MODEL", "some/model")
    monkeypatch.setenv("DIARIZATION_MODEL", "some/pipeline")
    monkeypatch.setenv("DIARIZATION_PARAMS", value)
    with pytest.raises(ConfigurationError, match=message):
        ModelSettings.from_env()


def test_params_without_a_diarization_model_stop_start_up(monkeypatch):
    monkeypatch.setenv("ASR_MODEL", "some/model")
    monkeypatch.delenv("DIARIZATION_MODEL", raising=False)
    monkeypatch.setenv("DIARIZATION_PARAMS", '{"clustering": {"threshold": 0.6}}')
    with pytest.raises(ConfigurationError, match="DIARIZATION_PARAMS needs DIARIZATION_MODEL"):
        ModelSettings.from_env()
    monkeypatch.setenv("DIARIZATION_PARAMS", "{}")
    assert ModelSettings.from_env().diarization_params == {}


# ---- the endpoint with a real pyannote pipeline (tiny random weights) -----------------------


@pytest.fixture(scope="module")
def default_params(tiny_models):
    from speech_endpoint.attribution.diarizer import Diarizer

    return Diarizer(str(tiny_models.diarization)).params


def test_params_are_applied_kept_and_reported(make_handler, tiny_models, default_params):
    handler = make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization, WARMUP="false",
                           DIARIZATION_PARAMS='{"clustering": {"threshold": 0.55}, '
                                              '"segmentation": {"min_duration_off": 0.2}}', DIARIZATION_STEP="0.2")
    applied = handler.diarizer.pipeline.parameters(instantiated=True)  # read back from pyannote itself
    inference = handler.diarizer.pipeline._segmentation  # DIARIZATION_STEP survives the instantiation
    assert inference.step == pytest.approx(0.2 * inference.duration)
    assert applied["clustering"]["threshold"] == 0.55 and applied["segmentation"]["min_duration_off"] == 0.2
    others = {k: v for k, v in default_params["clustering"].items() if k != "threshold"}
    assert others and {k: applied["clustering"][k] for k in others} == others
    out = handler({"inputs": AUDIO, "parameters": {}})
    assert out["metadata"]["diarization_params"] == applied
    off = handler({"inputs": AUDIO, "parameters": {"diarize": False}})
    assert "diarization_params" not in off["metadata"]


def test_without_params_the_pipeline_keeps_its_own_and_says_so(make_handler, tiny_models, default_params):
    handler = make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization, WARMUP="false")
    assert handler({"inputs": AUDIO, "parameters": {}})["metadata"]["diarization_params"] == default_params


@pytest.mark.parametrize("params, message", [
    ('{"clustering": {"treshold": 0.5}}', r"DIARIZATION_PARAMS: unknown parameter 'clustering.treshold'; "
                                          r"this pipeline has: .*clustering.threshold.*segmentation.min_duration_off"),
    ('{"clustering": {"threshold": "high"}}', "DIARIZATION_PARAMS: 'clustering.threshold' must be a number"),
    ('{"segmentation_step": 0.2}', "DIARIZATION_STEP"),
])
def test_bad_params_stop_start_up_naming_the_key(make_handler, tiny_models, params, message):
    with pytest.raises(ConfigurationError, match=message) as err:
        make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization, WARMUP="false",
                     DIARIZATION_PARAMS=params, HF_TOKEN="hf_secret_token_value")
    assert "hf_secret_token_value" not in str(err.value)


def test_reused_segmentation_gives_what_a_fresh_run_gives(tiny_models):
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    diarizer, audio, reuse = Diarizer(str(tiny_models.diarization)), decode(AUDIO), {}
    for overrides in ({"clustering": {"threshold": 0.55}}, {"segmentation": {"min_duration_off": 0.5}},
                      {"clustering": {"threshold": 0.75}}):
        diarizer.set_params(overrides)
        assert diarizer(audio, reuse=reuse) == diarizer(audio)
    assert "file" in reuse and not diarizer.pipeline.training


# ---- the tuning command ---------------------------------------------------------------------


def test_tuning_command_prints_a_row_per_value_and_the_choice(tiny_models, tmp_path, monkeypatch, capsys):
    from evaluation import tune_diarization

    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "call.wav").write_bytes(AUDIO)
    (folder / "call.rttm").write_text("SPEAKER call 1 0.000 4.000 <NA> <NA> ann <NA> <NA>\n"
                                      "SPEAKER call 1 4.000 4.000 <NA> <NA> bob <NA> <NA>\n")
    (folder / "call.stm").write_text("call 1 ann 0.000 4.000 hello there how are you\n"
                                     "call 1 bob 4.000 8.000 fine thanks and you\n")
    monkeypatch.setenv("ASR_MODEL", str(tiny_models.whisper))
    monkeypatch.setenv("DIARIZATION_MODEL", str(tiny_models.diarization))
    monkeypatch.setenv("WARMUP", "false")
    results = tmp_path / "results.json"
    assert tune_diarization.main([str(folder), "--held-out", str(folder / "call.wav"), "--output", str(results),
                                  "--param", "clustering.threshold", "0.55", "0.65"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| clustering.threshold=0.55 |") + printed.count("| clustering.threshold=0.55 ←") == 2
    assert "clustering.threshold=0.65" in printed and "(start)" in printed and "held-out set 1: call" in printed
    assert "chosen on the tuning set: DIARIZATION_PARAMS='{\"clustering\": {\"threshold\": " in printed
    saved = json.loads(results.read_text())
    assert [c["clustering.threshold"] for c in saved["combos"][1:]] == [0.55, 0.65]
    for rows in saved["sets"].values():
        assert len(rows) == 3 and all(r["der0"] is not None and r["cpwer"] is not None for r in rows)
    assert [set(row) for row in saved["files"]["call"]] == [{"der0", "cpwer", "speakers_found"}] * 3


def test_tuning_command_refuses_an_unknown_parameter_before_any_work(tiny_models, tmp_path, monkeypatch):
    from evaluation import tune_diarization

    monkeypatch.setenv("ASR_MODEL", str(tiny_models.whisper))
    monkeypatch.setenv("DIARIZATION_MODEL", str(tiny_models.diarization))
    monkeypatch.setenv("WARMUP", "false")
    with pytest.raises(SystemExit, match="unknown parameter 'clustering.treshold'"):
        tune_diarization.main([str(tmp_path), "--param", "clustering.treshold", "0.5"])
