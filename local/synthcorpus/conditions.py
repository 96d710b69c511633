"""Recording conditions: additive noise at a given SNR, then a channel (Aurora-4-like).

Both are sequence-level factors: fixed for a whole utterance. All randomness comes from
the generator passed in, so an utterance's audio depends only on its own seed.

The UNSEEN_* noises and channels are used by the unseen-conditions evaluation set only:
mains hum with harmonics, noise with the utterance's own long-term spectrum, intermittent
music-like tones; a 6-bit mu-law codec at 8 kHz, a treble-tilted microphone and a large
hall (RT60 1.0-1.6 s).
"""

from __future__ import annotations

import numpy as np

from synthcorpus.audio import fast_len, resample

NOISE_TYPES = ("clean", "white", "pink", "brown", "babble")
CHANNELS = ("close", "telephone", "far")  # wideband close-talk, 300-3400 Hz, reverberant room
SNR_RANGE_DB = (5, 20)
BABBLE_TALKERS = 4
TELEPHONE_BAND_HZ = (300.0, 3400.0)
RT60_RANGE_S = (0.3, 0.7)

UNSEEN_NOISE_TYPES = ("hum", "speech_shaped", "tones")
UNSEEN_CHANNELS = ("codec", "tilt", "hall")
HUM_MAINS_HZ = (50, 60)
HUM_HARMONICS = 8  # amplitude 1/k for harmonic k
TONE_NOTE_S = (0.1, 0.4)  # note length; a gap of 0.05-0.3 s follows each note
TONE_MIDI = (57, 81)  # A3 (220 Hz) to A5 (880 Hz), equal temperament
CODEC_RATE = 8000
CODEC_BITS = 6
MU_LAW = 255.0
TILT_DB_PER_OCTAVE = 6.0  # above TILT_KNEE_HZ, flat below
TILT_KNEE_HZ = 250.0
HALL_RT60_RANGE_S = (1.0, 1.6)


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


def hum(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and its harmonics (amplitude 1/k, random phases), unit RMS."""
    f0 = HUM_MAINS_HZ[rng.integers(len(HUM_MAINS_HZ))]
    t = np.arange(n) / rate
    k = np.arange(1, HUM_HARMONICS + 1)
    phases = rng.uniform(0, 2 * np.pi, HUM_HARMONICS)
    return _unit_rms(np.sum(np.sin(2 * np.pi * f0 * np.outer(k, t) + phases[:, None]) / k[:, None],
                            axis=0))


def speech_shaped(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stationary noise with the utterance's own long-term spectrum (random phases)."""
    size = fast_len(len(speech))
    magnitude = np.abs(np.fft.rfft(speech, size))
    phases = np.exp(2j * np.pi * rng.uniform(size=magnitude.size))
    return _unit_rms(np.fft.irfft(magnitude * phases, size)[: len(speech)])


def tones(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Intermittent music-like notes (3 harmonics, raised-cosine envelope) with gaps."""
    out = np.zeros(n)
    start = int(rng.uniform(0.0, 0.3) * rate)
    while start < n:
        length = int(rng.uniform(*TONE_NOTE_S) * rate)
        f0 = 440.0 * 2.0 ** ((rng.integers(TONE_MIDI[0], TONE_MIDI[1] + 1) - 69) / 12)
        t = np.arange(length) / rate
        note = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in (1, 2, 3))
        note *= 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
        end = min(n, start + length)
        out[start:end] += note[: end - start]
        start = end + int(rng.uniform(0.05, 0.3) * rate)
    return _unit_rms(out)


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


def make_noise(kind: str, speech: np.ndarray, talkers: list[np.ndarray],
               rng: np.random.Generator, rate: int) -> np.ndarray:
    """Unit-RMS noise of `kind` as long as `speech` (babble from the given talkers)."""
    if kind == "babble":
        return babble(talkers, len(speech), rng)
    if kind == "hum":
        return hum(len(speech), rng, rate)
    if kind == "speech_shaped":
        return speech_shaped(speech, rng)
    if kind == "tones":
        return tones(len(speech), rng, rate)
    return coloured_noise(kind, len(speech), rng, rate)


def _room_impulse_response(rng: np.random.Generator, rate: int,
                           rt60_range: tuple[float, float] = RT60_RANGE_S) -> np.ndarray:
    """Direct path plus an exponentially decaying diffuse tail of random RT60."""
    rt60 = rng.uniform(*rt60_range)
    length = int(rt60 * rate)
    t = np.arange(length) / rate
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60)  # -60 dB at t = rt60
    tail[: int(0.002 * rate)] = 0.0  # first reflections arrive a few ms after the direct sound
    rir = 0.4 * tail / np.sqrt(np.sum(tail ** 2))
    rir[0] = 1.0
    return rir


def _mu_law_codec(x: np.ndarray, rate: int) -> np.ndarray:
    """Down to CODEC_RATE, mu-law quantised to CODEC_BITS bits (peak at full scale), back up."""
    narrow = resample(x, rate, CODEC_RATE)
    peak = max(float(np.max(np.abs(narrow))), 1e-20)
    compressed = np.sign(narrow) * np.log1p(MU_LAW * np.abs(narrow) / peak) / np.log1p(MU_LAW)
    steps = 2 ** (CODEC_BITS - 1) - 1  # 2^bits - 1 levels, symmetric around 0
    levels = np.round(compressed * steps) / steps
    decoded = np.sign(levels) * np.expm1(np.abs(levels) * np.log1p(MU_LAW)) / MU_LAW * peak
    y = resample(decoded, CODEC_RATE, rate)  # one sample short when len(x) is odd
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


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
    elif channel == "codec":
        y = _mu_law_codec(x, rate)
    elif channel == "tilt":
        slope = TILT_DB_PER_OCTAVE / (20.0 * np.log10(2.0))  # amplitude exponent per octave
        y = _fft_filter(x, lambda f: (np.maximum(f, TILT_KNEE_HZ) / TILT_KNEE_HZ) ** slope, rate)
    elif channel in ("far", "hall"):
        rir = _room_impulse_response(rng, rate,
                                     RT60_RANGE_S if channel == "far" else HALL_RT60_RANGE_S)
        size = fast_len(len(x) + len(rir) - 1)
        y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    else:
        raise ValueError(f"unknown channel '{channel}'")
    return y * np.sqrt(np.mean(x ** 2) / max(np.mean(y ** 2), 1e-20))
