"""Kaldi ark/scp tables of matrices and vectors: read through kaldiio, written atomically.

An scp must never point into an ark that is still being written, so both files are
written under temporary names and renamed only when complete: ark first, then scp.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import kaldiio
import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import fsync_file, naming, tmp_name
from fhvae.io.rxfile import absolute, read_matrix, split_offsets
from fhvae.io.text_table import as_text, read_columns, sorted_order

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


def read_vectors(scp: str | os.PathLike) -> dict[str, np.ndarray]:
    """`read_scp` as a dict (latents, s-vectors, i-vectors)."""
    return dict(read_scp(scp))


def check_known(scp: str | os.PathLike, table: Mapping[str, object],
                utt2spk: Mapping[str, str], utt2spk_path: str | os.PathLike) -> None:
    """Every key of a table read from `scp` must be an utterance of the data dir."""
    unknown = next((u for u in table if u not in utt2spk), None)
    if unknown is not None:
        raise FhvaeError(f"{scp}: utterance '{unknown}' is not in {utt2spk_path}")


def scp_locations(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, ark paths as written, offsets) of an scp as arrays sorted by key, parsed
    vectorised for million-line feats.scp files.

    Entries that are not a plain '<ark>:<offset>' (ranges, pipes, single-matrix files) get
    offset -1 and keep their whole rxfile, with a relative file path made absolute.
    """
    keys, values = read_columns(path, "<utt> <rxfile>", rest_of_line=True)
    if not keys.size:
        raise FhvaeError(f"{path}: empty feats.scp")
    arks, offsets, plain = split_offsets(values)
    order = sorted_order(keys, path)
    if not plain.all():
        other = np.flatnonzero(~plain)
        arks = arks.astype(object)
        arks[other] = [absolute(as_text(values[i]), f"{path}:{i + 1}").encode() for i in other]
        arks = arks.astype(np.bytes_)
        offsets = np.where(plain, offsets, b"-1")
    return keys[order], arks[order], offsets[order].astype(np.int64)
