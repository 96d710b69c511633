"""A data dir restricted to some of its utterances, as Kaldi's subset_data_dir.sh and
filter_scp.pl make it: which utterances to keep, and the filtered copy of every table."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import AbstractSet, Iterator

from fhvae.errors import FhvaeError
from fhvae.io.datadir import SEGMENTS, UTT2DUR, UTT2NUM_FRAMES, UTT2SPK, DataDir
from fhvae.io.text_table import c_order, read_key_list

log = logging.getLogger(__name__)

SUBSET_MODES = ("spread", "first", "last", "shortest", "speakers", "per-spk")


def write_filtered(src: str | os.PathLike, dst: str | os.PathLike, keep_utts: set[str],
                   extra: dict[str, str] | None = None) -> int:
    """Write the tables of data dir `src` into `dst`, restricted to `keep_utts`.

    Speakers and recordings follow from the kept utterances (without segments, each
    utterance is its own recording, as in Kaldi); spk2utt is regenerated
    from utt2spk; every file comes out sorted and duplicate-free. Per-utterance CTM
    files (`*.ctm`, several lines per utterance) are filtered on their first field, a line
    at a time (a corpus's phone alignment is the largest file of its data dir).
    Only the kept utt2spk and the kept ids are held throughout; every other table is read,
    filtered and written one at a time, so memory follows the largest table, not the sum
    of a data dir's ten or so (docs/benchmarks.md, 'Memory per stage'). Each table is read
    in full before it is rewritten, and each CTM is written under a temporary name while
    it is read, so `dst` may be `src`. `extra` adds tables as `DataDir.kinds` does.
    Returns the number of utterances written.
    """
    source, dest = DataDir(src), DataDir(dst)
    kinds = source.kinds(extra)
    if UTT2SPK not in kinds:
        raise FhvaeError(f"{source.utt2spk}: no such file")
    utt2spk = {u: s for u, s in source.loose_pairs(UTT2SPK)[0] if u in keep_utts}
    if SEGMENTS in kinds:
        recos = {value.split()[0] for utt, value in source.loose_pairs(SEGMENTS)[0]
                 if utt in utt2spk}
    else:
        recos = set(utt2spk)
    keep = {"utt": set(utt2spk), "spk": set(utt2spk.values()), "reco": recos}
    for name, kind in kinds.items():
        if name != UTT2SPK:
            dest.write(name, [(k, v) for k, v in source.loose_pairs(name)[0] if k in keep[kind]])
    dest.write_utt2spk(utt2spk.items())
    for name in source.ctms():
        dest.write_lines(name, _lines_of(source.file(name), keep["utt"]))
    return len(utt2spk)


def _lines_of(path: Path, utts: AbstractSet[str]) -> Iterator[str]:
    """The lines of a per-utterance file (a CTM) whose first field is one of `utts`, read
    a line at a time."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(maxsplit=1)
            if fields and fields[0] in utts:
                yield line


def _utt_lengths(src: DataDir) -> dict[str, float]:
    """Utterance lengths for --shortest: utt2num_frames, else feats.scp, else utt2dur."""
    if src.has(UTT2NUM_FRAMES):
        return {u: float(n) for u, n in src.pairs(UTT2NUM_FRAMES)}
    if src.feats_scp.is_file():
        return {u: float(m.shape[0]) for u, m in src.feats()}
    if src.has(UTT2DUR):
        return {u: float(d) for u, d in src.pairs(UTT2DUR)}
    raise FhvaeError(f"{src}: --shortest needs utt2num_frames, feats.scp or utt2dur")


def select_utts(src: str | os.PathLike, mode: str, num: int) -> set[str]:
    """The utterances `subset_data_dir.sh [--<mode>] <src> <num> <dst>` keeps, as Kaldi.

    spread: `num` utterances spread evenly through utt2spk (what Kaldi's subset_scp.pl
    does by default; deterministic); first/last: the first/last `num` lines of utt2spk;
    shortest: the `num` shortest (ties by id); speakers: whole speakers in a fixed random
    order until at least `num` utterances; per-spk: up to `num` utterances of each
    speaker, evenly spaced through its list.
    """
    source = DataDir(src)
    pairs = source.pairs(UTT2SPK)
    if num < 1:
        raise FhvaeError(f"number of utterances must be positive, got {num}")
    if mode in ("spread", "first", "last", "shortest") and num > len(pairs):
        raise FhvaeError(f"{source.utt2spk}: cannot subset to {num} utterances, it has only "
                         f"{len(pairs)}")
    utts = [u for u, _ in pairs]
    if mode == "first":
        return set(utts[:num])
    if mode == "last":
        return set(utts[-num:])
    if mode == "spread":
        return {utts[(2 * i + 1) * len(utts) // (2 * num)] for i in range(num)}
    if mode == "shortest":
        lengths = _utt_lengths(source)
        known = [u for u in utts if u in lengths]
        return set(sorted(known, key=lambda u: (lengths[u], c_order(u)))[:num])
    by_spk: dict[str, list[str]] = {}
    for utt, spk in pairs:
        by_spk.setdefault(spk, []).append(utt)
    if mode == "per-spk":
        return {u for us in by_spk.values() for u in us[::max(1, len(us) // num)][:num]}
    if mode == "speakers":
        order = sorted(by_spk, key=c_order)
        random.Random(0).shuffle(order)
        keep: set[str] = set()
        for spk in order:
            if len(keep) >= num:
                break
            keep.update(by_spk[spk])
        return keep
    raise FhvaeError(f"unknown subset mode '{mode}' (one of {', '.join(SUBSET_MODES)})")


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *,
                    utt_list: str | os.PathLike | None = None, first: int | None = None,
                    spk_list: str | os.PathLike | None = None, mode: str | None = None,
                    num: int | None = None) -> int:
    """Copy data dir `src` to `dst` keeping the utterances chosen by exactly one selector.

    `utt_list`/`spk_list` name files whose first field is an utterance/speaker id; ids
    that `src` lacks are skipped, as Kaldi's filter_scp.pl skips them (a warning names
    the first). `mode` and `num` select as `select_utts`; `first=N` is mode 'first'.
    Returns the number of utterances in `dst`.
    """
    source, dest = DataDir(src), DataDir(dst)
    if first is not None:
        mode, num = "first", first
    if sum(x is not None for x in (utt_list, spk_list, mode)) != 1 or (mode and num is None):
        raise FhvaeError("subset_data_dir: give exactly one of utt_list, spk_list, mode+num")
    if dest.path.resolve() == source.path.resolve():
        raise FhvaeError(f"{dest}: destination is the source data dir")
    if mode is not None:
        return write_filtered(source, dest, select_utts(source, mode, num))  # type: ignore[arg-type]
    pairs = source.pairs(UTT2SPK)
    list_path = Path(utt_list if utt_list is not None else spk_list)  # type: ignore[arg-type]
    known = {u for u, _ in pairs} if utt_list is not None else {s for _, s in pairs}
    wanted = read_key_list(list_path)
    missing = [(i, key) for i, key in enumerate(wanted, 1) if key not in known]
    if missing:
        what = "utterance" if utt_list is not None else "speaker"
        lineno, key = missing[0]
        log.warning("%s:%d: %s '%s' is not in %s (%d such ids skipped)",
                    list_path, lineno, what, key, source.utt2spk, len(missing))
    wanted_set = set(wanted)
    keep = {u for u, s in pairs if (u if utt_list is not None else s) in wanted_set}
    return write_filtered(source, dest, keep)
