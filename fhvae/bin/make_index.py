"""Stage 2: the segment index of a data dir (+ optional MVN statistics and held-out split).

  python -m fhvae.bin.make_index [--seg-len 20] [--seq-unit utt|spk] [--mvn-out PATH]
      [--mvn-max-utts N] [--heldout-frac F --seed S] <data-dir>

Writes <data-dir>/fhvae/seg_index.npz; with --heldout-frac also train_index.npz and
heldout_index.npz (whole sequences held out, for recipes without a dev set). --mvn-out
computes the normalisation statistics in one pass over the (training) utterances, or over
N of them evenly spaced in id order with --mvn-max-utts (corpora too large to read twice).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fhvae.bin.cli import run_main
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import compute_mvn
from fhvae.io.datadir import DataDir
from fhvae.progress import progress


def mvn_utterances(num_utts: int, max_utts: int) -> np.ndarray:
    """Indices of the utterances MVN is estimated from: all, or max_utts evenly spaced
    (a spread over the id order, so no single speaker or recording dominates)."""
    if max_utts <= 0 or max_utts >= num_utts:
        return np.arange(num_utts)
    return np.unique(np.linspace(0, num_utts - 1, max_utts).round().astype(np.int64))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seg-len", type=int, default=20, help="frames per segment")
    parser.add_argument("--seq-unit", choices=("utt", "spk"), default="utt",
                        help="what one sequence (one mu2 row) is: an utterance or a speaker")
    parser.add_argument("--mvn-out", help="write mean/std statistics (.npz) here")
    parser.add_argument("--mvn-max-utts", type=int, default=0,
                        help="estimate MVN from at most N utterances, evenly spaced (0: all)")
    parser.add_argument("--heldout-frac", type=float, default=0.0,
                        help="fraction of sequences held out for early stopping (0: none)")
    parser.add_argument("--seed", type=int, default=777, help="seed of the held-out choice")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir)
    out_dir = data_dir / "fhvae"
    index = SegmentIndex.build(data_dir, seq_unit=args.seq_unit, seg_len=args.seg_len)
    train = index
    if args.heldout_frac > 0:
        train, heldout = index.split_heldout(args.heldout_frac, args.seed)
    # Compute everything before writing anything: a corrupt utterance found by the
    # statistics pass must not leave a fresh index behind.
    mvn = None
    if args.mvn_out:
        chosen = mvn_utterances(train.num_utts, args.mvn_max_utts)
        utts = progress(chosen, "mvn", unit="utt")
        mvn = compute_mvn(train.read_utt(int(u)) for u in utts)
    index.save(out_dir / "seg_index.npz")
    if args.heldout_frac > 0:
        train.save(out_dir / "train_index.npz")
        heldout.save(out_dir / "heldout_index.npz")
    if mvn is not None:
        mvn.save(args.mvn_out)

    with open(DataDir(data_dir).feats_scp, encoding="utf-8") as handle:
        excluded = sum(1 for _ in handle) - index.num_utts
    held = f", {heldout.num_seqs} seqs held out" if args.heldout_frac > 0 else ""
    print(f"{data_dir}: {index.num_utts} utts, {index.num_seqs} seqs, "
          f"{int(index.num_frames.sum())} frames, {int(index.num_segments(1).sum())} segments "
          f"(shift 1; {int(index.num_segments(args.seg_len).sum())} non-overlapping), "
          f"{excluded} excluded (< {args.seg_len} frames){held}")
    return 0


if __name__ == "__main__":
    run_main(main)
