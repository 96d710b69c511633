"""Front-end of the i-vector baseline, computed from the project's stored log-mel FBank.

Kaldi's speaker-ID recipes (egs/sre08/v1/sid) feed the UBM and the extractor with
`add-deltas | apply-cmvn-sliding --norm-vars=false --center=true --cmn-window=300 |
select-voiced-frames` over MFCCs. We start from the (T, bins) FBank of feats.scp
(compute-fbank-feats, use_energy=false) instead of re-reading audio: Kaldi's MFCC *is* a
DCT of the same floored log mel energies, so with the same mel options

  mfcc = lifter * (DCT-II_orthonormal(fbank)[:num_ceps])      (c0 from the DCT, as
                                                               compute-mfcc --use-energy=false)

is exact up to float rounding. Every step is optional (FrontEndConfig) so dev can compare
raw FBank against MFCC + deltas, with and without sliding CMN and VAD.

VAD is decided on the raw FBank (fhvae.features.vad: the project's energy VAD) *before*
deltas and CMN, and frames are dropped *after* them, as in Kaldi's pipeline, so deltas and
the CMN window still see the silence around speech.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.fft import dct

from fhvae.errors import FhvaeError
from fhvae.features.vad import VadOptions, compute_vad, frame_log_energy

log = logging.getLogger(__name__)

FEATURE_TYPES = ("fbank", "mfcc")


def recipe_vad_options() -> VadOptions:
    """conf/vad.conf's values (Kaldi's sre16/voxceleb settings), tuned for FBank energy."""
    return VadOptions(vad_energy_threshold=5.5, vad_energy_mean_scale=0.5,
                      vad_frames_context=2, vad_proportion_threshold=0.12)


@dataclass(frozen=True)
class FrontEndConfig:
    """Which steps turn raw FBank into i-vector features (Kaldi option names)."""

    feature_type: str = "mfcc"       # fbank: the stored log-mel as is; mfcc: its DCT
    num_ceps: int = 20               # compute-mfcc --num-ceps (sid recipes use 20)
    cepstral_lifter: float = 22.0    # compute-mfcc --cepstral-lifter (0: none)
    delta_order: int = 2             # add-deltas --delta-order (0: no deltas)
    delta_window: int = 2            # add-deltas --delta-window
    sliding_cmn: bool = True         # apply-cmvn-sliding --norm-vars=false --center=true
    cmn_window: int = 300            # --cmn-window
    vad: bool = False                # energy VAD frame selection (select-voiced-frames); off:
                                     # no better on dev (local/tuning/ivector_dev.md)
    vad_options: VadOptions = field(default_factory=recipe_vad_options)

    def check(self, input_dim: int | None = None) -> None:
        """Reject impossible settings with one line (before any work is done)."""
        if self.feature_type not in FEATURE_TYPES:
            raise FhvaeError(f"--feature-type must be one of {', '.join(FEATURE_TYPES)}, "
                             f"not '{self.feature_type}'")
        if self.delta_order < 0 or self.delta_window < 1 or self.cmn_window < 1:
            raise FhvaeError("--delta-order must be >= 0, --delta-window and --cmn-window >= 1")
        if self.feature_type == "mfcc" and not 1 <= self.num_ceps <= (input_dim or 10**9):
            raise FhvaeError(f"--num-ceps={self.num_ceps} must be in 1..{input_dim} "
                             f"(the number of mel bins)")
        self.vad_options.check("i-vector front-end VAD options")


def dct_matrix(num_ceps: int, num_bins: int) -> np.ndarray:
    """(num_ceps, num_bins) rows of the orthonormal DCT-II, the matrix compute-mfcc uses."""
    return dct(np.eye(num_bins), type=2, norm="ortho", axis=0)[:num_ceps]


def lifter_coefficients(num_ceps: int, lifter: float) -> np.ndarray:
    """Kaldi's (HTK's) sinusoidal cepstral lifter, 1 + Q/2 sin(pi i / Q); ones when Q == 0."""
    if lifter == 0:
        return np.ones(num_ceps)
    i = np.arange(num_ceps)
    return 1.0 + 0.5 * lifter * np.sin(np.pi * i / lifter)


def mfcc_from_fbank(fbank: np.ndarray, num_ceps: int, lifter: float = 22.0) -> np.ndarray:
    """(T, num_ceps) MFCC of (T, bins) log-mel FBank (use_energy=false: c0 from the DCT)."""
    fbank = np.asarray(fbank, dtype=np.float64)
    basis = dct_matrix(num_ceps, fbank.shape[1]) * lifter_coefficients(num_ceps, lifter)[:, None]
    return fbank @ basis.T


def delta_kernels(order: int, window: int) -> list[np.ndarray]:
    """Weights of frames t-k..t+k for each delta order: the regression window convolved
    with the previous order's (order 2 spans 2 * window each side), as add-deltas does."""
    taps = np.arange(-window, window + 1, dtype=np.float64)
    regression = taps / (taps ** 2).sum()
    kernels = [np.ones(1)]
    for _ in range(order):
        kernels.append(np.convolve(kernels[-1], regression))
    return kernels


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """(T, D*(order+1)): features then their deltas; a frame index outside the utterance
    reads the nearest edge frame, for each order's whole filter (add-deltas' edge rule)."""
    feats = np.asarray(feats, dtype=np.float64)
    num_frames = feats.shape[0]
    out = [feats]
    for kernel in delta_kernels(order, window)[1:]:
        half = (len(kernel) - 1) // 2
        index = np.clip(np.arange(num_frames)[:, None] + np.arange(-half, half + 1), 0,
                        num_frames - 1)
        out.append(np.einsum("tkd,k->td", feats[index], kernel))
    return np.concatenate(out, axis=1)


def sliding_window_bounds(num_frames: int, cmn_window: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of the centred CMN window of each frame: cmn_window frames, with frame t
    at offset cmn_window // 2, pushed inside the utterance at either edge (never shrunk
    unless the utterance itself is shorter)."""
    start = np.arange(num_frames) - cmn_window // 2
    end = start + cmn_window
    end = np.where(start < 0, end - start, end)
    start = np.maximum(start, 0)
    start = np.where(end > num_frames, np.maximum(start - (end - num_frames), 0), start)
    return start, np.minimum(end, num_frames)


def sliding_cmn(feats: np.ndarray, cmn_window: int = 300) -> np.ndarray:
    """apply-cmvn-sliding --norm-vars=false --center=true: subtract each frame's window mean."""
    feats = np.asarray(feats, dtype=np.float64)
    start, end = sliding_window_bounds(feats.shape[0], cmn_window)
    cumulative = np.concatenate([np.zeros((1, feats.shape[1])), np.cumsum(feats, axis=0)])
    means = (cumulative[end] - cumulative[start]) / (end - start)[:, None]
    return feats - means


def voiced_frames(fbank: np.ndarray, opts: VadOptions) -> np.ndarray:
    """(T,) bool: the project's energy-VAD decision on raw FBank."""
    return compute_vad(frame_log_energy(fbank), opts) > 0


def compute_features(fbank: np.ndarray, cfg: FrontEndConfig, utt: str = "?") -> np.ndarray:
    """(T', dim) float64 i-vector features of one utterance's raw (T, bins) FBank.

    With VAD on and no voiced frame, every frame is kept (with a warning) so each
    utterance still gets an i-vector (Kaldi's select-voiced-frames would drop it)."""
    fbank = np.asarray(fbank)
    if fbank.ndim != 2 or fbank.shape[0] == 0:
        raise FhvaeError(f"utterance '{utt}': expected a non-empty (frames, bins) matrix, "
                         f"got shape {fbank.shape}")
    feats = (mfcc_from_fbank(fbank, cfg.num_ceps, cfg.cepstral_lifter)
             if cfg.feature_type == "mfcc" else fbank.astype(np.float64))
    if cfg.delta_order:
        feats = add_deltas(feats, cfg.delta_order, cfg.delta_window)
    if cfg.sliding_cmn:
        feats = sliding_cmn(feats, cfg.cmn_window)
    if cfg.vad:
        keep = voiced_frames(fbank, cfg.vad_options)
        if keep.any():
            feats = feats[keep]
        else:
            log.warning("utterance '%s': no voiced frame, using all %d frames", utt,
                        feats.shape[0])
    return feats
