"""fhvae augment: T frames aligned with the source, z2 moved by the s-vector difference,
denormalised with the model's MVN, and a valid Kaldi data dir with the source's labels;
each checked against an independent computation (hand-cut windows, the model's modules
called directly, the checkpoint's raw MVN tensors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fhvae.augment.datadir import write_augmented_dir
from fhvae.augment.decode import with_residual
from fhvae.augment.domain import TargetZ2, make_move
from fhvae.augment.job import plan_targets
from fhvae.bin.augment import main as augment_main
from fhvae.errors import FhvaeError
from fhvae.inference import aligned_frames
from fhvae.io.tables import read_scp, write_table
from fhvae.io.text_table import read_dict, read_kv
from fhvae.io.validate import validate_data_dir
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import load_checkpoint, save_checkpoint
from helpers import run

ROOT = Path(__file__).resolve().parents[1]
CFG = ModelConfig(feat_dim=80, hidden=16, z1_dim=4, z2_dim=6, num_seqs=4)
SRC = {"spkA-u1": 5, "spkA-u2": 43, "spkB-u1": 20, "spkC-u1": 61}
TGT = {"n1-a": 40, "n2-b": 33, "n3-c": 25}


def save_model(path: Path) -> Path:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    save_checkpoint(path, {
        "model_config": CFG.to_dict(), "model": FHVAE(CFG).state_dict(),
        "mvn_mean": torch.from_numpy(rng.normal(size=80).astype(np.float32)),
        "mvn_std": torch.from_numpy(rng.uniform(0.5, 2.0, size=80).astype(np.float32)),
        "train_config": {}, "step": 0})
    return path


def make_dir(data: Path, lengths: dict[str, int], loc: float, labels: dict[str, str]) -> Path:
    rng = np.random.default_rng(len(data.name))
    feats = {u: rng.normal(loc, 3.0, size=(n, 80)).astype(np.float32) for u, n in lengths.items()}
    write_table(data / "raw.ark", data / "feats.scp", sorted(feats.items()))
    utts = sorted(lengths)
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    spk2utt: dict[str, list[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.split("-")[0], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    for name, value in labels.items():
        (data / name).write_text("".join(f"{u} {value}\n" for u in utts))
    return data


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    model = save_model(root / "model.pt")
    src = make_dir(root / "src", SRC, 1.0, {"utt2noise": "clean", "utt2channel": "close"})
    (src / "text").write_text("".join(f"{u} words of {u}\n" for u in sorted(SRC)))
    (src / "phone_ali.ctm").write_text("".join(f"{u} 1 0.00 0.05 a vowel\n{u} 1 0.05 0.02 b stop\n"
                                               for u in sorted(SRC)))
    (src / "spk2gender").write_text("spkA f\nspkB m\nspkC f\n")
    (src / "wav.scp").write_text("".join(f"{u} /nowhere/{u}.wav\n" for u in sorted(SRC)))
    noisy = make_dir(root / "noisy", TGT, 6.0, {"utt2noise": "white"})
    (noisy / "utt2channel").write_text("n1-a far\nn2-b close\nn3-c far\n")
    return root, model, src, noisy


def reference(model_path: Path, src: Path, target: Path, how: str = "centre"):
    """Independent augmented features: windows cut by hand, the model's encoders and
    decoder called one window at a time, the s-vector formula written out, the raw MVN
    tensors of the checkpoint."""
    payload = load_checkpoint(model_path)
    model = FHVAE(ModelConfig(**payload["model_config"]))
    model.load_state_dict(payload["model"])
    mean, std = payload["mvn_mean"].numpy(), payload["mvn_std"].numpy()
    L = CFG.seg_len

    def windows(x):
        T = len(x)
        return np.stack([x[[min(max(t + o - L // 2, 0), T - 1) for o in range(L)]]
                         for t in range(T)])

    def z2_means(w):
        with torch.no_grad():
            return model.encode_z2(torch.from_numpy(w))[0].numpy()

    def svector(x):
        T = len(x)
        rows = [T // 2] if T < L else [k * L + L // 2 for k in range(T // L)]
        return z2_means(windows(x)[rows]).sum(axis=0) / (len(rows) + CFG.sigma2_z2)

    norm = {d: {u: (m - mean) / std for u, m in read_scp(d / "feats.scp")} for d in (src, target)}
    offset = (np.mean([svector(x) for x in norm[target].values()], axis=0)
              - np.mean([svector(x) for x in norm[src].values()], axis=0))
    out = {}
    for utt, x in norm[src].items():
        w = windows(x)
        with torch.no_grad():
            z2 = model.encode_z2(torch.from_numpy(w))[0]
            z1 = model.encode_z1(torch.from_numpy(w), z2)[0]
            dec = model.decode(z1, z2 + torch.from_numpy(offset), L)[0].numpy()
        T = len(x)
        if how == "centre":
            frames = dec[:, L // 2]
        else:
            frames = np.zeros((T, 80))
            count = np.zeros(T)
            for t in range(T):
                for j in range(L):
                    f = min(max(t + j - L // 2, 0), T - 1)
                    frames[f] += dec[t, j]
                    count[f] += 1
            frames /= count[:, None]
        out[utt] = frames * std + mean
    return out


@pytest.mark.parametrize("how", ["centre", "average"])
def test_frames_match_an_independent_shifted_reconstruction(setup, tmp_path, how):
    root, model, src, noisy = setup
    assert augment_main([str(model), str(src), str(noisy), str(tmp_path / "data"),
                         "--ark-dir", str(tmp_path / "fbank"), "--device", "cpu",
                         "--frames", how, "--residual", "none"]) == 0
    got = dict(read_scp(tmp_path / "data" / "src_aug_noisy" / "feats.scp"))
    want = reference(model, src, noisy, how)
    assert sorted(got) == sorted(f"{u}-noisy" for u in SRC)
    for utt, frames in want.items():
        assert got[f"{utt}-noisy"].shape == (SRC[utt], 80)       # exactly T rows
        np.testing.assert_allclose(got[f"{utt}-noisy"], frames, rtol=1e-4, atol=1e-4)


def test_unchanged_z2_reconstructs_and_moved_z2_differs(setup, tmp_path):
    """The source as its own target: the shift is 0, so the output is the model's plain
    reconstruction; a different target moves every utterance."""
    root, model, src, noisy = setup
    for target in (src, noisy):
        assert augment_main([str(model), str(src), str(target), str(tmp_path / target.name),
                             "--ark-dir", str(tmp_path / "fbank"), "--device", "cpu",
                             "--residual", "none"]) == 0
    same = dict(read_scp(tmp_path / "src" / "src_aug_src" / "feats.scp"))
    moved = dict(read_scp(tmp_path / "noisy" / "src_aug_noisy" / "feats.scp"))
    want = reference(model, src, src)
    for utt in SRC:
        np.testing.assert_allclose(same[f"{utt}-src"], want[utt], rtol=1e-4, atol=1e-4)
        assert np.abs(moved[f"{utt}-noisy"] - same[f"{utt}-src"]).max() > 1e-3


def test_residual_gives_the_source_when_z2_stays_and_adds_the_decoded_move(setup, tmp_path):
    root, model, src, noisy = setup
    for target in (src, noisy):
        for flag in (["--residual", "none"], ["--residual", "add"]):
            out = tmp_path / f"{target.name}{flag[1]}"
            assert augment_main([str(model), str(src), str(target), str(out),
                                 "--ark-dir", str(tmp_path / f"fbank{flag[1]}"), "--device", "cpu",
                                 *flag]) == 0
    source = dict(read_scp(src / "feats.scp"))
    same = dict(read_scp(tmp_path / "srcadd" / "src_aug_src" / "feats.scp"))
    moved = dict(read_scp(tmp_path / "noisyadd" / "src_aug_noisy" / "feats.scp"))
    plain_same = dict(read_scp(tmp_path / "srcnone" / "src_aug_src" / "feats.scp"))
    plain_moved = dict(read_scp(tmp_path / "noisynone" / "src_aug_noisy" / "feats.scp"))
    for utt, x in source.items():
        np.testing.assert_allclose(same[f"{utt}-src"], x, rtol=1e-5, atol=1e-4)
        assert np.abs(plain_same[f"{utt}-src"] - x).max() > 0.1     # the decoding alone is not
        np.testing.assert_allclose(moved[f"{utt}-noisy"] - x,
                                   plain_moved[f"{utt}-noisy"] - plain_same[f"{utt}-src"],
                                   rtol=1e-4, atol=1e-4)


def test_residual_rules_by_hand():
    rng = np.random.default_rng(3)
    source, own, moved = (rng.normal(size=(9, 4)) for _ in range(3))
    np.testing.assert_array_equal(with_residual(source, own, moved, "none"), moved)
    np.testing.assert_allclose(with_residual(source, own, moved, "add"), moved + source - own)
    for k in range(4):      # bin k's detail scaled by the std ratio of the two decodings
        ratio = np.sqrt(np.mean((moved[:, k] - moved[:, k].mean()) ** 2)
                        / np.mean((own[:, k] - own[:, k].mean()) ** 2))
        np.testing.assert_allclose(with_residual(source, own, moved, "scaled")[:, k],
                                   moved[:, k] + ratio * (source[:, k] - own[:, k]))
    with pytest.raises(FhvaeError, match="unknown residual rule 'x'"):
        with_residual(source, own, moved, "x")


def test_average_of_windows_by_hand():
    windows = np.arange(3 * 4 * 1, dtype=np.float32).reshape(3, 4, 1)   # T=3, L=4: offsets -2..1
    # window w covers frames clip(w-2 .. w+1): w0 = 0 0 0 1, w1 = 0 0 1 2, w2 = 0 1 2 2
    want = [np.mean([0, 1, 2, 4, 5, 8]), np.mean([3, 6, 9]), np.mean([7, 10, 11])]
    np.testing.assert_allclose(aligned_frames(windows, "average")[:, 0], want)
    np.testing.assert_allclose(aligned_frames(windows, "centre")[:, 0], [2, 6, 10])


def test_target_method_uses_one_target_svector_per_utterance():
    target = {"t1": np.full(3, 1.0), "t2": np.full(3, 2.0), "t3": np.full(3, 3.0)}
    move = make_move("target", {"s": np.zeros(3)}, target, seed=5)
    assert isinstance(move, TargetZ2)
    z2 = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    out = move("spkA-u1", z2)
    assert out.shape == z2.shape and np.all(out == out[0])
    assert out[0, 0] in (1.0, 2.0, 3.0) and out[0, 0] == move("spkA-u1", z2[:2])[0, 0]
    assert len({float(move(f"u{i}", z2)[0, 0]) for i in range(40)}) == 3   # all are used
    shift = make_move("shift", {"a": np.zeros(3), "b": np.full(3, 2.0)}, target)
    np.testing.assert_allclose(shift("x", np.zeros((2, 3), np.float32)), np.full((2, 3), 1.0))


def test_data_dir_ids_tables_and_cmvn(setup, tmp_path):
    root, model, src, noisy = setup
    out = tmp_path / "data"
    assert augment_main([str(model), str(src), str(noisy), str(out), "--suffix", "wn",
                         "--ark-dir", str(tmp_path / "fbank"), "--device", "cpu",
                         "--compress"]) == 0
    aug = out / "src_aug_noisy"
    summary = validate_data_dir(aug, need_wav=False, need_text=True, spk_sort=True)
    assert summary.num_utts == len(SRC) and summary.num_spks == 3
    assert not (aug / "wav.scp").exists()
    assert read_kv(aug / "utt2spk") == [(f"{u}-wn", u.split("-")[0]) for u in sorted(SRC)]
    assert read_dict(aug / "text") == {f"{u}-wn": f"words of {u}" for u in SRC}
    assert read_dict(aug / "utt2uniq") == {f"{u}-wn": u for u in SRC}
    assert set(read_dict(aug / "utt2noise").values()) == {"white"}     # one label: relabelled
    assert set(read_dict(aug / "utt2channel").values()) == {"close"}   # mixed: carried
    assert read_dict(aug / "utt2num_frames") == {f"{u}-wn": str(n) for u, n in SRC.items()}
    assert read_dict(aug / "spk2gender") == read_dict(src / "spk2gender")
    ctm = (aug / "phone_ali.ctm").read_text().splitlines()
    assert ctm[:2] == ["spkA-u1-wn 1 0.00 0.05 a vowel", "spkA-u1-wn 1 0.05 0.02 b stop"]
    feats = dict(read_scp(aug / "feats.scp"))
    assert all(Path(v.split(":")[0]).is_absolute() for _, v in read_kv(aug / "feats.scp"))
    for spk, stats in read_scp(aug / "cmvn.scp"):
        mats = [m.astype(np.float64) for u, m in feats.items() if u.startswith(spk + "-")]
        x = np.concatenate(mats)
        np.testing.assert_allclose(stats[0, :-1], x.sum(0), rtol=1e-6)
        np.testing.assert_allclose(stats[1, :-1], (x ** 2).sum(0), rtol=1e-6)
        assert stats[0, -1] == len(x)


def test_plan_names_and_bad_suffix(setup, tmp_path):
    root, model, src, noisy = setup
    plan = plan_targets(src, [noisy], tmp_path)
    assert plan[0].out_dir == tmp_path / "src_aug_noisy" and plan[0].suffix == "noisy"
    with pytest.raises(FhvaeError, match="--suffix names the copies of one"):
        plan_targets(src, [noisy, src], tmp_path, "x")
    with pytest.raises(FhvaeError, match="both write src_aug_noisy"):
        plan_targets(src, [noisy, noisy], tmp_path)
    with pytest.raises(FhvaeError, match="whitespace"):
        write_augmented_dir(src, tmp_path / "d", src / "feats.scp", tmp_path / "c.ark", "a b")


def test_bad_target_features_are_one_line_naming_file_and_utterance(setup, tmp_path):
    root, model, src, noisy = setup
    bad = make_dir(tmp_path / "bad", {"x1-a": 30, "x2-b": 30}, 0.0, {})
    write_table(bad / "raw.ark", bad / "feats.scp",
                [("x1-a", np.zeros((30, 80), np.float32)),
                 ("x2-b", np.zeros((30, 40), np.float32))])
    proc = run([sys.executable, "-m", "fhvae", "augment", "--device", "cpu", str(model),
                str(src), str(bad), "out"], cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("ERROR")
    assert f"{bad / 'feats.scp'}" in proc.stderr and "'x2-b'" in proc.stderr
    assert "feature dim 40" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_script_jobs_equal_one_run_from_another_directory(setup, tmp_path):
    root, model, src, noisy = setup
    one = tmp_path / "one"
    assert augment_main([str(model), str(src), str(noisy), str(one), "--ark-dir",
                         str(one / "fbank"), "--device", "cpu"]) == 0
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = run([str(ROOT / "utils/augment_data_dir.sh"), "--nj", "2", "--device", "cpu",
                "--compress", "false", "--fbank-dir", "fb", str(model), str(src), str(noisy),
                "out", "exp"], cwd=work, timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (work / "exp/log/augment.2.log").is_file()
    assert (work / "fb/raw_fbank_src_aug_noisy.2.ark").is_file()
    split = dict(read_scp(work / "out/src_aug_noisy/feats.scp"))
    whole = dict(read_scp(one / "src_aug_noisy/feats.scp"))
    assert list(split) == list(whole)
    for key in whole:
        np.testing.assert_allclose(split[key], whole[key], rtol=1e-5, atol=1e-5)
    for name in ("utt2spk", "spk2utt", "text", "utt2noise", "utt2uniq"):
        got = (work / "out/src_aug_noisy" / name).read_text()
        assert got == (one / "src_aug_noisy" / name).read_text()
