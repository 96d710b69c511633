"""A Kaldi data dir as one value: the names of its files, reading its tables and features,
and writing a new one.

Every module that reads or writes a data dir goes through `DataDir`, so Kaldi's file
names are spelled out once, feats.scp is parsed by one reader, and every file of a new
dir is written the same way (C-sorted, atomically, spk2utt derived from utt2spk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Iterable, Iterator

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import atomic_path, write_text_atomic
from fhvae.io.rxfile import read_matrix
from fhvae.io.tables import scp_locations
from fhvae.io.text_table import (Table, c_order, iter_sorted_kv, read_kv, read_loose,
                                 read_sorted_table, write_kv)
from fhvae.progress import progress

# The files of a Kaldi data dir, by the names Kaldi gives them.
UTT2SPK = "utt2spk"
SPK2UTT = "spk2utt"
FEATS_SCP = "feats.scp"
CMVN_SCP = "cmvn.scp"
VAD_SCP = "vad.scp"
WAV_SCP = "wav.scp"
SEGMENTS = "segments"
TEXT = "text"
UTT2NUM_FRAMES = "utt2num_frames"
UTT2DUR = "utt2dur"
UTT2UNIQ = "utt2uniq"
UTT2LANG = "utt2lang"
SPK2GENDER = "spk2gender"
FRAME_SHIFT = "frame_shift"
PHONE_CTM = "phone_ali.ctm"
UTT2NOISE = "utt2noise"
UTT2CHANNEL = "utt2channel"
UTT2GENDER = "utt2gender"
# Sequence-level factors and the file holding each (`<utt> <label>` lines).
FACTOR_FILES = {"speaker": UTT2SPK, "noise": UTT2NOISE, "channel": UTT2CHANNEL,
                "gender": UTT2GENDER}
# Tables whose values may be empty (an utterance without a transcript).
EMPTY_VALUE_OK = (TEXT,)
# Utterance-keyed tables besides the utt2* files.
UTT_TABLES = (UTT2SPK, FEATS_SCP, VAD_SCP, TEXT, SEGMENTS)


@dataclass(frozen=True)
class DataDir:
    """The Kaldi data dir at `path` (which need not exist yet when it is to be written);
    a path-like, so it can stand where a path of the dir did."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return self.file(name).is_file()

    @property
    def feats_scp(self) -> Path:
        return self.file(FEATS_SCP)

    @property
    def utt2spk(self) -> Path:
        return self.file(UTT2SPK)

    @property
    def vad_scp(self) -> Path:
        return self.file(VAD_SCP)

    # ----------------------------------------------------------------- text tables
    def pairs(self, name: str) -> list[tuple[str, str]]:
        """Table `name` in file order; errors name the file and line (see read_kv)."""
        return read_kv(self.file(name), allow_empty_value=name in EMPTY_VALUE_OK)

    def table(self, name: str) -> dict[str, str]:
        """Table `name` as key -> value."""
        return dict(self.pairs(name))

    def sorted_table(self, name: str) -> Table:
        """Table `name`, which must also be in Kaldi's `LC_ALL=C sort` order."""
        return read_sorted_table(self.file(name), allow_empty_value=name in EMPTY_VALUE_OK)

    def loose_pairs(self, name: str) -> tuple[list[tuple[str, str]], int]:
        """Table `name` as the fixer reads it (see read_loose)."""
        return read_loose(self.file(name))

    def factors(self) -> dict[str, dict[str, str]]:
        """factor -> utterance -> label of every factor file present (utt2spk is required)."""
        return {factor: self.table(name) for factor, name in FACTOR_FILES.items()
                if factor == "speaker" or self.has(name)}

    def ctms(self) -> list[str]:
        """Names of the per-utterance CTM files (several lines per utterance), sorted."""
        return [p.name for p in sorted(self.path.glob("*.ctm"))]

    def kinds(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The `<key> <value>` files present, each mapped to what its keys are.

        'utt' (utt2spk, feats.scp, vad.scp, text, segments, utt2*, and wav.scp without
        segments), 'spk' (spk2* except spk2utt, which is derived from utt2spk; cmvn.scp) or
        'reco' (reco2*, and wav.scp when segments exist). Other files are not tables, unless
        `extra` names them with their kind (Kaldi's --utt-extra-files/--spk-extra-files).
        """
        has_segments = self.has(SEGMENTS)
        kinds: dict[str, str] = {}
        for path in sorted(self.path.iterdir()):
            name = path.name
            if not path.is_file() or name == SPK2UTT:
                continue
            if name == WAV_SCP:
                kinds[name] = "reco" if has_segments else "utt"
            elif name in UTT_TABLES or name.startswith("utt2"):
                kinds[name] = "utt"
            elif name.startswith("spk2") or name == CMVN_SCP:
                kinds[name] = "spk"
            elif name.startswith("reco2"):
                kinds[name] = "reco"
            elif extra and name in extra:
                kinds[name] = extra[name]
        return kinds

    # ----------------------------------------------------------------- features
    def feats_entries(self) -> list[tuple[int, str, str]]:
        """(line number, utterance, rxfile) of every line of feats.scp, which must be a
        sorted Kaldi table (outputs keep its order) with at least one line."""
        entries = [(n, k, v) for n, (k, v) in enumerate(self.sorted_table(FEATS_SCP).pairs, 1)]
        if not entries:
            raise FhvaeError(f"{self.feats_scp}: no utterances")
        return entries

    def read_feats(self, entries: Iterable[tuple[int, str, str]], desc: str,
                   total: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(utterance, matrix) of feats_entries rows, in order, reporting progress (of
        `total`, default len(entries)); a bad matrix is reported by the feats.scp line and
        utterance."""
        for lineno, key, rxfile in progress(entries, desc, total=total, unit="utt"):
            yield key, read_matrix(rxfile, f"{self.feats_scp}:{lineno} ({key})")

    def feats(self, utts: Iterable[str] | None = None,
              dim: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """Raw (T, F) features of `utts` (all, sorted, if None), loading only those asked
        for; a matrix that is not (T, dim) is an error naming the utterance."""
        scp = self.feats_scp
        line = {utt: (n, rx) for n, (utt, rx) in enumerate(read_kv(scp), 1)}
        wanted = sorted(line) if utts is None else list(utts)
        missing = next((utt for utt in wanted if utt not in line), None)
        if missing is not None:
            raise FhvaeError(f"{scp}: no features for utterance '{missing}'")
        entries = [(line[utt][0], utt, line[utt][1]) for utt in wanted]
        for utt, mat in self.read_feats(entries, f"features {self.path}"):
            yield utt, self._checked(utt, mat, dim)

    def num_feats(self) -> int:
        """The number of lines of feats.scp, counted without holding them."""
        if not self.feats_scp.is_file():
            raise FhvaeError(f"{self.feats_scp}: no such file")
        with open(self.feats_scp, "rb") as handle:
            return sum(1 for _ in handle)

    def feats_dim(self) -> int:
        """The column count of feats.scp's first matrix (every other must have it)."""
        for lineno, utt, rx in iter_sorted_kv(self.feats_scp):
            mat = read_matrix(rx, f"{self.feats_scp}:{lineno} ({utt})")
            return self._checked(utt, mat, None).shape[1]
        raise FhvaeError(f"{self.feats_scp}: no utterances")

    def stream_feats(self, dim: int | None = None,
                     rows: AbstractSet[int] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """Raw (T, F) features of every utterance of feats.scp, or of its 0-based lines
        `rows`, in file order, reading the scp a line at a time (it must be sorted, as
        Kaldi's tables are): memory does not grow with the number of utterances."""
        entries: Iterator[tuple[int, str, str]] = iter_sorted_kv(self.feats_scp)
        if rows is not None:
            entries = (entry for k, entry in enumerate(entries) if k in rows)
        total = self.num_feats() if rows is None else len(rows)
        for utt, mat in self.read_feats(entries, f"features {self.path}", total):
            yield utt, self._checked(utt, mat, dim)

    def _checked(self, utt: str, mat: np.ndarray, dim: int | None) -> np.ndarray:
        """`mat`, which must be a (T, dim) matrix (any T, dim unless given)."""
        if mat.ndim != 2 or (dim is not None and mat.shape[1] != dim):
            raise FhvaeError(f"{self.feats_scp}: '{utt}' has shape {mat.shape}, expected "
                             f"(T, {dim})")
        return mat

    def feats_locations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(utterances, ark paths, offsets) of feats.scp as arrays sorted by utterance,
        parsed vectorised: the segment index reads million-line feats.scp files."""
        return scp_locations(self.feats_scp)

    # ----------------------------------------------------------------- writing
    def write(self, name: str, pairs: Iterable[tuple[str, object]]) -> None:
        """Table `name` with `pairs`, C-sorted, written atomically."""
        write_kv(self.file(name), list(pairs))

    def write_utt2spk(self, utt2spk: Iterable[tuple[str, str]]) -> int:
        """utt2spk and the spk2utt derived from it (Kaldi's utt2spk_to_spk2utt.pl): the one
        place spk2utt is made, so the two always agree. Returns the number of speakers."""
        pairs = sorted(utt2spk, key=lambda kv: c_order(kv[0]))
        spk2utt: dict[str, list[str]] = {}
        for utt, spk in pairs:
            spk2utt.setdefault(spk, []).append(utt)
        self.write(UTT2SPK, pairs)
        self.write(SPK2UTT, [(spk, " ".join(utts)) for spk, utts in spk2utt.items()])
        return len(spk2utt)

    def write_text(self, name: str, text: str) -> None:
        """A file that is not a `<key> <value>` table (a CTM, frame_shift), atomically."""
        write_text_atomic(self.file(name), text)

    def write_lines(self, name: str, lines: Iterable[str]) -> None:
        """File `name` from `lines` (each ending in a newline), atomically, without holding
        them: a corpus's CTM, written an utterance at a time. The lines are written as they
        come, in their order."""
        with atomic_path(self.file(name)) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(lines)

    def remove(self, name: str) -> None:
        """Delete file `name` if present (a stale table of an earlier run)."""
        if self.has(name):
            self.file(name).unlink()
