"""Reading Kaldi data-dir text tables (`<key> <value>` per line) with precise errors."""

from __future__ import annotations

import os
from pathlib import Path

from fhvae.errors import FhvaeError


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
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.rstrip("\n").split(maxsplit=1)
            if not parts:
                raise FhvaeError(f"{path}:{lineno}: empty line")
            key = parts[0]
            value = parts[1].strip() if len(parts) == 2 else ""
            if not value and not allow_empty_value:
                raise FhvaeError(f"{path}:{lineno}: key '{key}' has no value")
            if key in seen:
                raise FhvaeError(f"{path}:{lineno}: duplicate key '{key}'")
            seen.add(key)
            pairs.append((key, value))
    return pairs


def read_dict(path: str | os.PathLike) -> dict[str, str]:
    """`read_kv` as a dict (keys unique by construction)."""
    return dict(read_kv(path))


def write_kv(path: str | os.PathLike, pairs: list[tuple[str, object]]) -> None:
    """Write `<key> <value>` lines atomically, sorted as LC_ALL=C sort would sort them."""
    from fhvae.io.atomic import write_text_atomic

    ordered = sorted(pairs, key=lambda kv: kv[0].encode("utf-8"))
    write_text_atomic(path, "".join(f"{k} {v}\n" for k, v in ordered))
