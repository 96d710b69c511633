"""Kaldi ark/scp tables through kaldiio, written atomically.

An scp must never point into an ark that is still being written, so both files are
written under temporary names and renamed only when complete: ark first, then scp.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import kaldiio
import numpy as np
from tqdm import tqdm

from fhvae.errors import FhvaeError
from fhvae.io.atomic import fsync_file, naming, tmp_name
from fhvae.io.datadir import c_order, read_kv
from fhvae.io.rxfile import read_matrix

# Tables whose values may be empty (an utterance without a transcript).
EMPTY_VALUE_OK = ("text",)
# Kaldi's CompressionMethod kAutomaticMethod, the default of `copy-feats --compress=true`.
_AUTOMATIC_METHOD = 1


def write_table(ark_path: str | os.PathLike, scp_path: str | os.PathLike,
                items: Iterable[tuple[str, np.ndarray]], compress: bool = False,
                dtype: type = np.float32) -> int:
    """Write (key, matrix-or-vector) pairs as a float32 Kaldi ark plus its scp.

    Returns the number of entries written. The scp names the ark by its absolute path,
    as Kaldi's steps/make_*.sh do, so it can be read from any working directory.
    `compress` stores matrices as Kaldi compressed matrices (see TableWriter); dtype
    np.float64 writes double matrices/vectors (DM/DV, e.g. CMVN statistics).
    """
    with TableWriter(ark_path, scp_path, compress, dtype) as writer:
        for key, value in items:
            writer.write(key, value)
    return writer.count


class TableWriter:
    """Incremental form of `write_table`, for producing several tables in one pass.

    Entries go to temporary files; leaving the `with` block normally renames the ark and
    then the scp into place, leaving it through an exception deletes both temporaries.
    With `compress`, matrices are written in Kaldi's compressed format with the method of
    `copy-feats --compress=true` (kAutomaticMethod: CM, or CM2 for matrices of at most 8
    rows), about 4x smaller at ~1/65535 of each column's range in error; vectors (e.g.
    s-vectors) always stay plain float32.
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike,
                 compress: bool = False, dtype: type = np.float32):
        self.ark_path, self.scp_path = Path(ark_path).absolute(), Path(scp_path)
        self.compress, self.dtype = compress, dtype
        self.ark_path.parent.mkdir(parents=True, exist_ok=True)
        self.scp_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_ark, self._tmp_scp = tmp_name(self.ark_path), tmp_name(self.scp_path)
        self._ark = open(self._tmp_ark, "wb")
        self._scp = open(self._tmp_scp, "w")
        self.count = 0

    def write(self, key: str, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value, dtype=self.dtype)
        if not np.isfinite(value).all():
            raise FhvaeError(f"{self.ark_path}: non-finite value in '{key}'")
        if value.ndim not in (1, 2):
            raise FhvaeError(f"{self.ark_path}: cannot write a {value.ndim}-d array "
                             f"('{key}') to a Kaldi table")
        method = _AUTOMATIC_METHOD if self.compress and value.ndim == 2 else None
        try:
            # kaldiio.save_ark writes "key " then the payload, which the scp points at.
            offset = self._ark.tell() + len(key.encode()) + 1
            kaldiio.save_ark(self._ark, {key: value}, scp=None, compression_method=method)
            self._scp.write(f"{key} {self.ark_path}:{offset}\n")
        except OSError as err:
            raise naming(err, self.ark_path) from None
        self.count += 1

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            for handle, final in ((self._ark, self.ark_path), (self._scp, self.scp_path)):
                try:
                    handle.close()   # flushes: a full disk may only show here
                except OSError as err:
                    if exc_type is None:
                        raise naming(err, final) from None
            if exc_type is None:
                for tmp, final in ((self._tmp_ark, self.ark_path), (self._tmp_scp, self.scp_path)):
                    try:
                        fsync_file(tmp)
                        os.replace(tmp, final)
                    except OSError as err:
                        raise naming(err, final) from None
        finally:
            for tmp in (self._tmp_ark, self._tmp_scp):
                if tmp.exists():
                    tmp.unlink()


def read_scp(scp_path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (key, array) from a Kaldi scp, with errors that name the file and key."""
    scp_path = Path(scp_path)
    if not scp_path.is_file():
        raise FhvaeError(f"{scp_path}: no such file")
    with open(scp_path) as handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise FhvaeError(f"{scp_path}:{lineno}: expected '<key> <rxfile>'")
            key, rxfile = parts[0], parts[1].strip()
            yield key, read_matrix(rxfile, f"{scp_path}:{lineno} ({key})")


@dataclass
class Table:
    """One `<key> <value>` file: its path, pairs in file order, and key -> line number."""

    path: Path
    pairs: list[tuple[str, str]]
    line: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.line = {key: i for i, (key, _) in enumerate(self.pairs, 1)}

    def where(self, key: str) -> str:
        return f"{self.path}:{self.line[key]}"


def read_sorted_table(path: Path) -> Table:
    """read_kv plus Kaldi's rule that keys are in `LC_ALL=C sort` order."""
    table = Table(path, read_kv(path, allow_empty_value=path.name in EMPTY_VALUE_OK))
    for i in range(1, len(table.pairs)):
        prev, key = table.pairs[i - 1][0], table.pairs[i][0]
        if c_order(key) < c_order(prev):
            raise FhvaeError(f"{path}:{i + 1}: not sorted (LC_ALL=C): '{key}' comes after "
                             f"'{prev}'; run utils/fix_data_dir.sh")
    return table


def feats_entries(data_dir: str | os.PathLike) -> list[tuple[int, str, str]]:
    """(line number, utterance, rxfile) of every line of a data dir's feats.scp, which must
    be a sorted Kaldi table (outputs keep its order) with at least one line."""
    scp = Path(data_dir) / "feats.scp"
    entries = [(n, k, v) for n, (k, v) in enumerate(read_sorted_table(scp).pairs, 1)]
    if not entries:
        raise FhvaeError(f"{scp}: no utterances")
    return entries


def read_entries(scp: str | os.PathLike, entries: Iterable[tuple[int, str, str]],
                 desc: str) -> Iterator[tuple[str, np.ndarray]]:
    """(utterance, matrix) of feats_entries rows, in order, with a progress bar; a bad
    matrix is reported by the scp line and utterance."""
    for lineno, key, rxfile in tqdm(entries, desc=desc, unit="utt", disable=None):
        yield key, read_matrix(rxfile, f"{scp}:{lineno} ({key})")
