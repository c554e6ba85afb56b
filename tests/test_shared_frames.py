"""One pass of the speaker-embedding network per chunk: pyannote runs its embedding model once
per (chunk, local speaker) pair on the same waveform; a model with `forward_frames` and
`forward_embedding` (pyannote's WeSpeaker ResNets) computes the frames once per chunk and pools
them per speaker, with the same embeddings and the same diarization. Other models are left as
they are."""
import numpy as np
import pytest
import torch

from speech_endpoint import compat
from speech_endpoint.attribution.diarizer import Diarizer, _share_frames
from support.audio_factory import speech, wav_bytes

RATE = 16000


class Halves(torch.nn.Module):
    """A network split like pyannote's WeSpeaker ResNets, counting the rows of its frame half."""

    def __init__(self):
        super().__init__()
        self.frames_seen = 0
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward_frames(self, waveforms):
        self.frames_seen += len(waveforms)
        return waveforms[:, 0].unfold(-1, 4, 4) * self.scale  # (batch, frames, 4)

    def forward_embedding(self, frames, weights=None):
        weights = weights[..., None]
        return (frames * weights).sum(-2) / weights.sum(-2).clamp(min=1e-8)

    def forward(self, waveforms, weights=None):  # whole, as the halves compute it, without calling them
        frames = waveforms[:, 0].unfold(-1, 4, 4) * self.scale
        if weights is None:
            return frames.mean(-2)
        return (frames * weights[..., None]).sum(-2) / weights[..., None].sum(-2).clamp(min=1e-8)


def batch(chunks, speakers=3, samples=16):
    """Each chunk's waveform repeated once per speaker, as pyannote's batches are, with masks."""
    generator = torch.Generator().manual_seed(0)
    waveforms = torch.cat([torch.randn(1, 1, samples, generator=generator).expand(speakers, 1, samples)
                           for _ in range(chunks)])
    weights = (torch.rand(len(waveforms), samples // 4, generator=generator) > 0.5).float()
    return waveforms, weights


def test_frames_are_computed_once_per_chunk_and_pooled_per_speaker():
    stock, shared = Halves(), Halves()
    assert _share_frames(shared)
    waveforms, weights = batch(chunks=4)
    torch.testing.assert_close(shared(waveforms, weights=weights), stock(waveforms, weights=weights))
    assert shared.frames_seen == 4 and shared.forward.frame_passes == 4


def test_a_chunk_split_between_two_batches_is_computed_once():
    stock, shared = Halves(), Halves()
    _share_frames(shared)
    waveforms, weights = batch(chunks=3)  # 9 rows in batches of 4: chunk 2 spans both, chunk 3 too
    for rows in (slice(0, 4), slice(4, 8), slice(8, 9)):
        torch.testing.assert_close(shared(waveforms[rows], weights=weights[rows]),
                                   stock(waveforms[rows], weights=weights[rows]))
    assert shared.frames_seen == 3


def test_equal_waveforms_apart_are_computed_again_and_a_call_without_masks_is_the_models_own():
    stock, shared = Halves(), Halves()
    _share_frames(shared)
    waveforms, weights = batch(chunks=2, speakers=1)
    alternating = torch.cat([waveforms, waveforms])  # a, b, a, b: only consecutive rows are shared
    torch.testing.assert_close(shared(alternating, weights=torch.cat([weights, weights])),
                               stock(alternating, weights=torch.cat([weights, weights])))
    assert shared.frames_seen == 4
    torch.testing.assert_close(shared(waveforms), stock(waveforms))


def test_a_failure_falls_back_to_the_models_own_forward(caplog):
    stock, shared = Halves(), Halves()
    _share_frames(shared)
    shared.forward_embedding = lambda frames, weights=None: (_ for _ in ()).throw(RuntimeError("moved"))
    waveforms, weights = batch(chunks=2)
    torch.testing.assert_close(shared(waveforms, weights=weights), stock(waveforms, weights=weights))
    assert "Shared frame features failed (RuntimeError)" in caplog.text


def test_models_without_the_two_halves_are_left_unchanged():
    class Whole(torch.nn.Module):
        def forward(self, waveforms, weights=None):
            return waveforms.mean(-1)

    whole = Whole()
    assert _share_frames(whole) is False and "forward" not in whole.__dict__
    assert _share_frames(None) is False


def test_pyannotes_wespeaker_resnet_gives_the_same_embeddings_with_shared_frames():
    """The contract with pyannote: its WeSpeaker ResNet34 has both halves, and pooling them per
    mask equals its own forward, masks that select nothing included."""
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    torch.manual_seed(0)
    stock = WeSpeakerResNet34(sample_rate=RATE).eval()
    shared = WeSpeakerResNet34(sample_rate=RATE).eval()
    shared.load_state_dict(stock.state_dict())
    assert _share_frames(shared)
    waveforms = torch.randn(2, 1, 1, 2 * RATE).mul(0.1).repeat_interleave(3, dim=0)[:, 0]
    weights = (torch.rand(6, 117) > 0.5).float()
    weights[1] = 0.0
    with torch.inference_mode():
        torch.testing.assert_close(shared(waveforms, weights=weights), stock(waveforms, weights=weights))
    assert shared.forward.frame_passes == 2


@pytest.fixture(scope="module")
def resnet_pipeline(tmp_path_factory):
    from support.tiny_models import build_diarization

    return build_diarization(tmp_path_factory.mktemp("tiny-resnet"), embedding="resnet")


def test_a_resnet_pipeline_embeds_each_chunk_once_with_the_same_diarization(resnet_pipeline):
    from speech_endpoint.speech.audio import decode

    audio = decode(wav_bytes(speech(12.0), RATE))
    own = Diarizer(str(resnet_pipeline), share_frames=False)
    shared = Diarizer(str(resnet_pipeline))
    expected, result = own(audio, embeddings=True), shared(audio, embeddings=True)
    assert result.full and result.full == expected.full and result.exclusive == expected.exclusive
    assert result.embeddings.keys() == expected.embeddings.keys()
    for speaker, vector in expected.embeddings.items():
        np.testing.assert_allclose(result.embeddings[speaker], vector, rtol=1e-5, atol=1e-6)
    model = compat.embedding_model(shared.pipeline).model_
    chunks = 2  # 10 s windows every 5 s over 12 s; 3 local speakers each
    assert model.forward.frame_passes == chunks
    assert "forward" not in compat.embedding_model(own.pipeline).model_.__dict__


def test_the_cost_script_compares_both_paths_on_a_resnet_pipeline(tiny_models, tmp_path, capsys):
    """`evaluation.shared_frames_cost` swaps a pipeline's embedding for a ResNet34 and reports
    both paths per stride, with the turns of each file compared."""
    from evaluation import shared_frames_cost

    audio = tmp_path / "speech.wav"
    audio.write_bytes(wav_bytes(speech(12.0), RATE))
    assert shared_frames_cost.main([str(tiny_models.diarization), str(audio), "--strides", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2 and "pyannote's own" in rows[0] and rows[1].endswith("| 1 of 1 files |")
