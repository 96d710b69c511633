#!/usr/bin/env python3
"""A unigram ARPA language model from a Kaldi `text` table: the grammar that fits the corpus.

Usage: local/prepare_lm.py [--vocab lexicon.txt] <text> <out.arpa.gz>

The built-in corpus draws its sentences as words from a 360-word list uniformly and
independently, so no word predicts the next: a bigram would only learn noise, and a unigram
with add-one counts over the lexicon's words is the grammar (as egs/rm's word-pair grammar is
RM's). Every word of the lexicon gets a probability, </s> gets one per sentence.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:1] = [str(ROOT)] + sys.path[:1]

from fhvae.bin.cli import run_main  # noqa: E402
from fhvae.errors import FhvaeError  # noqa: E402

NON_WORDS = {"<UNK>", "!SIL", "<s>", "</s>", "<eps>"}


def read_text(path: Path) -> tuple[Counter, int]:
    """Word counts and sentence count of a Kaldi text table (utt-id word word ...)."""
    counts: Counter = Counter()
    sentences = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                raise FhvaeError(f"{path}:{line_no}: empty line")
            counts.update(fields[1:])
            sentences += 1
    if not sentences:
        raise FhvaeError(f"{path}: no sentences")
    return counts, sentences


def unigram_arpa(counts: Counter, sentences: int, vocab: set[str] | None = None) -> str:
    """ARPA text of an add-one unigram over `vocab` (default: the words counted) and </s>."""
    words = sorted(vocab if vocab is not None else set(counts))
    unknown = sorted(set(counts) - set(words))
    if unknown:
        raise FhvaeError(f"prepare_lm: {len(unknown)} words of the text are not in the "
                         f"vocabulary, e.g. '{unknown[0]}'")
    total = sum(counts.values()) + sentences + len(words) + 1
    entries = [(-99.0, "<s>"), (math.log10((sentences + 1) / total), "</s>")]
    entries += [(math.log10((counts[w] + 1) / total), w) for w in words]
    lines = ["", "\\data\\", f"ngram 1={len(entries)}", "", "\\1-grams:"]
    lines += [f"{logp:.6f}\t{word}" for logp, word in entries]
    return "\n".join(lines + ["", "\\end\\", ""])


def read_vocab(lexicon: Path) -> set[str]:
    """The words of a Kaldi lexicon.txt, without the silence and unknown-word entries."""
    with open(lexicon, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip()} - NON_WORDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prepare_lm.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=Path, help="lexicon.txt whose words the grammar covers")
    parser.add_argument("text", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    counts, sentences = read_text(args.text)
    arpa = unigram_arpa(counts, sentences, read_vocab(args.vocab) if args.vocab else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        f.write(arpa)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
