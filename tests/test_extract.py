"""Stage 4 extraction: frame alignment, s-vector formula, Kaldi formats, jobs and restarts."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import kaldi_native_io as kni
import kaldiio
import numpy as np
import pytest
import torch

from fhvae.bin.extract import main as extract_main
from fhvae.errors import FhvaeError
from fhvae.extract import merge_jobs, run_job
from fhvae.io.split import split_contiguous
from fhvae.inference import ExtractOptions, extract_latents
from fhvae.io.tables import read_scp, write_table
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import load_model, save_checkpoint
from helpers import run

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = {"spkA-u1": 5, "spkA-u2": 19, "spkA-u3": 57, "spkB-u1": 20, "spkB-u2": 21}
CFG = ModelConfig(feat_dim=80, hidden=16, z1_dim=4, z2_dim=6, num_seqs=4)


def save_model(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = FHVAE(CFG)
    rng = np.random.default_rng(seed)
    save_checkpoint(path, {
        "model_config": CFG.to_dict(), "model": model.state_dict(),
        "mvn_mean": torch.from_numpy(rng.normal(size=80).astype(np.float32)),
        "mvn_std": torch.from_numpy(rng.uniform(0.5, 2.0, size=80).astype(np.float32)),
        "train_config": {}, "step": 0})
    return path


def make_data(data: Path, lengths: dict[str, int], feat_dim: int = 80) -> Path:
    rng = np.random.default_rng(1)
    feats = {utt: rng.normal(1.0, 3.0, size=(n, feat_dim)).astype(np.float32)
             for utt, n in lengths.items()}
    write_table(data / "feats.ark", data / "feats.scp", sorted(feats.items()))
    (data / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in sorted(lengths.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(lengths)))
    return data


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("extract")
    model = save_model(root / "model.pt")
    data = make_data(root / "data", LENGTHS)
    out = root / "out"
    assert extract_main([str(model), str(data), str(out), "--device", "cpu"]) == 0
    return model, data, out


def read_table(scp: Path) -> dict[str, np.ndarray]:
    return dict(read_scp(scp))


def reference(model_path: Path, data: Path):
    """The model, MVN-normalised features and an independent encoder of hand-cut windows."""
    model, mvn, _ = load_model(model_path)
    feats = {k: mvn.apply(v) for k, v in read_scp(data / "feats.scp")}

    def encode(windows: np.ndarray):
        with torch.no_grad():
            x = torch.from_numpy(np.stack(windows))
            z2_mu, _ = model.encode_z2(x)
            z1_mu, _ = model.encode_z1(x, z2_mu)
        return z1_mu.numpy(), z2_mu.numpy()
    return feats, encode


def test_rows_match_utt2num_frames_and_independent_reader(setup):
    _, data, out = setup
    z1, z2 = read_table(out / "z1.scp"), read_table(out / "z2.scp")
    assert {k: v.shape for k, v in z1.items()} == {k: (n, 4) for k, n in LENGTHS.items()}
    assert {k: v.shape for k, v in z2.items()} == {k: (n, 6) for k, n in LENGTHS.items()}
    for name, table in (("z1", z1), ("z2", z2)):
        with kni.SequentialFloatMatrixReader(f"scp:{out / name}.scp") as reader:
            other = {key: np.array(value, copy=True) for key, value in reader}
        assert list(other) == sorted(LENGTHS)
        for key in table:
            np.testing.assert_array_equal(other[key], table[key])
    with kni.SequentialFloatVectorReader(f"scp:{out}/svector.scp") as reader:
        svec = {key: np.array(value, copy=True) for key, value in reader}
    assert {k: v.shape for k, v in svec.items()} == {k: (6,) for k in LENGTHS}


def test_row_t_is_the_edge_padded_window_centred_on_t(setup):
    model_path, data, out = setup
    feats, encode = reference(model_path, data)
    z1, z2 = read_table(out / "z1.scp"), read_table(out / "z2.scp")
    for utt, x in feats.items():
        padded = np.pad(x, ((10, 9), (0, 0)), mode="edge")   # frames t-10 .. t+9
        ref_z1, ref_z2 = encode([padded[t:t + 20] for t in range(len(x))])
        np.testing.assert_allclose(z2[utt], ref_z2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(z1[utt], ref_z1, rtol=1e-4, atol=1e-5)


def test_svector_is_map_over_nonoverlapping_segments(setup):
    model_path, data, out = setup
    feats, encode = reference(model_path, data)
    svec = read_table(out / "svector.scp")
    for utt, x in feats.items():
        n = len(x)
        if n >= 20:
            segments = [x[k * 20:(k + 1) * 20] for k in range(n // 20)]
        else:  # one edge-padded segment: the window of the middle frame
            segments = [np.pad(x, ((10, 9), (0, 0)), mode="edge")[n // 2:n // 2 + 20]]
        _, mu = encode(segments)
        expected = mu.sum(axis=0) / (len(segments) + 0.25)
        np.testing.assert_allclose(svec[utt], expected, rtol=1e-4, atol=1e-5)
    assert len(feats["spkA-u3"]) // 20 == 2  # the 17-frame remainder is not used


def test_speaker_means_and_num_utts_match_kaldi(setup, tmp_path):
    _, _, out = setup
    svec = read_table(out / "svector.scp")
    spk = read_table(out / "spk_svector.scp")
    assert list(spk) == ["spkA", "spkB"]
    np.testing.assert_allclose(spk["spkA"], np.mean([svec[f"spkA-u{i}"] for i in (1, 2, 3)], 0),
                               rtol=1e-6)
    np.testing.assert_allclose(spk["spkB"], (svec["spkB-u1"] + svec["spkB-u2"]) / 2, rtol=1e-6)
    with kni.Int32Writer(f"ark,t:{tmp_path}/kaldi_num_utts.ark") as writer:
        writer.write("spkA", 3)
        writer.write("spkB", 2)
    assert (out / "num_utts.ark").read_bytes() == (tmp_path / "kaldi_num_utts.ark").read_bytes()
    with kni.SequentialInt32Reader(f"ark:{out}/num_utts.ark") as reader:
        assert dict(reader) == {"spkA": 3, "spkB": 2}


def test_batching_and_sampling(setup):
    model_path, data, out = setup
    model, mvn, _ = load_model(model_path)
    utts = list(read_scp(data / "feats.scp"))
    cpu = torch.device("cpu")
    small = dict(extract_latents(model, mvn, utts, cpu, ExtractOptions(batch_size=7)))
    z1 = read_table(out / "z1.scp")
    for utt in LENGTHS:
        np.testing.assert_allclose(small[utt].z1, z1[utt], rtol=1e-4, atol=1e-5)
    draws = [dict(extract_latents(model, mvn, utts[i:], cpu, ExtractOptions(True, 5, bs)))
             for i, bs in ((0, 4096), (2, 11))]
    other_seed = dict(extract_latents(model, mvn, utts, cpu, ExtractOptions(True, 6)))
    for utt in LENGTHS:  # draws depend on (seed, utterance) only, not on batching or order
        if utt in draws[1]:
            np.testing.assert_allclose(draws[0][utt].z2, draws[1][utt].z2, rtol=1e-4, atol=1e-5)
        assert not np.allclose(draws[0][utt].z2, small[utt].z2, atol=1e-3)
        assert not np.allclose(draws[0][utt].z1, other_seed[utt].z1, atol=1e-3)
        np.testing.assert_allclose(draws[0][utt].svector, small[utt].svector, rtol=1e-4)


def test_split_contiguous_covers_everything_in_order():
    items = list(range(11))
    parts = [list(split_contiguous(items, j, 4)) for j in range(1, 5)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    assert list(split_contiguous(items[:1], 2, 2)) == []
    with pytest.raises(FhvaeError, match="job 3 is not in 1..2"):
        split_contiguous(items, 3, 2)


def test_bad_inputs_name_the_culprit(setup, tmp_path):
    model_path, _, _ = setup
    bad_dim = make_data(tmp_path / "dim", {"u1": 30}, feat_dim=40)
    with pytest.raises(FhvaeError, match=r"feats.scp: utterance 'u1' has feature dim 40 but "
                                         r"the model expects feat_dim 80"):
        run_job(model_path, bad_dim, tmp_path / "o1", device="cpu")
    nan = make_data(tmp_path / "nan", {"u1": 30, "u2": 25})
    feats = {key: value.copy() for key, value in read_scp(nan / "feats.scp")}
    feats["u2"][3, 7] = np.inf   # write_table refuses non-finite values: write it directly
    kaldiio.save_ark(str(nan / "feats.ark"), feats, scp=str(nan / "feats.scp"))
    with pytest.raises(FhvaeError, match="utterance 'u2' contains NaN or infinite"):
        run_job(model_path, nan, tmp_path / "o2", device="cpu")
    assert not list((tmp_path / "o2").glob("*"))   # nothing half-written is left
    with pytest.raises(FhvaeError, match="nope.pt: model not found"):
        run_job(tmp_path / "nope.pt", nan, tmp_path / "o3", device="cpu")
    with pytest.raises(FhvaeError, match="unknown device 'tpu9'"):
        run_job(model_path, nan, tmp_path / "o4", device="tpu9")


def test_cli_error_is_one_line(setup, tmp_path):
    model_path, _, _ = setup
    bad_dim = make_data(tmp_path / "dim", {"u1": 30}, feat_dim=40)
    proc = run([sys.executable, "-m", "fhvae", "extract", "--device", "cpu",
                str(model_path), str(bad_dim), str(tmp_path / "out")], cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "'u1' has feature dim 40" in errors[0] and "Traceback" not in proc.stderr
    helped = run([sys.executable, "-m", "fhvae", "--help"], cwd=ROOT, timeout=120)
    assert helped.returncode == 0 and "extract" in helped.stdout and "evaluate" in helped.stdout


def test_empty_utterance_is_skipped_and_counted(setup, tmp_path, caplog):
    model_path, _, _ = setup
    data = make_data(tmp_path / "data", {"u1": 0, "u2": 21})
    with caplog.at_level(logging.WARNING):
        assert extract_main([str(model_path), str(data), str(tmp_path / "out"),
                             "--device", "cpu"]) == 0
    assert "'u1' has no frames" in caplog.text
    assert list(read_table(tmp_path / "out" / "z1.scp")) == ["u2"]


def test_latent_data_dirs_leave_out_skipped_utterances(setup, tmp_path):
    """--data-out-prefix: data/<set>_z1 holds the extracted utterances only and validates;
    its cmvn.scp is per speaker; not available with --svector-only."""
    from fhvae.io.validate import validate_data_dir
    model_path, _, _ = setup
    data = make_data(tmp_path / "set", {"a-u1": 0, "a-u2": 21, "b-u1": 30})
    (data / "text").write_text("a-u1 X\na-u2 Y\nb-u1 Z\n")
    (data / "spk2utt").write_text("a a-u1 a-u2\nb b-u1\n")
    assert extract_main([str(model_path), str(data), str(tmp_path / "out"), "--device", "cpu",
                         "--data-out-prefix", str(tmp_path / "set")]) == 0
    z1 = tmp_path / "set_z1"
    validate_data_dir(z1, need_wav=False)
    assert (z1 / "text").read_text() == "a-u2 Y\nb-u1 Z\n"
    assert (z1 / "utt2num_frames").read_text() == "a-u2 21\nb-u1 30\n"
    assert (z1 / "frame_shift").read_text() == "0.01\n"
    cmvn = read_table(z1 / "cmvn.scp")
    assert list(cmvn) == ["a", "b"] and cmvn["a"].shape == (2, CFG.z1_dim + 1)
    assert cmvn["b"][0, -1] == 30
    with pytest.raises(SystemExit):
        extract_main([str(model_path), str(data), str(tmp_path / "o2"), "--svector-only",
                      "--data-out-prefix", str(tmp_path / "set")])


def test_stale_temporaries_and_half_jobs_never_reach_an_scp(setup, tmp_path):
    model_path, _, _ = setup
    data = make_data(tmp_path / "data", LENGTHS)
    out = tmp_path / "out"
    out.mkdir()
    opts = ExtractOptions()
    run_job(model_path, data, out, 1, 2, "cpu", opts)
    # a killed job 2: stale temporaries and a truncated ark with a stale scp, no marker
    (out / f".z1.2.ark.tmp{os.getpid() + 1}").write_bytes(b"garbage")
    (out / "z1.2.ark").write_bytes(b"spkB-u1 \0BFM trunc")
    (out / "z1.2.scp").write_text(f"spkB-u1 {out}/z1.2.ark:9\n")
    with pytest.raises(FhvaeError, match="job 2 of 2 has not finished"):
        merge_jobs(model_path, data, out, 2, opts)
    stamp = (out / "z1.1.ark").stat().st_mtime_ns
    assert extract_main([str(model_path), str(data), str(out), "--job", "1",
                         "--num-jobs", "2"]) == 0
    assert (out / "z1.1.ark").stat().st_mtime_ns == stamp      # finished job 1 skipped
    run_job(model_path, data, out, 2, 2, "cpu", opts)
    assert merge_jobs(model_path, data, out, 2, opts) == len(LENGTHS)
    assert not list(out.glob(".*tmp*"))
    assert {k: v.shape[0] for k, v in read_table(out / "z1.scp").items()} == LENGTHS
    # another model, or features rewritten in place, invalidate the markers
    save_model(tmp_path / "other.pt", seed=1)
    with pytest.raises(FhvaeError, match="job 1 of 2 has not finished"):
        merge_jobs(tmp_path / "other.pt", data, out, 2, opts)
    os.utime(data / "feats.ark", ns=(1, 1))
    with pytest.raises(FhvaeError, match="job 1 of 2 has not finished"):
        merge_jobs(model_path, data, out, 2, opts)


def test_extract_latents_sh_two_jobs_equal_one(setup, tmp_path):
    model_path, data, single = setup
    out = tmp_path / "out"
    proc = run(["utils/extract_latents.sh", "--nj", "2", "--device", "cpu",
                str(model_path), str(data), str(out)], cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "5 utterances and 2 speakers" in proc.stdout
    assert sorted(p.name for p in out.glob("z1*")) == ["z1.1.ark", "z1.1.scp", "z1.2.ark",
                                                      "z1.2.scp", "z1.scp"]
    for name in ("z1", "z2", "svector", "spk_svector"):
        split, whole = read_table(out / f"{name}.scp"), read_table(single / f"{name}.scp")
        assert list(split) == list(whole)
        for key in whole:
            np.testing.assert_allclose(split[key], whole[key], rtol=1e-5, atol=1e-6)
    assert (out / "num_utts.ark").read_text() == (single / "num_utts.ark").read_text()
    assert (out / "log" / "extract.2.log").is_file()


def test_svector_only_matches_full_extraction(setup, tmp_path):
    """--svector-only encodes just the non-overlapping windows: same s-vectors, no z1/z2."""
    model_path, data, full = setup
    out = tmp_path / "svec"
    proc = run(["utils/extract_latents.sh", "--nj", "2", "--device", "cpu",
                "--svector-only", "true", str(model_path), str(data), str(out)], cwd=ROOT,
               timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not list(out.glob("z1*")) and not list(out.glob("z2*"))
    for name in ("svector", "spk_svector"):
        got, want = read_table(out / f"{name}.scp"), read_table(full / f"{name}.scp")
        assert list(got) == list(want)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    assert (out / "num_utts.ark").read_text() == (full / "num_utts.ark").read_text()


def test_latent_data_dir_of_another_model_is_refused(setup, tmp_path):
    """Issue 33's defect: a second model's extraction silently replaced data/<set>_z1 of the
    first. Now the dir names its model, the same model may rewrite it, another is refused
    with one line and before any job runs (nothing of the first model's dir changes)."""
    model_path, data, _ = setup
    other = save_model(tmp_path / "other.pt", seed=3)
    prefix = tmp_path / "test"
    assert extract_main([str(model_path), str(data), str(tmp_path / "a"), "--device", "cpu",
                         "--data-out-prefix", str(prefix)]) == 0
    owner = (tmp_path / "test_z1" / "fhvae_model").read_text()
    assert owner == f"{model_path.resolve()}\n"
    feats_before = (tmp_path / "test_z1" / "feats.scp").read_text()
    assert extract_main([str(model_path), str(data), str(tmp_path / "a"), "--device", "cpu",
                         "--data-out-prefix", str(prefix)]) == 0      # same model: fine
    proc = run(["utils/extract_latents.sh", "--nj", "2", "--device", "cpu",
                "--data-out-prefix", str(prefix), str(other), str(data), str(tmp_path / "b")],
               cwd=ROOT, timeout=180)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "holds the latents of" in line]
    assert errors and str(model_path.resolve()) in errors[0] and str(other.resolve()) in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b" / "z1.scp").exists()
    assert (tmp_path / "test_z1" / "feats.scp").read_text() == feats_before
    assert (tmp_path / "test_z1" / "fhvae_model").read_text() == owner
