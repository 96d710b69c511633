"""Conditional data augmentation with a trained FHVAE (see fhvae/augment/).

  python -m fhvae augment [options] <model.pt> <src-data> <target-data> [<target-data> ...]
                          <out-root>

Writes <out-root>/<src>_aug_<target>/ for every target dir: the FBank of each source
utterance decoded from its own z1 with z2 moved to the target condition (--method; by
default added to the source as the change from its decoding with its own z2, --residual),
frame-aligned with the source (same number of frames, so text and alignments carry over),
on the source's FBank scale; utterance ids <utt>-<target name> (or --suffix), the source's
speakers, tables and CTMs, utt2uniq, per-speaker cmvn.scp. Only the target dirs' features
are read (and, for --relabel, their condition tables). Features go to --ark-dir.
Without --job: everything in one process. With --job J --num-jobs N: decode only
<src-data>/split<N>/<J> (utils/split_data.sh); then --merge --num-jobs N writes the data
dirs (what utils/augment_data_dir.sh runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fhvae.augment.decode import RESIDUALS
from fhvae.augment.domain import METHODS
from fhvae.augment.job import AugmentOptions, augment_part, merge, plan_targets
from fhvae.bin.cli import add_model_run_options, field_defaults, run_main
from fhvae.errors import FhvaeError
from fhvae.inference import FRAME_MODES
from fhvae.io.datadir import DataDir


def build_parser() -> argparse.ArgumentParser:
    d = field_defaults(AugmentOptions)
    parser = argparse.ArgumentParser(
        prog="python -m fhvae augment",
        description="Decode a data dir's utterances toward target conditions (FHVAE z2 moved, "
                    "z1 kept) into new Kaldi data dirs.")
    parser.add_argument("model", help="checkpoint (e.g. exp/fhvae/final.pt)")
    parser.add_argument("dirs", nargs="+", metavar="dir",
                        help="<src-data> <target-data> [<target-data> ...] <out-root>")
    parser.add_argument("--method", choices=METHODS, default=d.method,
                        help=f"where z2 goes (default {d.method}): shift = z2 + mean target "
                             "s-vector - mean source s-vector; target = the s-vector of a "
                             "target utterance picked per source utterance")
    parser.add_argument("--frames", choices=FRAME_MODES, default=d.frames,
                        help=f"frame t of the output (default {d.frames}): centre frame of the "
                             "window of row t, or the average of every window's prediction")
    parser.add_argument("--residual", choices=RESIDUALS, default=d.residual,
                        help=f"the source's detail the model does not reconstruct (default "
                             f"{d.residual}): none = decoded frames only; add = decoded(moved "
                             "z2) + source - decoded(z2); scaled = the same residual scaled per "
                             "bin by the ratio of the two decodings' std over time")
    parser.add_argument("--suffix", help="utterance-id suffix (one target only; default: the "
                                         "target dir's name)")
    parser.add_argument("--ark-dir", default="fbank",
                        help="directory of the feature arks (default fbank)")
    parser.add_argument("--compress", action="store_true",
                        help="Kaldi compressed matrices (copy-feats --compress=true)")
    parser.add_argument("--relabel", default=",".join(d.relabel),
                        help="utterance tables set to the target's label where the target dir "
                             f"has one (default {','.join(d.relabel)}; empty: carry all)")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help=f"seed of --method target's choice (default {d.seed})")
    parser.add_argument("--job", type=int, help="1-based job index (needs --num-jobs)")
    parser.add_argument("--num-jobs", type=int, help="number of jobs of --job / --merge")
    parser.add_argument("--merge", action="store_true",
                        help="write the data dirs from --num-jobs finished jobs")
    add_model_run_options(parser, d.batch_size)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.dirs) < 3:
        parser.error("need <src-data>, at least one <target-data> and <out-root>")
    if (args.job is not None or args.merge) and not args.num_jobs:
        parser.error("--job and --merge need --num-jobs")
    if args.job is not None and args.merge:
        parser.error("--job and --merge exclude each other")
    if args.num_jobs is not None and args.num_jobs < 1 or args.batch_size < 1:
        parser.error("--num-jobs and --batch-size must be positive")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    src, targets, out_root = Path(args.dirs[0]), args.dirs[1:-1], args.dirs[-1]
    opts = AugmentOptions(method=args.method, frames=args.frames, residual=args.residual,
                          seed=args.seed, compress=args.compress, batch_size=args.batch_size,
                          device=args.device, relabel=[t for t in args.relabel.split(",") if t])
    opts.check()
    plan = plan_targets(src, targets, out_root, args.suffix)
    if args.job is not None:
        part = src / f"split{args.num_jobs}" / str(args.job)
        feats_scp = DataDir(part).feats_scp
        if not feats_scp.is_file():
            raise FhvaeError(f"{feats_scp}: no such file (run utils/split_data.sh "
                             f"{src} {args.num_jobs} first)")
        augment_part(args.model, src, part, plan, args.ark_dir, args.job, opts)
        return 0
    if not args.merge:
        augment_part(args.model, src, src, plan, args.ark_dir, None, opts)
    num_jobs = args.num_jobs if args.merge else None
    for out_dir, count in merge(src, plan, args.ark_dir, num_jobs, opts).items():
        print(f"{out_dir}: {count} utterances")
    return 0


if __name__ == "__main__":
    run_main(main)
