"""Stage 1 jobs: wav.scp paths and pipes, segments, the written tables (checked with an
independent Kaldi reader), and one-line errors that leave nothing half-written."""

import kaldi_native_io
import kaldiio
import numpy as np
import pytest
import soundfile

from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankComputer, FbankConfig
from fhvae.features.job import compute_fbank_job
from fhvae.io.audio import iter_utterances

RATE = 16000


def write_wav(path, seconds, seed, channels=1, rate=RATE):
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal((int(seconds * rate), channels)) * 3000).astype(np.int16)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return samples


@pytest.fixture
def computer():
    return FbankComputer(FbankConfig(dither=0.0))


def run_job(computer, tmp_path, wav_scp_text, segments_text=None):
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text(wav_scp_text)
    segments = None
    if segments_text is not None:
        segments = tmp_path / "segments"
        segments.write_text(segments_text)
    return compute_fbank_job(computer, wav_scp, tmp_path / "out.ark", tmp_path / "out.scp",
                             segments=segments, utt2num_frames=tmp_path / "utt2num_frames",
                             utt2dur=tmp_path / "utt2dur")


def test_paths_pipes_and_tables(computer, tmp_path):
    a = write_wav(tmp_path / "a.wav", 1.0, 1)
    write_wav(tmp_path / "b.wav", 0.5, 2)
    write_wav(tmp_path / "short.wav", 0.02, 3)  # 320 samples < 400: no frame
    stats = run_job(computer, tmp_path,
                    f"a {tmp_path}/a.wav\n"
                    f"b sox {tmp_path}/b.wav -t wav - |\n"
                    f"short {tmp_path}/short.wav\n")
    assert stats.num_done == 2 and stats.skipped == ["short"]
    assert (tmp_path / "utt2num_frames").read_text() == "a 98\nb 48\n"
    assert (tmp_path / "utt2dur").read_text() == "a 1.0000\nb 0.5000\nshort 0.0200\n"
    ours = dict(kaldiio.load_scp(str(tmp_path / "out.scp")))
    # features of a path equal the FBank of the int16 samples read back
    np.testing.assert_array_equal(ours["a"], computer(a[:, 0].astype(np.float64), RATE, "a"))
    # an independent Kaldi table reader sees exactly the same matrices
    reader = kaldi_native_io.SequentialFloatMatrixReader(f"scp:{tmp_path}/out.scp")
    theirs = {key: np.array(value) for key, value in reader}
    assert theirs.keys() == ours.keys() == {"a", "b"}
    for key in ours:
        np.testing.assert_array_equal(theirs[key], ours[key])
    scp_paths = [line.split()[1].rsplit(":", 1)[0] for line in
                 (tmp_path / "out.scp").read_text().splitlines()]
    assert all(p == str(tmp_path / "out.ark") for p in scp_paths)


def test_segments_cut_with_kaldi_arithmetic(computer, tmp_path):
    rec = write_wav(tmp_path / "rec.wav", 2.0, 4)[:, 0].astype(np.float64)
    stats = run_job(computer, tmp_path, f"rec {tmp_path}/rec.wav\n",
                    "s1 rec 0.1 0.6\ns2 rec 1.5 -1\ns3 rec 1.9 2.2\n")
    assert stats.num_done == 3
    feats = dict(kaldiio.load_scp(str(tmp_path / "out.scp")))
    np.testing.assert_array_equal(feats["s1"], computer(rec[1600:9600], RATE, "s1"))
    np.testing.assert_array_equal(feats["s2"], computer(rec[24000:], RATE, "s2"))
    # 0.2 s past the end is within Kaldi's 0.5 s overshoot: truncated
    np.testing.assert_array_equal(feats["s3"], computer(rec[30400:], RATE, "s3"))
    assert (tmp_path / "utt2dur").read_text() == "s1 0.5000\ns2 0.5000\ns3 0.1000\n"


def test_stereo_needs_channel(tmp_path):
    stereo = write_wav(tmp_path / "st.wav", 0.5, 5, channels=2)
    (tmp_path / "wav.scp").write_text(f"st {tmp_path}/st.wav\n")
    with pytest.raises(FhvaeError, match="utterance 'st': audio has 2 channels; choose one"):
        list(iter_utterances(tmp_path / "wav.scp"))
    [(utt, samples, rate)] = iter_utterances(tmp_path / "wav.scp", channel=1)
    np.testing.assert_array_equal(samples, stereo[:, 1])


@pytest.mark.parametrize("entry, message", [
    ("u1 /nonexistent/x.wav", "utterance 'u1': audio file not found: /nonexistent/x.wav"),
    ("u1 {d}/garbage.wav", "utterance 'u1': unreadable audio"),
    ("u1 {d}/r8k.wav", "utterance 'u1': sample rate 8000 Hz, but the FBank config says"),
    ("u1 sox {d}/missing.wav -t wav - |", "utterance 'u1': command 'sox .*' failed with exit"),
    ("u1 cat {d}/a.wav; exit 3 |", "utterance 'u1': command .* exit status 3"),
])
def test_bad_input_errors_leave_nothing(computer, tmp_path, entry, message):
    write_wav(tmp_path / "a.wav", 0.5, 6)
    write_wav(tmp_path / "r8k.wav", 0.5, 7, rate=8000)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(FhvaeError, match=message) as err:
        run_job(computer, tmp_path, f"u0 {tmp_path}/a.wav\n" + entry.format(d=tmp_path) + "\n")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.wav", "r8k.wav", "garbage.wav", "wav.scp"])


def test_empty_data_dir_and_bad_segments(computer, tmp_path):
    with pytest.raises(FhvaeError, match="wav.scp: empty"):
        run_job(computer, tmp_path, "")
    write_wav(tmp_path / "a.wav", 0.5, 8)
    with pytest.raises(FhvaeError, match="segments:1: expected '<utt> <rec> <start> <end>'"):
        run_job(computer, tmp_path, f"a {tmp_path}/a.wav\n", "s1 a 0.1\n")
    with pytest.raises(FhvaeError, match="utterance 's1': recording 'zz' is not in"):
        run_job(computer, tmp_path, f"a {tmp_path}/a.wav\n", "s1 zz 0.0 0.2\n")
    with pytest.raises(FhvaeError, match="utterance 's1': segment ends at 1.5s"):
        run_job(computer, tmp_path, f"a {tmp_path}/a.wav\n", "s1 a 0.0 1.5\n")
    with pytest.raises(FhvaeError, match="segments: utterance 's1' \\(recording 'b' of .*wav.scp"
                                         "\\): audio file not found"):
        run_job(computer, tmp_path, f"b {tmp_path}/b.wav\n", "s1 b 0.0 0.2\n")


def test_non_finite_features_are_an_error(computer):
    samples = np.full(1000, np.nan)  # e.g. a float WAV holding NaNs
    with pytest.raises(FhvaeError, match="utterance 'bad': NaN or inf in the features"):
        computer(samples, RATE, "bad")


def test_permissive_job_skips_utterances_without_audio(computer, tmp_path, caplog):
    """Kaldi's scp,p: reading: each utterance whose audio cannot be had is skipped and listed;
    the others get exactly the features a strict job gives them."""
    write_wav(tmp_path / "a.wav", 1.0, 9)
    write_wav(tmp_path / "c.wav", 0.5, 10)
    (tmp_path / "wav.scp").write_text(f"a {tmp_path}/a.wav\nb {tmp_path}/b.wav\n"
                                      f"c {tmp_path}/c.wav\n")
    (tmp_path / "segments").write_text("a1 a 0.0 0.4\na2 a 0.5 1.8\nb1 b 0.0 0.2\nb2 b 0.2 0.4\n"
                                       "c1 c 0.0 0.3\nz1 zz 0.0 0.2\n")
    stats = compute_fbank_job(computer, tmp_path / "wav.scp", tmp_path / "f.ark",
                              tmp_path / "f.scp", segments=tmp_path / "segments",
                              permissive=True)
    assert stats.failed == ["a2", "b1", "b2", "z1"]     # past the end, no file x2, no recording
    assert "utterance 'b2': recording 'b' could not be read" in caplog.text   # names b2, not b1
    assert stats.num_done == 2
    got = dict(kaldiio.load_scp(str(tmp_path / "f.scp")))
    assert sorted(got) == ["a1", "c1"]
    (tmp_path / "segments").write_text("a1 a 0.0 0.4\nc1 c 0.0 0.3\n")
    strict = compute_fbank_job(computer, tmp_path / "wav.scp", tmp_path / "g.ark",
                               tmp_path / "g.scp", segments=tmp_path / "segments")
    assert strict.num_done == 2
    for key, value in kaldiio.load_scp(str(tmp_path / "g.scp")).items():
        np.testing.assert_array_equal(got[key], value)
