"""Shared glue for the entry points in fhvae/bin: logging set-up, error reporting and option
defaults read from the config dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from types import SimpleNamespace
from typing import Callable

from fhvae.errors import FhvaeError


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run `main`, turning FhvaeError into a one-line message and exit status 1.

    OSError (a full disk, a read-only or vanished directory, permissions) is the
    environment's fault, not ours: it also becomes one line naming the file. Other
    unexpected exceptions still show a traceback: those are our bugs, not the user's.
    """
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        status = main(argv)
    except FhvaeError as err:
        print(f"ERROR ({prog}): {err}", file=sys.stderr)
        sys.exit(1)
    except OSError as err:
        print(f"ERROR ({prog}): {os_error_message(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)


def os_error_message(err: OSError) -> str:
    """`<strerror>: <filename>` (and the rename target, if any) on one line."""
    text = err.strerror or (os.strerror(err.errno) if err.errno else str(err))
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    return ": ".join([text.splitlines()[0] if text else type(err).__name__, *names])


def add_model_run_options(parser: argparse.ArgumentParser, batch_size: int,
                          what: str = "windows per model call") -> None:
    """--device, --batch-size and --num-threads: where and how batched model calls run
    (extract, augment), with one wording."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help=f"{what} (default {batch_size})")
    parser.add_argument("--num-threads", type=int, default=0,
                        help="CPU threads for torch (default 0: torch's choice)")


def field_defaults(config: type) -> SimpleNamespace:
    """The defaults of a config dataclass's fields (those that have one), as attributes.

    Options take their defaults from here rather than repeating the numbers, so that a
    default lives in the dataclass alone and --help shows the one in force."""
    values = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return SimpleNamespace(**values)
