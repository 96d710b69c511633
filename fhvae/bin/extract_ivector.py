"""Extract i-vectors of a data dir with a trained extractor (Kaldi's extract_ivectors.sh).

  python -m fhvae.bin.extract_ivector [--num-threads N] [--job J --num-jobs N | --merge
      --num-jobs N] <extractor.npz> <data-dir> <out-dir>

Writes <out-dir>/ivector.{ark,scp}: one float32 Kaldi vector per utterance of
<data-dir>/feats.scp (like Kaldi's ivector.scp), written as the utterances are read, one
at a time, under temporary names renamed when complete. With --job J --num-jobs N: only
part J of N (contiguous in feats.scp) into ivector.J.{ark,scp}; --merge then writes
ivector.scp from the N parts (the arks stay per job, as in Kaldi), so that
utils/extract_ivectors.sh runs the parts as parallel jobs.
The vectors are posterior means under a zero-mean, unit-covariance prior; see
fhvae/ivector/extractor.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import DataDir
from fhvae.io.split import split_contiguous
from fhvae.io.tables import write_table
from fhvae.ivector.system import IvectorSystem, extract_ivectors


def merge_parts(out_dir: Path, num_jobs: int, expected: int) -> int:
    """ivector.scp from the scps of the `num_jobs` parts, in feats.scp order (the parts are
    contiguous and in order); every utterance of feats.scp must be in one."""
    lines = []
    for job in range(1, num_jobs + 1):
        part = out_dir / f"ivector.{job}.scp"
        if not part.is_file():
            raise FhvaeError(f"{part}: no such file (job {job} of {num_jobs} has not finished)")
        lines.extend(part.read_text().splitlines(True))
    if len(lines) != expected:
        raise FhvaeError(f"{out_dir}: the {num_jobs} parts hold {len(lines)} i-vectors, "
                         f"feats.scp has {expected} utterances")
    write_text_atomic(out_dir / "ivector.scp", "".join(lines))
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhvae.bin.extract_ivector",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="BLAS threads (default: as trained)")
    parser.add_argument("--job", type=int, help="1-based job index (needs --num-jobs)")
    parser.add_argument("--num-jobs", type=int, default=1)
    parser.add_argument("--merge", action="store_true",
                        help="write ivector.scp from the --num-jobs finished parts")
    parser.add_argument("extractor", type=Path, help="extractor.npz from train_ivector")
    parser.add_argument("data_dir", type=Path, help="data dir (feats.scp)")
    parser.add_argument("out_dir", type=Path, help="output dir for ivector.{ark,scp}")
    args = parser.parse_args(argv)
    if args.job is not None and args.merge:
        parser.error("--job and --merge exclude each other")
    if args.num_jobs < 1:
        parser.error("--num-jobs must be at least 1")
    data = DataDir(args.data_dir)
    num_utts = data.num_feats()
    if num_utts == 0:
        raise FhvaeError(f"{data.feats_scp}: no utterances")
    if args.merge:
        count = merge_parts(args.out_dir, args.num_jobs, num_utts)
        print(f"{args.out_dir / 'ivector.scp'}: {count} i-vectors from {args.num_jobs} jobs")
        return 0
    system = IvectorSystem.load(args.extractor, args.num_threads)
    stem, rows = "ivector", None
    if args.job is not None:
        stem = f"ivector.{args.job}"
        rows = set(split_contiguous(range(num_utts), args.job, args.num_jobs))
    count = write_table(args.out_dir / f"{stem}.ark", args.out_dir / f"{stem}.scp",
                        extract_ivectors(system, data, rows))
    print(f"{args.out_dir / (stem + '.scp')}: {count} {system.extractor.ivector_dim}-dim "
          f"i-vectors")
    return 0


if __name__ == "__main__":
    run_main(main)
