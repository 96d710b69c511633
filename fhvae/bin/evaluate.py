"""Stage 5: speaker verification (EER/minDCF), factor probes, t-SNE and re-combination figures.

Usage: python -m fhvae.bin.evaluate [options] <data-dir> <latents-dir> <eval-dir>
e.g.   python -m fhvae.bin.evaluate --seed 777 --model exp/fhvae/final.pt \\
         --train-data data/train --train-latents exp/fhvae/latents_train \\
         data/test exp/fhvae/latents_test exp/fhvae/eval_test
Back-ends adapted to an unlabelled set of the evaluated domain (Kaldi's in-domain mean and
ivector-adapt-plda): add --adapt-data data/dev_unseen --adapt-latents
exp/fhvae/latents_dev_unseen (--adapt-backends: which ones; --adapt-plda false: the mean only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from fhvae.bin.cli import field_defaults, run_main
from fhvae.errors import FhvaeError
from fhvae.evaluate.pipeline import EvalConfig, run_evaluation
from fhvae.evaluate.report import comparison_table, eer_table, probe_table
from fhvae.evaluate.scoring import DEFAULT_ADAPTED, Adaptation, PldaAdaptConfig
from fhvae.evaluate.verification import BACKENDS


def build_parser() -> argparse.ArgumentParser:
    d = field_defaults(EvalConfig)
    parser = argparse.ArgumentParser(
        prog="evaluate", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("data", type=Path, help="evaluated data dir (utt2spk, feats.scp, ...)")
    parser.add_argument("latents", type=Path, help="its latents dir (z1/z2/svector .scp)")
    parser.add_argument("out_dir", type=Path, help="output dir (results.md, eer.txt, figures)")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint (final.pt)")
    parser.add_argument("--train-data", type=Path, required=True,
                        help="training data dir (speaker labels, FBank for the baseline)")
    parser.add_argument("--train-latents", type=Path, required=True,
                        help="training latents dir (svector.scp for the back-ends)")
    parser.add_argument("--train-ivectors", type=Path, default=None,
                        help="i-vector baseline: dir with ivector.scp of the training set "
                             "(e.g. exp/ivector/ivectors_train); with --ivectors")
    parser.add_argument("--ivectors", type=Path, default=None,
                        help="dir with ivector.scp of the evaluated set")
    parser.add_argument("--adapt-ivectors", type=Path, default=None,
                        help="dir with ivector.scp of the adaptation set (with --adapt-data "
                             "and i-vectors)")
    parser.add_argument("--train-fbank-data", type=Path, default=None,
                        help="when the model reads normalised copies of the features (e.g. "
                             "data/train_cmvn): the data dir with the training set's own FBank, "
                             "for the FBank baselines (default: --train-data)")
    parser.add_argument("--fbank-data", type=Path, default=None,
                        help="the same for the evaluated set (default: <data>)")
    parser.add_argument("--adapt-fbank-data", type=Path, default=None,
                        help="the same for the adaptation set (default: --adapt-data)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--trials", type=Path, default=None,
                        help="Kaldi trials file; default <out-dir>/trials, generated if absent")
    parser.add_argument("--backend", default=",".join(d.backends),
                        help=f"comma-separated back-ends from: {', '.join(BACKENDS)}")
    parser.add_argument("--max-targets-per-utt", type=int, default=d.max_targets_per_utt,
                        help="generated trials: target (and as many nontarget) trials per utt")
    parser.add_argument("--max-matched-nontarget", type=int,
                        default=d.max_matched_nontarget,
                        help="condition-matched trials (same noise and channel): every target "
                             "pair and at most this many nontarget pairs")
    parser.add_argument("--lda-dim", type=int, default=d.lda_dim,
                        help="LDA output dim (default: min(#train speakers - 1, input dim))")
    parser.add_argument("--p-target", type=float, default=d.p_target, help="prior for minDCF")
    parser.add_argument("--probe-stride", type=int, default=d.probe_stride,
                        help="probe/t-SNE vectors: one frame every this many frames")
    parser.add_argument("--tsne-speakers", type=int, default=d.tsne_speakers)
    parser.add_argument("--tsne-points", type=int, default=d.tsne_points)
    parser.add_argument("--num-a", type=int, default=d.num_a, help="re-combination: x^A segments")
    parser.add_argument("--num-b", type=int, default=d.num_b, help="re-combination: x^B segments")
    parser.add_argument("--bootstrap", type=int, default=d.bootstrap,
                        help="speaker resamples for EER intervals (0: none)")
    parser.add_argument("--swap-segments", type=int, default=d.swap_segments,
                        help="swap test: segments sampled from the evaluated set (0: no test)")
    parser.add_argument("--recombine-pairs", type=int, default=d.recombine_pairs,
                        help="re-combination score: (A, B) utterance pairs (0: figure only)")
    parser.add_argument("--asr-train-utts", type=int, default=d.asr_train_utts,
                        help="robust-ASR probe: clean close-talk training utterances it is "
                             "trained on (0: no probe)")
    _add_adaptation_options(parser)
    parser.add_argument("--num-threads", type=int, default=1,
                        help="CPU threads for torch/BLAS/OpenMP (t-SNE slows down badly when "
                             "its threads compete with other jobs for the cores)")
    return parser


def _add_adaptation_options(parser: argparse.ArgumentParser) -> None:
    """--adapt-*: back-ends adapted to an unlabelled set of the evaluated domain."""
    kaldi = PldaAdaptConfig()
    parser.add_argument("--adapt-data", type=Path, default=None,
                        help="unlabelled adaptation set of the evaluated domain (feats.scp; "
                             "speaker labels are not read): the --adapt-backends centre with "
                             "its mean instead of the training mean")
    parser.add_argument("--adapt-latents", type=Path, default=None,
                        help="its latents dir (svector.scp); required with --adapt-data")
    parser.add_argument("--adapt-backends", default=",".join(DEFAULT_ADAPTED),
                        help="comma-separated back-ends to adapt (the default was chosen on "
                             "dev_unseen: local/tuning/adaptation_dev.md)")
    parser.add_argument("--adapt-plda", choices=("true", "false"), default="true",
                        help="with --adapt-data: also adapt the LDA + PLDA model as Kaldi's "
                             "ivector-adapt-plda does (false: the mean only)")
    parser.add_argument("--within-covar-scale", type=float, default=kaldi.within_covar_scale,
                        help="ivector-adapt-plda: share of the excess variance added to W")
    parser.add_argument("--between-covar-scale", type=float, default=kaldi.between_covar_scale,
                        help="ivector-adapt-plda: share of the excess variance added to B")
    parser.add_argument("--mean-diff-scale", type=float, default=kaldi.mean_diff_scale,
                        help="ivector-adapt-plda: weight of the mean shift in the adaptation "
                             "data's covariance")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.adapt_data is None) != (args.adapt_latents is None):
        raise FhvaeError("evaluate: --adapt-data and --adapt-latents go together")
    adapted = tuple(b for b in args.adapt_backends.split(",") if b)
    unknown = [b for b in adapted if b not in BACKENDS]
    if unknown:
        raise FhvaeError(f"evaluate: --adapt-backends: unknown back-end '{unknown[0]}' "
                         f"(choose from {', '.join(BACKENDS)})")
    adaptation = None if args.adapt_data is None else Adaptation(
        str(args.adapt_data), args.adapt_plda == "true",
        PldaAdaptConfig(args.within_covar_scale, args.between_covar_scale, args.mean_diff_scale),
        adapted)
    cfg = EvalConfig(
        model=args.model, train_data=args.train_data, train_latents=args.train_latents,
        data=args.data, latents=args.latents, out_dir=args.out_dir, seed=args.seed,
        trials=args.trials, backends=tuple(b for b in args.backend.split(",") if b),
        max_targets_per_utt=args.max_targets_per_utt,
        max_matched_nontarget=args.max_matched_nontarget, lda_dim=args.lda_dim,
        p_target=args.p_target, probe_stride=args.probe_stride,
        tsne_speakers=args.tsne_speakers, tsne_points=args.tsne_points,
        num_a=args.num_a, num_b=args.num_b, bootstrap=args.bootstrap,
        swap_segments=args.swap_segments, recombine_pairs=args.recombine_pairs,
        asr_train_utts=args.asr_train_utts, adapt_data=args.adapt_data,
        adapt_latents=args.adapt_latents, adaptation=adaptation,
        train_ivectors=args.train_ivectors, ivectors=args.ivectors,
        adapt_ivectors=args.adapt_ivectors, train_fbank_data=args.train_fbank_data,
        fbank_data=args.fbank_data, adapt_fbank_data=args.adapt_fbank_data)
    torch.set_num_threads(args.num_threads)
    with threadpool_limits(args.num_threads):
        summary = run_evaluation(cfg)
    for result in summary.verification:
        print(f"{result.trial_list.description}:")
        print(eer_table(result.systems))
    if summary.num_resamples:
        print(comparison_table(summary.verification, summary.num_resamples))
    print(probe_table(summary.probes))
    print(f"wrote {args.out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    run_main(main)
