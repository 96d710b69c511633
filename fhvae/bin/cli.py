"""Shared glue for the entry points in fhvae/bin: logging set-up and error reporting."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from fhvae.errors import FhvaeError


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run `main`, turning FhvaeError into a one-line message and exit status 1.

    Unexpected exceptions still show a traceback: those are our bugs, not the user's.
    """
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        status = main(argv)
    except FhvaeError as err:
        prog = sys.argv[0].rsplit("/", 1)[-1]
        print(f"ERROR ({prog}): {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
