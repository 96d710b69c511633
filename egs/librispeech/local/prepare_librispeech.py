#!/usr/bin/env python3
"""LibriSpeech (OpenSLR 12) -> Kaldi data dirs train_960, dev_clean, test_clean.

    prepare_librispeech.py [--train-parts a,b,c] <librispeech-dir> <data-dir>

<librispeech-dir> is the `LibriSpeech/` folder the archives unpack to: SPEAKERS.TXT and
<part>/<spk>/<chapter>/<spk>-<chapter>-<n>.flac with <spk>-<chapter>.trans.txt. The training
parts that are present (of train-clean-100, train-clean-360, train-other-500) are combined
into train_960; a log line names the ones used. wav.scp entries are the FLAC paths (read
directly); utt2gender comes from SPEAKERS.TXT. Utterance ids are those of Kaldi's
egs/librispeech/s5 (local/data_prep.sh): <spk>-<chapter>-<n>, C-sorted. The speaker is the
reader (<spk>), not Kaldi's per-chapter <spk>-<chapter> (a CMVN convenience there): speaker
verification needs one speaker per person. Kaldi's speaker is the id's first two fields.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.datadir_writer import Utterance, write_data_dir

logger = logging.getLogger("prepare_librispeech")

TRAIN_PARTS = "train-clean-100,train-clean-360,train-other-500"
LAYOUT = "the OpenSLR layout LibriSpeech/{SPEAKERS.TXT,dev-clean/84/121123/84-121123-0000.flac}"


def read_speakers(path: Path) -> dict[str, str]:
    """Reader id -> 'm'/'f' from SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`)."""
    if not path.is_file():
        raise FhvaeError(f"{path.parent}: no SPEAKERS.TXT (expected {LAYOUT})")
    genders = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 3 or fields[1].lower() not in ("m", "f"):
            raise FhvaeError(f"{path}:{lineno}: expected 'ID | SEX | SUBSET | MINUTES | NAME'")
        genders[fields[0]] = fields[1].lower()
    return genders


def part_utterances(part_dir: Path, genders: dict[str, str]) -> list[Utterance]:
    """Every utterance listed in the part's *.trans.txt files (each must have its FLAC)."""
    utts = []
    transcripts = sorted(part_dir.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise FhvaeError(f"{part_dir}: no <spk>/<chapter>/<spk>-<chapter>.trans.txt files "
                         f"(expected {LAYOUT})")
    for trans in transcripts:
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            utt = fields[0]
            spk = utt.split("-", 1)[0]
            flac = trans.parent / f"{utt}.flac"
            if len(fields) != 2 or not utt.startswith(trans.name[:-len(".trans.txt")] + "-"):
                raise FhvaeError(f"{trans}:{lineno}: expected '<spk>-<chapter>-<n> <TEXT>'")
            if not flac.is_file():
                raise FhvaeError(f"{trans}:{lineno}: audio file not found: {flac}")
            if spk not in genders:
                raise FhvaeError(f"{trans}:{lineno}: reader '{spk}' is not in SPEAKERS.TXT")
            utts.append(Utterance(utt=utt, spk=spk, wav=str(flac.resolve()), text=fields[1],
                                  labels={"gender": genders[spk]}))
    return utts


def prepare(root: Path, data: Path, train_parts: list[str]) -> None:
    if not root.is_dir():
        raise FhvaeError(f"{root}: no such directory (expected {LAYOUT})")
    genders = read_speakers(root / "SPEAKERS.TXT")
    present = [p for p in train_parts if (root / p).is_dir()]
    if not present:
        raise FhvaeError(f"{root}: none of the training parts {','.join(train_parts)} is there "
                         f"(expected {LAYOUT})")
    missing = [p for p in train_parts if p not in present]
    logger.info("train_960 is made of %s%s", " + ".join(present),
                f" (missing: {', '.join(missing)})" if missing else "")
    sets = {"train_960": present, "dev_clean": ["dev-clean"], "test_clean": ["test-clean"]}
    for name, parts in sets.items():
        utts = []
        for part in parts:
            if not (root / part).is_dir():
                raise FhvaeError(f"{root}: no {part}/ folder (expected {LAYOUT})")
            utts += part_utterances(root / part, genders)
        write_data_dir(data / name, utts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-parts", default=TRAIN_PARTS,
                        help="comma-separated training parts to combine (those present)")
    parser.add_argument("librispeech", type=Path, help="the LibriSpeech/ folder")
    parser.add_argument("data", type=Path, help="output: data/{train_960,dev_clean,test_clean}")
    args = parser.parse_args(argv)
    prepare(args.librispeech, args.data, [p for p in args.train_parts.split(",") if p])


if __name__ == "__main__":
    run_main(main)
