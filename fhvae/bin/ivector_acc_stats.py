"""One job's E-step of i-vector extractor training (Kaldi's ivector-extractor-acc-stats).

  python -m fhvae.bin.ivector_acc_stats [--num-threads N] <model.npz> <data-dir> <acc.npz>

Streams the utterances of <data-dir>/feats.scp (a part of the training set, e.g.
data/train/split4/2) through the front end, the UBM alignment and the extractor of
<model.npz> into accumulators whose size depends on the model alone, written to <acc.npz>
(atomically). fhvae.bin.ivector_est sums the jobs' files and updates the model; see
utils/train_ivector.sh.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.io.datadir import DataDir
from fhvae.ivector.system import IvectorSystem
from fhvae.ivector.training import accumulate_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhvae.bin.ivector_acc_stats",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="BLAS threads (default: as trained)")
    parser.add_argument("model", type=Path, help="extractor.<n>.npz: the current model")
    parser.add_argument("data_dir", type=Path, help="data dir (feats.scp) of this job")
    parser.add_argument("acc", type=Path, help="output accumulator file (.npz)")
    args = parser.parse_args(argv)
    acc = accumulate_data(IvectorSystem.load(args.model, args.num_threads),
                          DataDir(args.data_dir))
    acc.save(args.acc)
    print(f"{args.acc}: accumulators of {acc.num_utts} utterances, {acc.counts.sum():.0f} "
          f"frames ({acc.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    run_main(main)
