"""Extract i-vectors of a data dir with a trained extractor (Kaldi's extract_ivectors.sh).

  python -m fhvae.bin.extract_ivector [--num-threads N] <extractor.npz> <data-dir> <out-dir>

Writes <out-dir>/ivector.{ark,scp}: one float32 Kaldi vector per utterance of
<data-dir>/feats.scp (like Kaldi's ivector.scp), written as the utterances are read, one
at a time, under temporary names renamed when complete.
The vectors are posterior means under a zero-mean, unit-covariance prior; see
fhvae/ivector/extractor.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.datadir import DataDir
from fhvae.io.tables import write_table
from fhvae.ivector.system import IvectorSystem, extract_ivectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhvae.bin.extract_ivector",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="BLAS threads (default: as trained)")
    parser.add_argument("extractor", type=Path, help="extractor.npz from train_ivector")
    parser.add_argument("data_dir", type=Path, help="data dir (feats.scp)")
    parser.add_argument("out_dir", type=Path, help="output dir for ivector.{ark,scp}")
    args = parser.parse_args(argv)
    system = IvectorSystem.load(args.extractor, args.num_threads)
    data = DataDir(args.data_dir)
    if data.num_feats() == 0:
        raise FhvaeError(f"{data.feats_scp}: no utterances")
    count = write_table(args.out_dir / "ivector.ark", args.out_dir / "ivector.scp",
                        extract_ivectors(system, data))
    print(f"{args.out_dir / 'ivector.scp'}: {count} {system.extractor.ivector_dim}-dim "
          f"i-vectors")
    return 0


if __name__ == "__main__":
    run_main(main)
