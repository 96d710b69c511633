"""Reading the project's own .npz files (index, statistics, accumulators) safely.

numpy raises many exception types on a truncated or foreign file; every reader turns them
into one line naming the file, and none unpickles anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from fhvae.errors import FhvaeError

T = TypeVar("T")


def read_npz(path: str | os.PathLike, what: str, missing: str,
             read: Callable[[Any], T]) -> T:
    """`read(npz)` of the .npz at `path`. A missing file: FhvaeError '<path>: <missing>';
    any error while reading (also one `read` raises): '<path>: not <what> (<error>)'."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: {missing}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return read(npz)
    except Exception as err:  # noqa: BLE001 - numpy's many types on a foreign/truncated file
        detail = str(err).splitlines()[0] if str(err) else "corrupt"
        raise FhvaeError(f"{path}: not {what} ({type(err).__name__}: {detail})") from None
