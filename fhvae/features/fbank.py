"""Log mel filterbank features, configured like Kaldi's `compute-fbank-feats`.

Backends:
  knf (default)  kaldi-native-fbank, a re-implementation of Kaldi's FBank; with the same
                 options it gives Kaldi's numbers (tests/test_fbank.py checks it against the
                 formulas). FbankConfig's defaults are Kaldi's, except num_mel_bins=80.
                 Kaldi dithers by default (dither=1.0: random, so not reproducible); the
                 recipes' conf/fbank.conf sets --dither=0.0 so features are bit-identical
                 from run to run.
  psf            python_speech_features.logfbank with the same sample rate, frame length and
                 shift, number of mel bins, band edges and pre-emphasis coefficient. It is
                 NOT numerically Kaldi's: pre-emphasis over the whole signal instead of per
                 frame, no DC removal, no dither, a rectangular window instead of povey,
                 power spectrum divided by the FFT size, triangles snapped to FFT bins, and
                 natural log floored at float64 eps. Its frame count is cut to Kaldi's
                 snip-edges count so utt2num_frames means the same with either backend; the
                 remaining options (window-type, dither, energy, ...) do not apply to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import kaldi_native_fbank as knf
import numpy as np
import python_speech_features as psf

from fhvae.errors import FhvaeError
from fhvae.io.kaldi_config import read_kaldi_config

BACKENDS = ("knf", "psf")
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman", "sine")


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi FBank options (field = option name with '-' as '_'); defaults are Kaldi's."""

    num_mel_bins: int = 80
    sample_frequency: float = 16000.0
    frame_length: float = 25.0          # ms
    frame_shift: float = 10.0           # ms
    dither: float = 1.0
    snip_edges: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0              # <= 0: offset from the Nyquist frequency
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    use_energy: bool = False
    energy_floor: float = 0.0
    raw_energy: bool = True
    use_log_fbank: bool = True
    use_power: bool = True
    channel: int = -1                   # compute-fbank-feats --channel: -1 = must be mono

    @property
    def window_size(self) -> int:
        return int(self.sample_frequency * 0.001 * self.frame_length)

    @property
    def window_shift(self) -> int:
        return int(self.sample_frequency * 0.001 * self.frame_shift)

    @property
    def dim(self) -> int:
        return self.num_mel_bins + int(self.use_energy)

    def num_frames(self, num_samples: int) -> int:
        """Kaldi's frame count for a signal of num_samples samples."""
        if self.snip_edges:
            if num_samples < self.window_size:
                return 0
            return 1 + (num_samples - self.window_size) // self.window_shift
        return (num_samples + self.window_shift // 2) // self.window_shift


def read_fbank_config(path: str | os.PathLike | None) -> FbankConfig:
    """Options from a Kaldi config file (`--name=value` per line, '#' comments).

    None gives the defaults. Unknown options and bad values raise FhvaeError naming file:line.
    """
    if path is None:
        return FbankConfig()
    values = read_kaldi_config(path, FbankConfig, "compute-fbank-feats FBank", "FBank config")
    config = FbankConfig(**values)
    if config.window_type not in WINDOW_TYPES:
        raise FhvaeError(f"{path}: --window-type={config.window_type} is not one of "
                         f"{', '.join(WINDOW_TYPES)}")
    if config.num_mel_bins < 3 or config.window_shift < 1 or config.window_size < 2:
        raise FhvaeError(f"{path}: unusable --num-mel-bins/--frame-length/--frame-shift")
    return config


def _knf_options(config: FbankConfig) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    frame = opts.frame_opts
    frame.samp_freq = config.sample_frequency
    frame.frame_length_ms = config.frame_length
    frame.frame_shift_ms = config.frame_shift
    frame.dither = config.dither
    frame.snip_edges = config.snip_edges
    frame.preemph_coeff = config.preemphasis_coefficient
    frame.remove_dc_offset = config.remove_dc_offset
    frame.window_type = config.window_type
    mel = opts.mel_opts
    mel.num_bins = config.num_mel_bins
    mel.low_freq = config.low_freq
    mel.high_freq = config.high_freq
    opts.use_energy = config.use_energy
    opts.energy_floor = config.energy_floor
    opts.raw_energy = config.raw_energy
    opts.use_log_fbank = config.use_log_fbank
    opts.use_power = config.use_power
    return opts


class FbankComputer:
    """Turns int16-scale mono samples into (T, dim) float32 features with one backend."""

    def __init__(self, config: FbankConfig, backend: str = "knf"):
        if backend not in BACKENDS:
            raise FhvaeError(f"unknown FBank backend '{backend}' (choose {' or '.join(BACKENDS)})")
        if backend == "psf" and (not config.snip_edges or config.use_energy):
            raise FhvaeError("the psf backend supports only --snip-edges=true "
                             "and --use-energy=false")
        self.config = config
        self.backend = backend
        self._knf_opts = _knf_options(config) if backend == "knf" else None

    def __call__(self, samples: np.ndarray, rate: int, utt: str) -> np.ndarray:
        """Features of one utterance; `utt` names it in errors. May have 0 rows."""
        config = self.config
        if rate != int(config.sample_frequency):
            raise FhvaeError(f"utterance '{utt}': sample rate {rate} Hz, but the FBank config "
                             f"says --sample-frequency={config.sample_frequency:g}")
        num_frames = config.num_frames(samples.shape[0])
        if num_frames == 0:
            return np.zeros((0, config.dim), dtype=np.float32)
        feats = self._knf(samples, num_frames) if self.backend == "knf" else \
            self._psf(samples, num_frames)
        if not np.isfinite(feats).all():
            raise FhvaeError(f"utterance '{utt}': NaN or inf in the features")
        return feats

    def _knf(self, samples: np.ndarray, num_frames: int) -> np.ndarray:
        fbank = knf.OnlineFbank(self._knf_opts)
        fbank.accept_waveform(self.config.sample_frequency, samples.astype(np.float32))
        fbank.input_finished()
        if fbank.num_frames_ready != num_frames:  # would mean our frame arithmetic is wrong
            raise FhvaeError(f"kaldi-native-fbank made {fbank.num_frames_ready} frames, "
                             f"expected {num_frames}")
        return np.stack([fbank.get_frame(i) for i in range(num_frames)]).astype(np.float32)

    def _psf(self, samples: np.ndarray, num_frames: int) -> np.ndarray:
        config = self.config
        rate = config.sample_frequency
        nfft = 1 << (config.window_size - 1).bit_length()
        high = config.high_freq if config.high_freq > 0 else rate / 2 + config.high_freq
        feats = psf.logfbank(samples, samplerate=rate, winlen=config.window_size / rate,
                             winstep=config.window_shift / rate, nfilt=config.num_mel_bins,
                             nfft=nfft, lowfreq=config.low_freq, highfreq=high,
                             preemph=config.preemphasis_coefficient)
        return feats[:num_frames].astype(np.float32)
