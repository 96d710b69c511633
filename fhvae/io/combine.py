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
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import c_order, read_kv, table_kinds, write_kv
from fhvae.io.rxfile import read_matrix
from fhvae.io.tables import write_table

log = logging.getLogger(__name__)
UTT2UNIQ = "utt2uniq"


def _merged(name: str, sources: Sequence[Path], unique: bool) -> dict[str, str]:
    """Every source's `name` as one dict; keys in two sources are an error when `unique`,
    otherwise when their values differ."""
    out: dict[str, str] = {}
    where: dict[str, Path] = {}
    for src in sources:
        for key, value in read_kv(src / name, allow_empty_value=name == "text"):
            if key in out and (unique or out[key] != value):
                raise FhvaeError(f"{src / name}: '{key}' is also in {where[key] / name}"
                                 + ("" if unique else " with another value"))
            out[key], where[key] = value, src
    return out


def _summed_cmvn(sources: Sequence[Path], dest: Path) -> list[tuple[str, str]]:
    """cmvn.scp entries of the combined dir: a speaker of one source keeps its entry, the
    statistics of a speaker in several are added into <dest>/data/cmvn_combined.ark."""
    entries: dict[str, list[tuple[str, str]]] = {}
    for src in sources:
        for spk, rx in read_kv(src / "cmvn.scp"):
            entries.setdefault(spk, []).append((f"{src / 'cmvn.scp'} ({spk})", rx))
    shared = sorted((s for s, e in entries.items() if len(e) > 1), key=c_order)
    if not shared:
        return [(s, e[0][1]) for s, e in entries.items()]
    sums = {s: sum(read_matrix(rx, where).astype(np.float64) for where, rx in entries[s])
            for s in shared}
    ark = Path(os.path.abspath(dest)) / "data" / "cmvn_combined.ark"
    write_table(ark, dest / "data" / "cmvn_combined.scp", ((s, sums[s]) for s in shared),
                dtype=np.float64)
    summed = dict(read_kv(dest / "data" / "cmvn_combined.scp"))
    return [(s, summed.get(s, e[0][1])) for s, e in entries.items()]


def combine_data(dest: str | os.PathLike, sources: Sequence[str | os.PathLike],
                 extra_files: Sequence[str] = ()) -> int:
    """Write the union of the data dirs `sources` into `dest`; returns its utterances."""
    dest, srcs = Path(dest), [Path(s) for s in sources]
    if not srcs:
        raise FhvaeError("combine_data: no source data dir")
    for src in srcs:
        if not (src / "utt2spk").is_file():
            raise FhvaeError(f"{src / 'utt2spk'}: no such file")
        if src.resolve() == dest.resolve():
            raise FhvaeError(f"{dest}: the destination is one of the sources")
    kinds = [table_kinds(s) for s in srcs]
    names = sorted({n for k in kinds for n in k})
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        have = [s for s, k in zip(srcs, kinds) if name in k]
        kind = next(k[name] for k in kinds if name in k)
        if name == UTT2UNIQ:
            pairs = _merged(name, have, unique=True)
            for src in srcs:
                if src not in have:
                    pairs.update((u, u) for u, _ in read_kv(src / "utt2spk"))
            write_kv(dest / name, list(pairs.items()))
        elif len(have) < len(srcs):
            log.warning("not creating %s: not every source has it (%s lacks it)", dest / name,
                        next(s for s in srcs if s not in have))
        elif name == "cmvn.scp":
            write_kv(dest / name, _summed_cmvn(srcs, dest))
        else:
            write_kv(dest / name, list(_merged(name, srcs, unique=kind == "utt").items()))
    spk2utt: dict[str, list[str]] = {}
    utt2spk = read_kv(dest / "utt2spk")
    for utt, spk in utt2spk:
        spk2utt.setdefault(spk, []).append(utt)
    write_kv(dest / "spk2utt", [(s, " ".join(u)) for s, u in spk2utt.items()])
    texts = sorted({p.name for s in srcs for p in s.glob("*.ctm")} | set(extra_files))
    for name in texts:
        have = [s for s in srcs if (s / name).is_file()]
        if len(have) < len(srcs):
            log.warning("not creating %s: not every source has it", dest / name)
            continue
        lines = [ln for s in srcs for ln in (s / name).read_text(encoding="utf-8").splitlines(True)
                 if ln.strip()]
        lines.sort(key=lambda ln: c_order(ln.split(maxsplit=1)[0]))   # stable: keeps order
        write_text_atomic(dest / name, "".join(lines))
    shifts = {(s / "frame_shift").read_text().strip() for s in srcs
              if (s / "frame_shift").is_file()}
    if len(shifts) == 1 and all((s / "frame_shift").is_file() for s in srcs):
        write_text_atomic(dest / "frame_shift", shifts.pop() + "\n")
    return len(utt2spk)
