"""Token suppression with cached masks does what transformers' two processors do together."""
import pytest
import torch
from transformers import GenerationConfig
from transformers.generation.logits_process import SuppressTokensAtBeginLogitsProcessor, SuppressTokensLogitsProcessor

from speech_endpoint.whisper.scores import Suppression

VOCAB = 300
SUPPRESS = [1, 7, 42, 299]
BEGIN = [5, 257]
BEGIN_INDEX = 4


def transformers_scores(input_ids, scores, at_begin=True):
    if at_begin:
        scores = SuppressTokensAtBeginLogitsProcessor(BEGIN, BEGIN_INDEX)(input_ids, scores)
    return SuppressTokensLogitsProcessor(SUPPRESS)(input_ids, scores)


@pytest.mark.parametrize("length", [BEGIN_INDEX, BEGIN_INDEX + 1, BEGIN_INDEX + 9])
@pytest.mark.parametrize("at_begin", [True, False])
def test_same_scores_as_transformers_processors(length, at_begin):
    torch.manual_seed(length)
    input_ids, scores = torch.zeros(3, length, dtype=torch.long), torch.randn(3, VOCAB)
    processor = Suppression(SUPPRESS, BEGIN).processor(at_begin=at_begin)
    processor.set_begin_index(BEGIN_INDEX)
    assert torch.equal(processor(input_ids, scores.clone()), transformers_scores(input_ids, scores.clone(), at_begin))


def test_taken_from_the_generation_config_so_transformers_builds_neither():
    config = GenerationConfig(suppress_tokens=SUPPRESS, begin_suppress_tokens=BEGIN)
    suppression = Suppression.take_from(config)
    assert config.suppress_tokens is None and config.begin_suppress_tokens is None
    assert suppression.generate_kwargs() == {"suppress_tokens": SUPPRESS, "begin_suppress_tokens": BEGIN}


def test_a_checkpoint_without_lists_suppresses_nothing():
    processor = Suppression(None, None).processor()
    processor.set_begin_index(1)
    scores = torch.randn(2, VOCAB)
    assert torch.equal(processor(torch.zeros(2, 1, dtype=torch.long), scores), scores)
