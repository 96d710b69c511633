"""Stage 4 entry point: z1/z2/s-vectors of a data dir (see fhvae/extract.py for the layout,
fhvae/inference/latents.py for the numbers).

  python -m fhvae.bin.extract [options] <model.pt> <data-dir> <out-dir>

Without --job: extract everything into <out-dir>/{z1,z2,svector}.{ark,scp}, then write
spk_svector.{ark,scp} and num_utts.ark. With --job J --num-jobs N: only part J of N
(contiguous in feats.scp) into <out-dir>/{z1,z2,svector}.J.{ark,scp}. With --merge
--num-jobs N: combine N finished jobs into sorted {z1,z2,svector}.scp, check the counts,
write the speaker tables (what utils/extract_latents.sh runs after its jobs).
--svector-pool speech pools only the mostly voiced segments of <data-dir>/vad.scp into
the s-vectors (the same option must be given to the jobs and to --merge).
With --data-out-prefix P (not with --svector-only), the whole-set modes also write the
Kaldi data dirs P_z1 and P_z2 (feats.scp = the latents, cmvn.scp, utt2num_frames, the
source dir's other tables; see fhvae/io/feature_dir.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fhvae.bin.cli import add_model_run_options, field_defaults, run_main
from fhvae.extract import check_counts, check_speakers, merge_jobs, run_job, speaker_means
from fhvae.inference import SVECTOR_POOLS, ExtractOptions
from fhvae.io.datadir import DataDir
from fhvae.io.feature_dir import check_owner, write_feature_dir


def build_parser() -> argparse.ArgumentParser:
    d = field_defaults(ExtractOptions)
    parser = argparse.ArgumentParser(
        prog="python -m fhvae.bin.extract",
        description="Extract frame-level z1/z2 and s-vectors with a trained FHVAE.")
    parser.add_argument("model", help="checkpoint (e.g. exp/fhvae/final.pt)")
    parser.add_argument("data_dir", help="Kaldi data dir with feats.scp and utt2spk")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--job", type=int, help="1-based job index (needs --num-jobs)")
    parser.add_argument("--num-jobs", type=int, default=1, help="number of jobs (default 1)")
    parser.add_argument("--merge", action="store_true",
                        help="combine the outputs of --num-jobs finished jobs")
    parser.add_argument("--sample", action="store_true",
                        help="draw z1/z2 from the posteriors instead of using their means")
    parser.add_argument("--svector-only", action="store_true",
                        help="write only s-vectors (svector, spk_svector, num_utts): encodes "
                             "the non-overlapping segments only, ~20x faster")
    parser.add_argument("--compress", action="store_true",
                        help="write z1/z2 as Kaldi compressed matrices (copy-feats "
                             "--compress=true); s-vectors stay float vectors")
    parser.add_argument("--svector-pool", choices=SVECTOR_POOLS, default=d.svector_pool,
                        help=f"segments pooled into s-vectors (default {d.svector_pool}): "
                             "all, or speech: only those mostly voiced in <data-dir>/vad.scp "
                             "(utils/compute_vad_decision.sh); z1/z2 are unchanged")
    parser.add_argument("--data-out-prefix",
                        help="also write Kaldi data dirs <prefix>_z1 and <prefix>_z2 "
                             "(e.g. data/test -> data/test_z1, data/test_z2); refused when "
                             "they hold another model's latents (their fhvae_model file)")
    parser.add_argument("--check-only", action="store_true",
                        help="check the options and --data-out-prefix's owner, then stop "
                             "(extract_latents.sh, before it starts its jobs)")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help=f"seed for --sample (default {d.seed})")
    add_model_run_options(parser, d.batch_size, "windows per encoder call")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.job is not None and args.merge:
        parser.error("--job and --merge exclude each other")
    if args.num_jobs < 1 or args.batch_size < 1:
        parser.error("--num-jobs and --batch-size must be positive")
    if args.data_out_prefix and args.svector_only:
        parser.error("--data-out-prefix needs z1/z2: not with --svector-only")
    for name in ("z1", "z2") if args.data_out_prefix else ():  # before any work is done
        check_owner(f"{args.data_out_prefix}_{name}", args.model)
    if args.check_only:
        return 0
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    opts = ExtractOptions(sample=args.sample, seed=args.seed, batch_size=args.batch_size,
                          svector_only=args.svector_only, compress=args.compress,
                          svector_pool=args.svector_pool)
    out_dir, data_dir = Path(args.out_dir), Path(args.data_dir)
    if args.job is not None:
        run_job(args.model, data_dir, out_dir, args.job, args.num_jobs, args.device, opts)
        return 0
    check_speakers(data_dir)
    if args.merge:
        merge_jobs(args.model, data_dir, out_dir, args.num_jobs, opts)
    else:
        counts = run_job(args.model, data_dir, out_dir, None, 1, args.device, opts)
        check_counts(out_dir, data_dir, counts["utterances"], counts["skipped"], opts.tables)
    speaker_means(out_dir / "svector.scp", DataDir(data_dir).utt2spk, out_dir)
    if args.data_out_prefix:
        for name in ("z1", "z2"):
            write_feature_dir(data_dir, f"{args.data_out_prefix}_{name}",
                              out_dir / f"{name}.scp", out_dir / f"cmvn_{name}.ark", args.model)
    return 0


if __name__ == "__main__":
    run_main(main)
