"""Energy VAD (Kaldi's compute-vad on FBank) and speech-only s-vector pooling."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import kaldi_native_io as kni
import kaldiio
import numpy as np
import pytest
import torch

from fhvae.bin.compute_vad import main as compute_vad_main
from fhvae.bin.extract import main as extract_main
from fhvae.errors import FhvaeError
from fhvae.extract import run_job
from fhvae.inference import ExtractOptions, VoicedFrames, extract_latents
from fhvae.features.vad import (VadOptions, compute_vad, compute_vad_job, frame_log_energy,
                                read_vad_config)
from fhvae.io.tables import read_scp, write_table
from fhvae.training.checkpoint import load_model
from test_extract import LENGTHS, make_data, read_table, save_model
from helpers import run

ROOT = Path(__file__).resolve().parents[1]


def kaldi_vad(energy: np.ndarray, opts: VadOptions) -> np.ndarray:
    """compute-vad's loop, frame by frame, in single precision as Kaldi's BaseFloat."""
    energy = energy.astype(np.float32)
    threshold = np.float32(opts.vad_energy_threshold)
    if opts.vad_energy_mean_scale != 0:
        threshold += np.float32(opts.vad_energy_mean_scale) * np.float32(energy.sum() / len(energy))
    out = np.zeros(len(energy), np.float32)
    c = opts.vad_frames_context
    for t in range(len(energy)):
        num = den = 0
        for t2 in range(t - c, t + c + 1):
            if 0 <= t2 < len(energy):
                den += 1
                num += energy[t2] > threshold
        out[t] = 1.0 if num >= np.float32(den) * np.float32(opts.vad_proportion_threshold) else 0.0
    return out


@pytest.mark.parametrize("context,proportion", [(0, 0.6), (1, 0.5), (2, 0.12), (2, 0.6),
                                                (5, 0.3), (40, 0.6)])
def test_decisions_match_kaldi_loop(context, proportion):
    rng = np.random.default_rng(context)
    opts = VadOptions(5.5, 0.5, context, proportion)
    for length in (1, 2, 3, 7, 50, 333):
        # speech bursts over a noise floor: many frames near the threshold and window edges
        energy = np.where(rng.random(length) < 0.5, rng.normal(22, 2, length),
                          rng.normal(12, 2, length))
        np.testing.assert_array_equal(compute_vad(energy, opts), kaldi_vad(energy, opts))


def test_exact_proportions_and_edges_decide_as_kaldi():
    # 3 of 5 above is exactly the proportion 0.6 (5 * 0.6f rounds to 3.0f): voiced
    energy = np.array([0, 0, 10, 10, 10, 0, 0], np.float32)
    opts = VadOptions(5.0, 0.0, 2, 0.6)
    assert compute_vad(energy, opts).tolist() == kaldi_vad(energy, opts).tolist()
    assert compute_vad(energy, opts).tolist() == [0, 0, 1, 1, 1, 0, 0]
    # at the ends only existing frames count: frame 0 sees frames 0..2 (2 of 3 above)
    edge = np.array([10, 10, 0, 0, 0, 0], np.float32)
    assert compute_vad(edge, opts).tolist() == [1, 0, 0, 0, 0, 0]
    assert compute_vad(np.array([]), VadOptions()).shape == (0,)


def test_frame_log_energy_is_log_total_mel_energy():
    rng = np.random.default_rng(0)
    fbank = rng.normal(5, 8, size=(9, 80)).astype(np.float32)
    fbank[0] = 80.0   # exp overflows float32 without the max shift
    expected = np.log(np.exp(fbank.astype(np.float64)).sum(axis=1))
    np.testing.assert_allclose(frame_log_energy(fbank), expected, rtol=1e-6)


def test_config_and_bad_options(tmp_path):
    conf = tmp_path / "vad.conf"
    conf.write_text("# sid\n--vad-energy-threshold=5.5\n--vad-frames-context=2  # c\n")
    assert read_vad_config(conf) == VadOptions(5.5, 0.5, 2, 0.6)
    assert read_vad_config(ROOT / "conf" / "vad.conf") == VadOptions(5.5, 0.5, 2, 0.12)
    assert read_vad_config(None) == VadOptions()
    conf.write_text("--vad-energy=3\n")
    with pytest.raises(FhvaeError, match=r"vad.conf:1: unknown option .--vad-energy."):
        read_vad_config(conf)
    conf.write_text("--vad-proportion-threshold=1.0\n")
    with pytest.raises(FhvaeError, match=r"vad.conf: --vad-proportion-threshold must be in"):
        read_vad_config(conf)
    with pytest.raises(FhvaeError, match="nope.conf: VAD config not found"):
        read_vad_config(tmp_path / "nope.conf")


def test_kaldi_table_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    feats = {"a": rng.normal(0, 1, (40, 80)), "b": rng.normal(0, 1, (7, 80))}
    feats["a"][10:30] += 6.0           # a loud stretch
    write_table(tmp_path / "feats.ark", tmp_path / "feats.scp", sorted(feats.items()))
    opts = VadOptions()
    stats = compute_vad_job(tmp_path / "feats.scp", tmp_path / "vad.ark", tmp_path / "vad.scp",
                            opts)
    assert (stats.utterances, stats.frames) == (2, 47)
    assert f" {tmp_path / 'vad.ark'}:" in (tmp_path / "vad.scp").read_text()
    ours = {k: compute_vad(frame_log_energy(v.astype(np.float32)), opts) for k, v in feats.items()}
    assert ours["a"][10:30].all() and not ours["a"][:5].any()
    loaded = kaldiio.load_scp(str(tmp_path / "vad.scp"))
    with kni.SequentialFloatVectorReader(f"scp:{tmp_path}/vad.scp") as reader:  # copy-vector
        kaldi = {key: np.array(value, copy=True) for key, value in reader}
    for key in feats:
        assert loaded[key].dtype == np.float32 and loaded[key].ndim == 1
        np.testing.assert_array_equal(loaded[key], ours[key])
        np.testing.assert_array_equal(kaldi[key], ours[key])
    assert stats.voiced == int(sum(v.sum() for v in ours.values()))


def test_cli_overrides_config(tmp_path):
    write_table(tmp_path / "f.ark", tmp_path / "f.scp", [("u", np.zeros((5, 80)))])
    conf = tmp_path / "vad.conf"
    conf.write_text("--vad-energy-threshold=100\n")
    args = [str(tmp_path / "f.scp"), str(tmp_path / "v.ark"), str(tmp_path / "v.scp")]
    assert compute_vad_main(["--config", str(conf), *args]) == 0
    assert not dict(read_scp(tmp_path / "v.scp"))["u"].any()
    assert compute_vad_main(["--config", str(conf), "--vad-energy-threshold", "-100", *args]) == 0
    assert dict(read_scp(tmp_path / "v.scp"))["u"].all()


def test_compute_vad_decision_script(tmp_path):
    data = make_data(tmp_path / "data", LENGTHS)
    (data / "vad.scp").write_text("old\n")
    proc = run(["utils/compute_vad_decision.sh", "--nj", "2", str(data)], cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (data / ".backup" / "vad.scp").read_text() == "old\n"
    lines = (data / "vad.scp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == sorted(LENGTHS)
    assert all(line.split()[1].startswith(str(data / "data" / "vad_data.")) for line in lines)
    assert sorted(p.name for p in (data / "log").glob("*.log")) == ["vad_data.1.log",
                                                                   "vad_data.2.log"]
    assert {k: v.shape for k, v in read_scp(data / "vad.scp")} == {k: (n,) for k, n in
                                                                   LENGTHS.items()}
    total = sum(LENGTHS.values())
    voiced = sum(v.sum() for _, v in read_scp(data / "vad.scp"))
    assert f"created VAD output for data (voiced: {voiced / total:.4f} of {total} frames)" \
        in proc.stderr
    bad = run(["utils/compute_vad_decision.sh", str(tmp_path / "none")], cwd=ROOT, timeout=60)
    assert bad.returncode == 1 and f"no such file {tmp_path}/none/feats.scp" in bad.stderr


# Speech-only pooling. make_data's features are N(1, 3): the voicing is set by hand.
VOICED = {"spkA-u1": [0] * 5,                               # shorter than a segment, silent
          "spkA-u2": [1] * 19,                              # one edge-padded segment, voiced
          "spkA-u3": [0] * 20 + [1] * 37,                   # segment 1 voiced, 0 not
          "spkB-u1": [0] * 20,                              # nothing voiced: fallback
          "spkB-u2": [1] * 11 + [0] * 10}                   # 11 of 20 voiced: a majority


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vad_pool")
    model = save_model(root / "model.pt")
    data = make_data(root / "data", LENGTHS)
    write_table(root / "vad.ark", data / "vad.scp",
                [(k, np.array(v, np.float32)) for k, v in sorted(VOICED.items())])
    outs = {}
    for pool in ("all", "speech"):
        outs[pool] = root / pool
        assert extract_main([str(model), str(data), str(outs[pool]), "--device", "cpu",
                             "--svector-pool", pool]) == 0
    return model, data, outs


def test_speech_pooling_is_map_over_voiced_segments(pooled):
    model_path, data, outs = pooled
    model, mvn, _ = load_model(model_path)
    speech = read_table(outs["speech"] / "svector.scp")
    full = read_table(outs["all"] / "svector.scp")
    for utt, x in read_scp(data / "feats.scp"):
        x = mvn.apply(x)
        padded = np.pad(x, ((10, 9), (0, 0)), mode="edge")
        if len(x) < 20:
            segments = [(padded[len(x) // 2:len(x) // 2 + 20], len(x) // 2)]
        else:
            segments = [(x[k * 20:(k + 1) * 20], k * 20 + 10) for k in range(len(x) // 20)]
        flags = np.pad(np.array(VOICED[utt]), (10, 9), mode="edge")
        kept = ([w for w, row in segments if flags[row:row + 20].sum() > 10]
                or [w for w, _ in segments])
        with torch.no_grad():
            mu, _ = model.encode_z2(torch.from_numpy(np.stack(kept)))
        expected = mu.numpy().sum(axis=0) / (len(kept) + model.cfg.sigma2_z2)
        np.testing.assert_allclose(speech[utt], expected, rtol=1e-4, atol=1e-5)
    for utt in ("spkA-u1", "spkA-u2", "spkB-u1", "spkB-u2"):   # fallback or all voiced
        np.testing.assert_allclose(speech[utt], full[utt], rtol=1e-5, atol=1e-6)
    assert not np.allclose(speech["spkA-u3"], full["spkA-u3"], atol=1e-4)


def test_frame_latents_unchanged_and_speaker_means_follow(pooled):
    _, _, outs = pooled
    for name in ("z1", "z2"):
        a, s = read_table(outs["all"] / f"{name}.scp"), read_table(outs["speech"] / f"{name}.scp")
        for utt in LENGTHS:
            np.testing.assert_array_equal(a[utt], s[utt])
    speech = read_table(outs["speech"] / "svector.scp")
    spk = read_table(outs["speech"] / "spk_svector.scp")
    np.testing.assert_allclose(spk["spkA"], np.mean([speech[f"spkA-u{i}"] for i in (1, 2, 3)], 0),
                               rtol=1e-6)


def test_fallback_is_counted(pooled, tmp_path, caplog):
    model_path, data, _ = pooled
    with caplog.at_level(logging.INFO, logger="fhvae.extract"):
        counts = run_job(model_path, data, tmp_path / "o", device="cpu",
                         opts=ExtractOptions(svector_only=True, svector_pool="speech"))
    assert counts == {"utterances": 5, "skipped": 0, "no_voiced": 2}   # spkA-u1, spkB-u1
    assert "2 utterances had no voiced segment" in caplog.text
    assert "no_voiced 2" in (tmp_path / "o" / "extract.done").read_text()


def test_all_pooling_is_unchanged(pooled, tmp_path):
    model_path, data, outs = pooled
    # 'all' ignores vad.scp: the same bytes with a vad.scp that does not fit at all
    junk_dir = tmp_path / "data"
    junk_dir.mkdir()
    for name in ("feats.scp", "utt2spk"):
        (junk_dir / name).write_bytes((data / name).read_bytes())
    (junk_dir / "vad.scp").write_text("junk\n")
    assert extract_main([str(model_path), str(junk_dir), str(tmp_path / "o"), "--device",
                         "cpu"]) == 0
    for name in ("z1", "z2", "svector", "spk_svector"):
        assert (tmp_path / "o" / f"{name}.ark").read_bytes() == \
            (outs["all"] / f"{name}.ark").read_bytes()
    model, mvn, _ = load_model(model_path)
    utts = list(read_scp(data / "feats.scp"))
    junk = VoicedFrames("x", {})
    plain = dict(extract_latents(model, mvn, utts, torch.device("cpu")))
    ignored = dict(extract_latents(model, mvn, utts, torch.device("cpu"), vad=junk))
    for utt in LENGTHS:
        np.testing.assert_array_equal(plain[utt].svector, ignored[utt].svector)


def test_resume_never_mixes_pools(pooled, tmp_path):
    model_path, data, _ = pooled
    out = tmp_path / "o"
    opts = {pool: ExtractOptions(svector_only=True, svector_pool=pool)
            for pool in ("all", "speech")}
    run_job(model_path, data, out, device="cpu", opts=opts["all"])
    first = read_table(out / "svector.scp")
    run_job(model_path, data, out, device="cpu", opts=opts["speech"])   # not skipped
    assert not np.allclose(read_table(out / "svector.scp")["spkA-u3"], first["spkA-u3"], atol=1e-4)
    assert "svector_pool speech:" in (out / "extract.done").read_text()


def test_vad_errors_name_file_and_utterance(pooled, tmp_path):
    model_path, data, _ = pooled
    speech = ExtractOptions(svector_only=True, svector_pool="speech")
    bad = make_data(tmp_path / "d", {"u1": 30, "u2": 25})
    with pytest.raises(FhvaeError, match=rf"{bad}/vad.scp: no such file \(speech-only"):
        run_job(model_path, bad, tmp_path / "o1", device="cpu", opts=speech)
    write_table(tmp_path / "v.ark", bad / "vad.scp", [("u1", np.ones(30))])
    with pytest.raises(FhvaeError, match=rf"{bad}/vad.scp: no entry for utterance 'u2' "
                                         r"\(feats.scp line 2\)"):
        run_job(model_path, bad, tmp_path / "o2", device="cpu", opts=speech)
    write_table(tmp_path / "v.ark", bad / "vad.scp", [("u1", np.ones(30)), ("u2", np.ones(24))])
    with pytest.raises(FhvaeError, match=rf"{bad}/vad.scp: utterance 'u2' has 24 VAD values "
                                         r"but 25 feature frames"):
        run_job(model_path, bad, tmp_path / "o3", device="cpu", opts=speech)
    assert not list((tmp_path / "o3").glob("*"))   # nothing half-written is left
    proc = run([sys.executable, "-m", "fhvae.bin.extract", "--device", "cpu",
                "--svector-pool", "speech", str(model_path), str(bad), str(tmp_path / "o4")],
               cwd=ROOT, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert proc.returncode == 1 and len(errors) == 1 and "'u2' has 24 VAD values" in errors[0]


@pytest.mark.slow
def test_pipeline_stage4_computes_vad_and_pools_speech(tmp_path):
    """fhvae_pipeline.sh --svector-pool speech: stage 4 writes data/<set>/vad.scp first
    and the extraction fingerprints say speech pooling."""
    for name in ("utils", "conf", "path.sh"):
        (tmp_path / name).symlink_to(ROOT / name)
    for data_set in ("train", "eval"):
        make_data(tmp_path / "data" / data_set, LENGTHS)
    (tmp_path / "exp" / "fhvae").mkdir(parents=True)
    save_model(tmp_path / "exp" / "fhvae" / "final.pt")
    # clean_env (run's default): no train_cmd/extract_cmd of the caller's shell (a Slurm
    # launcher exported there must not submit cluster jobs from a test).
    proc = run(["utils/fhvae_pipeline.sh", "--stage", "4", "--stop-stage", "4",
                "--nj", "1", "--svector-pool", "speech", "--train-svector-only",
                "true", "train", "-", "eval"], cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    for data_set in ("train", "eval"):
        assert (tmp_path / "data" / data_set / "vad.scp").is_file()
        marker = tmp_path / "exp" / "fhvae" / f"latents_{data_set}" / "extract.1.done"
        assert "svector_pool speech:" in marker.read_text()
    assert (tmp_path / "exp" / "fhvae" / "latents_eval" / "z1.scp").is_file()
