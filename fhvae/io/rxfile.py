"""Kaldi rxfile syntax: the one place that knows what an scp or wav.scp value names.

The forms (Kaldi's ReadFilename / ReadKaldiObject):
  file                  a whole file (a single matrix, a wav)
  file:offset           the object at a byte offset of an ark
  file:offset[ranges]   rows, or rows and columns, of that matrix: '[r0:r1]' or
  file[ranges]          '[r0:r1,c0:c1]', inclusive, either end may be empty
  cmd |                 a shell command whose stdout is the object

Index building, validation, extraction's restart digests and every matrix read go
through here, so a new form is taught to the toolkit once.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from dataclasses import dataclass
from typing import BinaryIO

import kaldiio
import numpy as np

from fhvae.errors import FhvaeError

# A file name (shortest match), an optional ':offset', an optional '[rows]' or
# '[rows,cols]' where each of rows and cols is 'first:last' (inclusive; either may be empty).
_SPAN = r"\d*:\d*"
_FORM = re.compile(rf"(?P<path>.+?)(?::(?P<offset>\d+))?"
                   rf"(?P<ranges>\[(?:{_SPAN})?(?:,{_SPAN})?\])?", re.S)


@dataclass(frozen=True)
class RxFile:
    """One parsed rxfile; `path` is the command of a pipe."""

    path: str
    offset: int | None = None
    ranges: str = ""
    pipe: bool = False


def parse(text: str, where: str) -> RxFile:
    """The parts of `text`; an empty entry or a malformed '[...]' range is a one-line
    FhvaeError that starts with `where` (the scp line)."""
    text = text.strip()
    if text.endswith("|"):
        command = text[:-1].strip()
        if not command:
            raise FhvaeError(f"{where}: empty pipe command in rxfile '{text}'")
        return RxFile(command, pipe=True)
    match = _FORM.fullmatch(text)
    if match is None:
        raise FhvaeError(f"{where}: empty rxfile")
    if text.endswith("]") and not match["ranges"]:
        raise FhvaeError(f"{where}: bad range in rxfile '{text}' (expected "
                         "'[r0:r1]' or '[r0:r1,c0:c1]')")
    offset = match["offset"]
    return RxFile(match["path"], None if offset is None else int(offset), match["ranges"] or "")


def absolute(text: str, where: str) -> str:
    """`text` with its file made absolute, so it reads the same from any directory; a pipe
    ('cmd |', or Kaldi's output form '| cmd') is left as it is: its command runs in the
    caller's directory, as in Kaldi."""
    if text.startswith("|") or text.endswith("|"):
        return text
    rx = parse(text, where)
    offset = "" if rx.offset is None else f":{rx.offset}"
    return os.path.abspath(rx.path) + offset + rx.ranges


def split_offsets(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(files, offsets as byte strings, plain) of byte-string rxfiles, vectorised for
    million-line scps: `plain` marks the 'file:offset' form; the others are to be parsed
    one by one."""
    colon = np.strings.rfind(values, b":")
    offsets = np.strings.slice(values, colon + 1, None)
    plain = (colon >= 1) & np.strings.isdigit(offsets)
    return np.strings.slice(values, 0, colon), offsets, plain


def open_rxfile(text: str, where: str, what: str = "file") -> BinaryIO:
    """A binary stream of the object: the file at its offset, or the whole stdout of a pipe
    run with `bash -c` (a failed command is an FhvaeError with its last stderr line)."""
    rx = parse(text, where)
    if rx.pipe:
        proc = subprocess.run(["bash", "-c", rx.path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = f": {stderr[-1]}" if stderr else ""
            raise FhvaeError(f"{where}: command '{rx.path}' failed with exit status "
                             f"{proc.returncode}{detail}")
        return io.BytesIO(proc.stdout)
    if not os.path.isfile(rx.path):
        raise FhvaeError(f"{where}: {what} not found: {rx.path}")
    handle = open(rx.path, "rb")
    handle.seek(rx.offset or 0)
    return handle


def read_matrix(text: str, where: str) -> np.ndarray:
    """One scp entry as float32: a matrix or vector (float, double or compressed) of any
    form above; a pipe must write one binary Kaldi object."""
    rx = parse(text, where)
    if rx.offset is not None and os.path.isfile(rx.path):
        size = os.path.getsize(rx.path)
        if rx.offset >= size:
            raise FhvaeError(f"{where}: offset {rx.offset} is past the end of {rx.path} "
                             f"({size} bytes; truncated ark or stale scp?)")
    try:
        value = kaldiio.load_mat(text[:len(text) - len(rx.ranges)] if rx.ranges else text)
    except FileNotFoundError:
        raise FhvaeError(f"{where}: ark file not found: {text}") from None
    except Exception as err:  # kaldiio raises many types on truncated/corrupt input
        if rx.pipe:
            raise FhvaeError(f"{where}: '{text}' failed or did not write one binary "
                             f"Kaldi matrix") from None
        detail = str(err).splitlines()[0] if str(err).strip() else "unexpected data"
        raise FhvaeError(f"{where}: cannot read {text}, truncated or corrupt "
                         f"({type(err).__name__}: {detail})") from None
    value = np.asarray(value, dtype=np.float32)
    if value.ndim not in (1, 2):
        raise FhvaeError(f"{where}: {text} is not a matrix or vector")
    return _select(value, rx.ranges, where) if rx.ranges else value


def _select(value: np.ndarray, ranges: str, where: str) -> np.ndarray:
    """The rows (and columns) of a matrix that a '[first:last,first:last]' range names."""
    spans = ranges[1:-1].split(",")
    if value.ndim != 2:
        raise FhvaeError(f"{where}: range {ranges} of a vector (Kaldi ranges select matrix "
                         "rows and columns)")
    index = []
    for span, size in zip(spans, value.shape):
        first, _, last = span.partition(":")
        lo, hi = int(first or 0), int(last) if last else size - 1
        if not 0 <= lo <= hi < size:
            raise FhvaeError(f"{where}: range {ranges} is outside the {value.shape[0]}x"
                             f"{value.shape[1]} matrix")
        index.append(slice(lo, hi + 1))
    return value[tuple(index)]
