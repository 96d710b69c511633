"""`python -m fhvae convert` (fhvae/convert): frame alignment, the z2 given to the decoder,
de-normalisation, pairs and ids, the files and scores it writes, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from fhvae.bin import convert as convert_bin
from fhvae.convert.pairs import choose_pairs, hold_out
from fhvae.convert.scores import (VERSIONS, PairScores, VersionScore, speaker_interval,
                                  summarise, train_judges)
from fhvae.convert.voices import conversion_z2, convert_utterance, group_means
from fhvae.inference import aligned_frames
from fhvae.features.fbank import FbankComputer, FbankConfig
from fhvae.features.mvn import MVN
from fhvae.inference import Latents
from fhvae.io.labels import NO_LABEL
from fhvae.model import FHVAE, ModelConfig
from helpers import ROOT, clean_env, python, run
from test_reliability_data import (assert_clean_error, listing, run_in_process, save_tiny_model,
                                   write_feats)

RATE = 16000
SPEAKERS = {"sa": 300.0, "sb": 700.0, "sc": 1500.0}    # pitch of each synthetic speaker


def tone(freq: float, frames: int, seed: int) -> np.ndarray:
    """A tone with a little noise lasting exactly `frames` Kaldi frames."""
    n = 400 + (frames - 1) * 160
    rng = np.random.default_rng(seed)
    return 5000 * np.sin(2 * np.pi * freq * np.arange(n) / RATE) + 50 * rng.standard_normal(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """3 speakers x 3 utterances: feats.scp (Kaldi FBank of tones), utt2spk, wav.scp,
    phone_ali.ctm (two phones alternating every 0.1 s), and a tiny untrained model."""
    root = tmp_path_factory.mktemp("convert")
    fbank = FbankComputer(FbankConfig(dither=0.0))
    feats, wavs, ctm = {}, [], []
    for s, (spk, freq) in enumerate(SPEAKERS.items()):
        for i in range(3):
            utt = f"{spk}-u{i}"
            frames = 30 + 7 * i + s
            samples = tone(freq * (1 + 0.05 * i), frames, 10 * s + i)
            feats[utt] = fbank(samples, RATE, utt)
            wav = root / "audio" / f"{utt}.wav"
            wav.parent.mkdir(exist_ok=True)
            soundfile.write(wav, samples / 32768, RATE, subtype="PCM_16")
            wavs.append(f"{utt} {wav}\n")
            ctm += [f"{utt} 1 {0.1 * k:.2f} 0.10 {'aa' if k % 2 else 'ss'} x\n"
                    for k in range(frames // 10)]
    data = write_feats(root / "data", feats, spk_of=lambda u: u.split("-")[0])
    (data / "wav.scp").write_text("".join(wavs))
    (data / "phone_ali.ctm").write_text("".join(ctm))
    save_tiny_model(root / "model.pt", seg_len=5)
    return data


def test_frames_from_windows_against_a_loop():
    rng = np.random.default_rng(0)
    decoded = rng.normal(size=(7, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(aligned_frames(decoded, "centre"), decoded[:, 2])
    expected = np.zeros((7, 3))
    for t in range(7):
        hits = [decoded[s, j] for s in range(7) for j in range(5)
                if min(max(s + j - 2, 0), 6) == t]
        expected[t] = np.mean(hits, axis=0)
    np.testing.assert_allclose(aligned_frames(decoded, "average"), expected, rtol=1e-6)


def test_converted_frames_are_the_decoder_centre_frames_denormalised():
    """T frames in, T frames out; frame t = the model's decoding of (z1_t, target) at the
    window's centre, times the MVN std plus its mean."""
    cfg = ModelConfig(feat_dim=4, seg_len=5, z1_dim=3, z2_dim=2, hidden=8, num_layers=1,
                      num_seqs=2)
    torch.manual_seed(0)
    model = FHVAE(cfg).eval()
    mvn = MVN(np.array([1.0, 2.0, 3.0, 4.0], np.float32), np.array([2.0, 1.0, 0.5, 3.0],
                                                                     np.float32))
    rng = np.random.default_rng(1)
    lat = Latents(rng.normal(size=(9, 3)).astype(np.float32),
                  rng.normal(size=(9, 2)).astype(np.float32), np.array([0.3, -0.2], np.float32))
    target = np.array([1.0, -1.0], np.float32)
    out = convert_utterance(model, mvn, lat, target, "replace", "centre")
    assert out.shape == (9, 4)
    with torch.no_grad():
        for t in (0, 4, 8):
            mean, _ = model.decode(torch.from_numpy(lat.z1[t:t + 1]),
                                   torch.from_numpy(target[None, :]), 5)
            np.testing.assert_allclose(out[t], mean[0, 2].numpy() * mvn.std + mvn.mean,
                                       rtol=1e-5, atol=1e-5)


def test_z2_modes():
    lat = Latents(np.zeros((4, 1)), np.arange(8.0).reshape(4, 2), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(conversion_z2(lat, np.array([5.0, 6.0]), "replace"),
                                  np.tile([5.0, 6.0], (4, 1)))
    np.testing.assert_array_equal(conversion_z2(lat, np.array([5.0, 6.0]), "shift"),
                                  lat.z2 + [4.0, 5.0])
    np.testing.assert_array_equal(conversion_z2(lat, lat.svector, "shift"), lat.z2)
    means = group_means({"a1": np.array([1.0]), "a2": np.array([3.0]), "b": np.array([7.0])},
                        {"a1": "A", "a2": "A", "b": "B"})
    assert means == {"A": 2.0, "B": 7.0}


def test_one_source_per_group_and_targets_of_other_groups():
    utt2group = {f"{g}{i}": g for g in "abcd" for i in range(3)} | {"e0": "e"}
    enrol, held = hold_out(utt2group, seed=3)
    assert sorted(utt2group[u] for u in held) == list("abcd")      # e has one utterance
    assert set(enrol) | set(held) == set(utt2group) and not set(enrol) & set(held)
    assert hold_out(utt2group, seed=3) == (enrol, held)
    pairs = choose_pairs(held, utt2group, sorted(set(utt2group.values())), seed=1)
    assert [p.source for p in pairs] == held
    assert all(p.target != p.source_group == utt2group[p.source] for p in pairs)
    assert pairs[0].name == f"{held[0]}_to_{pairs[0].target}"


def test_speaker_interval_resamples_whole_speakers():
    """Two speakers with values 0 and 1: a resample holds speaker a 0, 1 or 2 times (mean
    1, 0.5 or 0): the interval is [0, 1]; one speaker only: no spread."""
    low, high = speaker_interval(np.array([0, 0, 1.0]), np.ones(3), ["a", "a", "b"], seed=0)
    assert (low, high) == (0.0, 1.0)
    assert speaker_interval(np.array([2.0, 4]), np.array([1.0, 1]), ["a", "a"], 0) == (3.0, 3.0)


def test_cli_from_another_directory(data, tmp_path):
    """The command writes every converted and re-synthesised WAV (re-analysed: the
    source's frame count), the page with relative links and the scores."""
    out = tmp_path / "listen"
    result = run([python(), "-m", "fhvae", "convert", "--num-pairs", "2", "--seed", "5",
                  "--griffin-lim-iters", "4", "--device", "cpu",
                  str(data.parent / "model.pt"), str(data), str(out)],
                 cwd=tmp_path, env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    frames = {line.split()[0]: int(line.split()[1])
              for line in (data / "utt2num_frames").read_text().splitlines()}
    converted = sorted(out.glob("wav/*_to_*.wav"))
    assert len(converted) == len(SPEAKERS)
    fbank = FbankComputer(FbankConfig(dither=0.0))
    for wav in converted + sorted(out.glob("wav/*.resynth.wav")):
        samples, rate = soundfile.read(wav, dtype="float64")
        source = wav.name.split("_to_")[0].split(".")[0]
        assert fbank(samples * 32768, rate, source).shape[0] == frames[source]
    page = (out / "index.html").read_text()
    links = re.findall(r'src="([^"]+)"', page)
    assert len(links) == 2 * 5 and all((out / link).is_file() for link in links)
    assert not any(link.startswith("/") for link in links)
    scores = (out / "scores.md").read_text()
    assert "| converted audio |" in scores and "| source FBank |" in scores
    rows = (out / "scores.tsv").read_text().splitlines()
    assert len(rows) == 1 + 5 * len(SPEAKERS)


def test_shell_script_on_a_bare_data_dir(data, tmp_path):
    """feats.scp and utt2spk only: no phone score, the page plays re-synthesised FBank."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("feats.scp", "utt2spk"):
        (bare / name).write_text((data / name).read_text())
    out = tmp_path / "listen"
    result = run(["bash", str(ROOT / "utils" / "convert_voices.sh"), "--max-sources", "2",
                  "--num-pairs", "1", "--griffin-lim-iters", "2", "--device", "cpu",
                  str(data.parent / "model.pt"), str(bare), str(out)],
                 cwd=tmp_path, env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "2 converted utterances" in result.stdout
    assert len(list(out.glob("wav/*_to_*.wav"))) == 2
    assert (out / "log" / "convert.log").is_file()
    assert "(FBank re-synthesised)" in (out / "index.html").read_text()
    rows = [r for r in (out / "scores.md").read_text().splitlines() if r.startswith("| conv")]
    assert rows and all(r.split("|")[4].strip() == "-" for r in rows)


@pytest.mark.parametrize("fault, fragments", [
    ("unlabelled", ("utt2spk", "no entry for utterance 'sa-u0'")),
    ("bad_dim", ("feats.scp", "sb-u1", "shape")),
    ("missing_wav", ("wav.scp", "utterance '", "gone.wav")),
])
def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path, fault, fragments):
    import kaldiio
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("feats.scp", "utt2spk", "phone_ali.ctm"):
        (bad / name).write_text((data / name).read_text())
    if fault == "missing_wav":
        (bad / "wav.scp").write_text("".join(f"{line.split()[0]} {tmp_path}/gone.wav\n"
                                             for line in (data / "wav.scp").read_text()
                                             .splitlines()))
    elif fault == "unlabelled":
        (bad / "utt2spk").write_text("".join(line for line in (bad / "utt2spk").read_text()
                                             .splitlines(keepends=True)
                                             if not line.startswith("sa-u0 ")))
    else:
        kaldiio.save_ark(str(bad / "odd.ark"), {"sb-u1": np.zeros((20, 40), np.float32)},
                         scp=str(bad / "odd.scp"))
        odd = (bad / "odd.scp").read_text().split(maxsplit=1)[1]
        (bad / "feats.scp").write_text("".join(
            f"sb-u1 {odd}" if line.startswith("sb-u1 ") else line
            for line in (bad / "feats.scp").read_text().splitlines(keepends=True)))
    out = tmp_path / "out"
    before = listing(tmp_path)
    status, stderr = run_in_process(convert_bin.main, [
        "--device", "cpu", str(data.parent / "model.pt"), str(bad), str(out)])
    assert_clean_error(status, stderr, *fragments)
    assert listing(tmp_path) == before


def test_help_lists_the_command():
    result = run([python(), "-m", "fhvae", "--help"], cwd=ROOT, env=clean_env())
    assert "convert" in result.stdout


def test_judges_read_the_source_alignment_and_summaries_count_by_hand():
    """Phones 'a'/'b' in alternate 3-frame runs with their own means in two FBank bins, two
    groups with their own offsets in the other two: the phone judge scores a source's own frames against its alignment
    (and fails them when the frames are shifted by one run), the group judge names the group;
    the summary's shares are the verdicts counted by hand."""
    rng = np.random.default_rng(0)
    mvn = MVN(np.zeros(4, np.float32), np.ones(4, np.float32))
    feats, phones, utt2group = {}, {}, {}
    for g, offset in (("A", 0.0), ("B", 8.0)):
        for i in range(4):
            utt = f"{g}{i}"
            labels = np.array(["a", "a", "a", "b", "b", "b"] * 5, dtype=object)
            means = np.concatenate([np.where(labels[:, None] == "a", 3.0, -3.0) * [1, 1],
                                    np.full((30, 2), offset)], axis=1)
            feats[utt] = (means + rng.normal(0, 0.3, (30, 4))).astype(np.float32)
            phones[utt], utt2group[utt] = labels, g
    phones["A0"][:2] = NO_LABEL
    judges = train_judges(feats, ["A1", "A2", "A3", "B1", "B2", "B3"], utt2group, phones, mvn)
    assert judges.phone_hits("A0", feats["A0"]) == (28, 28)
    assert judges.phone_hits("B0", np.roll(feats["B0"], 3, axis=0)) == (0, 30)
    assert judges.group_of(feats["A0"]) == "A" and judges.group_of(feats["B0"]) == "B"
    assert judges.phone_chance(["A0"]) == pytest.approx(13 / 28)    # 'a' is the majority
    verdicts = [("A", 3, 10), ("B", 5, 10), ("B", 0, 20)]
    scores = [PairScores(f"u{i}", "A", "B", f"s{i}",
                         {v: VersionScore(g, c, n, 1.0 + i) for v in VERSIONS})
              for i, (g, c, n) in enumerate(verdicts)]
    row = summarise(scores, seed=0)[-1]
    assert row.to_target[0] == pytest.approx(2 / 3) and row.to_source[0] == pytest.approx(1 / 3)
    assert row.phone_acc[0] == pytest.approx(8 / 40)
    assert row.distortion_db[0] == pytest.approx(2.0)
