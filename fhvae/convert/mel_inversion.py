"""Kaldi log-mel FBank back to a waveform: mel energies -> power spectrum -> Griffin-Lim.

No vocoder can be downloaded here, so the FBank is inverted with the analysis it came from
(features/fbank.py: Kaldi's compute-fbank-feats through kaldi-native-fbank). Kaldi, per
frame of `window_size` samples every `window_shift`: removes the frame's DC, pre-emphasises
(x[i] -= k x[i-1]), multiplies by the window (povey by default), zero-pads to a power of
two, takes the power spectrum, sums it through triangular mel filters and takes the
natural log (floored at float epsilon). The inversion undoes each step it can:

  1. exp(), then a non-negative power spectrum P with bank @ P ~ E: multiplicative updates
     (non-negative least squares) from the clipped pseudo-inverse. The filters cover
     20 Hz .. Nyquist only, so bins outside them (DC, Nyquist) stay 0.
  2. Griffin-Lim (with Perraudin's momentum) on |X| = sqrt(P), with exactly Kaldi's framing
     and window, so the STFT it makes consistent is the one the FBank was taken from.
  3. The pre-emphasis, undone on the whole signal by the one-pole filter 1 / (1 - k z^-1);
     the DC that filter lets drift is removed, as Kaldi's analysis removes it per frame.

What the inversion loses (the fine spectral detail inside each mel band, the phase) is
measured by `mel_distortion_db` between an FBank and the FBank re-analysed from its audio.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankConfig

FLOAT_EPS = float(np.finfo(np.float32).eps)   # Kaldi's floor on mel energies before log
DB_PER_NEPER = 10.0 / np.log(10.0)            # natural-log power ratio -> decibels


def kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def padded_size(config: FbankConfig) -> int:
    """The FFT size Kaldi uses: the window rounded up to a power of two."""
    return 1 << (config.window_size - 1).bit_length()


def mel_bank(config: FbankConfig) -> np.ndarray:
    """(num_mel_bins, fft/2 + 1) triangles as Kaldi's MelBanks defines them: equally spaced
    on the mel scale between low_freq and high_freq (<= 0: offset from Nyquist), weight
    rising from 0 at the left edge to 1 at the centre; FFT bins 0 .. fft/2 - 1 only (the
    Nyquist bin's column is 0)."""
    nfft = padded_size(config)
    nyquist = 0.5 * config.sample_frequency
    high = config.high_freq if config.high_freq > 0 else nyquist + config.high_freq
    if not 0 <= config.low_freq < high <= nyquist:
        raise FhvaeError(f"FBank config: mel band {config.low_freq:g}-{high:g} Hz is not "
                         f"inside 0-{nyquist:g} Hz")
    lo, hi = kaldi_mel(config.low_freq), kaldi_mel(high)
    delta = (hi - lo) / (config.num_mel_bins + 1)
    left = lo + delta * np.arange(config.num_mel_bins)[:, None]
    centre, right = left + delta, left + 2 * delta
    mel = kaldi_mel(np.arange(nfft // 2) * config.sample_frequency / nfft)[None, :]
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    weights = np.where(mel <= centre, rising, falling)
    weights[(mel <= left) | (mel >= right)] = 0.0
    return np.pad(weights, ((0, 0), (0, 1)))


def window(config: FbankConfig) -> np.ndarray:
    """Kaldi's analysis window of `window_size` samples."""
    n = config.window_size
    a = 2 * np.pi * np.arange(n) / (n - 1)
    hann = 0.5 - 0.5 * np.cos(a)
    windows = {"povey": hann ** 0.85, "hanning": hann, "hamming": 0.54 - 0.46 * np.cos(a),
               "rectangular": np.ones(n), "sine": np.sin(0.5 * a),
               "blackman": 0.42 - 0.5 * np.cos(a) + 0.08 * np.cos(2 * a)}
    return windows[config.window_type]


def check_invertible(config: FbankConfig) -> None:
    """Only log mel power energies without an energy column and with Kaldi's edge
    handling can be turned back into a signal of the same frame count."""
    if config.use_energy or not config.use_log_fbank or not config.use_power \
            or not config.snip_edges:
        raise FhvaeError("FBank inversion needs --use-energy=false --use-log-fbank=true "
                         "--use-power=true --snip-edges=true")


def num_samples(num_frames: int, config: FbankConfig) -> int:
    """The shortest signal that Kaldi cuts into exactly `num_frames` frames."""
    return config.window_size + (num_frames - 1) * config.window_shift


class Framing:
    """Kaldi's framing of a signal of `num_frames` frames, with what STFT and inverse STFT
    need precomputed (Griffin-Lim calls both at every iteration)."""

    def __init__(self, config: FbankConfig, num_frames: int):
        self.config, self.num_frames = config, num_frames
        self.nfft = padded_size(config)
        self.window = window(config).astype(np.float32)
        self.length = num_samples(num_frames, config)
        self.index = (np.arange(num_frames)[:, None] * config.window_shift
                      + np.arange(config.window_size)[None, :])
        norm = np.bincount(self.index.ravel(), np.tile(self.window ** 2, num_frames),
                           minlength=self.length)
        self.norm = np.maximum(norm, 1e-3 * norm.max())

    def stft(self, signal: np.ndarray) -> np.ndarray:
        """(T, fft/2 + 1) complex spectra of the windowed frames."""
        return np.fft.rfft(signal[self.index] * self.window, self.nfft)

    def istft(self, spectra: np.ndarray) -> np.ndarray:
        """The signal whose windowed frames are closest (least squares) to the inverse FFTs
        of `spectra`: overlap-add of window * frame over the overlapped squared windows."""
        frames = np.fft.irfft(spectra, self.nfft)[:, :self.config.window_size] * self.window
        return np.bincount(self.index.ravel(), frames.ravel(), minlength=self.length) / self.norm


def mel_to_power(log_mel: np.ndarray, bank: np.ndarray, iterations: int = 50) -> np.ndarray:
    """(T, fft/2 + 1) non-negative power spectra whose mel energies approach exp(log_mel):
    least squares by multiplicative updates, started from the clipped pseudo-inverse."""
    energies = np.exp(log_mel.astype(np.float64))
    power = np.maximum(energies @ np.linalg.pinv(bank).T, 0.0)
    covered = bank.sum(axis=0) > 0
    power[:, covered] = np.maximum(power[:, covered], 1e-6 * energies.min())
    target = energies @ bank
    for _ in range(iterations):
        power *= target / np.maximum((power @ bank.T) @ bank, 1e-30)
    return power


def griffin_lim(magnitude: np.ndarray, config: FbankConfig, iterations: int, seed: int,
                momentum: float = 0.99) -> np.ndarray:
    """A signal whose STFT magnitudes approach `magnitude` (T, fft/2 + 1): fast Griffin-Lim
    (Perraudin et al. 2013) from seeded random phases, in single precision."""
    framing = Framing(config, magnitude.shape[0])
    magnitude = magnitude.astype(np.float32)
    rng = np.random.default_rng(seed)
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape, dtype=np.float32))
    previous = np.zeros_like(phase)
    for _ in range(iterations):
        rebuilt = framing.stft(framing.istft(magnitude * phase))
        phase = rebuilt - np.float32(momentum / (1 + momentum)) * previous
        phase /= np.maximum(np.abs(phase), np.float32(1e-16))
        previous = rebuilt
    return framing.istft(magnitude * phase).astype(np.float64)


def invert_fbank(log_mel: np.ndarray, config: FbankConfig, iterations: int = 64,
                 seed: int = 0) -> np.ndarray:
    """Samples on the int16 scale (float64) whose Kaldi FBank approaches `log_mel` (T, bins);
    exactly T frames when re-analysed with `config`."""
    check_invertible(config)
    bank = mel_bank(config)
    if log_mel.ndim != 2 or log_mel.shape[1] != bank.shape[0] or log_mel.shape[0] == 0:
        raise FhvaeError(f"FBank inversion: got shape {log_mel.shape}, expected "
                         f"(T >= 1, {bank.shape[0]}) for --num-mel-bins={bank.shape[0]}")
    magnitude = np.sqrt(mel_to_power(log_mel, bank))
    emphasised = griffin_lim(magnitude, config, iterations, seed)
    k = config.preemphasis_coefficient
    signal = lfilter([1.0], [1.0, -k], emphasised) if k > 0 else emphasised
    return signal - signal.mean()


def mel_distortion_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean over frames of the RMS over mel bins of the difference of two log-mel FBanks
    (natural log, as Kaldi's) in dB: 10 log10 of the energy ratio, bin by bin."""
    if reference.shape != other.shape:
        raise FhvaeError(f"mel distortion: shapes {reference.shape} and {other.shape} differ")
    diff = DB_PER_NEPER * (reference.astype(np.float64) - other)
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=1))))
