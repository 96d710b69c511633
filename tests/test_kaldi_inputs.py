"""Any valid Kaldi feats.scp at stage 2, in the training loader and in extraction: plain,
compressed (CM) and double (DM) arks, row/column ranges and 'cmd |' pipes, all written by
independent writers (kaldi_native_io, kaldi_io), give the numbers of the plain-float
version (within CM quantisation for CM)."""

from __future__ import annotations

import os
from pathlib import Path

import kaldi_native_io as kni
import numpy as np
import pytest
import torch

os.environ.setdefault("KALDI_ROOT", "/nonexistent")  # kaldi_io only warns about it
import kaldi_io  # noqa: E402

from fhvae.data.index import SegmentIndex  # noqa: E402
from fhvae.data.loader import SequenceBatchLoader  # noqa: E402
from fhvae.extract import run_job  # noqa: E402
from fhvae.features.mvn import MVN  # noqa: E402
from fhvae.inference import ExtractOptions  # noqa: E402
from fhvae.io.tables import read_scp  # noqa: E402
from fhvae.model import FHVAE, ModelConfig  # noqa: E402
from fhvae.training.checkpoint import save_checkpoint  # noqa: E402

DIM = 80
LENGTHS = {"u1": 31, "u2": 45, "u3": 22, "u4": 40, "u5": 27, "u6": 25}
CFG = ModelConfig(feat_dim=DIM, hidden=16, z1_dim=4, z2_dim=6, num_seqs=4)


def features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {u: rng.normal(5.0, 2.0, size=(n, DIM)).astype(np.float32)
            for u, n in LENGTHS.items()}


def data_dir(path: Path, feats_scp: str, feats: dict[str, np.ndarray]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "feats.scp").write_text(feats_scp)
    (path / "utt2spk").write_text("".join(f"{u} s{u[-1]}\n" for u in sorted(feats)))
    (path / "utt2num_frames").write_text("".join(f"{u} {len(feats[u])}\n" for u in sorted(feats)))
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """(plain data dir, mixed data dir, features); the mixed feats.scp uses relative paths."""
    root = tmp_path_factory.mktemp("kaldi_inputs")
    feats = features()
    with kni.FloatMatrixWriter(f"ark,scp:{root}/plain.ark,{root}/plain.scp") as writer:
        for utt in sorted(feats):
            writer.write(utt, feats[utt])
    plain = data_dir(root / "plain", (root / "plain.scp").read_text(), feats)

    mixed = root / "mixed"
    mixed.mkdir()
    with kni.FloatMatrixWriter(f"ark,scp:{mixed}/f.ark,{mixed}/f.scp") as writer:
        writer.write("u1", feats["u1"])
    with kni.CompressedMatrixWriter(f"ark,scp:{mixed}/c.ark,{mixed}/c.scp") as writer:
        writer.write("u2", feats["u2"], kni.CompressionMethod.kAutomaticMethod)
    with kni.DoubleMatrixWriter(f"ark,scp:{mixed}/d.ark,{mixed}/d.scp") as writer:
        writer.write("u3", feats["u3"].astype(np.float64))
    # u4: rows 5..44 and columns 3..82 of a wider, longer matrix (Kaldi ranges are inclusive)
    big = np.zeros((50, DIM + 10), dtype=np.float32)
    big[5:45, 3:3 + DIM] = feats["u4"]
    with open(mixed / "big.ark", "wb") as handle:
        kaldi_io.write_mat(handle, big, key="big")
    # u5: a pipe that writes one binary matrix; u6: a plain single-matrix file
    for utt in ("u5", "u6"):
        with open(mixed / f"{utt}.mat", "wb") as handle:
            kaldi_io.write_mat(handle, feats[utt])
    line = {u: (mixed / f"{s}.scp").read_text().split()[1].replace(f"{mixed}/", "mixed/")
            for u, s in (("u1", "f"), ("u2", "c"), ("u3", "d"))}
    line["u4"] = f"mixed/big.ark:4[5:44,3:{2 + DIM}]"
    line["u5"] = f"cat {mixed}/u5.mat |"
    line["u6"] = "mixed/u6.mat"
    data_dir(mixed, "".join(f"{u} {line[u]}\n" for u in sorted(line)), feats)
    return plain, mixed, feats


def build_elsewhere(data: Path, cwd: Path, away: Path) -> SegmentIndex:
    """Index built from `cwd` (relative scp paths resolve there), then used from `away`."""
    os.chdir(cwd)
    index = SegmentIndex.build(data.relative_to(cwd))
    os.chdir(away)
    return index


def test_stage2_index_records_fast_and_fallback_entries(dirs, tmp_path):
    plain, mixed, feats = dirs
    index = build_elsewhere(mixed, mixed.parent, tmp_path)
    assert list(index.utt_ids) == sorted(LENGTHS)
    assert list(index.num_frames) == [LENGTHS[u] for u in sorted(LENGTHS)]
    assert index.feat_dim == DIM
    fallback = {str(u) for u, off in zip(index.utt_ids, index.ark_offset) if off < 0}
    assert fallback == {"u4", "u5", "u6"}                 # ranges, pipes, whole files
    assert index.rxfile(3) == f"{mixed}/big.ark:4[5:44,3:{2 + DIM}]"   # made absolute
    assert index.rxfile(0).startswith(f"{mixed}/f.ark:")
    index.save(tmp_path / "index.npz")
    loaded = SegmentIndex.load(tmp_path / "index.npz")
    for u, utt in enumerate(sorted(LENGTHS)):
        got = loaded.read_utt(u)
        if utt == "u2":   # CM: 8-bit codes between column percentiles
            assert 0 < np.abs(got - feats[utt]).max() < 0.1
        else:
            np.testing.assert_array_equal(got, feats[utt])
    # Without utt2num_frames every header is read, through the same rxfiles
    (mixed / "utt2num_frames").rename(mixed / "utt2num_frames.bak")
    try:
        headers = build_elsewhere(mixed, mixed.parent, tmp_path)
    finally:
        (mixed / "utt2num_frames.bak").rename(mixed / "utt2num_frames")
    np.testing.assert_array_equal(headers.num_frames, index.num_frames)


def test_loader_reads_every_kind_like_plain_floats(dirs, tmp_path):
    plain, mixed, feats = dirs
    mvn = MVN(mean=np.full(DIM, 5.0, np.float32), std=np.full(DIM, 2.0, np.float32))
    got = SequenceBatchLoader(build_elsewhere(mixed, mixed.parent, tmp_path), mvn, "cpu",
                              prefetch=False)._read(np.arange(len(LENGTHS))).numpy()
    want = SequenceBatchLoader(SegmentIndex.build(plain), mvn, "cpu",
                               prefetch=False)._read(np.arange(len(LENGTHS))).numpy()
    assert got.shape == want.shape == (sum(LENGTHS.values()), DIM)
    start = LENGTHS["u1"]
    cm_rows = slice(start, start + LENGTHS["u2"])
    assert np.abs(got[cm_rows] - want[cm_rows]).max() < 0.05       # 0.1 / std 2
    got[cm_rows] = want[cm_rows]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_extraction_from_every_kind_matches_plain(dirs, tmp_path):
    plain, mixed, feats = dirs
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = tmp_path / "model.pt"
    save_checkpoint(model, {
        "model_config": CFG.to_dict(), "model": FHVAE(CFG).state_dict(),
        "mvn_mean": torch.full((DIM,), 5.0), "mvn_std": torch.full((DIM,), 2.0),
        "train_config": {}, "step": 0})
    os.chdir(mixed.parent)                                  # relative paths resolve here
    opts = ExtractOptions(batch_size=64)
    run_job(model, plain, tmp_path / "plain", device="cpu", opts=opts)
    run_job(model, mixed, tmp_path / "mixed", device="cpu", opts=opts)
    for name in ("z1", "z2", "svector"):
        want = dict(read_scp(tmp_path / "plain" / f"{name}.scp"))
        got = dict(read_scp(tmp_path / "mixed" / f"{name}.scp"))
        assert list(got) == sorted(LENGTHS)
        for utt in got:
            tol = 0.05 if utt == "u2" else 1e-5
            np.testing.assert_allclose(got[utt], want[utt], rtol=0, atol=tol, err_msg=utt)
