"""Cut an untrained decoder-only assistant out of a Whisper checkpoint: the first `--layers`
decoder layers, embeddings and output layer, as a `WhisperForCausalLM` with the tokenizer.

    python -m scripts.make_cut_assistant /path/to/whisper-base OUT_DIR --layers 2

Kept as a shortcut for `python -m scripts.make_draft TEACHER - OUT_DIR --steps 0 --init
first`, which does the cutting (scripts/make_draft.py also trains drafts: an untrained cut
accepts next to no drafted tokens, so timings with it are a lower bound).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.make_draft import cut_draft, load_teacher, save_draft


def cut_assistant(source: str, out_dir: Path, layers: int = 2) -> Path:
    teacher, dtype = load_teacher(source, "cpu")
    return save_draft(cut_draft(teacher, layers, init="first"), source, out_dir, dtype)


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
