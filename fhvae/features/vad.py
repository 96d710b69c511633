"""Energy-based voice activity detection, the decision of Kaldi's compute-vad.

Kaldi thresholds column 0 of MFCCs (the frame log-energy). Our FBank has no energy
column, so the frame log-energy here is log(sum over mel bins of exp(fbank)): the log of
the frame's total mel-filterbank energy. For every utterance:

  threshold = vad_energy_threshold + vad_energy_mean_scale * mean(log-energy)
  voiced[t] = 1 if, among the frames t-context..t+context that exist, at least
              vad_proportion_threshold of them have log-energy > threshold, else 0

with Kaldi's option names and defaults, compared in single precision as Kaldi does (so a
proportion of exactly e.g. 3 of 5 frames decides the same way). Decisions are written as
float vectors of 0/1, one per frame, readable by kaldiio and Kaldi's copy-vector.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.kaldi_config import read_kaldi_config
from fhvae.io.tables import read_scp, write_table
from fhvae.progress import progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VadOptions:
    """compute-vad's options, with its defaults."""

    vad_energy_threshold: float = 5.0
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 0
    vad_proportion_threshold: float = 0.6

    def check(self, where: str) -> None:
        """Kaldi asserts these; here they are one-line errors naming the config."""
        if self.vad_energy_mean_scale < 0:
            raise FhvaeError(f"{where}: --vad-energy-mean-scale must be >= 0")
        if self.vad_frames_context < 0:
            raise FhvaeError(f"{where}: --vad-frames-context must be >= 0")
        if not 0 < self.vad_proportion_threshold < 1:
            raise FhvaeError(f"{where}: --vad-proportion-threshold must be in (0, 1)")


def read_vad_config(path: str | os.PathLike | None) -> VadOptions:
    """Options from a Kaldi config file (`--name=value` lines, '#' comments); None: defaults."""
    if path is None:
        return VadOptions()
    values = read_kaldi_config(path, VadOptions, "compute-vad", "VAD config")
    options = VadOptions(**values)
    options.check(str(path))
    return options


def frame_log_energy(fbank: np.ndarray) -> np.ndarray:
    """(T,) log of the total mel energy of each frame of a (T, bins) log-mel FBank matrix."""
    fbank = np.asarray(fbank, dtype=np.float64)
    peak = fbank.max(axis=1, keepdims=True)
    return (peak[:, 0] + np.log(np.exp(fbank - peak).sum(axis=1))).astype(np.float32)


def compute_vad(log_energy: np.ndarray, opts: VadOptions) -> np.ndarray:
    """(T,) float32 0/1 voicing decisions for one utterance's frame log-energies."""
    energy = np.asarray(log_energy, dtype=np.float32)
    num_frames = energy.shape[0]
    if num_frames == 0:
        return np.zeros(0, np.float32)
    threshold = np.float32(opts.vad_energy_threshold)
    if opts.vad_energy_mean_scale != 0:
        threshold += np.float32(opts.vad_energy_mean_scale * energy.mean(dtype=np.float64))
    above = np.concatenate([[0], np.cumsum(energy > threshold)])
    t = np.arange(num_frames)
    lo = np.maximum(t - opts.vad_frames_context, 0)
    hi = np.minimum(t + opts.vad_frames_context + 1, num_frames)
    num = above[hi] - above[lo]
    den = (hi - lo).astype(np.float32) * np.float32(opts.vad_proportion_threshold)
    return (num >= den).astype(np.float32)


@dataclass
class VadStats:
    """What one job decided, as compute-vad logs it."""

    utterances: int = 0
    unvoiced: int = 0          # utterances with no voiced frame (still written, as Kaldi)
    empty: int = 0             # utterances with no frames (not written)
    frames: int = 0
    voiced: int = 0

    @property
    def voiced_fraction(self) -> float:
        return self.voiced / self.frames if self.frames else 0.0


def compute_vad_job(feats_scp: str | os.PathLike, ark: str | os.PathLike,
                    scp: str | os.PathLike, opts: VadOptions) -> VadStats:
    """Decisions for every utterance of feats_scp into ark+scp (absolute ark path, temporary
    names renamed only when complete, so a failed job leaves no scp)."""
    stats = VadStats()

    def decisions() -> Iterator[tuple[str, np.ndarray]]:
        for utt, feats in progress(read_scp(feats_scp), "vad", unit="utt"):
            if feats.ndim != 2 or feats.shape[0] == 0:
                logger.warning("%s: utterance '%s' has no feature frames; no VAD written",
                               feats_scp, utt)
                stats.empty += 1
                continue
            voiced = compute_vad(frame_log_energy(feats), opts)
            stats.utterances += 1
            stats.frames += voiced.shape[0]
            stats.voiced += int(voiced.sum())
            if not voiced.any():
                logger.warning("no frames were judged voiced for utterance '%s'", utt)
                stats.unvoiced += 1
            yield utt, voiced

    write_table(ark, scp, decisions())
    logger.info("%s: VAD for %d utterances (%d empty, %d with no voiced frame); proportion "
                "of voiced frames %.4f over %d frames", feats_scp, stats.utterances,
                stats.empty, stats.unvoiced, stats.voiced_fraction, stats.frames)
    return stats
