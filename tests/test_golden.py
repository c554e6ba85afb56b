"""The handler's responses to the dev dialogue (real Whisper base, exact oracle turns) are
byte-identical to the golden files, timings aside: refactors must not change behaviour.
Skips without WHISPER_MODEL_DIR / DIALOGUE_DIR."""
import json

import pytest

from support.golden import CASES, build_handler, comparable, golden_path, handler_env

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def handler(real_whisper_dir, dialogue_dir, tmp_path_factory):
    env = handler_env(real_whisper_dir, dialogue_dir / "dialogue.rttm", tmp_path_factory.mktemp("golden"))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value) if value is not None else mp.delenv(name, raising=False)
        return build_handler()


@pytest.mark.parametrize("case", sorted(CASES))
def test_response_equals_the_golden_file(handler, dialogue_dir, case):
    golden = json.loads(golden_path().read_text())[case]
    assert golden["parameters"] == CASES[case]
    response = comparable(handler({"inputs": (dialogue_dir / "dialogue.wav").read_bytes(),
                                   "parameters": CASES[case]}))
    assert json.dumps(response, ensure_ascii=False) == json.dumps(golden["response"], ensure_ascii=False)
