"""Kaldi ark/scp tables through kaldiio, written atomically.

An scp must never point into an ark that is still being written, so both files are
written under temporary names and renamed only when complete: ark first, then scp.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import kaldiio
import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import fsync_file, naming, tmp_name


def write_table(ark_path: str | os.PathLike, scp_path: str | os.PathLike,
                items: Iterable[tuple[str, np.ndarray]]) -> int:
    """Write (key, matrix-or-vector) pairs as a float32 Kaldi ark plus its scp.

    Returns the number of entries written. The scp refers to `ark_path` by the path
    given here (make it absolute if readers may run from another directory).
    """
    with TableWriter(ark_path, scp_path) as writer:
        for key, value in items:
            writer.write(key, value)
    return writer.count


class TableWriter:
    """Incremental form of `write_table`, for producing several tables in one pass.

    Entries go to temporary files; leaving the `with` block normally renames the ark and
    then the scp into place, leaving it through an exception deletes both temporaries.
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike):
        self.ark_path, self.scp_path = Path(ark_path), Path(scp_path)
        self.ark_path.parent.mkdir(parents=True, exist_ok=True)
        self.scp_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_ark, self._tmp_scp = tmp_name(self.ark_path), tmp_name(self.scp_path)
        self._ark = open(self._tmp_ark, "wb")
        self._scp = open(self._tmp_scp, "w")
        self.count = 0

    def write(self, key: str, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value, dtype=np.float32)
        if not np.isfinite(value).all():
            raise FhvaeError(f"{self.ark_path}: non-finite value in '{key}'")
        try:
            kaldiio.save_ark(self._ark, {key: value}, scp=None)
            # kaldiio.save_ark writes "key " then the binary payload; locate the payload.
            offset = self._ark.tell() - _payload_size(value)
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


def _payload_size(value: np.ndarray) -> int:
    """Bytes kaldiio writes for a float32 matrix/vector after the key and space."""
    header = 2 + 3  # "\0B" binary marker + "FM "/"FV " token
    if value.ndim == 2:
        return header + 5 + 5 + value.nbytes  # two int32 sizes, each prefixed by a size byte
    if value.ndim == 1:
        return header + 5 + value.nbytes
    raise FhvaeError(f"cannot write a {value.ndim}-d array to a Kaldi table")


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
            yield key, load_rxfile(rxfile, f"{scp_path}:{lineno} ({key})")


def load_rxfile(rxfile: str, where: str) -> np.ndarray:
    """Load one 'ark:offset' entry; `where` names the scp line for error messages."""
    ark, sep, offset = rxfile.rpartition(":")
    if sep and offset.isdigit() and os.path.isfile(ark) and int(offset) >= os.path.getsize(ark):
        raise FhvaeError(f"{where}: offset {offset} is past the end of {ark} "
                         f"({os.path.getsize(ark)} bytes; truncated ark or stale scp?)")
    try:
        value = kaldiio.load_mat(rxfile)
    except FileNotFoundError:
        raise FhvaeError(f"{where}: ark file not found: {rxfile}") from None
    except Exception as err:  # kaldiio raises many types on truncated/corrupt input
        detail = str(err).splitlines()[0] if str(err).strip() else "unexpected data"
        raise FhvaeError(f"{where}: cannot read {rxfile}, truncated or corrupt "
                         f"({type(err).__name__}: {detail})") from None
    value = np.asarray(value, dtype=np.float32)
    if value.ndim not in (1, 2):
        raise FhvaeError(f"{where}: {rxfile} is not a matrix or vector")
    return value
