"""Resampling and 16-bit WAV writing, numpy only (deterministic, and keeps workers small).

Workers fork once per utterance (see espeak.py); without scipy loaded a fork is several
times cheaper, so the few signal operations needed here are done with numpy FFTs.
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np

from fhvae.io.atomic import atomic_path

_WAV_HEADER_BYTES = 44


def fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (FFTs of such lengths are fast; of primes they are not)."""
    best = 1 << max(0, (n - 1).bit_length())  # the next power of two
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35
            while p235 < n:
                p235 *= 2
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def resampled_length(num_samples: int, rate_in: int, rate_out: int) -> int:
    """Length of `resample`'s output (the alignment uses the same rounding)."""
    return round(num_samples * rate_out / rate_in)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling by truncating/padding the spectrum (float64 output).

    A raised-cosine taper over the top 5% of the kept band avoids ringing and makes the
    Nyquist bin zero. The input is zero-padded to a fast FFT length whose output length
    is whole (a multiple of rate_in / gcd), which also keeps the circular method from
    wrapping the end of the signal onto its start.
    """
    n_in = len(x)
    n_out = resampled_length(n_in, rate_in, rate_out)
    step = math.gcd(rate_in, rate_out)
    down, up = rate_in // step, rate_out // step
    blocks = fast_len(-(-(n_in + down) // down))
    n_pad, n_pad_out = blocks * down, blocks * up
    spectrum = np.fft.rfft(np.asarray(x, dtype=np.float64), n_pad)
    n_bins = n_pad_out // 2 + 1
    kept = np.zeros(n_bins, dtype=np.complex128)
    common = min(n_bins, len(spectrum))
    kept[:common] = spectrum[:common]
    cutoff_hz = min(rate_in, rate_out) / 2
    freqs = np.arange(n_bins) * rate_out / n_pad_out
    edge = 0.95 * cutoff_hz
    taper = np.clip((cutoff_hz - freqs) / (cutoff_hz - edge), 0.0, 1.0)
    kept *= 0.5 - 0.5 * np.cos(np.pi * taper)
    return np.fft.irfft(kept, n_pad_out)[:n_out] * (n_pad_out / n_pad)


def write_wav(path: str | os.PathLike, x: np.ndarray, rate: int) -> None:
    """Write float samples in [-1, 1] as a mono 16-bit PCM WAV, atomically."""
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())


def complete_wav_length(path: str | os.PathLike, rate: int) -> int | None:
    """Sample count of a complete mono 16-bit WAV at `rate`, else None (missing/truncated)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            frames = wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return None
    if shape != (1, 2, rate) or path.stat().st_size != _WAV_HEADER_BYTES + 2 * frames:
        return None
    return frames
