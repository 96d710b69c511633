"""The i-vector baseline (fhvae/ivector, fhvae/bin/{train,extract}_ivector): the posterior
against a brute-force joint Gaussian, EM against its own objective and a known T, the
front-end against kaldi-native-fbank and Kaldi's loops, and the CLI round trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal

from fhvae.bin.extract_ivector import main as extract_main
from fhvae.bin.train_ivector import main as train_main
from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankComputer, FbankConfig
from fhvae.features.vad import VadOptions, compute_vad, frame_log_energy
from fhvae.ivector import IvectorConfig, IvectorSystem, extract_ivectors
from fhvae.io.datadir import DataDir
from fhvae.ivector.em import EmOptions, em_iteration
from fhvae.ivector.extractor import IvectorExtractor
from fhvae.ivector.features import (FrontEndConfig, add_deltas, compute_features,
                                    mfcc_from_fbank, sliding_cmn)
from fhvae.ivector.stats import BaumWelchStats, utterance_stats
from fhvae.ivector.ubm import prune_posteriors

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- generated model and data

def make_model(rng: np.random.Generator, num_gauss: int, dim: int, rank: int
               ) -> IvectorExtractor:
    return IvectorExtractor(rng.normal(0, 3, (num_gauss, dim)),
                            rng.normal(0, 1, (num_gauss, dim, rank)),
                            rng.uniform(0.5, 1.5, (num_gauss, dim)))


def sample_utterance(model: IvectorExtractor, rng: np.random.Generator, num_frames: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(frames, one-hot alignment) of x_t = m_c + T_c w + e_t, w ~ N(0, I), c_t uniform."""
    w = rng.standard_normal(model.ivector_dim)
    labels = rng.integers(model.num_gauss, size=num_frames)
    noise = rng.standard_normal((num_frames, model.feat_dim)) * np.sqrt(model.variances[labels])
    frames = model.means[labels] + model.projection[labels] @ w + noise
    return frames, np.eye(model.num_gauss)[labels]


def make_stats(model: IvectorExtractor, rng: np.random.Generator, num_utts: int,
               num_frames: int, centre: np.ndarray) -> BaumWelchStats:
    counts, firsts, second = [], [], np.zeros_like(centre)
    for _ in range(num_utts):
        n, f, s = utterance_stats(*reversed(sample_utterance(model, rng, num_frames)), centre)
        counts.append(n)
        firsts.append(f)
        second += s
    return BaumWelchStats([f"u{k}" for k in range(num_utts)], np.array(counts),
                          np.array(firsts), centre, second)


# ---------------------------------------------------------------- posterior and likelihood

def test_posterior_and_likelihood_match_the_joint_gaussian():
    """With a fixed (hard) alignment the stacked frames are one Gaussian vector
    X = M + A w + E; the posterior of w and log p(X) from numpy.linalg on the full joint
    must equal the extractor's statistics-based formulas."""
    rng = np.random.default_rng(0)
    model = make_model(rng, num_gauss=3, dim=2, rank=2)
    frames, post = sample_utterance(model, rng, num_frames=7)
    labels = post.argmax(axis=1)
    design = model.projection[labels].reshape(-1, model.ivector_dim)     # (T*D, R)
    offset = model.means[labels].reshape(-1)
    noise = np.diag(model.variances[labels].reshape(-1))
    cov_x = design @ design.T + noise
    gain = np.linalg.solve(cov_x, design).T                              # A' cov_x^{-1}
    want_mean = gain @ (frames.reshape(-1) - offset)
    want_cov = np.eye(model.ivector_dim) - gain @ design

    # centre the statistics elsewhere: the model must re-centre them on its means
    centre = model.means + rng.normal(0, 1, model.means.shape)
    n, f, s = utterance_stats(post, frames, centre)
    stats = BaumWelchStats(["u"], n[None], f[None], centre, s)
    mean, precision = model.posterior(stats.counts, stats.first_centred_on(model.means))
    np.testing.assert_allclose(mean[0], want_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(precision[0]), want_cov, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.extract(stats)[0], want_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.log_likelihood(stats),
                               multivariate_normal(offset, cov_x).logpdf(frames.reshape(-1)),
                               rtol=1e-10)


def test_pruned_posteriors_follow_kaldi():
    """Top-N preselection, drop below min_post keeping the best, renormalise."""
    loglik = np.log(np.array([[0.50, 0.30, 0.15, 0.04, 0.01],
                              [0.30, 0.29, 0.28, 0.13, 0.0001]]))
    post = prune_posteriors(loglik, min_post=0.1, num_gselect=0)
    np.testing.assert_allclose(post[0], [0.5, 0.3, 0.15, 0, 0] / np.float64(0.95))
    np.testing.assert_allclose(post[1], [0.3, 0.29, 0.28, 0.13, 0] / np.float64(1.0))
    top2 = prune_posteriors(loglik, min_post=0.0, num_gselect=2)
    np.testing.assert_allclose(top2[0], [0.5 / 0.8, 0.3 / 0.8, 0, 0, 0])
    only_best = prune_posteriors(np.log([[0.4, 0.3, 0.3]]), min_post=0.9, num_gselect=0)
    np.testing.assert_allclose(only_best, [[1.0, 0.0, 0.0]])


# ---------------------------------------------------------------- EM

@pytest.mark.parametrize("opts", [EmOptions(min_count=0),
                                  EmOptions(False, False, False, min_count=0),
                                  EmOptions(False, True, True, min_count=0)],
                         ids=["all-updates", "T-only", "T-var-mindiv"])
def test_em_likelihood_never_decreases_and_recovers_the_subspace(opts):
    """log p(stats) (w integrated out) is EM's objective: no iteration may lower it, and
    on data generated from a known T the learnt T spans the same subspace."""
    rng = np.random.default_rng(1)
    truth = make_model(rng, num_gauss=4, dim=3, rank=2)
    # what is not re-estimated starts at the truth, the rest away from it
    means = truth.means + (0.5 if opts.update_means else 0.0)
    variances = np.ones_like(truth.variances) if opts.update_variances else truth.variances
    stats = make_stats(truth, rng, num_utts=300, num_frames=40, centre=means)
    model = IvectorExtractor.random_init(means, variances, truth.ivector_dim, seed=3)
    history = []
    for _ in range(40):
        model, loglik = em_iteration(model, [stats], opts)
        history.append(loglik)
    history.append(model.log_likelihood(stats))
    steps = np.diff(history)
    assert (steps >= -1e-9 * abs(history[0])).all(), steps
    assert history[-1] > history[0] + 1.0
    if opts.min_divergence:   # converged (plain EM on T alone crawls): the maximum
        # likelihood is at least about that of the generating model
        assert history[-1] >= truth.log_likelihood(stats) - 1e-4 * abs(history[-1])
    angles = subspace_angles(truth.projection.reshape(-1, 2), model.projection.reshape(-1, 2))
    assert np.degrees(angles.max()) < 5, np.degrees(angles)


def test_m_step_is_the_frame_level_maximiser():
    """One EM iteration against the textbook M-step written over frames: regress each
    Gaussian's frames on r = [1, w] under the posterior of w, then the prior's mean and
    covariance folded into (m, T) (lower Cholesky factor)."""
    rng = np.random.default_rng(6)
    truth = make_model(rng, num_gauss=2, dim=2, rank=2)
    model = IvectorExtractor.random_init(truth.means + 1, np.ones((2, 2)), 2, seed=1)
    utts = [sample_utterance(truth, rng, 25) for _ in range(30)]
    rr = np.zeros((2, 3, 3))
    xr = np.zeros((2, 2, 3))
    xx = np.zeros((2, 2))
    count = np.zeros(2)
    w_mean, w_second = [], []
    stats = []
    for frames, post in utts:
        n, f, s = utterance_stats(post, frames, model.means)
        mean, precision = model.posterior(n[None], f[None])
        second = np.linalg.inv(precision[0]) + np.outer(mean[0], mean[0])
        r = np.concatenate([[1.0], mean[0]])
        r2 = np.block([[np.ones((1, 1)), mean[0][None]], [mean[0][:, None], second]])
        for x, c in zip(frames, post.argmax(axis=1)):
            rr[c] += r2
            xr[c] += np.outer(x, r)
            xx[c] += x ** 2
            count[c] += 1
        w_mean.append(mean[0])
        w_second.append(second)
        stats.append((n, f, s))
    solved = np.stack([xr[c] @ np.linalg.inv(rr[c]) for c in range(2)])        # (C, D, 3)
    variances = np.stack([(xx[c] - 2 * (solved[c] * xr[c]).sum(1)
                           + np.einsum("dp,pq,dq->d", solved[c], rr[c], solved[c])) / count[c]
                          for c in range(2)])
    mu = np.mean(w_mean, axis=0)
    cov = np.mean(w_second, axis=0) - np.outer(mu, mu)
    want_means = solved[:, :, 0] + solved[:, :, 1:] @ mu
    want_proj = solved[:, :, 1:] @ np.linalg.cholesky(cov)

    n, f, s = (np.array(a) for a in zip(*stats))
    batch = BaumWelchStats([str(k) for k in range(30)], n, f, model.means.copy(), s.sum(0))
    new, _ = em_iteration(model, [batch], EmOptions(var_floor_factor=0.0, min_count=0))
    np.testing.assert_allclose(new.means, want_means, rtol=1e-9)
    np.testing.assert_allclose(new.projection, want_proj, rtol=1e-9)
    np.testing.assert_allclose(new.variances, variances, rtol=1e-9)


def test_min_divergence_whitens_the_ivectors():
    rng = np.random.default_rng(2)
    truth = make_model(rng, num_gauss=4, dim=3, rank=2)
    stats = make_stats(truth, rng, num_utts=400, num_frames=30, centre=truth.means)
    model = IvectorExtractor.random_init(truth.means, truth.variances, 2, seed=0)
    for _ in range(10):
        model, _ = em_iteration(model, [stats], EmOptions(min_count=0))
    ivectors = model.extract(stats)
    assert np.abs(ivectors.mean(axis=0)).max() < 0.1
    # posterior means shrink: their covariance is below the identity, not far below it
    eig = np.linalg.eigvalsh(np.cov(ivectors.T))
    assert 0.6 < eig.min() and eig.max() < 1.05, eig


# ---------------------------------------------------------------- front-end

def test_mfcc_from_fbank_matches_kaldi_native_fbank_mfcc():
    """compute-mfcc --use-energy=false is the DCT of compute-fbank's log mel energies:
    ours from our stored FBank must equal knf's MFCC of the same waveform."""
    rng = np.random.default_rng(3)
    t = np.arange(16000 * 2) / 16000
    wave = 3000 * np.sin(2 * np.pi * 220 * t * (1 + 0.3 * t)) + rng.normal(0, 300, t.size)
    fbank_cfg = FbankConfig(dither=0.0)
    fbank = FbankComputer(fbank_cfg)(wave.astype(np.float32), 16000, "wave")
    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = fbank_cfg.num_mel_bins
    opts.mel_opts.low_freq = fbank_cfg.low_freq
    opts.mel_opts.high_freq = fbank_cfg.high_freq
    opts.use_energy = False
    for num_ceps, lifter in ((20, 22.0), (13, 0.0), (80, 22.0)):
        opts.num_ceps, opts.cepstral_lifter = num_ceps, lifter
        mfcc = knf.OnlineMfcc(opts)
        mfcc.accept_waveform(16000, wave.astype(np.float32))
        mfcc.input_finished()
        want = np.stack([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)])
        ours = mfcc_from_fbank(fbank, num_ceps, lifter)
        assert ours.shape == want.shape
        np.testing.assert_allclose(ours, want, rtol=0, atol=1e-3)   # float32 FBank rounding


def kaldi_delta_loop(feats: np.ndarray, order: int, window: int) -> np.ndarray:
    """add-deltas written out: each order's weights built by explicit sums over the
    previous order's, then applied frame by frame with indices clamped to the edges."""
    scales = [{0: 1.0}]
    norm = sum(j * j for j in range(-window, window + 1))
    for _ in range(order):
        new: dict[int, float] = {}
        for j in range(-window, window + 1):
            for k, v in scales[-1].items():
                new[j + k] = new.get(j + k, 0.0) + j * v / norm
        scales.append(new)
    num_frames, dim = feats.shape
    out = np.zeros((num_frames, dim * (order + 1)))
    for t in range(num_frames):
        for i, weights in enumerate(scales):
            for j, w in weights.items():
                out[t, i * dim:(i + 1) * dim] += w * feats[min(max(t + j, 0), num_frames - 1)]
    return out


@pytest.mark.parametrize("num_frames", [1, 2, 5, 9, 40])
@pytest.mark.parametrize("order,window", [(2, 2), (1, 3), (3, 1)])
def test_deltas_match_kaldi_add_deltas(num_frames, order, window):
    rng = np.random.default_rng(num_frames)
    feats = rng.normal(size=(num_frames, 3))
    ours = add_deltas(feats, order, window)
    np.testing.assert_allclose(ours, kaldi_delta_loop(feats, order, window), atol=1e-12)
    # away from the edges, the textbook regression formula, order after order
    norm = 2 * sum(j * j for j in range(1, window + 1))
    prev = feats
    for i in range(1, order + 1):
        inner = range(window * i, num_frames - window * i)
        delta = np.array([sum(j * (prev[t + j] - prev[t - j]) for j in range(1, window + 1))
                          / norm if window <= t < num_frames - window else np.zeros(3)
                          for t in range(num_frames)])
        for t in inner:
            np.testing.assert_allclose(ours[t, 3 * i:3 * (i + 1)], delta[t], atol=1e-12)
        prev = delta


def kaldi_sliding_cmn_loop(feats: np.ndarray, cmn_window: int) -> np.ndarray:
    """apply-cmvn-sliding --center=true --norm-vars=false, one frame at a time."""
    num_frames = feats.shape[0]
    out = np.empty_like(feats)
    for t in range(num_frames):
        start = t - cmn_window // 2
        end = start + cmn_window
        if start < 0:
            end -= start
            start = 0
        if end > num_frames:
            start = max(start - (end - num_frames), 0)
            end = num_frames
        out[t] = feats[t] - feats[start:end].mean(axis=0)
    return out


@pytest.mark.parametrize("num_frames", [1, 4, 7, 8, 9, 30, 299, 300, 301, 777])
@pytest.mark.parametrize("cmn_window", [300, 8, 7])
def test_sliding_cmn_matches_kaldi_loop(num_frames, cmn_window):
    feats = np.random.default_rng(num_frames).normal(5, 2, (num_frames, 4))
    np.testing.assert_allclose(sliding_cmn(feats, cmn_window),
                               kaldi_sliding_cmn_loop(feats, cmn_window), atol=1e-10)


def test_front_end_order_deltas_cmn_then_voiced_frames():
    """VAD decides on the raw FBank; deltas and CMN see every frame; the unvoiced frames
    go last (Kaldi's add-deltas | apply-cmvn-sliding | select-voiced-frames)."""
    rng = np.random.default_rng(4)
    fbank = rng.normal(8, 1, (120, 10))
    fbank[30:60] -= 12                                    # a quiet stretch
    cfg = FrontEndConfig(num_ceps=6, cmn_window=50, vad=True,
                         vad_options=VadOptions(5.5, 0.5, 2, 0.12))
    voiced = compute_vad(frame_log_energy(fbank), cfg.vad_options) > 0
    assert 0 < voiced.sum() < 110
    want = sliding_cmn(add_deltas(mfcc_from_fbank(fbank, 6), 2, 2), 50)[voiced]
    np.testing.assert_allclose(compute_features(fbank, cfg), want)
    assert compute_features(fbank, FrontEndConfig(feature_type="fbank", delta_order=0,
                                                  sliding_cmn=False, vad=False)).shape == (120, 10)
    silent = np.full((20, 10), -30.0)                     # nothing voiced: keep every frame
    assert compute_features(silent, cfg).shape == (20, 18)


# ---------------------------------------------------------------- CLI

NUM_BINS = 12


def write_data_dir(path: Path, seed: int = 5, bad_utt: str | None = None) -> dict:
    """4 speakers x 3 utterances of FBank-like features (speaker offsets), feats written by
    kaldiio; `bad_utt` gets one column too few."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    feats = {}
    for s in range(4):
        offset = rng.normal(0, 2, NUM_BINS)
        for u in range(3):
            mat = rng.normal(0, 1, (int(rng.integers(80, 160)), NUM_BINS)) + offset + 8
            feats[f"spk{s}-utt{u}"] = mat.astype(np.float32)
    if bad_utt is not None:
        feats[bad_utt] = feats[bad_utt][:, :-1]
    with kaldiio.WriteHelper(f"ark,scp:{path / 'feats.ark'},{path / 'feats.scp'}") as writer:
        for utt in sorted(feats):
            writer(utt, feats[utt])
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(feats)))
    return feats


TRAIN_OPTS = ["--num-gauss", "4", "--ivector-dim", "3", "--num-iters", "3", "--ubm-iters", "3",
              "--num-ceps", "8", "--gaussian-min-count", "0", "--vad", "false"]


def test_cli_round_trip(tmp_path, capsys):
    feats = write_data_dir(tmp_path / "data")
    assert train_main([*TRAIN_OPTS, str(tmp_path / "data"), str(tmp_path / "exp")]) == 0
    system = IvectorSystem.load(tmp_path / "exp" / "extractor.npz")
    assert (system.config.num_gauss, system.config.ivector_dim) == (4, 3)
    assert system.config.front_end.vad is False and system.input_dim == NUM_BINS
    assert extract_main([str(tmp_path / "exp" / "extractor.npz"), str(tmp_path / "data"),
                         str(tmp_path / "iv")]) == 0
    written = dict(kaldiio.load_scp(str(tmp_path / "iv" / "ivector.scp")))
    assert sorted(written) == sorted(feats)
    direct = dict(extract_ivectors(system, DataDir(tmp_path / "data")))
    for utt, vec in written.items():
        assert vec.shape == (3,) and vec.dtype == np.float32
        np.testing.assert_allclose(vec, direct[utt], rtol=1e-5, atol=1e-6)
    assert not list((tmp_path / "iv").glob(".*tmp*"))
    assert "ivector.scp: 12 3-dim i-vectors" in capsys.readouterr().out


def test_extraction_in_jobs_is_the_single_process_extraction(tmp_path):
    """utils/extract_ivectors.sh --nj 5 (12 utterances: parts of 3, 3, 2, 2, 2): the merged
    ivector.scp lists every utterance in feats.scp order with the vectors one process
    writes; a merge with a part missing names it and writes nothing."""
    write_data_dir(tmp_path / "data")
    assert train_main([*TRAIN_OPTS, str(tmp_path / "data"), str(tmp_path / "exp")]) == 0
    extractor = str(tmp_path / "exp" / "extractor.npz")
    assert extract_main([extractor, str(tmp_path / "data"), str(tmp_path / "one")]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FHVAE_PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "utils" / "extract_ivectors.sh"), "--nj", "5", extractor,
                           str(tmp_path / "data"), str(tmp_path / "jobs")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = list(kaldiio.load_scp_sequential(str(tmp_path / "one" / "ivector.scp")))
    jobs = list(kaldiio.load_scp_sequential(str(tmp_path / "jobs" / "ivector.scp")))
    assert [u for u, _ in jobs] == [u for u, _ in one] == sorted(u for u, _ in one)
    for (_, a), (_, b) in zip(jobs, one):
        np.testing.assert_array_equal(a, b)
    assert [len((tmp_path / "jobs" / f"ivector.{j}.scp").read_text().splitlines())
            for j in range(1, 6)] == [3, 3, 2, 2, 2]
    assert (tmp_path / "jobs" / "log" / "extract.5.log").is_file()
    (tmp_path / "jobs" / "ivector.scp").unlink()
    (tmp_path / "jobs" / "ivector.4.scp").unlink()
    with pytest.raises(FhvaeError, match=r"ivector\.4\.scp: no such file \(job 4 of 5 has "
                                         r"not finished\)"):
        extract_main(["--merge", "--num-jobs", "5", extractor, str(tmp_path / "data"),
                      str(tmp_path / "jobs")])
    assert not (tmp_path / "jobs" / "ivector.scp").exists()


@pytest.mark.parametrize("stage", ["train", "extract"])
def test_cli_wrong_dimension_is_one_line_naming_file_and_utterance(tmp_path, stage):
    bad = "spk2-utt1"
    if stage == "extract":
        write_data_dir(tmp_path / "good")
        train_main([*TRAIN_OPTS, str(tmp_path / "good"), str(tmp_path / "exp")])
    write_data_dir(tmp_path / "data", bad_utt=bad)
    # options that fit 12 bins: the bad utterance is met while the data streams through
    args = ([*TRAIN_OPTS, str(tmp_path / "data"), str(tmp_path / "exp2")] if stage == "train" else
            [str(tmp_path / "exp" / "extractor.npz"), str(tmp_path / "data"),
             str(tmp_path / "iv")])
    module = "fhvae.bin.train_ivector" if stage == "train" else "fhvae.bin.extract_ivector"
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(tmp_path / "data" / "feats.scp") in errors[0] and bad in errors[0]
    assert not (tmp_path / "exp2" / "extractor.npz").exists()
    assert not (tmp_path / "iv" / "ivector.scp").exists()
