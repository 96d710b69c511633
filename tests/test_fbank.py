"""Stage 1 FBank: numbers against Kaldi's algorithm written out from its formulas, frame
counts, config parsing, and the psf backend's shape contract."""

import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankComputer, FbankConfig, read_fbank_config

FLT_EPSILON = np.finfo(np.float32).eps


def kaldi_fbank_reference(wave: np.ndarray, rate: int = 16000, num_bins: int = 80,
                          low: float = 20.0, high: float = 0.0) -> np.ndarray:
    """Kaldi's compute-fbank-feats (dither 0, snip-edges, povey, power, log) in float64."""
    size, shift = int(rate * 0.025), int(rate * 0.010)
    num_frames = 1 + (len(wave) - size) // shift
    frames = np.stack([wave[i * shift:i * shift + size] for i in range(num_frames)])
    frames = frames - frames.mean(axis=1, keepdims=True)                 # DC removal
    frames = np.concatenate([frames[:, :1] * (1 - 0.97),                 # pre-emphasis
                             frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    n = np.arange(size)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * n / (size - 1))) ** 0.85  # povey
    padded = 1 << (size - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n=padded)) ** 2                    # (T, padded/2+1)

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    high = high if high > 0 else rate / 2 + high
    mel_low, mel_high = mel(low), mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    fft_mel = mel(np.arange(padded // 2) * rate / padded)                 # Nyquist bin unused
    weights = np.zeros((num_bins, padded // 2 + 1))
    for b in range(num_bins):
        left, center, right = (mel_low + (b + k) * delta for k in range(3))
        up = (fft_mel > left) & (fft_mel <= center)
        down = (fft_mel > center) & (fft_mel < right)
        weights[b, :padded // 2][up] = ((fft_mel - left) / (center - left))[up]
        weights[b, :padded // 2][down] = ((right - fft_mel) / (right - center))[down]
    return np.log(np.maximum(power @ weights.T, FLT_EPSILON))


@pytest.fixture(scope="module")
def wave():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    # noise plus a tone on the int16 scale: values span several orders of magnitude
    return np.round(3000 * rng.standard_normal(t.size) + 8000 * np.sin(2 * np.pi * 440 * t))


def test_knf_matches_kaldi_formulas(wave):
    config = FbankConfig(dither=0.0)
    ours = FbankComputer(config)(wave, 16000, "u")
    ref = kaldi_fbank_reference(wave)
    assert ours.shape == ref.shape == (98, 80)
    assert ours.dtype == np.float32
    # Log energies here are 8..30; knf works in float32 (7 significant digits), so compare
    # with 1e-4 absolute or 1e-5 relative to the value, whichever is larger.
    tol = np.maximum(1e-4, 1e-5 * np.abs(ref))
    assert np.all(np.abs(ours - ref) <= tol), np.abs(ours - ref).max()


def test_knf_band_edges_follow_config(wave):
    config = FbankConfig(dither=0.0, num_mel_bins=40, low_freq=100.0, high_freq=-400.0)
    ours = FbankComputer(config)(wave, 16000, "u")
    ref = kaldi_fbank_reference(wave, num_bins=40, low=100.0, high=-400.0)
    assert np.abs(ours - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("num_samples", [0, 1, 399, 400, 401, 559, 560, 16000, 16123])
def test_frame_count_is_kaldis(num_samples):
    expected = 1 + (num_samples - 400) // 160 if num_samples >= 400 else 0
    config = FbankConfig(dither=0.0)
    assert config.num_frames(num_samples) == expected
    wave = np.random.default_rng(num_samples).standard_normal(num_samples) * 100
    for backend in ("knf", "psf"):
        feats = FbankComputer(config, backend)(wave, 16000, "u")
        assert feats.shape == (expected, 80)


def test_psf_backend_is_log_mel_of_same_frames(wave):
    config = FbankConfig(dither=0.0)
    knf_feats = FbankComputer(config, "knf")(wave, 16000, "u")
    psf_feats = FbankComputer(config, "psf")(wave, 16000, "u")
    assert psf_feats.shape == knf_feats.shape
    # Not Kaldi's numbers, but the same spectra up to window/scale: strongly correlated
    # over the bands that are not empty in psf's bin-snapped filterbank.
    live = psf_feats.min(axis=0) > -30
    assert live.sum() >= 60
    corr = np.corrcoef(psf_feats[:, live].ravel(), knf_feats[:, live].ravel())[0, 1]
    assert corr > 0.9


def test_config_file_parsing(tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text("# comment\n--num-mel-bins=40  # trailing\n\n--snip-edges=false\n"
                    "--dither=0\n--window-type=hamming\n--high-freq=-200\n")
    config = read_fbank_config(conf)
    assert (config.num_mel_bins, config.snip_edges, config.dither) == (40, False, 0.0)
    assert (config.window_type, config.high_freq, config.low_freq) == ("hamming", -200.0, 20.0)
    assert config.num_frames(16000) == 100  # snip-edges=false: round(N / shift)
    assert read_fbank_config(None) == FbankConfig()


@pytest.mark.parametrize("line, message", [
    ("--num-ceps=13", "fbank.conf:2: unknown option '--num-ceps'"),
    ("num-mel-bins=80", "fbank.conf:2: unknown option"),
    ("--num-mel-bins", "fbank.conf:2: option '--num-mel-bins' needs '=value'"),
    ("--num-mel-bins=eighty", "fbank.conf:2: bad value 'eighty'"),
    ("--snip-edges=maybe", "fbank.conf:2: bad value 'maybe'"),
    ("--window-type=triangle", "--window-type=triangle is not one of"),
])
def test_config_errors_name_file_and_line(tmp_path, line, message):
    conf = tmp_path / "fbank.conf"
    conf.write_text(f"--dither=0\n{line}\n")
    with pytest.raises(FhvaeError, match=message.replace("(", r"\(")):
        read_fbank_config(conf)


def test_sample_rate_mismatch_and_bad_backend():
    computer = FbankComputer(FbankConfig(dither=0.0))
    with pytest.raises(FhvaeError, match="utterance 'utt7': sample rate 8000 Hz"):
        computer(np.zeros(8000), 8000, "utt7")
    with pytest.raises(FhvaeError, match="unknown FBank backend 'torch'"):
        FbankComputer(FbankConfig(), "torch")
