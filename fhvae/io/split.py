"""Splitting a data dir (or one of its tables) into contiguous, balanced parts, as Kaldi's
split_data.sh and split_scp.pl do, so that parallel jobs each get a whole, valid dir."""

from __future__ import annotations

import bisect
import itertools
import os
from pathlib import Path
from typing import Sequence

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import SEGMENTS, SPK2UTT, UTT2SPK, DataDir
from fhvae.io.subset import write_filtered
from fhvae.io.text_table import c_order, read_dict


def split_contiguous(items: Sequence, job: int, num_jobs: int) -> Sequence:
    """Part `job` (1-based) of `num_jobs` contiguous parts whose sizes differ by at most one."""
    if not 1 <= job <= num_jobs:
        raise FhvaeError(f"job {job} is not in 1..{num_jobs}")
    size, extra = divmod(len(items), num_jobs)
    start = (job - 1) * size + min(job - 1, extra)
    return items[start:start + size + (1 if job <= extra else 0)]


def balanced_cuts(sizes: list[int], num_parts: int) -> list[int]:
    """Cut points 0 = c_0 < ... < c_n = len(sizes) splitting groups into n contiguous parts.

    Each cut is placed at the group boundary whose cumulative size is closest to the
    ideal j·total/n, so with unit sizes the parts differ by at most one line.
    """
    cum = [0, *itertools.accumulate(sizes)]
    total, ngroups = cum[-1], len(sizes)
    cuts = [0]
    for j in range(1, num_parts):
        target = j * total / num_parts
        lo, hi = cuts[-1] + 1, ngroups - (num_parts - j)
        i = bisect.bisect_left(cum, target)
        best = min((c for c in (i - 1, i) if lo <= c <= hi),
                   key=lambda c: abs(cum[c] - target), default=min(max(i, lo), hi))
        cuts.append(best)
    cuts.append(ngroups)
    return cuts


def split_scp(in_path: str | os.PathLike, out_paths: list[str | os.PathLike],
              utt2spk: str | os.PathLike | None = None) -> list[int]:
    """Split a key-first text file into len(out_paths) contiguous, balanced parts.

    Every line lands in exactly one part. With `utt2spk`, all lines of a speaker stay in
    one part (a speaker's lines must then be contiguous, as in a sorted Kaldi dir).
    Returns the number of lines in each part.
    """
    in_path = Path(in_path)
    if not in_path.is_file():
        raise FhvaeError(f"{in_path}: no such file")
    lines = [line + "\n" for line in in_path.read_text(encoding="utf-8").splitlines()]
    spk_of = read_dict(utt2spk) if utt2spk is not None else None
    sizes: list[int] = []
    done_spk: set[str] = set()
    prev = None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise FhvaeError(f"{in_path}:{lineno}: empty line")
        if spk_of is None:
            sizes.append(1)
            continue
        key = line.split()[0]
        if key not in spk_of:
            raise FhvaeError(f"{in_path}:{lineno}: utterance '{key}' is not in {utt2spk}")
        spk = spk_of[key]
        if spk == prev:
            sizes[-1] += 1
            continue
        if spk in done_spk:
            raise FhvaeError(f"{in_path}:{lineno}: lines of speaker '{spk}' are not contiguous "
                             "(utterance ids should start with the speaker id)")
        done_spk.add(spk)
        prev = spk
        sizes.append(1)
    unit = "lines" if spk_of is None else "speakers"
    if len(out_paths) > len(sizes):
        raise FhvaeError(f"{in_path}: cannot split {len(sizes)} {unit} into {len(out_paths)} parts")
    cuts = balanced_cuts(sizes, len(out_paths))
    start_line = [0]
    for size in sizes:
        start_line.append(start_line[-1] + size)
    counts = []
    for part, out in enumerate(out_paths):
        a, b = start_line[cuts[part]], start_line[cuts[part + 1]]
        write_text_atomic(out, "".join(lines[a:b]))
        counts.append(b - a)
    return counts


SPLIT_UNITS = {"spk": "", "utt": "utt", "reco": "reco"}  # unit -> suffix of split<N><suffix>


def _split_groups(data: DataDir, per: str) -> tuple[list[list[str]], str]:
    """Utterances of utt2spk in groups that must stay whole, in utt2spk order."""
    pairs = data.pairs(UTT2SPK)
    if per == "utt":
        return [[u] for u, _ in pairs], "utterances"
    if per == "reco":
        reco_of = ({u: v.split()[0] for u, v in data.pairs(SEGMENTS)}
                   if data.has(SEGMENTS) else {})
        by_reco: dict[str, list[str]] = {}
        for utt, _ in pairs:
            by_reco.setdefault(reco_of.get(utt, utt), []).append(utt)
        return [by_reco[r] for r in sorted(by_reco, key=c_order)], "recordings"
    groups: list[list[str]] = []
    seen: set[str] = set()
    prev = None
    for lineno, (utt, spk) in enumerate(pairs, 1):
        if spk != prev:
            if spk in seen:
                raise FhvaeError(f"{data.utt2spk}:{lineno}: utterances of speaker '{spk}' are "
                                 "not contiguous (speaker ids should prefix utterance ids; "
                                 "or split with --per-utt)")
            seen.add(spk)
            groups.append([])
            prev = spk
        groups[-1].append(utt)
    return groups, "speakers"


def _split_is_current(data: DataDir, parts: list[Path]) -> bool:
    """Every table of `data` has a copy in every part that is not older than it."""
    names = [*data.kinds(), SPK2UTT]
    for part in parts:
        for name in names:
            copy, orig = part / name, data.file(name)
            if orig.is_file() and (not copy.is_file()
                                   or copy.stat().st_mtime < orig.stat().st_mtime):
                return False
    return True


def split_data_dir(data_dir: str | os.PathLike, num_parts: int,
                   per: str = "spk") -> tuple[Path, bool]:
    """Split a data dir into `<data>/split<N>[utt|reco]/<n>/`, n = 1..N, as Kaldi's
    split_data.sh: contiguous, balanced parts of utt2spk with every table filtered to
    match; speakers (per='spk', the default), recordings ('reco') or nothing ('utt') kept
    whole. Nothing is done when every part is newer than the source tables.
    Returns the split directory and whether it was (re)written.
    """
    data = DataDir(data_dir)
    if per not in SPLIT_UNITS:
        raise FhvaeError(f"split_data_dir: per must be one of {', '.join(SPLIT_UNITS)}")
    if num_parts < 1:
        raise FhvaeError(f"number of parts must be positive, got {num_parts}")
    out = data.file(f"split{num_parts}{SPLIT_UNITS[per]}")
    parts = [out / str(n) for n in range(1, num_parts + 1)]
    if not data.has(UTT2SPK):
        raise FhvaeError(f"{data.utt2spk}: no such file")
    if _split_is_current(data, parts):
        return out, False
    groups, unit = _split_groups(data, per)
    if num_parts > len(groups):
        raise FhvaeError(f"{data}: cannot split {len(groups)} {unit} into {num_parts} parts")
    cuts = balanced_cuts([len(g) for g in groups], num_parts)
    for n, part in enumerate(parts):
        keep = {u for group in groups[cuts[n]:cuts[n + 1]] for u in group}
        write_filtered(data, part, keep)
    return out, True
