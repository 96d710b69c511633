"""The files of i-vector training in its exp dir, and where a killed run resumes.

  extractor.<n>.npz    the system after n EM iterations (0: UBM + random extractor); only
                       the latest is kept
  acc.<n>.<job>.npz    a job's accumulators of iteration n (removed once summed)
  extractor.npz        the system after the last iteration (what extraction reads)

Every file is written under a temporary name and renamed, so a file present is complete;
a run resumes after the latest model that the same options trained on the data as it is
now (Kaldi's train_ivector_extractor.sh resumes by --stage; this decides it from the
files). utils/train_ivector.sh names its files the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.datadir import DataDir
from fhvae.ivector.system import IvectorConfig, IvectorSystem

log = logging.getLogger(__name__)

FINAL = "extractor.npz"
_ITERATION = re.compile(r"extractor\.(\d+)\.npz")


def model_path(exp_dir: Path, iteration: int, cfg: IvectorConfig) -> Path:
    """The system after `iteration` EM iterations: extractor.npz after the last one."""
    return exp_dir / (FINAL if iteration == cfg.em_iters else f"extractor.{iteration}.npz")


def iteration_of(path: Path) -> int | None:
    """n of extractor.<n>.npz; None for another name."""
    match = _ITERATION.fullmatch(path.name)
    return int(match.group(1)) if match else None


def _same_training(saved: IvectorConfig, wanted: IvectorConfig) -> bool:
    """Whether a saved model was trained with `wanted` (the BLAS thread count aside)."""
    return dataclasses.replace(saved, num_threads=1) == dataclasses.replace(wanted,
                                                                           num_threads=1)


def _iterations_done(path: Path, data: DataDir, cfg: IvectorConfig) -> int | None:
    """EM iterations of the model at `path` if training with `cfg` on `data` can go on
    from it (same options, newer than feats.scp), else None."""
    done = iteration_of(path)
    done = cfg.em_iters if done is None else done
    if path.stat().st_mtime_ns <= data.feats_scp.stat().st_mtime_ns:
        return None
    try:
        saved = IvectorSystem.load(path).config
    except FhvaeError as err:
        log.warning("%s", err)
        return None
    return done if _same_training(saved, cfg) else None


def resume_point(exp_dir: Path, data: DataDir, cfg: IvectorConfig) -> int | None:
    """EM iterations done by the latest model in `exp_dir` that training with `cfg` on
    `data` can continue from (cfg.em_iters: nothing left), None when the UBM is still to
    train. Every other iteration file, every accumulator and temporary is removed."""
    if not data.feats_scp.is_file():
        raise FhvaeError(f"{data.feats_scp}: no such file")
    candidates = [p for p in exp_dir.glob("extractor.*.npz") if iteration_of(p) is not None]
    if (exp_dir / FINAL).is_file():
        candidates.append(exp_dir / FINAL)
    done: int | None = None
    for path in candidates:
        n = _iterations_done(path, data, cfg)
        if n is not None and (done is None or n > done):
            done = n
    keep = None if done is None else model_path(exp_dir, done, cfg)
    for path in candidates:
        if path.name != FINAL and path != keep:
            path.unlink()
    for path in (*exp_dir.glob("acc.*.npz"), *exp_dir.glob(".acc.*.npz.tmp*"),
                 *exp_dir.glob(".extractor.*npz.tmp*")):
        path.unlink()
    if done == cfg.em_iters:
        log.info("%s: already trained with these options", model_path(exp_dir, done, cfg))
    elif done is not None:
        log.info("%s: resuming after EM iteration %d of %d", model_path(exp_dir, done, cfg),
                 done, cfg.em_iters)
    return done


def save_iteration(exp_dir: Path, system: IvectorSystem, iteration: int) -> Path:
    """Write the system after `iteration` EM iterations, then remove the one before it
    and its accumulators (killed between the two, both stay: resume takes the newer)."""
    path = model_path(exp_dir, iteration, system.config)
    system.save(path)
    if iteration > 0:
        (exp_dir / f"extractor.{iteration - 1}.npz").unlink(missing_ok=True)
        for acc in exp_dir.glob(f"acc.{iteration - 1}.*.npz"):
            acc.unlink()
    return path
