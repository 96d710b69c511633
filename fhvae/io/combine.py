"""Combining Kaldi data dirs into one, as Kaldi's utils/combine_data.sh does.

Utterance tables present in every source are concatenated (a key in two sources is an
error: utterance ids must be unique across them); one missing from some source is left
out with a warning, except utt2uniq, which sources without it get as the identity (as
Kaldi). Speaker and recording tables are merged; a key in several sources must agree,
except cmvn.scp, whose per-speaker statistics (sums and counts) are added, which gives
exactly the statistics of the speaker's combined utterances (augmented copies keep their
source's speakers). CTMs and the extra files are concatenated and sorted by their first
field; spk2utt is derived from utt2spk.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.datadir import CMVN_SCP, FRAME_SHIFT, UTT2SPK, UTT2UNIQ, DataDir
from fhvae.io.rxfile import read_matrix
from fhvae.io.tables import write_table
from fhvae.io.text_table import c_order, read_kv

log = logging.getLogger(__name__)


def _merged(name: str, sources: Sequence[DataDir], unique: bool) -> dict[str, str]:
    """Every source's `name` as one dict; keys in two sources are an error when `unique`,
    otherwise when their values differ."""
    out: dict[str, str] = {}
    where: dict[str, DataDir] = {}
    for src in sources:
        for key, value in src.pairs(name):
            if key in out and (unique or out[key] != value):
                raise FhvaeError(f"{src.file(name)}: '{key}' is also in {where[key].file(name)}"
                                 + ("" if unique else " with another value"))
            out[key], where[key] = value, src
    return out


def _summed_cmvn(sources: Sequence[DataDir], dest: DataDir) -> list[tuple[str, str]]:
    """cmvn.scp entries of the combined dir: a speaker of one source keeps its entry, the
    statistics of a speaker in several are added into <dest>/data/cmvn_combined.ark."""
    entries: dict[str, list[tuple[str, str]]] = {}
    for src in sources:
        for spk, rx in src.pairs(CMVN_SCP):
            entries.setdefault(spk, []).append((f"{src.file(CMVN_SCP)} ({spk})", rx))
    shared = sorted((s for s, e in entries.items() if len(e) > 1), key=c_order)
    if not shared:
        return [(s, e[0][1]) for s, e in entries.items()]
    sums = {s: sum(read_matrix(rx, where).astype(np.float64) for where, rx in entries[s])
            for s in shared}
    ark = Path(os.path.abspath(dest)) / "data" / "cmvn_combined.ark"
    scp = dest.file("data") / "cmvn_combined.scp"
    write_table(ark, scp, ((s, sums[s]) for s in shared), dtype=np.float64)
    summed = dict(read_kv(scp))
    return [(s, summed.get(s, e[0][1])) for s, e in entries.items()]


def _write_tables(dest: DataDir, srcs: list[DataDir]) -> int:
    """The `<key> <value>` tables of the combined dir; returns its number of utterances."""
    kinds = [s.kinds() for s in srcs]
    num_utts = 0
    for name in sorted({n for k in kinds for n in k}):
        have = [s for s, k in zip(srcs, kinds) if name in k]
        kind = next(k[name] for k in kinds if name in k)
        if name == UTT2UNIQ:
            pairs = _merged(name, have, unique=True)
            for src in srcs:
                if src not in have:
                    pairs.update((u, u) for u, _ in src.pairs(UTT2SPK))
            dest.write(name, pairs.items())
        elif len(have) < len(srcs):
            log.warning("not creating %s: not every source has it (%s lacks it)", dest.file(name),
                        next(s for s in srcs if s not in have))
        elif name == CMVN_SCP:
            dest.write(name, _summed_cmvn(srcs, dest))
        elif name == UTT2SPK:
            utt2spk = _merged(name, srcs, unique=True)
            dest.write_utt2spk(utt2spk.items())
            num_utts = len(utt2spk)
        else:
            dest.write(name, _merged(name, srcs, unique=kind == "utt").items())
    return num_utts


def _write_texts(dest: DataDir, srcs: list[DataDir], extra_files: Sequence[str]) -> None:
    """CTMs and the extra files, concatenated and sorted by their first field, and the
    frame shift the sources agree on."""
    for name in sorted({n for s in srcs for n in s.ctms()} | set(extra_files)):
        if not all(s.has(name) for s in srcs):
            log.warning("not creating %s: not every source has it", dest.file(name))
            continue
        lines = [ln for s in srcs for ln in s.file(name).read_text(encoding="utf-8").splitlines(True)
                 if ln.strip()]
        lines.sort(key=lambda ln: c_order(ln.split(maxsplit=1)[0]))   # stable: keeps order
        dest.write_text(name, "".join(lines))
    shifts = {s.file(FRAME_SHIFT).read_text().strip() for s in srcs if s.has(FRAME_SHIFT)}
    if len(shifts) == 1 and all(s.has(FRAME_SHIFT) for s in srcs):
        dest.write_text(FRAME_SHIFT, shifts.pop() + "\n")


def combine_data(dest: str | os.PathLike, sources: Sequence[str | os.PathLike],
                 extra_files: Sequence[str] = ()) -> int:
    """Write the union of the data dirs `sources` into `dest`; returns its utterances."""
    out, srcs = DataDir(dest), [DataDir(s) for s in sources]
    if not srcs:
        raise FhvaeError("combine_data: no source data dir")
    for src in srcs:
        if not src.has(UTT2SPK):
            raise FhvaeError(f"{src.utt2spk}: no such file")
        if src.path.resolve() == out.path.resolve():
            raise FhvaeError(f"{out}: the destination is one of the sources")
    out.path.mkdir(parents=True, exist_ok=True)
    num_utts = _write_tables(out, srcs)
    _write_texts(out, srcs, extra_files)
    return num_utts
