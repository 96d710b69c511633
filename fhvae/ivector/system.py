"""The i-vector system of stage 5: its settings, the file that holds it, extraction.

Stage 5 needs an i-vector system trained on data/train only, with Kaldi's semantics
(egs/sre08/v1/sid: train_diag_ubm.sh, train_ivector_extractor.sh, extract_ivectors.sh):
features -> diagonal UBM on subsampled frames -> pruned posteriors -> Baum-Welch stats ->
EM of the total-variability matrix -> posterior-mean i-vectors. Training is in
fhvae/ivector/training.py; training and extraction read one utterance at a time. The
defaults below were chosen on the dev set (local/tuning/ivector_dev.md)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from fhvae.errors import FhvaeError
from fhvae.features.vad import VadOptions
from fhvae.io.atomic import atomic_path
from fhvae.io.datadir import DataDir
from fhvae.ivector.em import EmOptions
from fhvae.ivector.extractor import IvectorExtractor
from fhvae.ivector.features import FrontEndConfig
from fhvae.ivector.reader import processed_feats
from fhvae.ivector.stats import stats_blocks
from fhvae.ivector.ubm import DiagUbm

FORMAT = "fhvae-ivector-extractor-1"
# The arrays of each part of a system, by .npz key prefix: (attribute, class, fields).
PARTS = {"ubm_": ("ubm", DiagUbm, ("weights", "means", "variances")),
         "ie_": ("extractor", IvectorExtractor, ("means", "projection", "variances"))}


@dataclass(frozen=True)
class IvectorConfig:
    """Every setting of the system (saved with it)."""

    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    num_gauss: int = 256              # 256 x 200: lowest dev LDA + PLDA EER
    ivector_dim: int = 200            # (local/tuning/ivector_dev.md)
    ubm_iters: int = 8                # EM passes of the UBM
    ubm_subsample: int = 5            # UBM trains on every n-th frame (Kaldi --subsample)
    ubm_max_frames: int = 200000      # ... and at most this many of those (random subset)
    ubm_max_utts: int = 10000         # ... of at most this many utterances (random subset;
                                      # more than the built-in data/train's 2,400)
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
        if self.ubm_max_frames < 0 or self.ubm_max_utts < 0:
            raise FhvaeError("--ubm-max-frames and --ubm-max-utts must be >= 0 (0: all)")
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
    def load(cls, path: str | os.PathLike, num_threads: int | None = None) -> "IvectorSystem":
        """The system saved at `path`; with `num_threads`, its BLAS threads changed."""
        path = Path(path)
        if not path.is_file():
            raise FhvaeError(f"{path}: no such i-vector extractor file")
        try:
            with np.load(path, allow_pickle=False) as npz:
                if str(npz["format"]) != FORMAT:
                    raise ValueError(f"format '{npz['format']}', expected '{FORMAT}'")
                parts = {attr: kind(*(np.asarray(npz[prefix + n], np.float64) for n in names))
                         for prefix, (attr, kind, names) in PARTS.items()}
                config = IvectorConfig.from_json(str(npz["config"]))
                seconds = json.loads(str(npz["train_seconds"]))
                dim = int(npz["input_dim"])
        except Exception as err:  # numpy/json raise many types on a foreign or truncated file
            detail = str(err).splitlines()[0] if str(err) else "corrupt"
            raise FhvaeError(f"{path}: not an i-vector extractor ({type(err).__name__}: "
                             f"{detail})") from None
        if num_threads is not None:
            config = dataclasses.replace(config, num_threads=num_threads)
        return cls(config, dim, train_seconds=seconds, **parts)


def extract_ivectors(system: IvectorSystem, data: DataDir,
                     rows: AbstractSet[int] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, float32 i-vector: posterior mean under a zero-mean unit prior) of the raw
    FBank of every utterance of `data` (or of its 0-based feats.scp lines `rows`), in
    feats.scp order, one block of statistics at a time."""
    cfg = system.config
    feats = processed_feats(data, cfg.front_end, system.input_dim, rows=rows)
    with threadpool_limits(cfg.num_threads):
        for stats in stats_blocks(system.ubm, feats, cfg.min_post, cfg.num_gselect):
            for utt, vec in zip(stats.utts, system.extractor.extract(stats)):
                yield utt, vec.astype(np.float32)
