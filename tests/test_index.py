"""Stage 2: SegmentIndex numbers against hand counts, grouping, persistence, shards,
held-out splits, make_index (MVN statistics) and its errors."""

import logging

import numpy as np
import pytest

from fhvae.bin.make_index import main as make_index_main
from fhvae.data.index import SegmentIndex
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.io.tables import write_table

# utt -> (speaker, frames); listed unsorted on purpose ('B' < '_' < 'a' in C order)
UTTS = {"a3": ("s2", 44), "a1": ("s1", 25), "B9": ("s1", 19), "_x": ("s3", 20),
        "a2": ("s2", 60), "a0": ("s1", 20)}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """feats.scp over two arks with *relative* paths, utt2num_frames, utt2spk."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    feats = {u: (rng.standard_normal((t, 3)) * [1, 5, 0.1] + [0, 10, -3]).astype(np.float32)
             for u, (_, t) in UTTS.items()}
    data = tmp_path / "data"
    names = list(UTTS)
    write_table("arks/one.ark", data / "one.scp", [(u, feats[u]) for u in names[:3]])
    write_table("arks/two.ark", data / "two.scp", [(u, feats[u]) for u in names[3:]])
    (data / "feats.scp").write_text((data / "one.scp").read_text() + (data / "two.scp").read_text())
    (data / "utt2num_frames").write_text("".join(f"{u} {t}\n" for u, (_, t) in UTTS.items()))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _) in UTTS.items()))
    return data, feats


def test_counts_against_hand_counts(data_dir, caplog):
    data, _ = data_dir
    with caplog.at_level(logging.WARNING):
        index = SegmentIndex.build(data)
    assert "excluded 1 utterance(s) shorter than 20 frames: B9" in caplog.text
    assert list(index.utt_ids) == ["_x", "a0", "a1", "a2", "a3"]       # LC_ALL=C order
    assert index.utt_ids.dtype == np.dtype("<U2")                     # not the ark width
    assert index.num_frames.dtype == np.int32 and index.ark_offset.dtype == np.int64
    assert list(index.num_frames) == [20, 20, 25, 60, 44]
    assert list(index.num_segments(1)) == [1, 1, 6, 41, 25]             # T - 20 + 1
    assert list(index.num_segments(10)) == [1, 1, 1, 5, 3]              # (T - 20) // 10 + 1
    assert list(index.seq_ids) == list(index.utt_ids) and index.num_seqs == 5
    assert list(index.seq_num_segments(20)) == [1, 1, 1, 3, 2]
    assert index.feat_dim == 3
    assert list(index.ark_paths) == [str(data.parent / "arks" / "one.ark"),
                                     str(data.parent / "arks" / "two.ark")]


def test_seg_len_changes_exclusion(data_dir):
    index = SegmentIndex.build(data_dir[0], seg_len=25)
    assert list(index.utt_ids) == ["a1", "a2", "a3"]
    assert list(index.num_segments(1)) == [1, 36, 20]


def test_speaker_sequences(data_dir):
    data, _ = data_dir
    index = SegmentIndex.build(data, seq_unit="spk")
    assert list(index.seq_ids) == ["s1", "s2", "s3"]
    assert [list(index.utt_ids[index.utts_of_seq(s)]) for s in range(3)] == [
        ["a0", "a1"], ["a2", "a3"], ["_x"]]
    assert list(index.seq_num_segments(1)) == [1 + 6, 41 + 25, 1]


def test_read_utt_and_rxfile(data_dir):
    data, feats = data_dir
    index = SegmentIndex.build(data)
    for u, utt in enumerate(index.utt_ids):
        np.testing.assert_array_equal(index.read_utt(u), feats[utt])
        assert index.rxfile(u).startswith(str(data.parent / "arks"))
    index.num_frames[0] += 1  # a stale index is caught, naming the utterance
    with pytest.raises(FhvaeError, match="utterance '_x' .* index expects \\(21, 3\\)"):
        index.read_utt(0)


def test_missing_utt2num_frames_reads_headers(data_dir):
    data, _ = data_dir
    expected = SegmentIndex.build(data, seq_unit="spk")
    (data / "utt2num_frames").unlink()
    index = SegmentIndex.build(data, seq_unit="spk")
    for name in ("utt_ids", "num_frames", "seq_of_utt", "seq_ids", "ark_offset"):
        np.testing.assert_array_equal(getattr(index, name), getattr(expected, name))


def assert_same(a: SegmentIndex, b: SegmentIndex):
    for name in ("utt_ids", "num_frames", "seq_of_utt", "seq_ids", "ark_paths", "ark_of_utt",
                 "ark_offset"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype.kind == y.dtype.kind and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.feat_dim, a.seg_len, a.seq_unit) == (b.feat_dim, b.seg_len, b.seq_unit)


@pytest.mark.parametrize("seq_unit", ["utt", "spk"])
def test_save_load_round_trip(data_dir, tmp_path, seq_unit):
    index = SegmentIndex.build(data_dir[0], seq_unit=seq_unit, seg_len=20)
    index.utt_ids = np.array(["_x", "a0", "a1", "a2", "ü3"])  # non-ASCII survives too
    if seq_unit == "utt":
        index.seq_ids = index.utt_ids
    index.save(tmp_path / "idx.npz")
    loaded = SegmentIndex.load(tmp_path / "idx.npz")
    assert_same(index, loaded)
    with np.load(tmp_path / "idx.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_load_errors(tmp_path):
    with pytest.raises(FhvaeError, match="seg_index.npz: segment index not found"):
        SegmentIndex.load(tmp_path / "seg_index.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(FhvaeError, match="other.npz: not a segment index"):
        SegmentIndex.load(tmp_path / "other.npz")


def synthetic(num_utts: int, num_spk: int, seed: int = 0) -> SegmentIndex:
    rng = np.random.default_rng(seed)
    utts = np.array([f"u{i:05d}" for i in range(num_utts)])
    return SegmentIndex(utt_ids=utts, num_frames=rng.integers(20, 200, num_utts).astype(np.int32),
                        seq_of_utt=np.sort(rng.integers(0, num_spk, num_utts)).astype(np.int32),
                        seq_ids=np.array([f"s{i:03d}" for i in range(num_spk)]),
                        ark_paths=np.array(["/a.ark", "/b.ark"]),
                        ark_of_utt=(np.arange(num_utts) % 2).astype(np.int32),
                        ark_offset=np.arange(num_utts, dtype=np.int64) * 100,
                        feat_dim=80, seq_unit="spk")


def test_shards_are_disjoint_and_complete():
    index = synthetic(500, 37)
    shards = [index.shard(r, 4) for r in range(4)]
    seqs = [set(s.seq_ids) for s in shards]
    assert all(not (seqs[i] & seqs[j]) for i in range(4) for j in range(i + 1, 4))
    assert set().union(*seqs) == set(index.seq_ids)
    utts = np.concatenate([s.utt_ids for s in shards])
    assert sorted(utts) == list(index.utt_ids)
    assert sum(s.num_seqs for s in shards) == 37
    assert max(s.num_seqs for s in shards) - min(s.num_seqs for s in shards) <= 1
    for shard in shards:  # every utterance keeps its speaker and its features' location
        orig = np.searchsorted(index.utt_ids, shard.utt_ids)
        np.testing.assert_array_equal(shard.seq_ids[shard.seq_of_utt],
                                      index.seq_ids[index.seq_of_utt[orig]])
        np.testing.assert_array_equal(shard.ark_offset, index.ark_offset[orig])
        np.testing.assert_array_equal(shard.ark_paths[shard.ark_of_utt],
                                      index.ark_paths[index.ark_of_utt[orig]])
    with pytest.raises(FhvaeError, match="cannot shard 37 sequences over 40 ranks"):
        index.shard(0, 40)
    with pytest.raises(FhvaeError, match="shard rank 4 not in"):
        index.shard(4, 4)


def test_split_heldout_disjoint_and_deterministic():
    index = synthetic(500, 40)
    train, held = index.split_heldout(0.1, seed=3)
    assert held.num_seqs == 4 and train.num_seqs == 36
    assert not set(train.seq_ids) & set(held.seq_ids)
    assert not set(train.utt_ids) & set(held.utt_ids)
    assert train.num_utts + held.num_utts == 500
    again_train, again_held = index.split_heldout(0.1, seed=3)
    assert_same(held, again_held)
    assert_same(train, again_train)
    _, other = index.split_heldout(0.1, seed=4)
    assert set(other.seq_ids) != set(held.seq_ids)
    with pytest.raises(FhvaeError, match="held-out fraction 0.001 of 40 sequences"):
        index.split_heldout(0.001, seed=3)


def test_subset_with_mask_and_indices():
    index = synthetic(50, 5)
    by_idx = index.subset([7, 3, 3, 40])
    assert list(by_idx.utt_ids) == ["u00003", "u00007", "u00040"]
    mask = np.zeros(50, dtype=bool)
    mask[[3, 7, 40]] = True
    assert_same(by_idx, index.subset(mask))
    with pytest.raises(FhvaeError, match="out of range"):
        index.subset([50])


def test_make_index_mvn_and_heldout(data_dir, capsys):
    data, feats = data_dir
    mvn_path = data / "fhvae" / "mvn.npz"
    make_index_main(["--seq-unit", "spk", "--mvn-out", str(mvn_path), str(data)])
    line = capsys.readouterr().out.strip()
    assert line == (f"{data}: 5 utts, 3 seqs, 169 frames, 74 segments (shift 1; "
                    "8 non-overlapping), 1 excluded (< 20 frames)")
    index = SegmentIndex.load(data / "fhvae" / "seg_index.npz")
    assert index.seq_unit == "spk" and index.num_utts == 5
    frames = np.concatenate([feats[u] for u in index.utt_ids]).astype(np.float64)
    mvn = MVN.load(mvn_path)
    np.testing.assert_allclose(mvn.mean, frames.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mvn.std, frames.std(axis=0), rtol=1e-5, atol=1e-5)

    make_index_main(["--mvn-out", str(mvn_path), "--heldout-frac", "0.4", "--seed", "1",
                     str(data)])
    train = SegmentIndex.load(data / "fhvae" / "train_index.npz")
    held = SegmentIndex.load(data / "fhvae" / "heldout_index.npz")
    assert (train.num_utts, held.num_utts) == (3, 2)
    assert not set(train.utt_ids) & set(held.utt_ids)
    train_frames = np.concatenate([feats[u] for u in train.utt_ids]).astype(np.float64)
    np.testing.assert_allclose(MVN.load(mvn_path).mean, train_frames.mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("line, message", [
    ("a9", "feats.scp:7: expected '<utt> <rxfile>', got 'a9'"),
    ("a2 arks/one.ark:12", "feats.scp:7: duplicate key 'a2'"),
    ("a9 cat x |\nb7", "feats.scp:8: expected"),  # a pipe's spaces are fine, 1 field is not
    ("\na9 arks/one.ark:12", "feats.scp:7: expected .*, got ''"),        # empty line
])
def test_malformed_feats_scp(data_dir, line, message):
    data, _ = data_dir
    with open(data / "feats.scp", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(FhvaeError, match=message):
        SegmentIndex.build(data)


def test_build_errors(data_dir):
    data, _ = data_dir
    with pytest.raises(FhvaeError, match="seq_unit must be 'utt' or 'spk'"):
        SegmentIndex.build(data, seq_unit="rec")
    with pytest.raises(FhvaeError, match="no utterance has at least 100 frames"):
        SegmentIndex.build(data, seg_len=100)
    (data / "utt2spk").write_text("a0 s1\n")
    with pytest.raises(FhvaeError, match="utt2spk: no entry for utterance 'B9' \\(5 of 6"):
        SegmentIndex.build(data, seq_unit="spk")
    (data / "utt2num_frames").write_text("".join(f"{u} 30\n" for u in UTTS).replace("a2 30",
                                                                                    "a2 3O"))
    with pytest.raises(FhvaeError, match="utt2num_frames: not an integer frame count: '3O'"):
        SegmentIndex.build(data)
    (data / "feats.scp").write_text("")
    with pytest.raises(FhvaeError, match="feats.scp: empty feats.scp"):
        SegmentIndex.build(data)
