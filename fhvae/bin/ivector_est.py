"""Sum the jobs' accumulators and update the i-vector extractor: one EM M-step (Kaldi's
ivector-extractor-sum-accs + ivector-extractor-est).

  python -m fhvae.bin.ivector_est [--num-threads N] <model-in.npz> <model-out.npz> <acc.npz>...

<acc.npz> are the files fhvae.bin.ivector_acc_stats wrote with <model-in.npz>, one per job;
<model-out.npz> (written atomically) holds the updated system, its options those of
<model-in.npz>. See utils/train_ivector.sh.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.ivector.em import EmAccumulators
from fhvae.ivector.system import IvectorSystem
from fhvae.ivector.training import update_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhvae.bin.ivector_est",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="BLAS threads (default: as trained)")
    parser.add_argument("model_in", type=Path, help="the model the accumulators were made with")
    parser.add_argument("model_out", type=Path, help="the updated model")
    parser.add_argument("accs", type=Path, nargs="+", help="accumulator files, one per job")
    args = parser.parse_args(argv)
    system = IvectorSystem.load(args.model_in, args.num_threads)
    system = update_system(system, map(EmAccumulators.load, args.accs))
    system.save(args.model_out)
    print(f"{args.model_out}: updated from {len(args.accs)} accumulator files")
    return 0


if __name__ == "__main__":
    run_main(main)
