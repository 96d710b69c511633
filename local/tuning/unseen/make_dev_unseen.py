#!/usr/bin/env python3
"""Render only data/dev_unseen of the built-in corpus, for dev decisions about unseen
conditions without re-rendering the other sets.

Usage: PYTHONPATH=.:local local/tuning/unseen/make_dev_unseen.py <corpus-dir> <data-root>
         [--seed 777] [--speakers 120] [--utts-per-spk 6] [--nj 2]

The plan of an optional set depends only on the seed, its own speaker count and
--utts-per-spk (synthcorpus.generate.plan_utterances), so this writes the utterances that
`local/make_corpus.sh --num-dev-unseen-spk 120` would, and none of the other sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthcorpus.generate import plan_utterances, render_all, write_data_dir
from synthcorpus.speakers import DEV_UNSEEN_SET, make_unseen_speakers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--speakers", type=int, default=120)
    parser.add_argument("--utts-per-spk", type=int, default=6)
    parser.add_argument("--nj", type=int, default=2)
    args = parser.parse_args()
    speakers = {DEV_UNSEEN_SET: make_unseen_speakers(args.seed, args.speakers, DEV_UNSEEN_SET)}
    specs = plan_utterances(speakers, args.utts_per_spk, args.seed, args.corpus_dir)[DEV_UNSEEN_SET]
    records = render_all(specs, args.nj, DEV_UNSEEN_SET)
    print(write_data_dir(args.data_root / DEV_UNSEEN_SET, specs, records))


if __name__ == "__main__":
    main()
