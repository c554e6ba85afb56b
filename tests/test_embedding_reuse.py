"""Embedding reuse (issue 28): only every N-th window of pyannote's sliding segmentation is
embedded and the speakers of the windows between take matched embeddings, through the
pipeline's own `get_embeddings`; a pipeline without the internals runs unchanged."""
import logging

import numpy as np
import pytest

from config import ConfigurationError
from speech_endpoint.attribution import diarizer as diarizer_module
from speech_endpoint.attribution.embedding_reuse import agreement, fill, plan
from speech_endpoint.attribution.diarizer import install, installed_stride, progressions
from support.audio_factory import speech, wav_bytes

RATE = 16000
AUDIO = wav_bytes(speech(12.0), RATE)
LONG = wav_bytes(speech(30.0), RATE)  # 21 windows of 10 s


def segmentation(turns, chunks=12, frames=50, step=5, speakers=3, swap_every=2):
    """(chunks, frames, speakers) activity of absolute-frame turns [(start, end, voice)], each
    chunk `step` frames after the last; local speaker indices permuted on alternate chunks
    (as pyannote's are: they mean nothing across chunks)."""
    data = np.zeros((chunks, frames, speakers), dtype=np.float32)
    for c in range(chunks):
        for start, end, voice in turns:
            local = (voice + (c % swap_every)) % speakers
            lo, hi = max(start - c * step, 0), min(end - c * step, frames)
            if hi > lo:
                data[c, lo:hi, local] = 1.0
    return data


# ---- planning (pure) ------------------------------------------------------------------------


def test_stride_one_computes_every_chunk():
    chosen = plan(segmentation([(0, 200, 0)]), 5.0, 1, 0.8)
    assert chosen.computed == tuple(range(12)) and chosen.sources == {}


def test_a_steady_voice_is_embedded_every_stride_chunks_and_copied_by_activity_not_index():
    data = segmentation([(0, 30, 0), (30, 200, 1)])
    chosen = plan(data, 5.0, 3, 0.5)
    assert chosen.computed == (0, 3, 6, 9, 11)  # the grid and the last chunk
    for (chunk, speaker), (source, source_speaker) in chosen.sources.items():
        assert source in chosen.computed and abs(source - chunk) < 3  # an embedded neighbour
        voice = (speaker - chunk % 2) % 3  # the same voice, whatever its local index
        assert source_speaker == (voice + source % 2) % 3
    assert {chunk for chunk, _ in chosen.sources} == {1, 2, 4, 5, 7, 8, 10}


def test_a_voice_no_embedded_neighbour_matches_gets_its_chunk_embedded():
    data = segmentation([(0, 200, 0)])
    data[9, 40:45, 2] = 1.0  # a short word that only chunk 9's segmentation heard
    chosen = plan(data, 5.0, 4, 0.8)
    assert chosen.computed == (0, 4, 8, 9, 11)
    assert all(chunk != 9 for chunk, _ in chosen.sources) and (10, 0) in chosen.sources


def test_fill_copies_the_sources_rows_and_keeps_the_rest():
    data = segmentation([(0, 200, 0)], chunks=4, swap_every=1)
    chosen = plan(data, 5.0, 3, 0.5)
    embeddings = np.full((4, 3, 2), np.nan)
    embeddings[0, 0], embeddings[3, 0] = (1, 2), (3, 4)
    filled = fill(embeddings, chosen)
    assert chosen.sources == {(1, 0): (0, 0), (2, 0): (3, 0)}
    assert filled[1, 0].tolist() == [1, 2] and filled[2, 0].tolist() == [3, 4] and np.isnan(filled[1, 1]).all()
    assert np.isnan(embeddings[1, 0]).all()  # the input is not changed


def test_agreement_is_intersection_over_union_within_the_first_chunk():
    a = np.zeros(10, bool)
    a[2:8] = True
    b = np.zeros(10, bool)
    b[0:6] = True  # b's chunk starts 2 frames later: its frames 0-5 are a's 2-7
    assert agreement(a, b, 2) == 1.0
    assert agreement(a, b, 0) == pytest.approx(4 / 8)
    assert agreement(a, np.zeros(10, bool), 0) == 0.0


def test_progressions_cover_the_indices_in_order():
    assert progressions((0, 3, 6, 9, 10, 11, 15)) == [(0, 3, 4), (10, 1, 2), (15, 1, 1)]
    assert progressions(()) == []


def test_a_stride_below_one_is_refused():
    with pytest.raises(ValueError):
        plan(np.zeros((2, 5, 3)), 1.0, 0, 0.5)


# ---- inside the tiny pyannote pipeline (either stack) -------------------------------------


@pytest.fixture
def captured(tiny_models):
    """Diarize AUDIO with stride 1 and with stride 3, recording the embeddings each run
    gave the clustering, its segmentation, and the result."""
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    audio, runs = decode(LONG), {}
    for stride in (1, 3):
        diarizer = Diarizer(str(tiny_models.diarization), segmentation_step=0.1, embedding_stride=stride)
        pipeline, seen = diarizer.pipeline, {}
        inner = pipeline.get_embeddings

        def spy(file, segmentations, exclude_overlap=False, hook=None, inner=inner, seen=seen):
            seen["segmentations"] = segmentations
            seen["embeddings"] = inner(file, segmentations, exclude_overlap=exclude_overlap, hook=hook)
            return seen["embeddings"]

        pipeline.get_embeddings = spy
        seen["result"] = diarizer(audio)
        seen["last_plan"] = getattr(inner, "last_plan", None)  # what the wrapper says it embedded
        runs[stride] = seen
    return runs


def test_reused_embeddings_are_pyannotes_own_for_computed_chunks_and_copies_elsewhere(captured):
    stock, reused = captured[1], captured[3]
    data = stock["segmentations"]
    window = data.sliding_window
    chosen = plan(data.data, window.step / (window.duration / data.data.shape[1]), 3,
                  diarizer_module.DEFAULT_MIN_AGREEMENT)
    assert np.array_equal(np.nan_to_num(data.data), np.nan_to_num(reused["segmentations"].data))
    assert len(chosen.computed) < data.data.shape[0]
    assert reused["last_plan"] == (len(chosen.computed), data.data.shape[0]) and stock["last_plan"] is None
    for chunk in chosen.computed:
        np.testing.assert_allclose(reused["embeddings"][chunk], stock["embeddings"][chunk], rtol=1e-5, atol=1e-6)
    assert chosen.sources
    for (chunk, speaker), (source, source_speaker) in chosen.sources.items():
        np.testing.assert_allclose(reused["embeddings"][chunk, speaker], stock["embeddings"][source, source_speaker],
                                   rtol=1e-5, atol=1e-6)
    assert reused["embeddings"].shape == stock["embeddings"].shape
    for run in (stock, reused):  # a diarization of the same shape: turns within the audio, exclusive ones too
        assert run["result"].full and all(0 <= t.start < t.end <= 30.1 for t in run["result"].full)
        assert {t.speaker for t in run["result"].exclusive} <= {t.speaker for t in run["result"].full}


def test_a_failure_inside_reuse_falls_back_to_pyannotes_own_embeddings(tiny_models, monkeypatch, caplog):
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    audio = decode(AUDIO)
    expected = Diarizer(str(tiny_models.diarization))(audio)
    diarizer = Diarizer(str(tiny_models.diarization), embedding_stride=3)
    assert installed_stride(diarizer.pipeline) == 3

    def broken(*args, **kwargs):
        raise KeyError("an internal that moved")

    monkeypatch.setattr(diarizer_module, "plan", broken)
    assert diarizer(audio) == expected
    assert "Embedding reuse failed (KeyError)" in caplog.text


def test_a_pipeline_without_the_internals_is_left_unchanged(caplog):
    caplog.set_level(logging.INFO, logger="speech_endpoint.attribution.diarizer")
    class Other:  # a pipeline of another shape: no get_embeddings(file, binary_segmentations, ...)
        training = False

        def get_embeddings(self, file, segmentations):
            return "its own"

    other = Other()
    assert install(other, 4) is False
    assert other.get_embeddings(None, None) == "its own" and installed_stride(other) == 1
    assert "Embedding reuse is not available for Other" in caplog.text
    assert install(object(), 1) is False


def test_tuning_reuse_keeps_the_embeddings_between_calls(tiny_models):
    from speech_endpoint.speech.audio import decode
    from speech_endpoint.attribution.diarizer import Diarizer

    diarizer, audio, reuse = Diarizer(str(tiny_models.diarization), embedding_stride=3), decode(AUDIO), {}
    stock = type(diarizer.pipeline).get_embeddings
    calls = []

    def counting(self, file, binary_segmentations, exclude_overlap=False, hook=None):
        calls.append(1)
        return stock(self, file, binary_segmentations, exclude_overlap=exclude_overlap, hook=hook)

    type(diarizer.pipeline).get_embeddings = counting
    try:
        assert install(diarizer.pipeline, 3)  # binds the counting method
        first = diarizer(audio, reuse=reuse)
        once = len(calls)
        diarizer.set_params({"clustering": {"threshold": 0.7}})
        diarizer.set_params({"clustering": {"threshold": diarizer.params["clustering"]["threshold"]}})
        again = diarizer(audio, reuse=reuse)
    finally:
        type(diarizer.pipeline).get_embeddings = stock
    assert once >= 1 and len(calls) == once and again == first
    assert diarizer.pipeline.training is False


def test_the_setting_reaches_the_pipeline_and_is_checked(make_handler, tiny_models):
    handler = make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization, WARMUP="false",
                           DIARIZATION_EMBEDDING_STRIDE="4")
    assert installed_stride(handler.diarizer.pipeline) == 4
    out = handler({"inputs": AUDIO, "parameters": {}})
    assert out["metadata"]["diarization"] is True and out["speakers"]
    with pytest.raises(ConfigurationError, match="DIARIZATION_EMBEDDING_STRIDE"):
        make_handler(ASR_MODEL=tiny_models.whisper, DIARIZATION_MODEL=tiny_models.diarization, WARMUP="false",
                     DIARIZATION_EMBEDDING_STRIDE="0")
