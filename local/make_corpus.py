#!/usr/bin/env python3
"""Stage 0: synthesise the built-in multi-speaker corpus and its Kaldi data dirs.

Usage: local/make_corpus.py [options] <corpus-audio-dir> <data-root>
Writes 16 kHz wav files under <corpus-audio-dir>/<set>/<spk>/ and the data dirs
<data-root>/{train,dev,test,test_unseen,dev_unseen,train_clean}/ (see local/README.md for
every file written; the last three only when asked for).
"""

from __future__ import annotations

import argparse
import logging

from fhvae.bin.cli import run_main
from synthcorpus.generate import (CLEAN_TRAIN_SET, MEAN_UTT_S, ConditionOptions,
                                  generate_corpus, speakers_for_hours)
from synthcorpus.speakers import DEV_UNSEEN_SET, UNSEEN_SET

logger = logging.getLogger("make_corpus")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_corpus.sh", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seed", type=int, default=777, help="same seed, same bytes")
    parser.add_argument("--test-seed", type=int, default=None,
                        help="redraw the test and test_unseen speakers (prosody, warp) and "
                             "utterances from this seed; train, dev and dev_unseen stay those "
                             "of --seed (default: --seed, the corpus as it always was)")
    parser.add_argument("--nj", type=int, default=2, help="parallel worker processes")
    parser.add_argument("--num-train-spk", type=int, default=400)
    parser.add_argument("--train-hours", type=float, default=None,
                        help="size data/train by hours of audio instead of --num-train-spk: "
                             f"ceil(H x 3600 s / (--utts-per-spk x {MEAN_UTT_S:g} s)) "
                             f"speakers, {3600 / (6 * MEAN_UTT_S):g} an hour at 6 utterances "
                             "each (the log says the hours made)")
    parser.add_argument("--num-dev-spk", type=int, default=120)
    parser.add_argument("--num-test-spk", type=int, default=120)
    parser.add_argument("--num-unseen-spk", type=int, default=120,
                        help=f"speakers of data/{UNSEEN_SET}: voices, noises and channels "
                             "that train/dev/test never have (0: no such set)")
    parser.add_argument("--num-dev-unseen-spk", type=int, default=0,
                        help=f"speakers of data/{DEV_UNSEEN_SET}: made like data/{UNSEEN_SET} "
                             "(other speakers), for choices about unseen conditions such as "
                             "back-end adaptation (0: no such set)")
    parser.add_argument("--utts-per-spk", type=int, default=6)
    parser.add_argument("--floor-after-channel", choices=("true", "false"), default="false",
                        help="add the faint noise floor after the channel, not before")
    parser.add_argument("--speaker-noise-prob", type=float, default=0.0,
                        help="probability that an utterance has its speaker's home noise type")
    parser.add_argument("--speaker-channel-prob", type=float, default=0.0,
                        help="probability that an utterance has its speaker's home channel")
    parser.add_argument("--train-clean", choices=("true", "false"), default="false",
                        help=f"also data/{CLEAN_TRAIN_SET}: every training utterance again, "
                             "clean and close-talk (the mismatched ASR training condition)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    parser.add_argument("corpus_dir", help="where the generated audio goes")
    parser.add_argument("data_root", help="where the train/dev/test data dirs go")
    args = parser.parse_args(argv)
    num_train_spk = (args.num_train_spk if args.train_hours is None
                     else speakers_for_hours(args.train_hours, args.utts_per_spk))
    counts = {"train": num_train_spk, "dev": args.num_dev_spk, "test": args.num_test_spk,
              UNSEEN_SET: args.num_unseen_spk, DEV_UNSEEN_SET: args.num_dev_unseen_spk}
    options = ConditionOptions(args.floor_after_channel == "true", args.speaker_noise_prob,
                               args.speaker_channel_prob)
    summary = generate_corpus(args.corpus_dir, args.data_root, args.seed, counts,
                              args.utts_per_spk, args.nj, show_progress=not args.no_progress,
                              options=options, test_seed=args.test_seed,
                              train_clean=args.train_clean == "true")
    for name, s in summary.items():
        logger.info("%s: %d speakers, %d utterances, %.3f h; noise %s; channel %s", name,
                    s.speakers, s.utterances, s.hours, dict(sorted(s.noise.items())),
                    dict(sorted(s.channel.items())))
    return 0


if __name__ == "__main__":
    run_main(main)
