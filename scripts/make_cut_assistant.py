"""Cut a decoder-only assistant out of a Whisper checkpoint, for benchmarking speculative
decoding where no distil-whisper model can be downloaded.

    python scripts/make_cut_assistant.py /path/to/whisper-base OUT_DIR --layers 2

The result is a `WhisperForCausalLM` (the form distil-whisper ships) holding the first
`--layers` decoder layers of the checkpoint, its embeddings and output layer, plus the
tokenizer. It is not trained as a draft model, so it accepts far fewer drafts than a real
distil-whisper would: timings with it are a lower bound for what assistance gains.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path



def cut_assistant(source: str, out_dir: Path, layers: int = 2) -> Path:
    import torch
    from transformers import WhisperForCausalLM, WhisperForConditionalGeneration

    from speech_endpoint.compat import dtype_kwargs, load_processor

    full = WhisperForConditionalGeneration.from_pretrained(source, **dtype_kwargs(torch.float32))
    config = full.config.to_dict()
    config.update(decoder_layers=layers, architectures=["WhisperForCausalLM"])
    config.pop("_name_or_path", None)
    assistant = WhisperForCausalLM(type(full.config).from_dict(config))
    decoder = full.model.decoder
    target = assistant.model.decoder
    target.embed_tokens.load_state_dict(decoder.embed_tokens.state_dict())
    target.embed_positions.load_state_dict(decoder.embed_positions.state_dict())
    target.layer_norm.load_state_dict(decoder.layer_norm.state_dict())
    for i in range(layers):
        target.layers[i].load_state_dict(decoder.layers[i].state_dict())
    assistant.proj_out.load_state_dict(full.proj_out.state_dict())
    assistant.generation_config = full.generation_config
    out_dir = Path(out_dir)
    assistant.save_pretrained(out_dir)
    load_processor(source).save_pretrained(out_dir)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Whisper checkpoint (folder or hub id)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args(argv)
    print(cut_assistant(args.source, args.out_dir, args.layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
