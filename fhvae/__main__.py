"""`fhvae <command> ...` (or `python -m fhvae <command> ...`): one front door to the stage
entry points in fhvae/bin, for users who `pip install` the package instead of running the
shell recipes.

Each subcommand hands the rest of the command line, unparsed, to its fhvae/bin module,
so `fhvae extract --help` shows that stage's own options. Only the chosen module is
imported, so `fhvae --help` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fhvae.bin.cli import run_main

# command -> (module with main(argv), one-line help), in pipeline order.
COMMANDS = {
    "compute-fbank": ("fhvae.bin.compute_fbank", "stage 1: FBank features of a wav.scp part"),
    "compute-vad": ("fhvae.bin.compute_vad",
                    "energy VAD (Kaldi's compute-vad) of a feats.scp part"),
    "apply-utt-cmvn": ("fhvae.bin.apply_utt_cmvn",
                       "stage 1 option: a data dir copy normalised per utterance (CMVN)"),
    "make-index": ("fhvae.bin.make_index", "stage 2: segment index (+ MVN, held-out split)"),
    "train": ("fhvae.bin.train", "stage 3: train an FHVAE with hierarchical sampling"),
    "extract": ("fhvae.bin.extract", "stage 4: z1/z2/s-vectors of a data dir with a trained model"),
    "evaluate": ("fhvae.bin.evaluate", "stage 5: EER, factor probes, t-SNE and re-combination"),
    "convert": ("fhvae.bin.convert", "voice conversion as audio: WAVs, scores, listening page"),
    "train-ivector": ("fhvae.bin.train_ivector",
                      "stage 5 baseline: train an i-vector extractor (UBM + T) on a data dir"),
    "ivector-acc-stats": ("fhvae.bin.ivector_acc_stats",
                          "i-vector training: one job's E-step accumulators (Kaldi's "
                          "ivector-extractor-acc-stats)"),
    "ivector-est": ("fhvae.bin.ivector_est",
                    "i-vector training: sum the jobs' accumulators and update the model"),
    "extract-ivector": ("fhvae.bin.extract_ivector",
                        "stage 5 baseline: i-vectors of a data dir with a trained extractor"),
    "augment": ("fhvae.bin.augment",
                "new training data: a data dir decoded toward target conditions"),
    "validate-data-dir": ("fhvae.bin.validate_data_dir", "check a Kaldi data dir"),
    "fix-data-dir": ("fhvae.bin.fix_data_dir", "repair a Kaldi data dir in place"),
    "combine-data": ("fhvae.bin.combine_data",
                     "merge Kaldi data dirs (utils/combine_data.sh's command line)"),
    "subset-data-dir": ("fhvae.bin.subset_data_dir", "copy part of a Kaldi data dir"),
    "split-scp": ("fhvae.bin.split_scp", "split an scp into balanced parts"),
    "split-data": ("fhvae.bin.split_data", "split a Kaldi data dir for parallel jobs"),
    "sweep-table": ("fhvae.bin.sweep_table", "tabulate a dev-set sweep (utils/sweep_fhvae.sh)"),
    "seed-table": ("fhvae.bin.seed_table",
                   "tabulate stage 5 over training seeds (local/run_seeds.sh)"),
}


def program_name() -> str:
    """`fhvae` for the console command, `python -m fhvae` when run as a module."""
    base = os.path.basename(sys.argv[0])
    return "python -m fhvae" if base == "__main__.py" else base or "fhvae"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=program_name(),
                                     description="FHVAE toolkit commands.")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Only the command word is parsed here; everything after it belongs to the command.
    args = parser.parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[args.command][0])
    run_main(module.main, argv[1:])


if __name__ == "__main__":
    main()
