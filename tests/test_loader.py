"""Sequence-batch loader: buffers hold exactly the batch's normalised features, segments
cut by indexing equal the windows read independently, prefetch runs in the background."""

import threading

import kaldi_io
import numpy as np
import pytest
import torch

from fhvae.data.loader import SequenceBatchLoader
from fhvae.data.sampler import FlatSampler, HierarchicalSampler
from test_train_data import index_mvn, make_index


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return make_index(tmp_path_factory.mktemp("data"), feat_dim=8)


def _reference_feats(index):
    """Features read by an independent reader (kaldi_io), keyed by utterance id."""
    ark = str(index.ark_paths[0])
    return {key: mat for key, mat in kaldi_io.read_mat_ark(ark)}


def test_segments_equal_independently_read_windows(index):
    mvn = index_mvn(index)
    ref = _reference_feats(index)
    batch = HierarchicalSampler(index, 5, seg_shift=8, seed=2).seq_batch(1)
    loader = SequenceBatchLoader(index, mvn, torch.device("cpu"), prefetch=False)
    buf = loader.load(batch)
    assert buf.frames.dtype == torch.float32 and buf.frames.is_contiguous()
    assert buf.frames.shape == (int(index.num_frames[batch.utts].sum()), 8)
    which = batch.batch_indices(2, 16)[1]
    segs = buf[which].numpy()
    assert segs.shape == (16, 20, 8)
    for seg, s in zip(segs, which):
        raw = ref[str(index.utt_ids[batch.seg_utt[s]])]
        start = batch.seg_frame[s]
        expected = (raw[start:start + 20] - mvn.mean) / mvn.std
        np.testing.assert_allclose(seg, expected, rtol=1e-5, atol=1e-5)
    assert buf.shape == (batch.num_segments, 20, 8)
    assert torch.equal(buf[slice(3, 7)], buf[np.arange(3, 7)])
    loader.close()


def test_prefetch_reads_only_the_next_batch_in_a_background_thread(index, monkeypatch):
    mvn = index_mvn(index)
    sampler = HierarchicalSampler(index, 5, 8, seed=0)
    reads = []
    original = index.read_utt

    def spy(u):
        reads.append((u, threading.get_ident()))
        return original(u)

    monkeypatch.setattr(index, "read_utt", spy)
    loader = SequenceBatchLoader(index, mvn, torch.device("cpu"), prefetch=True)
    plain = SequenceBatchLoader(index, mvn, torch.device("cpu"), prefetch=False)
    b0, b1 = sampler.seq_batch(0), sampler.seq_batch(1)
    loader.prefetch(b1)
    got = loader.load(b1)
    main = threading.get_ident()
    assert sorted(u for u, _ in reads) == sorted(b1.utts.tolist())
    assert all(tid != main for _, tid in reads)
    reads.clear()
    assert torch.equal(got.frames, plain.load(b1).frames)
    assert sorted(u for u, _ in reads) == sorted(b1.utts.tolist())   # the plain loader's
    reads.clear()
    loader.load(b0)                                   # not prefetched: read now, in this thread
    assert {tid for _, tid in reads} == {main}
    loader.close()
    plain.close()


def test_same_utterances_are_not_read_twice(index, monkeypatch):
    flat = FlatSampler(index, 8)
    loader = SequenceBatchLoader(index, index_mvn(index), torch.device("cpu"), prefetch=True)
    calls = []
    original = index.read_utt
    monkeypatch.setattr(index, "read_utt", lambda u: calls.append(u) or original(u))
    first = loader.load(flat.seq_batch(0))
    loader.prefetch(flat.seq_batch(1))
    second = loader.load(flat.seq_batch(1))
    assert len(calls) == index.num_utts
    assert second.frames is first.frames
    loader.close()
