#!/usr/bin/env python3
"""Training-condition augmentation for the FHVAE: every utterance of a data dir rendered
through a random *generic* recording condition, as new sequences <utt>-aug<k> of the same
speaker (the FHVAE is unsupervised: a copy is one more sequence with its own z2).

Usage: perturb_conditions.py <src-data> <dst-data> <wav-dir> <copies> <seed>

Per copy, a channel (p = 0.75: one or two of random 7-point EQ of +-12 dB, band limits
50-400 Hz / 2.5-7.5 kHz, reverb of RT60 0.2-1.2 s, 6-10 bit re-quantisation, tanh
clipping) and/or additive noise (p = 0.75: Gaussian with a random power slope f^-b,
b in [-1, 2.5], band-pass noise of 0.5-2 octaves, or slowly modulated coloured noise) at
0-20 dB SNR; at least one of the two. None of them is one of the unseen set's conditions
(synthcorpus.conditions.UNSEEN_*), but families overlap (EQ vs tilt, band limits and
quantisation vs the 8 kHz codec, long reverb vs the hall), as they would for any generic
augmentation. Writes wav.scp, utt2spk and utt2cond (what was applied) of <dst-data>.
"""

from __future__ import annotations

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def _fft_filter(x: np.ndarray, gain_of_hz) -> np.ndarray:
    n = 1 << (len(x) - 1).bit_length()
    spectrum = np.fft.rfft(x, n)
    return np.fft.irfft(spectrum * gain_of_hz(np.fft.rfftfreq(n, 1 / RATE)), n)[: len(x)]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x ** 2))
    return x / rms if rms > 0 else x


def noise(n: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    kind = rng.choice(["coloured", "band", "modulated"])
    white = rng.standard_normal(n)
    if kind == "band":
        centre = np.exp(rng.uniform(np.log(100), np.log(6000)))
        octaves = rng.uniform(0.5, 2.0)
        lo, hi = centre * 2 ** (-octaves / 2), centre * 2 ** (octaves / 2)
        return kind, _unit_rms(_fft_filter(white, lambda f: ((f >= lo) & (f <= hi)).astype(float)))
    slope = rng.uniform(-1.0, 2.5)
    x = _fft_filter(white, lambda f: np.maximum(f, 20.0) ** (-slope / 2))
    if kind == "modulated":
        rate, depth = rng.uniform(0.5, 8.0), rng.uniform(0.3, 1.0)
        t = np.arange(n) / RATE
        x = x * (1 - depth * 0.5 * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))))
    return kind, _unit_rms(x)


def eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    points = np.log(np.array([50, 150, 400, 1000, 2500, 5000, 8000.0]))
    gains = rng.uniform(-12, 12, len(points))
    return _fft_filter(x, lambda f: 10 ** (np.interp(np.log(np.maximum(f, 20)), points, gains) / 20))


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    high_pass = np.exp(rng.uniform(np.log(50), np.log(400)))
    low_pass = np.exp(rng.uniform(np.log(2500), np.log(7500)))
    return _fft_filter(x, lambda f: ((f >= high_pass) & (f <= low_pass)).astype(float))


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rt60 = rng.uniform(0.2, 1.2)
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    tail = rng.standard_normal(length) * 10 ** (-3 * t / rt60)
    tail[: int(0.002 * RATE)] = 0
    rir = rng.uniform(0.2, 0.8) * tail / np.sqrt(np.sum(tail ** 2))
    rir[0] = 1
    n = 1 << (len(x) + length - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(rir, n), n)[: len(x)]


def quantise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bits = int(rng.integers(6, 11))
    peak = np.max(np.abs(x)) or 1.0
    step = 2.0 / (2 ** bits)
    return np.round(x / peak / step) * step * peak


def clip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    drive = rng.uniform(2, 10)
    peak = np.max(np.abs(x)) or 1.0
    return np.tanh(drive * x / peak) / np.tanh(drive) * peak


CHANNELS = {"eq": eq, "band": band_limit, "reverb": reverb, "quant": quantise, "clip": clip}


def render(job: tuple[str, str, str, tuple[int, int, int]]) -> tuple[str, str]:
    """One copy: (new utterance id, what was applied); the wav goes to job[2]."""
    utt, src, dst, seed = job
    rng = np.random.default_rng(seed)
    x, rate = sf.read(src, dtype="float64")
    if rate != RATE:
        raise SystemExit(f"{src}: {rate} Hz, expected {RATE}")
    use_noise, use_channel = rng.uniform(size=2) < 0.75
    if not (use_noise or use_channel):
        use_noise = use_channel = True
    applied = []
    if use_channel:
        names = rng.choice(list(CHANNELS), size=int(rng.integers(1, 3)), replace=False)
        for name in names:
            x = CHANNELS[name](x, rng)
        applied.append("+".join(names))
    if use_noise:
        kind, added = noise(len(x), rng)
        snr = rng.uniform(0, 20)
        x = x + np.sqrt(np.mean(x ** 2) / 10 ** (snr / 10)) * added
        applied.append(f"{kind}@{snr:.0f}")
    peak = np.max(np.abs(x))
    if peak > 0.99:
        x = x * 0.99 / peak
    x = x + 1e-4 * rng.standard_normal(len(x))
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, x, RATE, subtype="PCM_16")
    return utt, " ".join(applied)


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    wav_dir, copies, seed = Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    wavs = dict(line.split(None, 1) for line in (src / "wav.scp").read_text().splitlines())
    utt2spk = dict(line.split() for line in (src / "utt2spk").read_text().splitlines())
    jobs = [(f"{utt}-aug{k}", wavs[utt].strip(), str(wav_dir / f"{utt}-aug{k}.wav"), (seed, i, k))
            for i, utt in enumerate(sorted(wavs)) for k in range(1, copies + 1)]
    with Pool(2) as pool:
        applied = dict(pool.imap_unordered(render, jobs, chunksize=8))
    dst.mkdir(parents=True, exist_ok=True)
    keys = sorted(applied)
    (dst / "wav.scp").write_text("".join(f"{u} {wav_dir.resolve()}/{u}.wav\n" for u in keys))
    (dst / "utt2spk").write_text("".join(f"{u} {utt2spk[u.rsplit('-aug', 1)[0]]}\n" for u in keys))
    (dst / "utt2cond").write_text("".join(f"{u} {applied[u]}\n" for u in keys))
    print(len(keys), "utterances")


if __name__ == "__main__":
    main()
