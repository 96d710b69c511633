"""Sequence-batch loading: the features of K sequences in one contiguous device buffer.

Only the utterances of the current (and the prefetched next) sequence batch are ever in
memory; they are read by ark offset, normalised, and concatenated so that cutting a
segment batch is a single gather `buffer[offset[:, None] + arange(seg_len)]` on the device,
with no per-segment Python work. The next batch is read in a background thread while the
current one trains (disk and MVN run outside the GIL-heavy training step).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from fhvae.data.index import SegmentIndex
from fhvae.data.sampler import SeqBatch
from fhvae.features.mvn import MVN


class SegmentBuffer:
    """The features of one sequence batch on the device, viewed as an (N, seg_len, F) tensor.

    Indexing with a slice or an index array returns real segments; `shape` and slicing let it
    stand in for a materialised segment tensor (e.g. in inference.sequence_mu2) without
    copying the overlapping windows.
    """

    def __init__(self, frames: torch.Tensor, batch: SeqBatch, seg_len: int):
        self.frames = frames
        self.batch = batch
        self.seg_len = seg_len
        device = frames.device
        self.offsets = torch.from_numpy(batch.seg_offset).to(device)
        self.rows = torch.from_numpy(batch.seg_row).to(device)
        self.row_num_segs = torch.from_numpy(batch.row_num_segs).to(device)
        self._window = torch.arange(seg_len, device=device)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.batch.num_segments, self.seg_len, int(self.frames.shape[1]))

    def __getitem__(self, which: slice | np.ndarray | torch.Tensor) -> torch.Tensor:
        if not isinstance(which, slice):
            which = torch.as_tensor(which, device=self.frames.device)
        return self.frames[self.offsets[which][:, None] + self._window]


class SequenceBatchLoader:
    """Reads sequence batches into SegmentBuffers, one batch ahead in a background thread."""

    def __init__(self, index: SegmentIndex, mvn: MVN, device: torch.device,
                 prefetch: bool = True):
        self.index, self.mvn, self.device = index, mvn, torch.device(device)
        self._pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
        self._pending: tuple[bytes, Future] | None = None
        self._last: tuple[bytes, torch.Tensor] | None = None

    def _read(self, utts: np.ndarray) -> torch.Tensor:
        """Host tensor (sum T, F) of the normalised features of `utts` (pinned for CUDA)."""
        total = int(self.index.num_frames[utts].astype(np.int64).sum())
        host = torch.empty((total, self.index.feat_dim), dtype=torch.float32,
                           pin_memory=self.device.type == "cuda")
        view = host.numpy()
        pos = 0
        for u in utts:
            feats = self.index.read_utt(int(u))
            view[pos:pos + feats.shape[0]] = self.mvn.apply(feats)
            pos += feats.shape[0]
        return host

    def prefetch(self, batch: SeqBatch) -> None:
        """Start reading `batch` in the background (no-op without prefetching or if cached)."""
        key = batch.utts.tobytes()
        if self._pool is None or (self._last and self._last[0] == key) or \
                (self._pending and self._pending[0] == key):
            return
        self._pending = (key, self._pool.submit(self._read, batch.utts))

    def load(self, batch: SeqBatch) -> SegmentBuffer:
        """The batch's buffer on the device: prefetched, cached (same utterances) or read now."""
        key = batch.utts.tobytes()
        if self._last is None or self._last[0] != key:
            if self._pending and self._pending[0] == key:
                host = self._pending[1].result()
                self._pending = None
            else:
                host = self._read(batch.utts)
            frames = host.to(self.device, non_blocking=True)
            self._last = (key, frames)
        return SegmentBuffer(self._last[1], batch, self.index.seg_len)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
