#!/usr/bin/env python3
"""Aurora-4 (16 kHz) -> Kaldi data dirs dev_0330 (multi-condition development set, 4,620
utterances: 330 sentences x 14 conditions) and test_eval92 (the 14-condition test set).

    prepare_aurora4.py <aurora4-dir> <data-dir>

Supported layout: the distribution's file lists <aurora4-dir>/lists/devtest<NN>_0330_16k.list
and test<NN>_0330_16k.list, NN = 01..14, one audio path per line relative to <aurora4-dir>
(`;` lines are comments). A path that does not exist as written is also tried with Kaldi's
convention of a first folder `<a>_<b>_<c>` stored as `<a><b>_<c>`. Files named .wv1/.wv2 are
headerless 16-bit big-endian PCM (read through a sox pipe); .wav files are read directly.

Condition NN gives the labels: NN 01-07 were recorded with the primary Sennheiser microphone,
08-14 with a secondary microphone, and within each half the noise is clean, car, babble,
restaurant, street, airport, train. Ids are those of Kaldi's egs/aurora4/s5
(local/aurora4_data_prep.sh), so z1 joins with a Kaldi Aurora-4 system's alignments: the
utterance is the lower-case WSJ utterance id plus one condition character (01..10 -> 0..9,
11..14 -> a..d: 40ao0301 under condition 12 is 40ao0301b), the speaker is the WSJ speaker
code (first three characters), so one sentence read by one speaker appears under 14 conditions.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.datadir_writer import Utterance, write_data_dir

NOISES = ("clean", "car", "babble", "restaurant", "street", "airport", "train")
MICS = ("sennheiser", "secondary")
CONDITIONS = range(1, 15)
# Kaldi's one-character condition suffix of utterance ids, for NN = 01..14.
CONDITION_SUFFIX = "0123456789abcd"
SETS = {"dev_0330": "devtest{nn:02d}_0330_16k.list", "test_eval92": "test{nn:02d}_0330_16k.list"}
RAW_PIPE = "sox -B -r 16000 -e signed -b 16 -c 1 -t raw {path} -t wav - |"


def condition_labels(nn: int) -> dict[str, str]:
    return {"noise": NOISES[(nn - 1) % 7], "channel": MICS[(nn - 1) // 7]}


def resolve(root: Path, rel: str) -> Path | None:
    """The audio file a list line names, as written or in Kaldi's folder convention."""
    candidates = [root / rel]
    first, _, rest = rel.partition("/")
    parts = first.split("_")
    if rest and len(parts) >= 3:
        candidates.append(root / f"{parts[0]}{parts[1]}_{parts[2]}" / rel)
    return next((c for c in candidates if c.is_file()), None)


def wav_entry(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".wv1", ".wv2"):
        return RAW_PIPE.format(path=shlex.quote(str(path.resolve())))
    if ext == ".wav":
        return str(path.resolve())
    raise FhvaeError(f"{path}: unsupported audio type '{ext}' (expected .wv1, .wv2 or .wav)")


def list_utterances(root: Path, list_file: Path, nn: int) -> list[Utterance]:
    """Utterances of one condition's list file."""
    if not list_file.is_file():
        raise FhvaeError(f"{list_file.parent}: no {list_file.name} (expected the Aurora-4 "
                         f"layout lists/devtest01_0330_16k.list ... 14)")
    labels = condition_labels(nn)
    utts = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        rel = line.strip()
        if not rel or rel.startswith(";"):
            continue
        path = resolve(root, rel)
        if path is None:
            raise FhvaeError(f"{list_file}:{lineno}: audio file not found: {root / rel}")
        ext = path.suffix.lower()
        if ext in (".wv1", ".wv2") and MICS.index(labels["channel"]) != int(ext[-1]) - 1:
            raise FhvaeError(f"{list_file}:{lineno}: condition {nn:02d} is the "
                             f"{labels['channel']} microphone but the file is {ext}")
        wsj_utt = path.stem.lower()
        if len(wsj_utt) < 4:
            raise FhvaeError(f"{list_file}:{lineno}: '{path.name}' is not a WSJ utterance id")
        utts.append(Utterance(utt=wsj_utt + CONDITION_SUFFIX[nn - 1], spk=wsj_utt[:3],
                              wav=wav_entry(path), labels=dict(labels)))
    return utts


def prepare(root: Path, data: Path) -> None:
    if not root.is_dir():
        raise FhvaeError(f"{root}: no such directory (expected the Aurora-4 layout "
                         f"lists/devtest01_0330_16k.list ...)")
    if not (root / "lists").is_dir():
        raise FhvaeError(f"{root}: no lists/ folder (expected the Aurora-4 layout "
                         f"lists/devtest01_0330_16k.list ...)")
    for name, pattern in SETS.items():
        utts = []
        for nn in CONDITIONS:
            utts += list_utterances(root, root / "lists" / pattern.format(nn=nn), nn)
        write_data_dir(data / name, utts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("aurora4", type=Path, help="Aurora-4 root (holds lists/)")
    parser.add_argument("data", type=Path, help="output: data/{dev_0330,test_eval92}")
    args = parser.parse_args(argv)
    prepare(args.aurora4, args.data)


if __name__ == "__main__":
    run_main(main)
