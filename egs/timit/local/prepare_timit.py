#!/usr/bin/env python3
"""TIMIT (LDC93S1) -> Kaldi data dirs train, dev, test with phone alignments.

    prepare_timit.py <timit-dir> <data-dir>

<timit-dir> holds TRAIN/ and TEST/ (LDC layout TRAIN/DR1/FCJF0/SI1027.WAV) or the same tree
in lower case (train/dr1/fcjf0/si1027.wav). The split is Kaldi's: train = every training
speaker without the SA sentences (3,696 utterances), dev = the 50 speakers of
conf/dev_spk.list, test = the 24-speaker core test set of conf/test_spk.list (both from TEST/).
Ids are those of Kaldi's egs/timit/s5 (local/timit_data_prep.sh), so z1 joins with a Kaldi
TIMIT system's alignments: the speaker is the speaker folder and the utterance is
`<speaker>_<sentence>`, both in the case the corpus is stored in (FCJF0_SI1027 from the LDC
discs, fcjf0_si1027 from a lower-case copy).
Each set gets wav.scp (NIST SPHERE paths, read directly), utt2spk, spk2utt, text,
utt2gender and phone_ali.ctm: `<utt> 1 <start-s> <dur-s> <phone39> <son|obs|sil>` from .PHN.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from phones import DELETED, MAP_61_TO_39, phone_class

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir_writer import Utterance, write_data_dir

logger = logging.getLogger("prepare_timit")

SAMPLE_RATE = 16000
CONF = Path(__file__).resolve().parents[1] / "conf"
LAYOUT = "the LDC layout TRAIN/DR1/FCJF0/SI1027.WAV"


def child(parent: Path, name: str) -> Path | None:
    """`parent/name` matched case-insensitively (TIMIT copies exist in upper and lower case)."""
    exact = parent / name
    if exact.exists():
        return exact
    for entry in parent.iterdir():
        if entry.name.lower() == name.lower():
            return entry
    return None


def part_dir(timit: Path, part: str) -> Path:
    """TRAIN/ or TEST/ of the corpus, in either case, or a one-line error."""
    if not timit.is_dir():
        raise FhvaeError(f"{timit}: no such directory (expected {LAYOUT})")
    found = child(timit, part)
    if found is None or not found.is_dir():
        raise FhvaeError(f"{timit}: no {part.upper()}/ or {part.lower()}/ folder "
                         f"(expected {LAYOUT})")
    return found


def read_speaker_list(path: Path) -> list[str]:
    return [line.strip().lower() for line in path.read_text().splitlines() if line.strip()]


def speaker_dirs(part: Path) -> dict[str, Path]:
    """Lower-case speaker name -> its folder, over every dialect region DR1..DR8.

    The key only matches the (lower-case) speaker lists; ids keep the folder's own case.
    """
    speakers = {}
    for region in sorted(part.iterdir()):
        if region.is_dir() and region.name.lower().startswith("dr"):
            for spk in sorted(region.iterdir()):
                if spk.is_dir():
                    speakers[spk.name.lower()] = spk
    if not speakers:
        raise FhvaeError(f"{part}: no speaker folders DR<n>/<speaker>/ (expected {LAYOUT})")
    return speakers


def read_phn(path: Path, utt: str) -> list[str]:
    """ctm lines of one .PHN file (sample offsets at 16 kHz), q deleted."""
    lines = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            start, end, phone = int(fields[0]), int(fields[1]), fields[2].lower()
            if len(fields) != 3 or end <= start or start < 0:
                raise ValueError
        except (ValueError, IndexError):
            raise FhvaeError(f"{path}:{lineno}: expected '<start-sample> <end-sample> <phone>'"
                             ) from None
        if phone == DELETED:
            continue
        if phone not in MAP_61_TO_39:
            raise FhvaeError(f"{path}:{lineno}: unknown TIMIT phone '{phone}'")
        p39 = MAP_61_TO_39[phone]
        lines.append(f"{utt} 1 {start / SAMPLE_RATE:.4f} {(end - start) / SAMPLE_RATE:.4f} "
                     f"{p39} {phone_class(p39)}")
    return lines


def read_txt(path: Path) -> str:
    """The sentence of a .TXT file (`<start> <end> <words>`)."""
    fields = path.read_text().split(maxsplit=2)
    if len(fields) < 3:
        raise FhvaeError(f"{path}:1: expected '<start-sample> <end-sample> <sentence>'")
    return " ".join(fields[2].split())


def speaker_utterances(spk_dir: Path) -> tuple[list[Utterance], list[str]]:
    """Utterances (SA sentences excluded) and ctm lines of one speaker folder."""
    spk = spk_dir.name
    utts, ctm = [], []
    wavs = sorted(p for p in spk_dir.iterdir() if p.suffix.lower() == ".wav"
                  and not p.name.lower().startswith("sa") and p.name.count(".") == 1)
    if not wavs:
        raise FhvaeError(f"{spk_dir}: no .WAV files")
    for wav in wavs:
        utt = f"{spk}_{wav.stem}"
        companions = {}
        for ext in (".phn", ".txt"):
            found = child(spk_dir, wav.stem + ext)
            if found is None:
                raise FhvaeError(f"{spk_dir}: {wav.name} has no {(wav.stem + ext).upper()} "
                                 f"next to it")
            companions[ext] = found
        ctm.extend(read_phn(companions[".phn"], utt))
        utts.append(Utterance(utt=utt, spk=spk, wav=str(wav.resolve()),
                              text=read_txt(companions[".txt"]),
                              labels={"gender": spk[0].lower()}))
    return utts, ctm


def write_set(data_dir: Path, speakers: dict[str, Path]) -> int:
    """Write one data dir (plus phone_ali.ctm) from speaker folders; returns #utterances."""
    utts, ctm = [], []
    for spk, spk_dir in sorted(speakers.items()):
        if spk[0] not in "mf":
            raise FhvaeError(f"{spk_dir}: speaker folder should start with M or F (gender)")
        more_utts, more_ctm = speaker_utterances(spk_dir)
        utts += more_utts
        ctm += more_ctm
    write_data_dir(data_dir, utts)
    # C order of "<utt> 1 <start>" needs a numeric sort on start within an utterance.
    ctm.sort(key=lambda line: (line.split()[0].encode(), float(line.split()[2])))
    write_text_atomic(data_dir / "phone_ali.ctm", "".join(f"{line}\n" for line in ctm))
    return len(utts)


def prepare(timit: Path, data: Path) -> None:
    train_part, test_part = part_dir(timit, "train"), part_dir(timit, "test")
    train_spk = speaker_dirs(train_part)
    test_spk = speaker_dirs(test_part)
    sets = {"train": train_spk}
    for name, listed in (("dev", read_speaker_list(CONF / "dev_spk.list")),
                         ("test", read_speaker_list(CONF / "test_spk.list"))):
        missing = [s for s in listed if s not in test_spk]
        if missing:
            logger.warning("%s: %d of the %d %s speakers are missing (e.g. %s)", test_part,
                           len(missing), len(listed), name, missing[0])
        sets[name] = {s: test_spk[s] for s in listed if s in test_spk}
        if not sets[name]:
            raise FhvaeError(f"{test_part}: none of the {name} speakers of "
                             f"{CONF / (name + '_spk.list')} is there")
    for name, speakers in sets.items():
        count = write_set(data / name, speakers)
        logger.info("data/%s: %d utterances of %d speakers", name, count, len(speakers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("timit", type=Path, help="TIMIT root (holds TRAIN/ and TEST/)")
    parser.add_argument("data", type=Path, help="output: data/{train,dev,test}")
    args = parser.parse_args(argv)
    prepare(args.timit, args.data)


if __name__ == "__main__":
    run_main(main)
