"""utils/make_fbank.sh end to end (--nj 2, local launcher) from an egs-style recipe dir,
followed by stage 2 (make_index) on its output."""

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile

from fhvae.data.index import SegmentIndex
from fhvae.features.fbank import FbankComputer, read_fbank_config
from helpers import clean_env, python_bin, run

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000


@pytest.fixture
def recipe(tmp_path):
    """A recipe dir like egs/<corpus>/ (utils, conf symlinked) with three recordings."""
    for name in ("utils", "conf", "path.sh"):
        (tmp_path / name).symlink_to(ROOT / name)
    wav = tmp_path / "wav"
    wav.mkdir()
    rng = np.random.default_rng(0)
    for i, seconds in enumerate([1.0, 0.7, 2.0]):
        t = np.arange(int(seconds * RATE)) / RATE
        signal = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        soundfile.write(wav / f"r{i}.wav", signal, RATE, subtype="PCM_16")
    data = tmp_path / "data" / "tiny"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"r0 {wav}/r0.wav\n"
                                  f"r1 sox {wav}/r1.wav -t wav - |\n"
                                  f"r2 {wav}/r2.wav\n")
    return tmp_path


def make_fbank(recipe, *options):
    env = clean_env(LC_ALL="C", PATH=f"{python_bin(recipe / 'pybin')}:{os.environ['PATH']}")
    return run(["utils/make_fbank.sh", "--nj", "2", *options, "data/tiny",
                "exp/make_fbank/tiny", "fbank"], cwd=recipe, env=env, timeout=120)


def expected_features(recipe, cuts):
    computer = FbankComputer(read_fbank_config(ROOT / "conf" / "fbank.conf"))
    out = {}
    for utt, (rec, start, end) in cuts.items():
        samples, _ = soundfile.read(recipe / "wav" / f"{rec}.wav", dtype="int16")
        out[utt] = computer(samples[start:end].astype(np.float64), RATE, utt)
    return out


@pytest.mark.parametrize("with_segments", [False, True])
def test_make_fbank_then_index(recipe, with_segments):
    data = recipe / "data" / "tiny"
    if with_segments:
        (data / "segments").write_text("u0 r0 0 -1\nu1 r1 0 -1\nu2a r2 0.0 1.0\n"
                                       "u2b r2 1.0 2.0\nu2c r2 1.99 2.0\n")
        cuts = {"u0": ("r0", 0, None), "u1": ("r1", 0, None),
                "u2a": ("r2", 0, 16000), "u2b": ("r2", 16000, 32000)}
    else:
        cuts = {f"r{i}": (f"r{i}", 0, None) for i in range(3)}
    # 1 of 5 skipped is 20%: over Kaldi's 5% (below), so allow it here
    proc = make_fbank(recipe, "--compress", "false", "--max-failed-percent", "20")
    assert proc.returncode == 0, proc.stderr
    if with_segments:  # u2c is 160 samples: shorter than one frame, reported, not written
        assert ("make_fbank.sh: WARNING: 1 of 5 utterances in data/tiny failed/skipped "
                "(audio unreadable or shorter than one frame), see exp/make_fbank/tiny/"
                "make_fbank.*.log") in proc.stderr
        log = "".join(p.read_text() for p in (recipe / "exp/make_fbank/tiny").glob("*.log"))
        assert "utterance 'u2c' (160 samples) is shorter than one frame" in log

    lines = (data / "feats.scp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == sorted(cuts)
    arks = {line.split()[1].rsplit(":", 1)[0] for line in lines}
    assert arks == {str(recipe / "fbank" / f"raw_fbank_tiny.{n}.ark") for n in (1, 2)}
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    for utt, ref in expected_features(recipe, cuts).items():
        np.testing.assert_array_equal(feats[utt], ref)
    frames = {utt: len(m) for utt, m in feats.items()}
    assert (data / "utt2num_frames").read_text() == "".join(
        f"{u} {frames[u]}\n" for u in sorted(frames))
    durations = dict(line.split() for line in (data / "utt2dur").read_text().splitlines())
    assert float(durations["u1" if with_segments else "r1"]) == pytest.approx(0.7)

    index = SegmentIndex.build(data)
    assert list(index.utt_ids) == sorted(cuts)
    assert list(index.num_frames) == [frames[u] for u in sorted(cuts)]
    np.testing.assert_array_equal(index.read_utt(0), feats[sorted(cuts)[0]])


def test_failed_job_leaves_no_feats_scp(recipe):
    """--permissive false: the first unreadable recording stops its job (one ERROR line)."""
    data = recipe / "data" / "tiny"
    for name in ("feats.scp", "utt2num_frames"):  # outputs of an earlier run
        (data / name).write_text("r0 fbank/raw_fbank_tiny.1.ark:3\n")
    with open(data / "wav.scp", "a") as handle:
        handle.write(f"r3 {recipe}/wav/missing.wav\n")
    proc = make_fbank(recipe, "--permissive", "false")
    assert proc.returncode == 1
    assert "FBank failed for data/tiny" in proc.stderr
    log = (recipe / "exp" / "make_fbank" / "tiny" / "make_fbank.2.log").read_text()
    assert ("ERROR (compute_fbank.py): exp/make_fbank/tiny/wav.2.scp: utterance 'r3': "
            f"audio file not found: {recipe}/wav/missing.wav") in log
    assert not (data / "feats.scp").exists()
    assert not (data / "utt2num_frames").exists()


def test_unreadable_audio_is_skipped_and_counted_as_in_kaldi(recipe):
    """By default (Kaldi reads scp,p:) an unreadable recording or failing pipe is skipped
    with a warning naming it, and counted against --max-failed-percent: over it nothing is
    merged into the data dir, under it the other utterances get their features."""
    data = recipe / "data" / "tiny"
    with open(data / "wav.scp", "a") as handle:
        handle.write(f"r3 {recipe}/wav/missing.wav\nr4 false |\n")
    proc = make_fbank(recipe)
    assert proc.returncode == 1
    assert "2 of 5 utterances in data/tiny failed/skipped" in proc.stderr
    assert "more than 5% of the utterances of data/tiny have no features" in proc.stderr
    assert not (data / "feats.scp").exists()
    logs = "".join(p.read_text() for p in (recipe / "exp/make_fbank/tiny").glob("make_fbank.*.log"))
    assert (f"utterance 'r3': audio file not found: {recipe}/wav/missing.wav; skipped "
            "(no features)") in logs
    assert "utterance 'r4': command 'false' failed" in logs and "ERROR" not in logs
    proc = make_fbank(recipe, "--max-failed-percent", "50")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 5 utterances in data/tiny failed/skipped" in proc.stderr
    keys = [line.split()[0] for line in (data / "feats.scp").read_text().splitlines()]
    assert keys == ["r0", "r1", "r2"]
    assert [line.split()[0] for line in (data / "utt2dur").read_text().splitlines()] == keys


def test_too_many_short_utterances_fail_as_in_kaldi(recipe):
    """Kaldi's make_fbank.sh exits 1 when fewer than 95% of the utterances have features."""
    data = recipe / "data" / "tiny"
    (data / "segments").write_text("u0 r0 0 -1\nu1 r1 0 -1\nu2c r2 1.99 2.0\n")
    proc = make_fbank(recipe, "--compress", "false")
    assert proc.returncode == 1
    assert "1 of 3 utterances in data/tiny failed/skipped" in proc.stderr
    assert ("make_fbank.sh: ERROR: more than 5% of the utterances of data/tiny have no "
            "features") in proc.stderr


def kaldi_compressed(matrix: np.ndarray, tmp: Path) -> np.ndarray:
    """`matrix` through Kaldi's own CompressedMatrix (kaldi_native_io, default method)."""
    import kaldi_native_io as kni
    with kni.CompressedMatrixWriter(f"ark:{tmp}") as writer:
        writer.write("x", matrix, kni.CompressionMethod.kAutomaticMethod)
    with kni.SequentialFloatMatrixReader(f"ark:{tmp}") as reader:
        return np.array(next(iter(reader))[1], copy=True)  # the reader owns its memory


def test_compressed_by_default_like_kaldi(recipe):
    """Default --compress true: CM matrices that Kaldi's reader reads, equal to Kaldi's own
    compression of the plain features (up to rounding); the arks are ~4x smaller."""
    import kaldi_native_io as kni
    proc = make_fbank(recipe)
    assert proc.returncode == 0, proc.stderr
    data = recipe / "data" / "tiny"
    cuts = {f"r{i}": (f"r{i}", 0, None) for i in range(3)}
    ref = expected_features(recipe, cuts)
    first = (data / "feats.scp").read_text().split()[1]
    ark, offset = first.rsplit(":", 1)
    with open(ark, "rb") as handle:
        handle.seek(int(offset))
        assert handle.read(5) == b"\0BCM "
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    with kni.RandomAccessFloatMatrixReader(f"scp:{data / 'feats.scp'}") as reader:
        for utt, want in ref.items():
            got = feats[utt]
            np.testing.assert_allclose(np.asarray(reader[utt]), got, rtol=1e-6, atol=1e-5)
            kaldi = kaldi_compressed(want, recipe / "kaldi.ark")
            # same codes, except a rare rounding tie that lands one 8-bit step away
            same = np.abs(got - kaldi) <= 1e-4 * (want.max() - want.min())
            assert same.mean() > 0.99
            assert 0 < np.abs(got - want).max() <= (want.max(0) - want.min(0)).max() / 64
    size = sum(p.stat().st_size for p in (recipe / "fbank").glob("*.ark"))
    frames = sum(len(v) for v in ref.values())
    assert size < frames * 80 * 4 / 3


def test_pipeline_stages_1_2_drop_a_10ms_utterance(recipe):
    """A 10 ms utterance: make_fbank.sh skips it with a warning and a count, stage 1's
    fix_data_dir.sh drops it from the data dir, stage 2 excludes (and counts) an utterance
    shorter than one 20-frame segment; the recipe goes on."""
    rng = np.random.default_rng(1)
    for name, samples in [("tiny", 160), ("short", 2400)] + [(f"w{i:02d}", 4800) for i in range(21)]:
        soundfile.write(recipe / "wav" / f"{name}.wav", 0.1 * rng.standard_normal(samples), RATE,
                        subtype="PCM_16")
    for data_set, names in (("train", ["short", "tiny"] + [f"w{i:02d}" for i in range(21)]),
                            ("eval", ["w00", "w01", "w02"])):
        data = recipe / "data" / data_set
        data.mkdir()
        (data / "wav.scp").write_text("".join(f"{n} {recipe}/wav/{n}.wav\n" for n in names))
        (data / "utt2spk").write_text("".join(f"{n} {n}\n" for n in names))
        (data / "spk2utt").write_text("".join(f"{n} {n}\n" for n in names))
        (data / "text").write_text("".join(f"{n} HELLO\n" for n in names))
    # clean_env: no train_cmd/extract_cmd of the caller's shell (a Slurm launcher exported
    # there must not submit cluster jobs from a test); the pipeline's defaults apply.
    env = clean_env(LC_ALL="C", PATH=f"{python_bin(recipe / 'pybin')}:{os.environ['PATH']}")
    proc = run(["utils/fhvae_pipeline.sh", "--stop-stage", "2", "train", "-", "eval"],
               cwd=recipe, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert ("make_fbank.sh: WARNING: 1 of 23 utterances in data/train failed/skipped "
            "(audio unreadable or shorter than one frame)") in proc.stderr
    train = recipe / "data" / "train"
    for name in ("utt2spk", "spk2utt", "wav.scp", "text", "feats.scp"):
        keys = [line.split()[0] for line in (train / name).read_text().splitlines()]
        assert "tiny" not in keys and len(keys) == 22, name
    assert "data/train: 21 utts" in proc.stdout and "1 excluded (< 20 frames)" in proc.stdout
    assert "excluded 1 utterance(s) shorter than 20 frames: short" in proc.stderr
    assert SegmentIndex.load(train / "fhvae" / "seg_index.npz").num_utts == 21
