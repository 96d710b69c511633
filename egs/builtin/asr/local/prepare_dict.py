#!/usr/bin/env python3
"""Kaldi dict dir of the built-in corpus: every word's espeak-ng pronunciation in every accent
its training speakers use, so that the acoustic model is not taught one accent's vowels for
all eight.

Usage: local/prepare_dict.py [--espeak espeak-ng] <dict-dir>
Writes <dict-dir>/{lexicon.txt, nonsilence_phones.txt, silence_phones.txt,
optional_silence.txt, extra_questions.txt}, as utils/prepare_lang.sh reads them.

Phones are espeak-ng's mnemonics (`espeak-ng -x`) with the stress marks dropped (Kaldi's
position-dependent phones and its trees model what stress would); a '#' in a mnemonic (a
disambiguation symbol's first letter to Kaldi) becomes 'H'.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT), str(ROOT / "local")]

from fhvae.bin.cli import run_main  # noqa: E402
from fhvae.errors import FhvaeError  # noqa: E402
from fhvae.io.atomic import write_text_atomic  # noqa: E402
from synthcorpus.speakers import ACCENTS  # noqa: E402
from synthcorpus.words import WORDS  # noqa: E402

SILENCE_PHONES = ("SIL", "SPN")
OPTIONAL_SILENCE = "SIL"
SPECIAL_WORDS = (("!SIL", "SIL"), ("<UNK>", "SPN"))
STRESS_MARKS = "',"


def clean_phones(espeak_line: str) -> list[str]:
    """Kaldi phones of one line of `espeak-ng -x --sep=' '`: stress marks dropped, '#' -> 'H'."""
    phones = []
    for token in espeak_line.split():
        phone = token.translate(str.maketrans("", "", STRESS_MARKS)).replace("#", "H")
        if phone:
            phones.append(phone)
    return phones


def pronounce(words: tuple[str, ...], accent: str, espeak: str = "espeak-ng") -> list[list[str]]:
    """Each word's phones in `accent`: one espeak-ng call, one word per input line."""
    try:
        out = subprocess.run([espeak, "-q", "-x", "--sep= ", "-v", accent],
                             input="\n".join(words) + "\n", capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise FhvaeError(f"prepare_dict: {espeak} -v {accent} failed: {err}") from err
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) != len(words):
        raise FhvaeError(f"prepare_dict: {espeak} -v {accent} gave {len(lines)} pronunciations "
                         f"for {len(words)} words")
    prons = [clean_phones(line) for line in lines]
    for word, phones in zip(words, prons):
        if not phones:
            raise FhvaeError(f"prepare_dict: {espeak} -v {accent} gave no phones for '{word}'")
    return prons


def build_lexicon(words: tuple[str, ...], accents: tuple[str, ...],
                  espeak: str = "espeak-ng") -> dict[str, list[tuple[str, ...]]]:
    """word -> its distinct pronunciations over `accents`, in the accents' order."""
    lexicon: dict[str, list[tuple[str, ...]]] = {w: [] for w in words}
    for accent in accents:
        for word, phones in zip(words, pronounce(words, accent, espeak)):
            if tuple(phones) not in lexicon[word]:
                lexicon[word].append(tuple(phones))
    return lexicon


def write_dict_dir(dict_dir: Path, lexicon: dict[str, list[tuple[str, ...]]]) -> None:
    """The five files of a Kaldi dict dir, each sorted as Kaldi's validate_dict_dir.pl wants."""
    phones = sorted({p for prons in lexicon.values() for pron in prons for p in pron})
    clash = set(phones) & set(SILENCE_PHONES)
    if clash:
        raise FhvaeError(f"prepare_dict: espeak phone(s) {sorted(clash)} clash with silence phones")
    lines = [f"{w} {p}" for w, p in SPECIAL_WORDS]
    lines += [f"{word} {' '.join(pron)}" for word in sorted(lexicon) for pron in lexicon[word]]
    dict_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(dict_dir / "lexicon.txt", "".join(f"{line}\n" for line in sorted(lines)))
    write_text_atomic(dict_dir / "nonsilence_phones.txt", "".join(f"{p}\n" for p in phones))
    write_text_atomic(dict_dir / "silence_phones.txt", "".join(f"{p}\n" for p in SILENCE_PHONES))
    write_text_atomic(dict_dir / "optional_silence.txt", f"{OPTIONAL_SILENCE}\n")
    write_text_atomic(dict_dir / "extra_questions.txt", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prepare_dict.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--espeak", default="espeak-ng", help="the espeak-ng program")
    parser.add_argument("dict_dir", type=Path)
    args = parser.parse_args(argv)
    lexicon = build_lexicon(WORDS, ACCENTS, args.espeak)
    write_dict_dir(args.dict_dir, lexicon)
    prons = sum(len(p) for p in lexicon.values())
    phones = len({p for ps in lexicon.values() for pron in ps for p in pron})
    print(f"prepare_dict.py: {len(lexicon)} words, {prons} pronunciations over "
          f"{len(ACCENTS)} accents, {phones} phones -> {args.dict_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
