"""Hierarchical/flat samplers: exact K distinct sequences, epoch coverage, segment lists,
determinism from the position alone, and the K > #sequences error."""

import numpy as np
import pytest

from fhvae.data.sampler import FlatSampler, HierarchicalSampler, eval_seq_batches
from fhvae.errors import FhvaeError
from test_train_data import make_index


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return make_index(tmp_path_factory.mktemp("data"), feat_dim=4)  # 24 utterance sequences


@pytest.mark.parametrize("k", [5, 7, 24])
def test_batches_distinct_and_epochs_are_permutations(index, k):
    sampler = HierarchicalSampler(index, k, seg_shift=8, seed=3)
    stream = []
    for n in range(4 * index.num_seqs // k + 1):
        seqs = sampler.seq_batch(n).seqs
        assert seqs.size == k and np.unique(seqs).size == k
        stream.extend(seqs.tolist())
    num = index.num_seqs
    for e in range(len(stream) // num):
        assert sorted(stream[e * num:(e + 1) * num]) == list(range(num))


def test_position_alone_defines_the_batch(index):
    a = HierarchicalSampler(index, 5, 8, seed=1)
    forward = [a.seq_batch(n) for n in range(15)]
    b = HierarchicalSampler(index, 5, 8, seed=1)          # a fresh "resumed" sampler
    for n in (11, 3, 14):
        again = b.seq_batch(n)
        assert np.array_equal(again.seqs, forward[n].seqs)
        assert np.array_equal(again.seg_offset, forward[n].seg_offset)
        for x, y in zip(again.batch_indices(3, 16), forward[n].batch_indices(3, 16)):
            assert np.array_equal(x, y)
    other_rank = HierarchicalSampler(index, 5, 8, seed=1, rank=1)
    assert not all(np.array_equal(other_rank.seq_batch(n).seqs, forward[n].seqs)
                   for n in range(3))


def test_segment_list_enumerates_every_window(index):
    batch = HierarchicalSampler(index, 6, seg_shift=8, seed=0).seq_batch(2)
    expected, offset = [], 0
    rows = {int(s): k for k, s in enumerate(batch.seqs)}
    for u in sorted(u for u in range(index.num_utts) if int(index.seq_of_utt[u]) in rows):
        frames = int(index.num_frames[u])
        for start in range(0, frames - 20 + 1, 8):
            expected.append((rows[int(index.seq_of_utt[u])], u, start, offset + start))
        offset += frames
    got = list(zip(batch.seg_row.tolist(), batch.seg_utt.tolist(), batch.seg_frame.tolist(),
                   batch.seg_offset.tolist()))
    assert got == expected
    assert np.array_equal(batch.row_num_segs, index.seq_num_segments(8)[batch.seqs])
    assert np.array_equal(batch.utts, np.unique(batch.seg_utt))


def test_segment_batches_one_pass_and_more(index):
    batch = HierarchicalSampler(index, 6, 8, seed=0).seq_batch(0)
    n = batch.num_segments
    one_pass = batch.batch_indices(batch.default_num_batches(16), 16)
    assert len(one_pass) == n // 16 and all(b.size == 16 for b in one_pass)
    flat = np.concatenate(one_pass)
    assert np.unique(flat).size == flat.size              # no segment twice in a pass
    many = batch.batch_indices(3 * n // 16, 16)           # three passes
    counts = np.bincount(np.concatenate(many), minlength=n)
    assert counts.max() - counts.min() <= 1 and counts.min() >= 2


def test_k_larger_than_the_training_set_is_an_error(index):
    with pytest.raises(FhvaeError, match=r"K=25 exceeds the 24 training sequences.*seq_batch_size"):
        HierarchicalSampler(index, 25, 8)


def test_flat_sampler_keeps_rows_and_reshuffles(index):
    flat = FlatSampler(index, seg_shift=8, seed=0)
    b0, b1 = flat.seq_batch(0), flat.seq_batch(1)
    assert np.array_equal(b0.seqs, np.arange(index.num_seqs))
    assert np.array_equal(b0.seg_offset, b1.seg_offset)
    assert not np.array_equal(b0.batch_indices(2, 16)[0], b1.batch_indices(2, 16)[0])
    # With K = M the first hierarchical batch draws the very same segment batches.
    hier = HierarchicalSampler(index, index.num_seqs, 8, seed=0).seq_batch(0)
    assert np.array_equal(hier.seg_offset, b0.seg_offset)
    for x, y in zip(hier.batch_indices(4, 16), b0.batch_indices(4, 16)):
        assert np.array_equal(x, y)
        assert np.array_equal(hier.seqs[hier.seg_row[x]], b0.seqs[b0.seg_row[y]])


def test_eval_batches_cover_non_overlapping_segments(index):
    batches = eval_seq_batches(index, group=10)
    assert [b.seqs.size for b in batches] == [10, 10, 4]
    total = sum(b.num_segments for b in batches)
    assert total == int((index.num_frames // 20).sum())
    assert all(np.all(b.seg_frame % 20 == 0) for b in batches)
