"""Repair a Kaldi data dir in place, as Kaldi's fix_data_dir.sh:
`python -m fhvae.bin.fix_data_dir [--utt-extra-files "f ..."] [--spk-extra-files "f ..."] <dir>`.

Sorts and de-duplicates every table, keeps the utterances present in utt2spk, wav.scp (or
segments), feats.scp, text and utt2lang, filters utt2*, spk2*, cmvn.scp, vad.scp, reco2*
(and the extra files) to match, regenerates spk2utt; originals go to <dir>/.backup/.
"""

from __future__ import annotations

import argparse

from fhvae.bin.cli import run_main
from fhvae.io.validate import fix_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fix_data_dir.sh", description=__doc__)
    parser.add_argument("--utt-extra-files", default="",
                        help="more files keyed by utterance to filter (space-separated)")
    parser.add_argument("--spk-extra-files", default="",
                        help="more files keyed by speaker to filter (space-separated)")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    extra = {**{n: "utt" for n in args.utt_extra_files.split()},
             **{n: "spk" for n in args.spk_extra_files.split()}}
    report = fix_data_dir(args.data_dir, extra)
    if report.after == report.before:
        print(f"fix_data_dir.sh: kept all {report.before} utterances.")
    else:
        print(f"fix_data_dir.sh: kept {report.after} utterances out of {report.before}")
    if report.duplicates:
        print(f"fix_data_dir.sh: removed {report.duplicates} duplicate lines")
    print(f"fix_data_dir.sh: old files are kept in {report.backup}")
    return 0


if __name__ == "__main__":
    run_main(main)
