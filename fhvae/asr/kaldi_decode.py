"""What Kaldi's steps/score_kaldi.sh leaves in a decode dir, read back for per-utterance scoring.

score_kaldi.sh scores every language-model weight (LMWT) and word-insertion penalty (WIP):
`wer_<LMWT>_<WIP>` holds compute-wer's line, `scoring_kaldi/penalty_<WIP>/<LMWT>.txt` the
hypotheses. Kaldi recipes then report the best of them on the set itself; choosing on dev and
applying the choice to test is what keeps a test figure honest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.text_table import read_kv

_WER_LINE = re.compile(r"%WER\s+([\d.]+|inf|nan)\s+\[\s*(\d+)\s*/\s*(\d+),\s*(\d+)\s+ins,"
                       r"\s*(\d+)\s+del,\s*(\d+)\s+sub\s*\]")
_WER_FILE = re.compile(r"wer_(\d+)_([\d.]+)$")


@dataclass(frozen=True)
class KaldiWer:
    """One compute-wer line: errors, reference words, and its (LMWT, WIP)."""

    lmwt: int
    wip: str
    errors: int
    words: int
    ins: int
    dele: int
    sub: int

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / self.words if self.words else float("inf")


def read_wer_file(path: str | os.PathLike) -> KaldiWer:
    """Parse `wer_<LMWT>_<WIP>` as score_kaldi.sh writes it."""
    path = Path(path)
    name = _WER_FILE.match(path.name)
    if name is None:
        raise FhvaeError(f"{path}: not a wer_<LMWT>_<WIP> file")
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _WER_LINE.search(line)
        if m:
            errors, words, ins, dele, sub = (int(m.group(k)) for k in range(2, 7))
            return KaldiWer(int(name.group(1)), name.group(2), errors, words, ins, dele, sub)
    raise FhvaeError(f"{path}: no '%WER x [ E / N, I ins, D del, S sub ]' line")


def read_wers(decode_dir: str | os.PathLike) -> list[KaldiWer]:
    """Every scored (LMWT, WIP) of a decode dir, in (LMWT, WIP) order."""
    decode_dir = Path(decode_dir)
    files = [p for p in decode_dir.glob("wer_*") if _WER_FILE.match(p.name)]
    if not files:
        raise FhvaeError(f"{decode_dir}: no wer_<LMWT>_<WIP> files (was it scored?)")
    return sorted((read_wer_file(p) for p in files), key=lambda w: (w.lmwt, float(w.wip)))


def best_on(decode_dir: str | os.PathLike) -> KaldiWer:
    """The (LMWT, WIP) with the fewest errors; ties go to the smaller weight, then penalty."""
    return min(read_wers(decode_dir), key=lambda w: (w.errors, w.lmwt, float(w.wip)))


def read_hypotheses(decode_dir: str | os.PathLike, lmwt: int, wip: str) -> dict[str, list[str]]:
    """utt -> hypothesis words at (LMWT, WIP) (an empty hypothesis is an empty list)."""
    path = Path(decode_dir) / "scoring_kaldi" / f"penalty_{wip}" / f"{lmwt}.txt"
    return {utt: words.split() for utt, words in read_kv(path, allow_empty_value=True)}


def kaldi_wer(decode_dir: str | os.PathLike, lmwt: int, wip: str) -> KaldiWer:
    """compute-wer's own line for one (LMWT, WIP) of a decode dir."""
    return read_wer_file(Path(decode_dir) / f"wer_{lmwt}_{wip}")
