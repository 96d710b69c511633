"""The segment index: every training segment described by a handful of numpy arrays.

Hierarchical sampling (paper, Algorithm 1) needs to know, for millions of utterances, how
many 20-frame segments each holds, which sequence it belongs to and where its features
live. Holding that as per-segment Python objects would cost gigabytes; here it is O(U)
numbers (a segment is implied by its utterance and a start frame), built with vectorised
numpy and saved as a plain .npz (no pickle) so loading cannot run code.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import atomic_path
from fhvae.io.npz import read_npz
from fhvae.io.datadir import UTT2NUM_FRAMES, DataDir
from fhvae.io.rxfile import read_matrix
from fhvae.io.text_table import as_text, read_columns, sorted_order

logger = logging.getLogger(__name__)

INDEX_VERSION = 1
_ARRAYS = ("utt_ids", "num_frames", "seq_of_utt", "seq_ids", "ark_paths", "ark_of_utt",
           "ark_offset")
# How many excluded utterance ids a warning lists before "...".
_SHOW_IDS = 5


@dataclass(eq=False)
class SegmentIndex:
    """Utterances (sorted as LC_ALL=C sorts), their sequences and feature locations."""

    utt_ids: np.ndarray      # (U,) str, byte order
    num_frames: np.ndarray   # (U,) int32
    seq_of_utt: np.ndarray   # (U,) int32 -> index into seq_ids
    seq_ids: np.ndarray      # (S,) str: utterance ids, or speaker ids with seq_unit="spk"
    ark_paths: np.ndarray    # (A,) str, absolute, deduplicated (or whole rxfiles, see below)
    ark_of_utt: np.ndarray   # (U,) int32 -> index into ark_paths
    ark_offset: np.ndarray   # (U,) int64, the ":offset" of feats.scp, or -1: see rxfile()
    feat_dim: int
    seg_len: int = 20
    seq_unit: str = "utt"
    _csr: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------- sizes and counts
    @property
    def num_utts(self) -> int:
        return int(self.utt_ids.shape[0])

    @property
    def num_seqs(self) -> int:
        return int(self.seq_ids.shape[0])

    def num_segments(self, seg_shift: int) -> np.ndarray:
        """(U,) segments per utterance when windows of seg_len frames move by seg_shift."""
        if seg_shift < 1:
            raise FhvaeError(f"segment shift must be >= 1, got {seg_shift}")
        counts = (self.num_frames.astype(np.int64) - self.seg_len) // seg_shift + 1
        return np.maximum(counts, 0)

    def seq_num_segments(self, seg_shift: int) -> np.ndarray:
        """(S,) segments per sequence (sum over its utterances)."""
        return np.bincount(self.seq_of_utt, weights=self.num_segments(seg_shift),
                           minlength=self.num_seqs).astype(np.int64)

    def utts_of_seq(self, s: int) -> np.ndarray:
        """Utterance indices of sequence s, ascending (CSR arrays are built on first use)."""
        if self._csr is None:
            order = np.argsort(self.seq_of_utt, kind="stable").astype(np.int64)
            ptr = np.zeros(self.num_seqs + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.seq_of_utt, minlength=self.num_seqs), out=ptr[1:])
            self._csr = (ptr, order)
        ptr, order = self._csr
        return order[ptr[s]:ptr[s + 1]]

    # ----------------------------------------------------------------- feature access
    def rxfile(self, u: int) -> str:
        """The feats.scp entry of utterance u, as kaldiio.load_mat expects it.

        Plain 'ark:offset' entries (the usual case, any matrix type at that offset) are
        stored as (ark, offset) pairs; every other Kaldi rxfile (row/column ranges
        'ark:offset[r0:r1,c0:c1]', single-matrix files, 'cmd |' pipes) is stored whole in
        ark_paths with offset -1 and read as written.
        """
        offset = int(self.ark_offset[u])
        source = self.ark_paths[self.ark_of_utt[u]]
        return f"{source}:{offset}" if offset >= 0 else str(source)

    def read_utt(self, u: int) -> np.ndarray:
        """(T, F) float32 features of utterance u; a missing/corrupt/mismatched ark names it."""
        utt = str(self.utt_ids[u])
        feats = read_matrix(self.rxfile(u), f"utterance '{utt}'")
        expected = (int(self.num_frames[u]), self.feat_dim)
        if feats.shape != expected:
            raise FhvaeError(f"utterance '{utt}' ({self.rxfile(u)}): features have shape "
                             f"{feats.shape}, index expects {expected} "
                             f"(stale index? rerun stage 2)")
        if not np.isfinite(feats).all():
            raise FhvaeError(f"utterance '{utt}' ({self.rxfile(u)}): NaN or infinite features")
        return feats

    # ----------------------------------------------------------------- subsets
    def subset(self, utt_mask_or_indices: np.ndarray | Sequence[int]) -> "SegmentIndex":
        """A new index over the chosen utterances; empty sequences and unused arks are dropped."""
        sel = np.asarray(utt_mask_or_indices)
        if sel.dtype == bool:
            if sel.shape != (self.num_utts,):
                raise FhvaeError(f"utterance mask has shape {sel.shape}, index has "
                                 f"{self.num_utts} utterances")
            keep = np.flatnonzero(sel)
        else:
            keep = np.unique(sel.astype(np.int64))  # sorted: keeps the byte order of utt_ids
            if keep.size and (keep[0] < 0 or keep[-1] >= self.num_utts):
                raise FhvaeError(f"utterance index out of range [0, {self.num_utts})")
        seqs, seq_of_utt = np.unique(self.seq_of_utt[keep], return_inverse=True)
        arks, ark_of_utt = np.unique(self.ark_of_utt[keep], return_inverse=True)
        return SegmentIndex(
            utt_ids=self.utt_ids[keep], num_frames=self.num_frames[keep],
            seq_of_utt=seq_of_utt.astype(np.int32), seq_ids=self.seq_ids[seqs],
            ark_paths=self.ark_paths[arks], ark_of_utt=ark_of_utt.astype(np.int32),
            ark_offset=self.ark_offset[keep], feat_dim=self.feat_dim,
            seg_len=self.seg_len, seq_unit=self.seq_unit)

    def _subset_seqs(self, seq_mask: np.ndarray) -> "SegmentIndex":
        return self.subset(seq_mask[self.seq_of_utt])

    def split_heldout(self, fraction: float, seed: int) -> tuple["SegmentIndex", "SegmentIndex"]:
        """(train, heldout) with round(fraction * S) whole sequences held out, chosen by seed.

        Whole sequences are held out so that the dev bound measures unseen sequences, as a
        real dev set would. Same index + fraction + seed -> same split.
        """
        if not 0.0 < fraction < 1.0:
            raise FhvaeError(f"held-out fraction must be in (0, 1), got {fraction}")
        num_held = int(round(fraction * self.num_seqs))
        if num_held < 1 or num_held >= self.num_seqs:
            raise FhvaeError(f"held-out fraction {fraction} of {self.num_seqs} sequences leaves "
                             f"an empty training or held-out set")
        rng = np.random.default_rng(seed)
        held = np.zeros(self.num_seqs, dtype=bool)
        held[rng.permutation(self.num_seqs)[:num_held]] = True
        return self._subset_seqs(~held), self._subset_seqs(held)

    def shard(self, rank: int, world: int) -> "SegmentIndex":
        """Sequences s with s % world == rank: disjoint, complete shards for DDP ranks."""
        if not 0 <= rank < world:
            raise FhvaeError(f"shard rank {rank} not in [0, {world})")
        if self.num_seqs < world:
            raise FhvaeError(f"cannot shard {self.num_seqs} sequences over {world} ranks")
        return self._subset_seqs(np.arange(self.num_seqs) % world == rank)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write an .npz of plain arrays (strings as fixed-width UTF-8 bytes), atomically."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        if self.seq_unit == "utt":  # sequences are the utterances: don't store the ids twice
            arrays["seq_ids"] = np.zeros(0, dtype=np.bytes_)
        for name in ("utt_ids", "seq_ids", "ark_paths"):
            arrays[name] = _to_bytes(arrays[name])
        meta = np.array([INDEX_VERSION, self.feat_dim, self.seg_len], dtype=np.int64)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=meta, seq_unit=np.array(self.seq_unit.encode()), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SegmentIndex":
        """Read an index written by `save` (never unpickles anything)."""
        data = read_npz(path, "a segment index", "segment index not found (run stage 2: "
                        "make_index)",
                        lambda npz: {name: npz[name] for name in (*_ARRAYS, "meta", "seq_unit")})
        version, feat_dim, seg_len = (int(v) for v in data.pop("meta"))
        if version != INDEX_VERSION:
            raise FhvaeError(f"{path}: index version {version}, expected {INDEX_VERSION}")
        for name in ("utt_ids", "seq_ids", "ark_paths"):
            data[name] = _to_str(data[name])
        seq_unit = bytes(data.pop("seq_unit")).decode()
        if seq_unit == "utt":
            data["seq_ids"] = data["utt_ids"]
        return cls(**data, feat_dim=feat_dim, seg_len=seg_len, seq_unit=seq_unit)

    # ----------------------------------------------------------------- construction
    @classmethod
    def build(cls, data_dir: str | os.PathLike, seq_unit: str = "utt",
              seg_len: int = 20) -> "SegmentIndex":
        """Index `<data_dir>/feats.scp` (+ utt2num_frames, + utt2spk for seq_unit="spk").

        Utterances shorter than seg_len hold no segment: they are excluded and reported.
        """
        data = DataDir(data_dir)
        if seq_unit not in ("utt", "spk"):
            raise FhvaeError(f"seq_unit must be 'utt' or 'spk', got '{seq_unit}'")
        if seg_len < 1:
            raise FhvaeError(f"seg_len must be >= 1, got {seg_len}")
        utt_ids, ark_names, offsets = data.feats_locations()
        frames_file = data.file(UTT2NUM_FRAMES)
        if frames_file.is_file():
            num_frames = _align_ints(frames_file, utt_ids)
        else:
            logger.info("%s missing: reading every matrix header from the arks (slow)", frames_file)
            num_frames = np.array([_read_mat(_rxfile(a, o), as_text(u)).shape[0]
                                   for u, a, o in zip(utt_ids, ark_names, offsets)], dtype=np.int64)
        if seq_unit == "spk":
            spk_of_utt = _align(data.utt2spk, utt_ids)
        short = num_frames < seg_len
        if short.any():
            ids = [as_text(u) for u in utt_ids[short][:_SHOW_IDS]]
            more = " ..." if short.sum() > _SHOW_IDS else ""
            logger.warning("%s: excluded %d utterance(s) shorter than %d frames: %s%s",
                           data, short.sum(), seg_len, " ".join(ids), more)
        keep = ~short
        if not keep.any():
            raise FhvaeError(f"{data}: no utterance has at least {seg_len} frames")
        utt_ids, ark_names, offsets = utt_ids[keep], ark_names[keep], offsets[keep]
        if seq_unit == "spk":
            seq_ids, seq_of_utt = np.unique(spk_of_utt[keep], return_inverse=True)
        else:
            seq_ids, seq_of_utt = utt_ids, np.arange(utt_ids.size)
        uniq_arks, ark_of_utt = _factorize(ark_names)
        is_ark = np.zeros(uniq_arks.size, dtype=bool)
        is_ark[ark_of_utt[offsets >= 0]] = True
        ark_paths = np.array([os.path.abspath(as_text(a)) if plain else as_text(a)
                              for a, plain in zip(uniq_arks, is_ark)])
        first = _read_mat(_rxfile(ark_paths[ark_of_utt[0]], offsets[0]), as_text(utt_ids[0]))
        utt_str = _to_str(utt_ids)
        return cls(utt_ids=utt_str, num_frames=num_frames[keep].astype(np.int32),
                   seq_of_utt=seq_of_utt.astype(np.int32),
                   seq_ids=utt_str if seq_unit == "utt" else _to_str(seq_ids),
                   ark_paths=ark_paths, ark_of_utt=ark_of_utt.astype(np.int32),
                   ark_offset=offsets, feat_dim=int(first.shape[1]), seg_len=seg_len,
                   seq_unit=seq_unit)


# --------------------------------------------------------------------- helpers
def _rxfile(source: str | bytes, offset: int) -> str:
    """kaldiio rxfile of an (ark path, offset) pair, or of a whole rxfile (offset -1)."""
    source = as_text(source) if isinstance(source, bytes) else str(source)
    return f"{source}:{int(offset)}" if offset >= 0 else source


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) without sorting all U values: ark paths come
    in long runs, so only the run heads are sorted (A << U)."""
    heads = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    uniq = np.unique(values[heads])
    return uniq, np.searchsorted(uniq, values)


def _align(path: Path, utt_ids: np.ndarray) -> np.ndarray:
    """Values (bytes) of the two-column table `path` for every id in sorted `utt_ids`."""
    keys, values = read_columns(path, "<utt> <value>")
    order = sorted_order(keys, path)
    keys, values = keys[order], values[order]
    if keys.shape == utt_ids.shape and bool(np.all(keys == utt_ids)):
        return values                              # the usual case: same utterances
    pos = np.minimum(np.searchsorted(keys, utt_ids), max(keys.size - 1, 0))
    missing = keys[pos] != utt_ids if keys.size else np.ones(utt_ids.size, dtype=bool)
    if missing.any():
        raise FhvaeError(f"{path}: no entry for utterance '{as_text(utt_ids[missing][0])}' "
                         f"({int(missing.sum())} of {utt_ids.size} missing)")
    return values[pos]


def _align_ints(path: Path, utt_ids: np.ndarray) -> np.ndarray:
    values = _align(path, utt_ids)
    bad = ~np.strings.isdigit(values)
    if bad.any():
        raise FhvaeError(f"{path}: not an integer frame count: '{as_text(values[bad][0])}'")
    return values.astype(np.int64)


def _read_mat(rxfile: str, utt: str) -> np.ndarray:
    feats = read_matrix(rxfile, f"utterance '{utt}'")
    if feats.ndim != 2:
        raise FhvaeError(f"utterance '{utt}' ({rxfile}): expected a matrix, got {feats.ndim}-d")
    return feats


def _to_bytes(strings: np.ndarray) -> np.ndarray:
    """Fixed-width UTF-8 bytes (4x smaller than numpy's UCS-4 for ASCII ids)."""
    try:
        return strings.astype(np.bytes_)           # fast path: ASCII
    except UnicodeEncodeError:
        return np.char.encode(strings, "utf-8")


def _to_str(raw: np.ndarray) -> np.ndarray:
    try:
        return raw.astype(np.str_)                 # fast path: ASCII
    except UnicodeDecodeError:
        return np.char.decode(raw, "utf-8")
