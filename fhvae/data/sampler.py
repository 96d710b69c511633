"""Hierarchical sampling (paper, Algorithm 1): sequences first, then segments among them.

Every random choice is drawn from a numpy Generator seeded by (seed, rank, purpose, number),
so a training position (sequence-batch number, step inside it) fully defines what comes
next: resuming recomputes the sampler instead of unpickling it, and two ranks never share a
stream. A segment is never a Python object: a sequence batch is a few int64 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fhvae.data.index import SegmentIndex
from fhvae.errors import FhvaeError

# Purposes mixed into the seeds so the epoch orders and the segment shuffles are independent.
_EPOCH_STREAM = 1
_SEGMENT_STREAM = 2
_OFFSET_STREAM = 3


@dataclass
class SeqBatch:
    """The sequences of one sequence batch and every segment they hold.

    Row k of the mu2 table belongs to sequence `seqs[k]`. Segments are listed in ascending
    utterance order (so the list does not depend on the order of `seqs`); `seg_offset` is the
    first frame of each segment in the buffer that concatenates the features of `utts`.
    """

    number: int
    seqs: np.ndarray          # (K,) sequence indices in the index
    utts: np.ndarray          # (U_b,) ascending utterance indices of those sequences
    row_num_segs: np.ndarray  # (K,) segments of each row's sequence
    seg_row: np.ndarray       # (N,) table row of each segment
    seg_utt: np.ndarray       # (N,) utterance of each segment
    seg_frame: np.ndarray     # (N,) start frame inside its utterance
    seg_offset: np.ndarray    # (N,) start frame inside the concatenated buffer
    shuffle_key: tuple[int, ...]

    @property
    def num_segments(self) -> int:
        return int(self.seg_row.shape[0])

    def default_num_batches(self, batch_size: int) -> int:
        """One pass over the segments in full batches (at least one batch)."""
        return max(1, self.num_segments // batch_size)

    def batch_indices(self, num_batches: int, batch_size: int) -> list[np.ndarray]:
        """`num_batches` segment batches of min(batch_size, N) segment ids.

        Segments are drawn without replacement by walking seeded permutations of all N
        segments, starting a fresh permutation when one is used up, so asking for more
        than one pass is fine.
        """
        size = min(batch_size, self.num_segments)
        rng = np.random.default_rng(self.shuffle_key)
        need = num_batches * size
        perms = [rng.permutation(self.num_segments)
                 for _ in range(-(-need // max(self.num_segments, 1)))]
        order = np.concatenate(perms)[:need] if perms else np.zeros(0, dtype=np.int64)
        return [order[i * size:(i + 1) * size] for i in range(num_batches)]


def make_seq_batch(index: SegmentIndex, seqs: np.ndarray, seg_shift: int, number: int,
                   shuffle_key: tuple[int, ...],
                   offset_rng: np.random.Generator | None = None) -> SeqBatch:
    """Enumerate all windows of seg_len frames at multiples of seg_shift of `seqs`.

    With `offset_rng`, every utterance's grid starts at a random frame in [0, seg_shift)
    (never so late that the utterance loses its only window), so over many sequence batches
    the windows cover every start position instead of the same fixed grid every pass.
    """
    seqs = np.asarray(seqs, dtype=np.int64)
    row_of_seq = np.full(index.num_seqs, -1, dtype=np.int64)
    row_of_seq[seqs] = np.arange(seqs.size)
    utts = np.flatnonzero(row_of_seq[index.seq_of_utt] >= 0)
    offsets = np.zeros(utts.size, dtype=np.int64)
    if offset_rng is not None:
        spare = np.maximum(index.num_frames[utts].astype(np.int64) - index.seg_len, 0)
        offsets = np.minimum(offset_rng.integers(0, seg_shift, utts.size), spare)
    counts = index.num_segments(seg_shift)[utts]
    counts = np.where(counts > 0, (index.num_frames[utts].astype(np.int64) - index.seg_len
                                   - offsets) // seg_shift + 1, 0)
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    seg_frame = (np.arange(total, dtype=np.int64) - first) * seg_shift + np.repeat(offsets, counts)
    utt_start = np.cumsum(index.num_frames[utts].astype(np.int64)) - index.num_frames[utts]
    seg_row = np.repeat(row_of_seq[index.seq_of_utt[utts]], counts)
    return SeqBatch(
        number=number, seqs=seqs, utts=utts,
        row_num_segs=np.bincount(seg_row, minlength=seqs.size).astype(np.int64),
        seg_row=seg_row, seg_utt=np.repeat(utts, counts), seg_frame=seg_frame,
        seg_offset=np.repeat(utt_start, counts) + seg_frame, shuffle_key=shuffle_key)


class HierarchicalSampler:
    """Sequence batches of exactly K distinct sequences, epoch after epoch.

    The sequences are walked in a seeded permutation per epoch. A batch that straddles two
    epochs takes the rest of the old epoch and fills up from the new one; the new epoch's
    permutation is then reordered so that the sequences just used go to its end, which keeps
    each batch free of duplicates and each epoch a full permutation.
    """

    def __init__(self, index: SegmentIndex, seq_batch_size: int, seg_shift: int,
                 seed: int = 0, rank: int = 0, random_offsets: bool = False):
        if seq_batch_size < 1:
            raise FhvaeError(f"seq_batch_size must be >= 1, got {seq_batch_size}")
        if seq_batch_size > index.num_seqs:
            raise FhvaeError(f"seq_batch_size K={seq_batch_size} exceeds the {index.num_seqs} "
                             f"training sequences (lower the seq_batch_size option)")
        self.index, self.k, self.seg_shift = index, seq_batch_size, seg_shift
        self.seed, self.rank, self.random_offsets = seed, rank, random_offsets
        self._orders: dict[int, np.ndarray] = {}

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """Order of the sequences in `epoch`, computed forward from the last cached epoch."""
        if epoch in self._orders:
            return self._orders[epoch]
        start = max((e for e in self._orders if e < epoch), default=-1)
        num, k = self.index.num_seqs, self.k
        order = self._orders.get(start)
        for e in range(start + 1, epoch + 1):
            perm = np.random.default_rng((self.seed, self.rank, _EPOCH_STREAM, e)).permutation(num)
            straddle = (e * num // k) * k   # first position of the batch crossing into e
            if e > 0 and straddle < e * num:
                used = order[straddle - (e - 1) * num:]
                moved = np.isin(perm, used)
                perm = np.concatenate([perm[~moved], perm[moved]])
            order = perm
        self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
        self._orders[epoch] = order
        return order

    def seq_batch(self, number: int) -> SeqBatch:
        num = self.index.num_seqs
        begin, end = number * self.k, (number + 1) * self.k
        first, last = begin // num, (end - 1) // num
        seqs = self._epoch_order(first)[begin - first * num:end - first * num]
        if last != first:
            seqs = np.concatenate([seqs, self._epoch_order(last)[:end - last * num]])
        offset_rng = (np.random.default_rng((self.seed, self.rank, _OFFSET_STREAM, number))
                      if self.random_offsets else None)
        return make_seq_batch(self.index, seqs, self.seg_shift, number,
                              (self.seed, self.rank, _SEGMENT_STREAM, number), offset_rng)


class FlatSampler:
    """The original algorithm (baseline): one table row per training sequence, all M of them.

    Every "sequence batch" is the whole training set with row i = sequence i; sequence batch
    n is the n-th pass of segment batches drawn from the whole pool.
    """

    def __init__(self, index: SegmentIndex, seg_shift: int, seed: int = 0, rank: int = 0):
        self.index, self.seg_shift, self.seed, self.rank = index, seg_shift, seed, rank
        self._all = make_seq_batch(index, np.arange(index.num_seqs), seg_shift, 0, ())

    def seq_batch(self, number: int) -> SeqBatch:
        return SeqBatch(**{**self._all.__dict__, "number": number,
                           "shuffle_key": (self.seed, self.rank, _SEGMENT_STREAM, number)})


def eval_seq_batches(index: SegmentIndex, group: int) -> list[SeqBatch]:
    """Non-overlapping segments (shift = seg_len) of all sequences, `group` sequences at a time."""
    return [make_seq_batch(index, np.arange(s, min(s + group, index.num_seqs)), index.seg_len,
                           i, ())
            for i, s in enumerate(range(0, index.num_seqs, group))]
