"""The whole i-vector baseline: front-end, UBM, extractor; training, extraction, save/load.

Stage 5 needs an i-vector system trained on data/train only, with Kaldi's semantics
(egs/sre08/v1/sid: train_diag_ubm.sh, train_ivector_extractor.sh, extract_ivectors.sh):
features -> diagonal UBM on subsampled frames -> pruned posteriors -> Baum-Welch stats ->
EM of the total-variability matrix -> posterior-mean i-vectors. The defaults below were
chosen on the dev set (local/tuning/ivector_dev.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from fhvae.errors import FhvaeError
from fhvae.features.vad import VadOptions
from fhvae.io.atomic import atomic_path
from fhvae.ivector.extractor import EmOptions, IvectorExtractor, em_iteration
from fhvae.ivector.features import FrontEndConfig, compute_features
from fhvae.ivector.stats import accumulate_stats
from fhvae.ivector.ubm import DiagUbm, train_ubm

log = logging.getLogger(__name__)

FORMAT = "fhvae-ivector-extractor-1"
# The arrays of each part of a system, by .npz key prefix: (attribute, class, fields).
PARTS = {"ubm_": ("ubm", DiagUbm, ("weights", "means", "variances")),
         "ie_": ("extractor", IvectorExtractor, ("means", "projection", "variances"))}
Progress = Callable[[str, int, int], None]      # (phase, done, total)


@dataclass(frozen=True)
class IvectorConfig:
    """Every setting of the system (saved with it)."""

    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    num_gauss: int = 256              # 256 x 200: lowest dev LDA + PLDA EER
    ivector_dim: int = 200            # (local/tuning/ivector_dev.md)
    ubm_iters: int = 8                # EM passes of the UBM
    ubm_subsample: int = 5            # UBM trains on every n-th frame (Kaldi --subsample)
    ubm_max_frames: int = 200000      # ... and at most this many of those (random subset)
    ubm_var_floor: float = 0.01       # UBM variance floor, x the data variance
    min_post: float = 0.025           # posterior pruning (Kaldi --min-post)
    num_gselect: int = 20             # Gaussian preselection per frame (Kaldi --num-gselect)
    em_iters: int = 10                # extractor EM iterations (Kaldi --num-iters)
    em: EmOptions = field(default_factory=EmOptions)
    seed: int = 777
    num_threads: int = 1              # BLAS threads

    def check(self) -> None:
        if self.num_gauss < 1 or self.ivector_dim < 1 or self.ubm_subsample < 1:
            raise FhvaeError("--num-gauss, --ivector-dim and --ubm-subsample must be >= 1")
        if self.em_iters < 0 or self.ubm_iters < 0 or not 0 <= self.min_post < 1:
            raise FhvaeError("--num-iters/--ubm-iters must be >= 0, --min-post in [0, 1)")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "IvectorConfig":
        values = json.loads(text)
        front_end = values.pop("front_end")
        front_end["vad_options"] = VadOptions(**front_end["vad_options"])
        return cls(front_end=FrontEndConfig(**front_end), em=EmOptions(**values.pop("em")),
                   **values)


@dataclass
class IvectorSystem:
    """A trained system: its config, raw input dimension, UBM and extractor."""

    config: IvectorConfig
    input_dim: int
    ubm: DiagUbm
    extractor: IvectorExtractor
    train_seconds: dict[str, float] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """One .npz (written atomically) holding every array and hyper-parameter."""
        arrays = {prefix + name: getattr(getattr(self, attr), name)
                  for prefix, (attr, _, names) in PARTS.items() for name in names}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, format=np.array(FORMAT), config=np.array(self.config.to_json()),
                     input_dim=np.array(self.input_dim),
                     train_seconds=np.array(json.dumps(self.train_seconds)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "IvectorSystem":
        path = Path(path)
        if not path.is_file():
            raise FhvaeError(f"{path}: no such i-vector extractor file")
        try:
            with np.load(path, allow_pickle=False) as npz:
                if str(npz["format"]) != FORMAT:
                    raise ValueError(f"format '{npz['format']}', expected '{FORMAT}'")
                parts = {attr: kind(*(np.asarray(npz[prefix + n], np.float64) for n in names))
                         for prefix, (attr, kind, names) in PARTS.items()}
                return cls(IvectorConfig.from_json(str(npz["config"])), int(npz["input_dim"]),
                           train_seconds=json.loads(str(npz["train_seconds"])), **parts)
        except Exception as err:  # numpy/json raise many types on a foreign or truncated file
            detail = str(err).splitlines()[0] if str(err) else "corrupt"
            raise FhvaeError(f"{path}: not an i-vector extractor ({type(err).__name__}: "
                             f"{detail})") from None


def check_dims(feats: Mapping[str, np.ndarray], expected: int | None, where: str) -> int:
    """The common column count of every (T, F) matrix; one-line error naming the first
    utterance that differs (or is not a non-empty matrix)."""
    for utt, mat in feats.items():
        if mat.ndim != 2 or mat.shape[0] == 0 or (expected is not None
                                                  and mat.shape[1] != expected):
            want = f"(T > 0, {expected})" if expected is not None else "(T > 0, F)"
            raise FhvaeError(f"{where}: utterance '{utt}' has shape {mat.shape}, "
                             f"expected {want}")
        expected = mat.shape[1] if expected is None else expected
    if expected is None:
        raise FhvaeError(f"{where}: no utterances")
    return expected


def _front_end(feats: Mapping[str, np.ndarray], cfg: FrontEndConfig,
               progress: Progress | None) -> Iterable[tuple[str, np.ndarray]]:
    for k, (utt, mat) in enumerate(feats.items()):
        if progress is not None:
            progress("features", k, len(feats))
        yield utt, compute_features(mat, cfg, utt)


def ubm_frames(processed: Mapping[str, np.ndarray], cfg: IvectorConfig) -> np.ndarray:
    """Every ubm_subsample-th frame of each utterance, then at most ubm_max_frames of
    them at random (seeded)."""
    frames = np.concatenate([x[::cfg.ubm_subsample] for x in processed.values()])
    if frames.shape[0] > cfg.ubm_max_frames > 0:
        rng = np.random.default_rng(cfg.seed + 1)
        frames = frames[np.sort(rng.choice(frames.shape[0], cfg.ubm_max_frames, replace=False))]
    return frames


def train_ivector_system(feats: Mapping[str, np.ndarray], cfg: IvectorConfig = IvectorConfig(),
                         progress: Progress | None = None) -> IvectorSystem:
    """Train front-end statistics, UBM and extractor on raw (T, F) FBank of each
    utterance (training speakers only). Seconds per phase go to the log and the system."""
    cfg.check()
    input_dim = check_dims(feats, None, "training features")
    cfg.front_end.check(input_dim)
    seconds: dict[str, float] = {}
    with threadpool_limits(cfg.num_threads):
        start = time.perf_counter()
        processed = {u: x.astype(np.float32) for u, x in _front_end(feats, cfg.front_end,
                                                                       progress)}
        seconds["features"] = time.perf_counter() - start
        start = time.perf_counter()
        frames = ubm_frames(processed, cfg)
        ubm = train_ubm(frames, cfg.num_gauss, cfg.ubm_iters, cfg.seed, cfg.ubm_var_floor,
                        progress=None if progress is None else
                        lambda it, _: progress("ubm", it + 1, cfg.ubm_iters))
        seconds["ubm"] = time.perf_counter() - start
        start = time.perf_counter()
        stats = accumulate_stats(ubm, processed.items(), cfg.min_post, cfg.num_gselect,
                                 second_order=True)
        del processed
        seconds["stats"] = time.perf_counter() - start
        start = time.perf_counter()
        extractor = IvectorExtractor.random_init(ubm.means, ubm.variances, cfg.ivector_dim,
                                                 cfg.seed)
        for it in range(cfg.em_iters):
            extractor, loglik = em_iteration(extractor, stats, cfg.em)
            log.info("extractor EM iteration %d: log-likelihood %.4f per frame", it,
                     loglik / stats.num_frames)
            if progress is not None:
                progress("extractor", it + 1, cfg.em_iters)
        seconds["extractor"] = time.perf_counter() - start
    log.info("i-vector training on %d utterances (%d frames after the front-end): %s",
             len(feats), int(stats.num_frames),
             ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return IvectorSystem(cfg, input_dim, ubm, extractor, seconds)


def extract_ivectors(system: IvectorSystem, feats: Mapping[str, np.ndarray],
                     progress: Progress | None = None) -> dict[str, np.ndarray]:
    """utt -> float32 i-vector (posterior mean, zero-mean unit prior) of raw (T, F) FBank."""
    check_dims(feats, system.input_dim, "features to extract")
    cfg = system.config
    with threadpool_limits(cfg.num_threads):
        start = time.perf_counter()
        stats = accumulate_stats(system.ubm, _front_end(feats, cfg.front_end, progress),
                                 cfg.min_post, cfg.num_gselect)
        ivectors = system.extractor.extract(stats)
    log.info("extracted %d i-vectors in %.1f s", len(stats.utts), time.perf_counter() - start)
    return {utt: vec.astype(np.float32) for utt, vec in zip(stats.utts, ivectors)}
