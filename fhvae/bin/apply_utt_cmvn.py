"""A copy of a data dir whose features are normalised per utterance (mean and variance).

  python -m fhvae.bin.apply_utt_cmvn [--compress true|false] <src-data> <dst-data> <feat-dir>

Writes <feat-dir>/utt_cmvn_<dst-name>.{ark,scp} and the data dir <dst-data>: every table of
<src-data> with the new feats.scp, utt2num_frames and per-speaker cmvn.scp. The same as
Kaldi's `compute-cmvn-stats scp:feats.scp ark:- | apply-cmvn --norm-vars=true ark:-
scp:feats.scp ark:-` with one set of statistics per utterance.

Why: the FHVAE otherwise sees only global MVN, so a recording condition it never saw in
training (a new microphone, codec or stationary hum: a constant offset per log-mel bin)
reaches its encoders unchanged; Kaldi's speaker recipes normalise every utterance before
modelling for the same reason. utils/fhvae_pipeline.sh --input-norm utt-cmvn trains and
extracts on such copies (data/<set>_cmvn) and keeps the FBank baselines on the originals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.features.mvn import utterance_cmvn
from fhvae.io.datadir import DataDir
from fhvae.io.feature_dir import write_feature_dir
from fhvae.io.tables import TableWriter, read_scp
from fhvae.progress import progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apply_utt_cmvn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compress", choices=("true", "false"), default="false",
                        help="store the features as Kaldi compressed matrices")
    parser.add_argument("src_data", type=Path)
    parser.add_argument("dst_data", type=Path)
    parser.add_argument("feat_dir", type=Path, help="where the ark/scp of the features go")
    args = parser.parse_args(argv)
    feats_scp = DataDir(args.src_data).feats_scp
    if not feats_scp.is_file():
        raise FhvaeError(f"{feats_scp}: not found (run stage 1 on {args.src_data})")
    name = f"utt_cmvn_{args.dst_data.name}"
    ark, scp = args.feat_dir / f"{name}.ark", args.feat_dir / f"{name}.scp"
    with TableWriter(ark, scp, compress=args.compress == "true") as writer:
        for utt, feats in progress(read_scp(feats_scp), name, unit="utt"):
            if feats.ndim != 2 or feats.shape[0] == 0:
                raise FhvaeError(f"{feats_scp}: '{utt}' is not a non-empty matrix")
            writer.write(utt, utterance_cmvn(feats))
    count = write_feature_dir(args.src_data, args.dst_data, scp,
                              args.feat_dir / f"cmvn_{name}.ark")
    print(f"{args.dst_data}: {count} utterances normalised per utterance (features in {ark})")
    return 0


if __name__ == "__main__":
    run_main(main)
