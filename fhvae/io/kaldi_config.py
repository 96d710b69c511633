"""Kaldi option files (`--name=value` per line, '#' comments), as `--config=` reads them.

One reader for every tool whose options mirror a Kaldi binary (compute-fbank-feats,
compute-vad), so that both accept and reject the same files with the same messages.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fhvae.errors import FhvaeError


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "t", "1"):
        return True
    if text.lower() in ("false", "f", "0"):
        return False
    raise ValueError(f"not a boolean: '{text}'")


def _convert(kind: Any, text: str) -> object:
    kind = getattr(kind, "__name__", kind)       # annotations are strings under __future__
    return (_parse_bool(text) if kind == "bool" else int(text) if kind == "int" else
            float(text) if kind == "float" else text)


def read_kaldi_config(path: str | os.PathLike, options: type, tool: str,
                      what: str) -> dict[str, object]:
    """The values set in `path` for the fields of the dataclass `options`, typed as declared.

    `tool` names the Kaldi program in the unknown-option error; `what` names the file kind
    in the not-found error. Errors name file:line.
    """
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: {what} not found")
    fields = {f.name: f.type for f in dataclasses.fields(options)}
    values: dict[str, object] = {}
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, value = line.partition("=")
            key = name[2:].replace("-", "_") if name.startswith("--") else None
            if key not in fields:
                raise FhvaeError(f"{path}:{lineno}: unknown option '{name}' (expected "
                                 f"--name=value with a {tool} option)")
            if not sep:
                raise FhvaeError(f"{path}:{lineno}: option '{name}' needs '=value'")
            try:
                values[key] = _convert(fields[key], value)
            except ValueError:
                raise FhvaeError(f"{path}:{lineno}: bad value '{value}' for {name} "
                                 f"(expected {fields[key]})") from None
    return values
