"""Recording conditions: additive noise at a given SNR, then a channel (Aurora-4-like).

Both are sequence-level factors: fixed for a whole utterance. All randomness comes from
the generator passed in, so an utterance's audio depends only on its own seed.
"""

from __future__ import annotations

import numpy as np

from synthcorpus.audio import fast_len

NOISE_TYPES = ("clean", "white", "pink", "brown", "babble")
CHANNELS = ("close", "telephone", "far")  # wideband close-talk, 300-3400 Hz, reverberant room
SNR_RANGE_DB = (5, 20)
BABBLE_TALKERS = 4
TELEPHONE_BAND_HZ = (300.0, 3400.0)
RT60_RANGE_S = (0.3, 0.7)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x ** 2))
    return x / rms if rms > 0 else x


def _fft_filter(x: np.ndarray, gain_of_hz, rate: int) -> np.ndarray:
    """Zero-phase filtering by a real gain per FFT bin (zero-padded to a fast length)."""
    size = fast_len(len(x))
    spectrum = np.fft.rfft(x, size)
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    return np.fft.irfft(spectrum * gain_of_hz(freqs), size)[: len(x)]


def coloured_noise(kind: str, n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) Gaussian noise with unit RMS."""
    white = rng.standard_normal(n)
    if kind == "white":
        return _unit_rms(white)
    exponent = {"pink": 0.5, "brown": 1.0}[kind]
    # Flat below 20 Hz so the DC region does not dominate the noise power.
    return _unit_rms(_fft_filter(white, lambda f: np.maximum(f, 20.0) ** -exponent, rate))


def babble(talkers: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of other synthetic talkers, each looped to `n` samples from a random offset."""
    mix = np.zeros(n)
    for talker in talkers:
        looped = np.resize(np.asarray(talker, dtype=np.float64), n + len(talker))
        offset = int(rng.integers(0, len(talker)))
        mix += _unit_rms(looped[offset:offset + n])
    return _unit_rms(mix)


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10 log10(P_speech / P_noise) = snr_db (whole utterance)."""
    speech_power = np.mean(speech ** 2)
    noise_power = np.mean(noise ** 2)
    scale = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return speech + scale * noise


def _room_impulse_response(rng: np.random.Generator, rate: int) -> np.ndarray:
    """Direct path plus an exponentially decaying diffuse tail of random RT60."""
    rt60 = rng.uniform(*RT60_RANGE_S)
    length = int(rt60 * rate)
    t = np.arange(length) / rate
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60)  # -60 dB at t = rt60
    tail[: int(0.002 * rate)] = 0.0  # first reflections arrive a few ms after the direct sound
    rir = 0.4 * tail / np.sqrt(np.sum(tail ** 2))
    rir[0] = 1.0
    return rir


def apply_channel(x: np.ndarray, channel: str, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Pass a (noisy) recording through a channel; output has the input's length and RMS."""
    if channel == "close":
        return x
    if channel == "telephone":
        low, high = TELEPHONE_BAND_HZ

        def band(f: np.ndarray) -> np.ndarray:  # raised-cosine edges 100 Hz wide
            rise = np.clip((f - (low - 100.0)) / 100.0, 0.0, 1.0)
            fall = np.clip(((high + 100.0) - f) / 100.0, 0.0, 1.0)
            return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))

        y = _fft_filter(x, band, rate)
    elif channel == "far":
        rir = _room_impulse_response(rng, rate)
        size = fast_len(len(x) + len(rir) - 1)
        y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    else:
        raise ValueError(f"unknown channel '{channel}'")
    return y * np.sqrt(np.mean(x ** 2) / max(np.mean(y ** 2), 1e-20))
