"""Scale and speed helpers: MVN from a subset of utterances (make_index --mvn-max-utts) and
the fused Adam used by training, which must do the same update as the reference Adam."""

import numpy as np
import torch

from fhvae.bin.make_index import main as make_index_main
from fhvae.bin.make_index import mvn_utterances
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN
from fhvae.io.tables import write_table
from fhvae.training.runtime import make_adam


def test_mvn_utterances_spread_evenly():
    assert list(mvn_utterances(10, 0)) == list(range(10))
    assert list(mvn_utterances(10, 10)) == list(range(10))
    assert list(mvn_utterances(10, 3)) == [0, 4, 9]      # linspace(0, 9, 3) = 0, 4.5, 9
    assert list(mvn_utterances(5, 4)) == [0, 1, 3, 4]
    assert mvn_utterances(300_000, 1000).size == 1000


def test_make_index_mvn_from_subset(tmp_path):
    rng = np.random.default_rng(0)
    feats = {f"u{i}": (rng.standard_normal((30 + i, 2)) + [i * i, -i]).astype(np.float32)
             for i in range(10)}
    data = tmp_path / "data"
    write_table(tmp_path / "f.ark", data / "feats.scp", sorted(feats.items()))
    (data / "utt2num_frames").write_text("".join(f"{u} {m.shape[0]}\n"
                                                 for u, m in sorted(feats.items())))
    mvn_path = tmp_path / "mvn.npz"
    make_index_main(["--mvn-out", str(mvn_path), "--mvn-max-utts", "3", str(data)])
    ids = SegmentIndex.load(data / "fhvae" / "seg_index.npz").utt_ids
    chosen = np.concatenate([feats[ids[u]] for u in (0, 4, 9)]).astype(np.float64)
    mvn = MVN.load(mvn_path)
    np.testing.assert_allclose(mvn.mean, chosen.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(mvn.std, chosen.std(axis=0), rtol=1e-5)
    everything = np.concatenate(list(feats.values())).astype(np.float64)
    assert not np.allclose(mvn.mean, everything.mean(axis=0), atol=0.1)


def test_fused_adam_matches_reference_adam():
    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(11)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(4)]
    ref = [p.clone().requires_grad_() for p in start]
    fused = [p.clone().requires_grad_() for p in start]
    ref_opt = torch.optim.Adam(ref, lr=1e-2, betas=(0.95, 0.999))
    fused_opt = make_adam(fused, 1e-2, (0.95, 0.999))
    assert fused_opt.defaults["fused"]
    for step in grads:
        for params, opt in ((ref, ref_opt), (fused, fused_opt)):
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
    for a, b, p0 in zip(ref, fused, start):
        assert not torch.allclose(a, p0)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
