"""The one reader (and writer) of Kaldi text tables: `<key> <value>` per line.

Two ways to read, one module: `read_kv` line by line, with the precise errors a user
fixes in an editor (`iter_sorted_kv` the same without holding the table);
`read_columns` vectorised over the bytes, for the million-line tables of the segment
index. `read_loose` reads what the fixer must accept.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic

def read_kv(path: str | os.PathLike, *, allow_empty_value: bool = False) -> list[tuple[str, str]]:
    """Read `<key> <rest-of-line>` lines in file order.

    Raises FhvaeError naming file and line for a missing file, a line without a value,
    or a duplicate key. Order is kept so callers can check Kaldi's sorting rule.
    """
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(_utf8_lines(path), 1):
        key, value = _key_value(line, path, lineno, allow_empty_value)
        if key in seen:
            raise FhvaeError(f"{path}:{lineno}: duplicate key '{key}'")
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _key_value(line: str, path: Path, lineno: int, allow_empty_value: bool
               ) -> tuple[str, str]:
    """(key, value) of one line; an empty line or (unless allowed) value is an error."""
    parts = line.rstrip("\n").split(maxsplit=1)
    if not parts:
        raise FhvaeError(f"{path}:{lineno}: empty line")
    key = parts[0]
    value = parts[1].strip() if len(parts) == 2 else ""
    if not value and not allow_empty_value:
        raise FhvaeError(f"{path}:{lineno}: key '{key}' has no value")
    return key, value


def iter_sorted_kv(path: str | os.PathLike) -> Iterator[tuple[int, str, str]]:
    """(line number, key, value) of a sorted table, read a line at a time: what
    read_sorted_table checks (UTF-8, a value on each line, keys in `LC_ALL=C sort` order,
    none twice) is checked as each line comes, so memory does not grow with the file
    (a feats.scp of a million utterances streamed by i-vector training)."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    prev: str | None = None
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FhvaeError(f"{path}:{lineno}: not UTF-8 text (byte "
                                 f"{raw[err.start]:#04x})") from None
            key, value = _key_value(line, path, lineno, False)
            if prev is not None and c_order(key) <= c_order(prev):
                if key == prev:
                    raise FhvaeError(f"{path}:{lineno}: duplicate key '{key}'")
                raise FhvaeError(f"{path}:{lineno}: not sorted (LC_ALL=C): '{key}' comes "
                                 f"after '{prev}'; run utils/fix_data_dir.sh")
            prev = key
            yield lineno, key, value


def _utf8_lines(path: Path) -> list[str]:
    """The lines of a text table; bytes that are not UTF-8 are an error naming the line."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        return list(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))  # as open() splits
    except UnicodeDecodeError as err:
        lineno = raw.count(b"\n", 0, err.start) + 1
        raise FhvaeError(f"{path}:{lineno}: not UTF-8 text (byte {raw[err.start]:#04x})") from None


def read_dict(path: str | os.PathLike) -> dict[str, str]:
    """`read_kv` as a dict (keys unique by construction)."""
    return dict(read_kv(path))


def write_kv(path: str | os.PathLike, pairs: list[tuple[str, object]]) -> None:
    """Write `<key> <value>` lines atomically, sorted as LC_ALL=C sort would sort them."""
    ordered = sorted(pairs, key=lambda kv: c_order(kv[0]))
    write_text_atomic(path, "".join(f"{k} {v}\n" for k, v in ordered))


def c_order(key: str) -> bytes:
    """Sort key that reproduces `LC_ALL=C sort` (byte order of the UTF-8 encoding)."""
    return key.encode("utf-8")


def read_loose(path: str | os.PathLike) -> tuple[list[tuple[str, str]], int]:
    """Read a possibly messy `<key> <value>` file, as the fixer must.

    Blank lines are skipped and only the first line of a duplicated key is kept.
    Returns the pairs in file order and the number of duplicate lines dropped.
    """
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    dropped = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if parts[0] in seen:
                dropped += 1
                continue
            seen.add(parts[0])
            pairs.append((parts[0], parts[1].strip() if len(parts) == 2 else ""))
    return pairs, dropped


def read_key_list(path: str | os.PathLike) -> list[str]:
    """First field of every non-blank line (an utterance or speaker list)."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    with open(path, encoding="utf-8") as handle:
        return [line.split()[0] for line in handle if line.strip()]


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


def read_sorted_table(path: Path, allow_empty_value: bool = False) -> Table:
    """read_kv plus Kaldi's rule that keys are in `LC_ALL=C sort` order."""
    table = Table(path, read_kv(path, allow_empty_value=allow_empty_value))
    for i in range(1, len(table.pairs)):
        prev, key = table.pairs[i - 1][0], table.pairs[i][0]
        if c_order(key) < c_order(prev):
            raise FhvaeError(f"{path}:{i + 1}: not sorted (LC_ALL=C): '{key}' comes after "
                             f"'{prev}'; run utils/fix_data_dir.sh")
    return table


# Kaldi tables separate fields by ASCII whitespace only (what bytes.split() splits on).
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[9, 10, 11, 12, 13, 32]] = True


def read_columns(path: Path, usage: str,
                 rest_of_line: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values) of a two-column text table as byte-string arrays, in file order.

    Vectorised over the bytes (no per-line Python) for million-line tables: every line must
    hold exactly two fields, else FhvaeError names the first bad line. With `rest_of_line`
    a line may hold more fields (a 'cmd |' pipe in feats.scp): the value is then the rest
    of the line, and the table is parsed line by line.
    """
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    buf = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    space = _IS_SPACE[buf]
    starts = ~space
    starts[1:] &= space[:-1]                      # a field starts after whitespace
    line_of_field = np.searchsorted(newlines, np.flatnonzero(starts))
    fields = np.bincount(line_of_field, minlength=newlines.size)
    bad = np.flatnonzero(fields < 2 if rest_of_line else fields != 2)
    if bad.size:
        line = raw.split(b"\n")[bad[0]].decode("utf-8", errors="replace")
        raise FhvaeError(f"{path}:{bad[0] + 1}: expected '{usage}', got '{line}'")
    if rest_of_line and bool((fields > 2).any()):
        pairs = [line.split(maxsplit=1) for line in raw.splitlines()]
        return (_shrink(np.array([k for k, _ in pairs], dtype=np.bytes_)),
                _shrink(np.array([v.strip() for _, v in pairs], dtype=np.bytes_)))
    tokens = np.array(raw.split(), dtype=np.bytes_)
    return _shrink(tokens[0::2]), _shrink(tokens[1::2])


def _shrink(strings: np.ndarray) -> np.ndarray:
    """Narrowest fixed width holding every entry (keys and values share the width of the
    longest token when split together)."""
    width = int(np.strings.str_len(strings).max()) if strings.size else 1
    return strings.astype(f"S{max(width, 1)}")


def sorted_order(keys: np.ndarray, path: Path) -> np.ndarray:
    """Order that sorts byte-string keys as LC_ALL=C does; duplicates name file:line."""
    if keys.size > 1 and bool(np.all(keys[1:] > keys[:-1])):
        return np.arange(keys.size)               # already sorted (Kaldi's rule): no sort
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if dup.size:
        lineno = int(order[dup[0] + 1]) + 1
        raise FhvaeError(f"{path}:{lineno}: duplicate key '{as_text(keys[order[dup[0]]])}'")
    return order


def as_text(value: bytes) -> str:
    """One byte-string table entry as text for a message."""
    return bytes(value).decode("utf-8", errors="replace")
