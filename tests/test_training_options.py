"""Training options of the ablations: random window offsets per sequence batch and the
LSTM forget-gate bias initialisation."""

import numpy as np
import pytest
import torch

from fhvae.data.sampler import HierarchicalSampler
from fhvae.model import FHVAE, ModelConfig
from test_train_data import make_index


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return make_index(tmp_path_factory.mktemp("data"), feat_dim=4)


def test_random_offsets_stay_inside_and_cover_every_start(index):
    shift = 8
    fixed = HierarchicalSampler(index, 24, shift, seed=2)
    moving = HierarchicalSampler(index, 24, shift, seed=2, random_offsets=True)
    starts_mod = set()
    for n in range(6):
        a, b = fixed.seq_batch(n), moving.seq_batch(n)
        assert np.all(a.seg_frame % shift == 0)
        length = index.num_frames[b.seg_utt]
        assert np.all(b.seg_frame >= 0) and np.all(b.seg_frame + index.seg_len <= length)
        # every utterance keeps at least one window, and nothing but a shift of its grid
        assert set(b.seg_utt) == set(a.seg_utt)
        for utt in np.unique(b.seg_utt):
            frames = b.seg_frame[b.seg_utt == utt]
            assert np.all(np.diff(frames) == shift) and frames[0] < shift
            assert frames.size <= (a.seg_utt == utt).sum()
        # the buffer offsets follow the frames exactly as on the fixed grid
        start_of_utt = dict(zip(a.seg_utt, a.seg_offset - a.seg_frame))
        assert np.array_equal(b.seg_offset - b.seg_frame, [start_of_utt[u] for u in b.seg_utt])
        assert np.array_equal(np.bincount(b.seg_row, minlength=24), b.row_num_segs)
        starts_mod |= set((b.seg_frame % shift).tolist())
    assert starts_mod == set(range(shift))
    again = HierarchicalSampler(index, 24, shift, seed=2, random_offsets=True).seq_batch(4)
    assert np.array_equal(again.seg_frame, moving.seq_batch(4).seg_frame)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_forget_gate_bias(value):
    torch.manual_seed(0)
    model = FHVAE(ModelConfig(feat_dim=6, hidden=5, num_layers=2, z1_dim=2, z2_dim=3,
                              num_seqs=4, lstm_forget_bias=value))
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 3
    for lstm in lstms:
        for layer in range(2):
            forget = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"))[5:10]
            if value:
                assert torch.equal(forget, torch.full((5,), value))
            else:   # PyTorch's own uniform init, untouched
                assert forget.abs().max() > 0 and not torch.equal(forget, torch.full((5,), 1.0))
