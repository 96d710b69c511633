"""Write-then-rename helpers so that no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file's data to disk (the rename that follows is only as safe as this)."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def naming(err: OSError, path: str | os.PathLike) -> OSError:
    """`err`, or the same error naming `path` when it names no file: a write to an open
    handle (a full disk: ENOSPC) does not say which file it was writing."""
    if err.filename is not None:
        return err
    return type(err)(err.errno, err.strerror or str(err), str(path))


def tmp_name(path: str | os.PathLike) -> Path:
    """The temporary name used while `path` is being written (same dir: rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success fsync it and rename it onto `path`.

    On any exception the temporary file is removed and `path` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
    except OSError as err:
        raise naming(err, final) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
