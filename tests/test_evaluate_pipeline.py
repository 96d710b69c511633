"""Stage 5 on a tiny synthetic corpus: latents where z2 carries the speaker and z1 the phone
class, a random tiny FHVAE checkpoint, and the whole `fhvae.bin.evaluate` run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from fhvae.bin.cli import run_main
from fhvae.bin.evaluate import main
from fhvae.errors import FhvaeError
from fhvae.evaluate.inputs import load_eval_set
from fhvae.evaluate.pipeline import baseline_mvn
from fhvae.evaluate.probes import PHONE_FACTOR, run_probes, split_utterances
from fhvae.evaluate.recombination import (choose_utterances, make_recombine_figure, recombine,
                                          recombine_with_reconstruction)
from fhvae.evaluate.tsne import make_tsne_figures, sample_points
from fhvae.features.mvn import compute_mvn
from fhvae.io.labels import read_ctm_frame_labels
from fhvae.io.tables import read_scp as read_table_scp
from fhvae.io.tables import write_table
from fhvae.io.text_table import write_kv
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import load_model, save_checkpoint

CLASSES = ("silence", "sonorant", "obstruent")
ZDIM = 4


def make_set(root: Path, name: str, num_spk: int, utts_per_spk: int, seed: int):
    """Data dir + latents dir. Per frame: z2 = speaker centre + noise, z1 = phone-class centre
    + noise; phone classes come in runs of 5-15 frames written to phone_ali.ctm."""
    rng = np.random.default_rng(seed)
    data, lat = root / "data" / name, root / "exp" / f"latents_{name}"
    phone_centres = np.random.default_rng(99).normal(0, 3, (len(CLASSES), ZDIM))
    utt2spk, utt2noise, frames, ctm = [], [], [], []
    feats, z1, z2, svec = {}, {}, {}, {}
    for s in range(num_spk):
        spk = f"{name}{s:02d}"
        spk_centre = rng.normal(0, 3, ZDIM)
        for u in range(utts_per_spk):
            utt = f"{spk}-u{u}"
            num = int(rng.integers(70, 110))
            cls = np.empty(num, dtype=int)
            start = 0
            while start < num:
                end = min(num, start + int(rng.integers(5, 16)))
                c = int(rng.integers(len(CLASSES)))
                ctm.append(f"{utt} 1 {start * 0.01:.2f} {(end - start) * 0.01:.2f} p{c} {CLASSES[c]}\n")
                # frame t's centre t*0.01+0.0125 lies in [start, end)*0.01 for t in [start-1, end-2]
                cls[max(0, start - 1):end - 1] = c
                start = end
            cls[-1] = cls[-2]  # last frame: centre past the last segment end -> unlabelled
            z1[utt] = phone_centres[cls] + rng.normal(0, 0.5, (num, ZDIM))
            z2[utt] = spk_centre + rng.normal(0, 0.3, (num, ZDIM))
            svec[utt] = spk_centre + rng.normal(0, 0.3, ZDIM)
            feats[utt] = rng.normal(0, 1, (num, 80)) + 0.2 * spk_centre.mean()
            utt2spk.append((utt, spk))
            utt2noise.append((utt, ["clean", "babble"][u % 2]))
            frames.append((utt, num))
    write_kv(data / "utt2spk", utt2spk)
    write_kv(data / "utt2noise", utt2noise)
    write_kv(data / "utt2num_frames", frames)
    (data / "phone_ali.ctm").write_text("".join(ctm))
    write_table(data / "feats.ark", data / "feats.scp", sorted(feats.items()))
    for key, table in (("z1", z1), ("z2", z2), ("svector", svec)):
        write_table(lat / f"{key}.ark", lat / f"{key}.scp", sorted(table.items()))
    return data, lat, feats


@pytest.fixture(autouse=True)
def one_thread():
    """The test machine's cores are shared: OpenMP spinning in t-SNE slows it down tenfold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("eval")
    train = make_set(root, "train", 6, 4, seed=1)
    test = make_set(root, "test", 5, 4, seed=2)
    cfg = ModelConfig(hidden=16, z1_dim=ZDIM, z2_dim=ZDIM, num_seqs=4)
    mvn = compute_mvn(train[2].values())
    model_path = root / "exp" / "final.pt"
    save_checkpoint(model_path, {"model_config": cfg.to_dict(), "model": FHVAE(cfg).state_dict(),
                                 "mvn_mean": torch.from_numpy(mvn.mean),
                                 "mvn_std": torch.from_numpy(mvn.std),
                                 "train_config": {}, "step": 0})
    return root, train, test, model_path


def test_ctm_frame_labels_use_frame_centres(tmp_path):
    ctm = tmp_path / "phone_ali.ctm"
    ctm.write_text("u 1 0.00 0.05 sil silence\nu 1 0.05 0.10 a sonorant\n"
                   "u 1 0.15 0.03 s obstruent\nother 1 0 1 x silence\n")
    labels = read_ctm_frame_labels(ctm, {"u": 20, "v": 2})
    expect = ["silence"] * 4 + ["sonorant"] * 10 + ["obstruent"] * 3 + [""] * 3
    assert list(labels["u"]) == expect
    assert list(labels["v"]) == ["", ""]
    ctm.write_text("u 1 0.00 zero sil silence\n")
    with pytest.raises(FhvaeError, match="phone_ali.ctm:1: expected"):
        read_ctm_frame_labels(ctm, {"u": 3})


def test_baselines_normalise_with_their_own_training_fbank_when_the_model_reads_copies(setup):
    _, train, _, model_path = setup
    _, model_mvn, _ = load_model(model_path)
    assert baseline_mvn(model_mvn, None) is model_mvn
    own = baseline_mvn(model_mvn, train[0])          # --train-fbank-data: train's feats.scp
    want = compute_mvn(train[2].values())
    np.testing.assert_allclose(own.mean, want.mean, atol=1e-5)
    np.testing.assert_allclose(own.std, want.std, atol=1e-5)


def test_load_eval_set_checks_frames_and_keys(setup, tmp_path):
    _, _, (data, lat, _), _ = setup
    evalset = load_eval_set(data, lat)
    assert len(evalset.utts) == 20 and set(evalset.factors) == {"speaker", "noise"}
    assert evalset.phone_class is not None
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in evalset.utt2spk.items()
                                         if u != evalset.utts[3]))
    with pytest.raises(FhvaeError, match=f"'{evalset.utts[3]}' is not in"):
        load_eval_set(bad, lat)
    (bad / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in evalset.utt2spk.items()))
    (bad / "utt2num_frames").write_text("".join(f"{u} 7\n" for u in evalset.utts))
    with pytest.raises(FhvaeError, match="rows but .*utt2num_frames says 7"):
        load_eval_set(bad, lat)


def test_probes_find_speaker_in_z2_and_phone_class_in_z1(setup):
    _, _, (data, lat, _), _ = setup
    evalset = load_eval_set(data, lat)
    train, test = split_utterances(evalset.utt2spk, seed=0)
    assert len(train) == len(test) == 10 and not set(train) & set(test)
    results = {p.factor: p for p in run_probes(evalset, seed=0, stride=5)}
    assert set(results) == {"speaker", "noise", PHONE_FACTOR}
    spk, phone = results["speaker"], results[PHONE_FACTOR]
    assert spk.num_classes == 5 and phone.num_classes == 3
    assert spk.acc_z2 > 0.95 and spk.acc_z1 < 0.5
    assert phone.acc_z1 > 0.9 and phone.acc_z2 < 0.6
    assert spk.chance == pytest.approx(0.2, abs=0.05)
    # noise alternates within each speaker, so nothing in z1 or z2 carries it
    assert results["noise"].acc_z2 < 0.75


def test_tsne_figures_written(setup, tmp_path):
    _, _, (data, lat, _), _ = setup
    evalset = load_eval_set(data, lat)
    points = sample_points(evalset, seed=0, num_speakers=3, max_points=150)
    assert 0 < points.z1.shape[0] <= 150
    assert len(set(points.labels["speaker"])) == 3
    paths = make_tsne_figures(evalset, tmp_path, seed=0, num_speakers=3, max_points=120)
    assert [p.name for p in paths] == ["tsne_z1.png", "tsne_z2.png", "tsne.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_choose_utterances_distinct_speakers_and_conditions(setup):
    _, _, (data, lat, _), _ = setup
    evalset = load_eval_set(data, lat)
    spk, noise = evalset.utt2spk, evalset.factors["noise"]
    utts_a, utts_b = choose_utterances(evalset, seed=0, num_a=3, num_b=2, min_frames=20)
    assert len({spk[u] for u in utts_a + utts_b}) == 5            # A and B speakers disjoint
    assert len({noise[u] for u in utts_b}) == 2                   # B conditions differ
    utts_a, utts_b = choose_utterances(evalset, seed=0, num_a=4, num_b=2, min_frames=20)
    assert len({spk[u] for u in utts_a}) == 4 and not set(utts_a) & set(utts_b)


def test_recombine_with_own_z2_is_the_reconstruction(setup, tmp_path):
    _, _, (data, lat, feats), model_path = setup
    model, mvn, _ = load_model(model_path)
    utts = sorted(feats)
    seg_a = np.stack([feats[u][:20] for u in utts[:4]])
    seg_b = np.stack([feats[u][:20] for u in utts[4:6]])
    out = recombine(model, mvn, seg_a, np.concatenate([seg_b, seg_a[1:2]]))
    assert out.shape == (3, 4, 20, 80)
    with torch.no_grad():
        recon = model(torch.from_numpy(mvn.apply(seg_a[1:2])), sample=False).x_mu.numpy()
    np.testing.assert_allclose(out[2, 1], recon[0] * mvn.std + mvn.mean, rtol=1e-4, atol=1e-4)
    assert not np.allclose(out[0, 1], out[1, 1])     # a different z2 changes the output
    grid, own = recombine_with_reconstruction(model, mvn, seg_a, seg_b)
    assert grid.shape == (2, 4, 20, 80) and own.shape == (4, 20, 80)
    np.testing.assert_allclose(grid, out[:2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(own[1], out[2, 1], rtol=1e-4, atol=1e-4)
    path = make_recombine_figure(load_eval_set(data, lat), data, model, mvn,
                                 tmp_path / "recombine.png", seed=0, num_a=4, num_b=2)
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000


def _argv(setup, out, *extra):
    root, (tr_data, tr_lat, _), (data, lat, _), model_path = setup
    return ["--seed", "5", "--model", str(model_path), "--train-data", str(tr_data),
            "--train-latents", str(tr_lat), "--tsne-speakers", "3", "--tsne-points", "150",
            "--probe-stride", "5", "--num-a", "4", "--num-b", "2", *extra,
            str(data), str(lat), str(out)]


def test_evaluate_end_to_end(setup, tmp_path, capsys):
    out = tmp_path / "eval_test"
    assert main(_argv(setup, out)) == 0
    stdout = capsys.readouterr().out
    assert "| svector_cosine |" in stdout and "| phone class (3 classes) |" in stdout
    for name in ("results.md", "eer.txt", "trials", "tsne.png", "tsne_z1.png", "tsne_z2.png",
                 "recombine.png", "scores_svector_cosine", "scores_fbank-mean_lda-plda"):
        assert (out / name).is_file(), name
    eer = dict((line.split()[0], float(line.split()[2].rstrip("%")))
               for line in (out / "eer.txt").read_text().splitlines())
    assert set(eer) == {f"{emb}_{backend}{trials}"
                        for emb in ("svector", "fbank-meanstd", "fbank-mean")
                        for backend in ("cosine", "lda-wccn", "lda-plda")
                        for trials in ("", "_matched")}
    assert_meanstd_cosine_scores(setup, out / "scores_fbank-meanstd_cosine")
    # 30 target trials: one miss is 3.3 %; s-vectors separate speakers, FBank means barely
    assert eer["svector_cosine"] <= 10.0 and eer["svector_lda-plda"] <= 20.0
    assert eer["svector_cosine"] < eer["fbank-mean_cosine"]
    results = (out / "results.md").read_text()
    trials = (out / "trials").read_text().splitlines()
    assert f"{len(trials)} trials ({len(trials) // 2} target" in results
    # condition-matched trials: every same-noise pair (2 clean + 2 babble utterances per
    # speaker, 5 speakers: 2 target pairs per speaker), all of them same-noise
    noise = dict(line.split() for line in (setup[2][0] / "utt2noise").read_text().splitlines())
    matched = [line.split() for line in (out / "trials_matched").read_text().splitlines()]
    assert all(noise[a] == noise[b] for a, b, _ in matched)
    assert sum(label == "target" for *_, label in matched) == 5 * 2
    assert len(matched) == 2 * (10 * 9 // 2)             # all pairs within the two noises
    assert "Condition-matched trials (same noise)" in results
    assert "20 utterances, 5 speakers" in results and "24 utterances, 6 speakers" in results
    assert "| factor | split | train/test vectors | chance | acc(z1) | acc(z2) |" in results
    assert "![t-SNE of z1](tsne_z1.png)" in results and "(recombine.png)" in results
    # after the probes: swap test, re-combination score with its figure; no utt2channel, so
    # the robust-ASR probe is skipped with a note
    sections = [line for line in results.splitlines() if line.startswith("## ")]
    probes_at = sections.index("## Factor probes")
    assert sections[probes_at + 1:probes_at + 3] == ["## Swap test", "## Re-combination score"]
    assert "| z2 replaced by its own utterance's mean z2 |" in results
    assert "| speaker: B's rather than A's | 200 | 50.0% |" in results
    assert results.index("## Re-combination score") < results.index("(recombine.png)")
    assert "No utt2channel in" in results and "robust-ASR probe skipped" in results
    frames = (setup[2][0] / "utt2num_frames").read_text().split()[1::2]
    latent = json.loads((out / "summary.json").read_text())
    assert latent["swap"]["segments"] == sum(int(n) // 20 for n in frames)
    assert latent["asr_probe"] is None and len(latent["recombination"]) == 4
    # every system has a speaker-bootstrap interval containing its EER, and s-vectors are
    # compared with the baseline per back-end
    rows = [line.split("|") for line in results.splitlines() if line.startswith("| svector_")
            or line.startswith("| fbank-mean")]
    assert len(rows) == 18
    for row in rows:
        low, high = (float(v) for v in row[5].split("…"))
        assert low <= float(row[4]) <= high, row
        low, high = (float(v) for v in row[7].split("…"))         # minDCF interval
        assert low <= float(row[6]) <= high, row
    for trials_name, suffix in (("all", ""), ("matched", "_matched")):
        for baseline in ("fbank-meanstd", "fbank-mean"):
            for backend in ("cosine", "lda-wccn", "lda-plda"):
                assert (f"| {trials_name} | svector_{backend}{suffix} − "
                        f"{baseline}_{backend}{suffix} |" in results)
    assert "corrected interval (99.58%)" in results          # 12 comparisons: 1 - 0.05/12
    assert "s-vector lower in" in stdout
    record = json.loads((out / "summary.json").read_text())
    assert {k: round(v["eer"], 2) for k, v in record["systems"].items()} == \
        {k: round(v, 2) for k, v in eer.items()}
    assert set(record["comparisons"]) >= {
        "svector_cosine - fbank-mean_cosine",
        "svector_lda-plda_matched - fbank-meanstd_lda-plda_matched"}
    comparisons = record["comparisons"].values()
    assert len(comparisons) == 12
    assert all(c["p_holm"] >= c["p_value"] for c in comparisons)
    assert all(c["verdict"] in ("s-vector better", "baseline better", "no difference shown")
               for c in comparisons)
    # a second run reuses the trials file and reproduces every number
    first = (out / "eer.txt").read_text()
    assert main(_argv(setup, out)) == 0
    assert (out / "eer.txt").read_text() == first


def assert_meanstd_cosine_scores(setup, scores_path):
    """The mean+std baseline's cosine scores, recomputed from the raw features with numpy:
    normalise with the training MVN, per-utterance mean then standard deviation, subtract the
    training mean of those vectors, cosine."""
    _, (_, _, train_feats), (_, _, test_feats), _ = setup
    stack = np.concatenate(list(train_feats.values()))
    mean, std = stack.mean(axis=0), stack.std(axis=0)

    def embed(x):
        z = (x - mean) / std
        return np.concatenate([z.mean(axis=0), z.std(axis=0)])

    centre = np.mean([embed(x) for x in train_feats.values()], axis=0)
    for line in scores_path.read_text().splitlines():
        enroll, test, score = line.split()
        a, b = embed(test_feats[enroll]) - centre, embed(test_feats[test]) - centre
        want = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        assert float(score) == pytest.approx(want, abs=2e-5), line


def write_ivectors(root: Path, name: str, utts, dim: int = 6, seed: int = 0) -> Path:
    """A dir with ivector.scp: random vectors, one per utterance."""
    rng = np.random.default_rng(seed)
    out = root / f"ivectors_{name}"
    write_table(out / "ivector.ark", out / "ivector.scp",
                [(u, rng.normal(size=dim)) for u in sorted(utts)])
    return out


def test_evaluate_with_ivectors_compares_them_first(setup, tmp_path, capsys):
    root, (_, _, train_feats), (_, _, test_feats), _ = setup
    train_iv = write_ivectors(tmp_path, "train", train_feats, seed=1)
    test_iv = write_ivectors(tmp_path, "test", test_feats, seed=2)
    out = tmp_path / "eval_iv"
    fast = ("--swap-segments", "0", "--recombine-pairs", "0", "--bootstrap", "50")
    assert main(_argv(setup, out, *fast, "--train-ivectors", str(train_iv),
                      "--ivectors", str(test_iv))) == 0
    record = json.loads((out / "summary.json").read_text())
    assert {k for k in record["systems"] if k.startswith("ivector_")} == {
        f"ivector_{b}{t}" for b in ("cosine", "lda-wccn", "lda-plda") for t in ("", "_matched")}
    names = list(record["comparisons"])
    assert len(names) == 18 and names[0] == "svector_cosine - ivector_cosine"
    # the i-vector cosine scores are the cosine of the given vectors minus their training mean
    train_vecs = dict(read_table_scp(train_iv / "ivector.scp"))
    test_vecs = dict(read_table_scp(test_iv / "ivector.scp"))
    centre = np.mean(list(train_vecs.values()), axis=0)
    enroll, test, score = (out / "scores_ivector_cosine").read_text().split("\n")[0].split()
    a, b = test_vecs[enroll] - centre, test_vecs[test] - centre
    assert float(score) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-5)
    # i-vectors for one side only: one line, nothing written
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, _argv(setup, tmp_path / "half", "--ivectors", str(test_iv)))
    assert exit_info.value.code == 1
    assert "i-vectors are needed for the training, evaluated" in \
        capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "half").exists()
    # an evaluated utterance without an i-vector is named
    (test_iv / "ivector.scp").write_text("".join(
        line + "\n" for line in (test_iv / "ivector.scp").read_text().splitlines()[1:]))
    with pytest.raises(SystemExit):
        run_main(main, _argv(setup, tmp_path / "missing", *fast, "--train-ivectors",
                             str(train_iv), "--ivectors", str(test_iv)))
    assert f"{test_iv / 'ivector.scp'}: no vector for utterance '{sorted(test_feats)[0]}'" in \
        capsys.readouterr().err


def test_evaluate_unknown_trial_utterance_is_one_line_error(setup, tmp_path, capsys):
    trials = tmp_path / "my_trials"
    trials.write_text("test00-u0 test00-u1 target\ntest00-u0 nobody nontarget\n")
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, _argv(setup, tmp_path / "out", "--trials", str(trials)))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ERROR (") and f"{trials}:2: unknown utterance 'nobody'" in err


def test_evaluate_with_adapted_back_ends_says_so(setup, tmp_path, capsys):
    data, lat, _ = make_set(tmp_path, "adapt", 4, 3, seed=3)
    (data / "utt2spk").unlink()                      # unlabelled: speaker labels never read
    out = tmp_path / "eval_adapted"
    fast = ("--swap-segments", "0", "--recombine-pairs", "0")
    assert main(_argv(setup, out, *fast, "--adapt-data", str(data),
                      "--adapt-latents", str(lat))) == 0
    results = (out / "results.md").read_text()
    assert (f"- Back-ends lda-plda adapted to `{data}` (12 utterances, speaker labels unused)"
            in results)
    assert "--within-covar-scale 0.75 --between-covar-scale 0.25 --mean-diff-scale 1" in results
    assert f"LDA + length norm + two-covariance PLDA; adapted to {data} (mean + PLDA) |" in results
    assert "| LDA + WCCN + cosine |" in results              # not adapted by default
    record = json.loads((out / "summary.json").read_text())
    assert record["adaptation"] == {"set": str(data), "utterances": 12, "backends": ["lda-plda"],
                                    "plda": True, "within_covar_scale": 0.75,
                                    "between_covar_scale": 0.25, "mean_diff_scale": 1.0}
    plain = tmp_path / "eval_plain"
    assert main(_argv(setup, plain, *fast)) == 0
    assert "adaptation" not in json.loads((plain / "summary.json").read_text())
    assert (plain / "trials").read_text() == (out / "trials").read_text()
    eers = [dict(line.split(" ", 1) for line in (d / "eer.txt").read_text().splitlines())
            for d in (plain, out)]
    assert {k: v for k, v in eers[0].items() if "lda-plda" not in k} == \
        {k: v for k, v in eers[1].items() if "lda-plda" not in k}
    assert eers[0]["svector_lda-plda"] != eers[1]["svector_lda-plda"]
    every = tmp_path / "eval_every"
    assert main(_argv(setup, every, *fast, "--adapt-data", str(data), "--adapt-latents", str(lat),
                      "--adapt-backends", "cosine,lda-wccn,lda-plda")) == 0
    assert f"LDA + WCCN + cosine; adapted to {data} (mean) |" in (every / "results.md").read_text()


def test_evaluate_adaptation_errors_are_one_line_and_write_nothing(setup, tmp_path, capsys):
    data, lat, _ = make_set(tmp_path, "adapt", 2, 2, seed=4)
    (lat / "svector.scp").write_text("")
    for extra, message in (
            (("--adapt-data", str(data)), "--adapt-data and --adapt-latents go together"),
            (("--adapt-backends", "plda"), "--adapt-backends: unknown back-end 'plda' (choose "
                                           "from cosine, lda-wccn, lda-plda)"),
            (("--adapt-data", str(data), "--adapt-latents", str(lat)),
             f"{lat / 'svector.scp'}: the adaptation set is empty")):
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, _argv(setup, out, *extra))
        assert exit_info.value.code == 1
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
        assert not out.exists()
