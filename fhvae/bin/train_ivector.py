"""Train the i-vector baseline (UBM + total-variability extractor) on a data dir.

  python -m fhvae.bin.train_ivector [options] <data-dir> <exp-dir>

Reads the raw FBank of <data-dir>/feats.scp (train speakers only), one utterance at a time,
and writes <exp-dir>/extractor.npz (every array and option; read by extract_ivector).
Kaldi's egs/sre08/v1/sid train_diag_ubm.sh + train_ivector_extractor.sh in one process, on
our FBank (see fhvae/ivector/features.py for the front-end): the UBM on at most
--ubm-max-utts utterances, then --num-iters EM iterations that each stream the whole set.
Memory does not grow with the number of utterances. A rerun resumes after the last finished
iteration (<exp-dir>/extractor.<n>.npz, kept while it was trained with these options on
this feats.scp). utils/train_ivector.sh runs the same steps as --nj parallel jobs:
  --plan       print "<iterations done> <iterations>" (done -1: the UBM is still to train)
               after removing what cannot be resumed, and stop
  --init-only  train the UBM and initialise the extractor (<exp-dir>/extractor.0.npz)
Defaults: the dev-chosen system (local/tuning/ivector_dev.md)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.features.vad import read_vad_config
from fhvae.io.datadir import DataDir
from fhvae.io.kaldi_config import _parse_bool
from fhvae.ivector.em import EmOptions
from fhvae.ivector.features import FEATURE_TYPES, FrontEndConfig
from fhvae.ivector.resume import model_path, resume_point, save_iteration
from fhvae.ivector.system import IvectorConfig
from fhvae.ivector.training import init_system, train_ivector_system

DEFAULT = IvectorConfig()

# option -> (section of IvectorConfig: "" top level, "front_end" or "em"; field name)
OPTIONS = {
    "num-gauss": ("", "num_gauss", "UBM size"),
    "ivector-dim": ("", "ivector_dim", "i-vector dimension"),
    "num-iters": ("", "em_iters", "extractor EM iterations"),
    "ubm-iters": ("", "ubm_iters", "UBM EM iterations"),
    "subsample": ("", "ubm_subsample", "UBM trains on every n-th frame"),
    "ubm-max-frames": ("", "ubm_max_frames", "at most this many UBM frames (0: all)"),
    "ubm-max-utts": ("", "ubm_max_utts", "UBM frames from at most this many utterances "
                     "(random subset; 0: all)"),
    "ubm-var-floor": ("", "ubm_var_floor", "UBM variance floor, x the data variance"),
    "min-post": ("", "min_post", "prune frame posteriors below this"),
    "num-gselect": ("", "num_gselect", "Gaussians preselected per frame (0: all)"),
    "seed": ("", "seed", "seed of the UBM and extractor initialisation"),
    "num-threads": ("", "num_threads", "BLAS threads"),
    "num-ceps": ("front_end", "num_ceps", "cepstra kept with --feature-type mfcc"),
    "cepstral-lifter": ("front_end", "cepstral_lifter", "MFCC lifter (0: none)"),
    "delta-order": ("front_end", "delta_order", "add-deltas order (0: no deltas)"),
    "delta-window": ("front_end", "delta_window", "add-deltas window"),
    "sliding-cmn": ("front_end", "sliding_cmn", "apply-cmvn-sliding --center=true"),
    "cmn-window": ("front_end", "cmn_window", "sliding CMN window (frames)"),
    "vad": ("front_end", "vad", "keep only energy-VAD voiced frames"),
    "update-means": ("em", "update_means", "re-estimate the extractor means"),
    "update-variances": ("em", "update_variances", "re-estimate the extractor covariances"),
    "min-divergence": ("em", "min_divergence", "minimum-divergence prior re-estimation"),
    "variance-floor-factor": ("em", "var_floor_factor",
                              "extractor variance floor, x the average variance"),
    "gaussian-min-count": ("em", "min_count", "Gaussians with a smaller count are not "
                           "updated"),
}


def kaldi_bool(text: str) -> bool:
    try:
        return _parse_bool(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _section(config: object, section: str) -> object:
    return getattr(config, section) if section else config


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per config field, typed and defaulted like the field."""
    parser.add_argument("--feature-type", choices=FEATURE_TYPES,
                        default=DEFAULT.front_end.feature_type,
                        help=f"front-end (default {DEFAULT.front_end.feature_type})")
    for option, (section, name, help_text) in OPTIONS.items():
        default = getattr(_section(DEFAULT, section), name)
        kind = kaldi_bool if isinstance(default, bool) else type(default)
        parser.add_argument("--" + option, dest=option.replace("-", "_"), type=kind,
                            default=default, help=f"{help_text} (default {default})",
                            metavar="true|false" if kind is kaldi_bool else "N")
    parser.add_argument("--vad-config", help="compute-vad options file (e.g. conf/vad.conf); "
                        "default: conf/vad.conf's values")


def config_from_args(args: argparse.Namespace) -> IvectorConfig:
    values: dict[str, dict[str, object]] = {"": {}, "front_end": {}, "em": {}}
    for option, (section, name, _) in OPTIONS.items():
        values[section][name] = getattr(args, option.replace("-", "_"))
    front_end = dict(values["front_end"], feature_type=args.feature_type)
    if args.vad_config:
        front_end["vad_options"] = read_vad_config(args.vad_config)
    return IvectorConfig(front_end=dataclasses.replace(FrontEndConfig(), **front_end),
                         em=EmOptions(**values["em"]), **values[""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhvae.bin.train_ivector",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_options(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true",
                      help="print where training stands and stop (see above)")
    mode.add_argument("--init-only", action="store_true",
                      help="only the UBM and the initial extractor (see above)")
    parser.add_argument("data_dir", type=Path, help="training data dir (feats.scp)")
    parser.add_argument("exp_dir", type=Path, help="output dir for extractor.npz")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    cfg.check()
    data = DataDir(args.data_dir)
    if args.plan:
        done = resume_point(args.exp_dir, data, cfg)
        print(f"{-1 if done is None else done} {cfg.em_iters}")
        return 0
    if args.init_only:
        path = save_iteration(args.exp_dir, init_system(data, cfg), 0)
        print(f"{path}: {cfg.num_gauss}-Gaussian UBM and initial extractor")
        return 0
    system = train_ivector_system(data, cfg, args.exp_dir)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in system.train_seconds.items())
    print(f"{model_path(args.exp_dir, cfg.em_iters, cfg)}: {cfg.num_gauss} Gaussians, "
          f"{cfg.ivector_dim}-dim i-vectors of {system.extractor.feat_dim}-dim "
          f"{cfg.front_end.feature_type} features ({times})")
    return 0


if __name__ == "__main__":
    run_main(main)
