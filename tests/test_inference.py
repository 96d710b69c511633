"""The inference layer (fhvae/inference): windows, batched encoders and decoders against the
model's own calls, s-vector pooling, loading."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import (IndexedWindows, cut_segments, decode_log_likelihood, decode_means,
                             encode, encode_z1, encode_z2, load, sequence_mu2, window_index)
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import save_checkpoint

SEG = 5
DIM = 6
TINY = ModelConfig(feat_dim=DIM, seg_len=SEG, z1_dim=3, z2_dim=2, hidden=8, num_layers=1,
                   num_seqs=4)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return FHVAE(TINY).eval()


@pytest.fixture
def windows():
    return torch.from_numpy(np.random.default_rng(0).normal(0, 1, (11, SEG, DIM))
                            .astype(np.float32))


def test_window_index_is_numpy_edge_padding():
    for n, seg in ((3, 7), (9, 7), (1, 20), (25, 20)):
        ref = np.pad(np.arange(n), (seg // 2, seg - 1 - seg // 2), mode="edge")
        np.testing.assert_array_equal(window_index(n, seg),
                                      np.stack([ref[t:t + seg] for t in range(n)]))


def test_cut_segments_are_the_non_overlapping_windows():
    rng = np.random.default_rng(0)
    mvn = MVN(rng.normal(0, 1, DIM).astype(np.float32),
              rng.uniform(0.5, 2, DIM).astype(np.float32))
    feats = {u: rng.normal(0, 2, (n, DIM)).astype(np.float32)
             for u, n in (("u1", 12), ("u2", 13), ("u3", SEG), ("short", 4))}
    segs = cut_segments(feats, mvn, SEG)
    assert segs.utts == ["short", "u1", "u2", "u3"]
    assert list(segs.utt) == [1, 1, 2, 2, 3] and list(segs.start) == [0, 5, 0, 5, 0]
    np.testing.assert_allclose(segs.x[3], (feats["u2"][5:10] - mvn.mean) / mvn.std, rtol=1e-6)
    with pytest.raises(FhvaeError, match="no utterance has a whole 5-frame segment"):
        cut_segments({"short": feats["short"]}, mvn, SEG)


def test_encode_equals_the_models_encoders_window_by_window(model, windows):
    out = encode(model, windows, batch_size=4)          # three batches, the last of 3
    with torch.no_grad():
        for n in range(windows.shape[0]):
            z2_mu, z2_logvar = model.encode_z2(windows[n:n + 1])
            z1_mu, z1_logvar = model.encode_z1(windows[n:n + 1], z2_mu)
            for got, want in ((out.z2_post.mean, z2_mu), (out.z2_post.logvar, z2_logvar),
                              (out.z1_post.mean, z1_mu), (out.z1_post.logvar, z1_logvar),
                              (out.z2, z2_mu), (out.z1, z1_mu)):
                torch.testing.assert_close(got[n:n + 1], want, rtol=1e-5, atol=1e-6)
    # the separate calls, and every kind of window source, give the same numbers
    torch.testing.assert_close(encode_z2(model, windows.numpy(), 3).mean, out.z2_post.mean)
    torch.testing.assert_close(encode_z1(model, windows, out.z2.numpy(), 5).mean, out.z1)
    frames = windows.reshape(-1, DIM)
    index = torch.arange(frames.shape[0]).reshape(-1, SEG)
    torch.testing.assert_close(encode(model, IndexedWindows(frames, index), 2).z1, out.z1)
    assert not out.z1.requires_grad


def test_encode_with_noise_draws_and_conditions_z1_on_the_draw(model, windows):
    post = encode(model, windows)
    eps2, eps1 = torch.randn(11, TINY.z2_dim), torch.randn(11, TINY.z1_dim)
    drawn = encode(model, windows, 4, (eps2, eps1))
    torch.testing.assert_close(drawn.z2,
                               post.z2_post.mean + eps2 * torch.exp(0.5 * post.z2_post.logvar))
    z1_given = encode_z1(model, windows, drawn.z2)
    torch.testing.assert_close(drawn.z1_post.mean, z1_given.mean)
    torch.testing.assert_close(drawn.z1, z1_given.mean + eps1 * torch.exp(0.5 * z1_given.logvar))


def test_decode_log_likelihood_agrees_with_the_decoder_means(model, windows):
    post = encode(model, windows)
    means = decode_means(model, post.z1, post.z2, SEG, batch_size=4)
    assert means.shape == (11, SEG, DIM)
    got = decode_log_likelihood(model, windows, post.z1, post.z2, batch_size=4)
    assert got.dtype == torch.float64 and got.shape == (11,)
    with torch.no_grad():
        for n in range(11):
            mu, logvar = model.decode(post.z1[n:n + 1], post.z2[n:n + 1], SEG)
            torch.testing.assert_close(means[n], mu[0])
            want = Normal(mu[0], torch.exp(0.5 * logvar[0])).log_prob(windows[n]).sum()
            assert float(got[n]) == pytest.approx(float(want), rel=1e-5)
    # the means are the most likely frames: any other frames score lower
    at_means = decode_log_likelihood(model, means, post.z1, post.z2)
    assert (at_means > got).all()
    assert (at_means > decode_log_likelihood(model, means + 0.1, post.z1, post.z2)).all()


def test_sequence_mu2_equals_map_formula_one_by_one(model):
    segments = torch.randn(11, SEG, DIM)
    seg_seq = torch.tensor([0, 2, 2, 0, 1, 2, 0, 0, 1, 2, 2])   # sequence 3 has no segments
    got = sequence_mu2(model, segments, seg_seq, num_seqs=4, batch_size=3)
    expected = torch.zeros(4, TINY.z2_dim)
    with torch.no_grad():
        for k in range(4):
            members = [model.encode_z2(segments[n:n + 1])[0][0]
                       for n in range(11) if seg_seq[n] == k]
            if members:
                expected[k] = torch.stack(members).sum(0) / (len(members) + TINY.sigma2_z2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert got[3].abs().sum() == 0


def test_sequence_mu2_rejects_mismatched_ids(model):
    with pytest.raises(FhvaeError, match="3 segments but 2"):
        sequence_mu2(model, torch.zeros(3, SEG, DIM), torch.zeros(2).long(), 1)


def test_load_returns_the_model_and_mvn_on_the_named_device(model, tmp_path):
    mvn = MVN(np.arange(DIM, dtype=np.float32), np.ones(DIM, dtype=np.float32))
    save_checkpoint(tmp_path / "m.pt", {"model_config": TINY.to_dict(),
                                        "model": model.state_dict(),
                                        "mvn_mean": torch.from_numpy(mvn.mean),
                                        "mvn_std": torch.from_numpy(mvn.std), "step": 7})
    loaded, loaded_mvn, payload = load(tmp_path / "m.pt", "cpu")
    assert payload["step"] == 7 and not loaded.training
    np.testing.assert_array_equal(loaded_mvn.mean, mvn.mean)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(FhvaeError, match="unknown device 'cuda:x'"):
        load(tmp_path / "m.pt", "cuda:x")
