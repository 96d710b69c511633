"""Training the i-vector system without holding the training set, as Kaldi's
train_diag_ubm.sh + train_ivector_extractor.sh do:

  init_system      the diagonal UBM on a bounded random subset of the utterances (at most
                   ubm_max_utts, then at most ubm_max_frames of their subsampled frames),
                   and the randomly initialised extractor;
  accumulate_data  one job's E-step: its utterances streamed through the front end, the UBM
                   alignment and the extractor into fixed-size accumulators (every EM
                   iteration reads the data again, as Kaldi's does);
  update_system    the jobs' accumulators summed, then the M-step.

Memory grows with the model and the UBM caps, not with the number of utterances. With
data/train below both caps every frame a whole-set run saw is seen, chosen the same way,
so the result is that of holding the set, up to float summation order.
`train_ivector_system` runs all of it in one process, resuming in its exp dir;
utils/train_ivector.sh runs the E-step as --nj jobs through $cmd.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Iterable

import numpy as np
from threadpoolctl import threadpool_limits

from fhvae.io.datadir import DataDir
from fhvae.ivector.em import EmAccumulators, accumulate, em_update
from fhvae.ivector.extractor import IvectorExtractor
from fhvae.ivector.reader import processed_feats
from fhvae.ivector.resume import model_path, resume_point, save_iteration
from fhvae.ivector.stats import stats_blocks
from fhvae.ivector.system import IvectorConfig, IvectorSystem
from fhvae.ivector.ubm import train_ubm

log = logging.getLogger(__name__)

TRAIN_DTYPE = np.float32   # front-end features are rounded to float32 for training


def ubm_rows(num_utts: int, cfg: IvectorConfig) -> set[int] | None:
    """The feats.scp lines (0-based) the UBM reads: at most cfg.ubm_max_utts of `num_utts`
    (0: all), drawn from the seed; None for all of them."""
    if cfg.ubm_max_utts == 0 or num_utts <= cfg.ubm_max_utts:
        return None
    rng = np.random.default_rng(cfg.seed + 2)
    return set(rng.choice(num_utts, cfg.ubm_max_utts, replace=False).tolist())


def ubm_frames(data: DataDir, rows: set[int] | None, cfg: IvectorConfig, dim: int
               ) -> np.ndarray:
    """Every ubm_subsample-th front-end frame of the utterances on feats.scp lines `rows`
    (None: all), then at most ubm_max_frames of them at random (seeded). The frames are
    kept only while they fit under the cap; past it a second pass reads the chosen ones,
    so no more than the cap is ever held."""
    step, cap = cfg.ubm_subsample, cfg.ubm_max_frames
    kept: list[np.ndarray] = []
    sizes: list[int] = []
    total = 0
    for _, x in processed_feats(data, cfg.front_end, dim, TRAIN_DTYPE, rows):
        sizes.append(len(range(0, x.shape[0], step)))
        total += sizes[-1]
        if cap == 0 or total <= cap:
            kept.append(x[::step].copy())     # a copy: a view would keep all of x
        else:
            kept.clear()
    if cap == 0 or total <= cap:
        return np.concatenate(kept)
    rng = np.random.default_rng(cfg.seed + 1)
    chosen = np.sort(rng.choice(total, cap, replace=False))
    starts = np.cumsum([0, *sizes])
    picked = []
    utterances = processed_feats(data, cfg.front_end, dim, TRAIN_DTYPE, rows)
    for k, (_, x) in enumerate(utterances):
        kept_rows = chosen[np.searchsorted(chosen, starts[k]):np.searchsorted(chosen,
                                                                              starts[k + 1])]
        picked.append(x[::step][kept_rows - starts[k]])
    return np.concatenate(picked)


def init_system(data: DataDir, cfg: IvectorConfig) -> IvectorSystem:
    """The system before EM: UBM on a bounded subset, random extractor (Kaldi:
    train_diag_ubm.sh, then ivector-extractor-init)."""
    cfg.check()
    dim = data.feats_dim()
    cfg.front_end.check(dim)
    start = time.perf_counter()
    with threadpool_limits(cfg.num_threads):
        num_utts = data.num_feats()
        rows = ubm_rows(num_utts, cfg)
        frames = ubm_frames(data, rows, cfg, dim)
        log.info("UBM on %d frames of %d of %d utterances", frames.shape[0],
                 num_utts if rows is None else len(rows), num_utts)
        ubm = train_ubm(frames, cfg.num_gauss, cfg.ubm_iters, cfg.seed, cfg.ubm_var_floor)
        del frames
        extractor = IvectorExtractor.random_init(ubm.means, ubm.variances, cfg.ivector_dim,
                                                 cfg.seed)
    return IvectorSystem(cfg, dim, ubm, extractor, {"ubm": time.perf_counter() - start})


def accumulate_data(system: IvectorSystem, data: DataDir) -> EmAccumulators:
    """One job's E-step over every utterance of `data`, one utterance at a time."""
    cfg = system.config
    start = time.perf_counter()
    feats = processed_feats(data, cfg.front_end, system.input_dim, TRAIN_DTYPE)
    with threadpool_limits(cfg.num_threads):
        blocks = stats_blocks(system.ubm, feats, cfg.min_post, cfg.num_gselect,
                              second_order=True)
        acc = accumulate(system.extractor, blocks, cfg.em.update_means)
    acc.seconds = time.perf_counter() - start
    return acc


def update_system(system: IvectorSystem, accs: Iterable[EmAccumulators]) -> IvectorSystem:
    """The system after one more EM iteration: the jobs' accumulators (made with `system`)
    summed, then the M-step."""
    start = time.perf_counter()
    accs = iter(accs)
    total = next(accs)
    for acc in accs:
        total += acc
    with threadpool_limits(system.config.num_threads):
        extractor, loglik = em_update(system.extractor, total, system.config.em)
    log.info("extractor EM update: log-likelihood %.4f per frame under the previous model "
             "(%d utterances)", loglik / total.counts.sum(), total.num_utts)
    seconds = dict(system.train_seconds)
    seconds["em"] = seconds.get("em", 0.0) + total.seconds + time.perf_counter() - start
    return dataclasses.replace(system, extractor=extractor, train_seconds=seconds)


def train_ivector_system(data: DataDir, cfg: IvectorConfig, exp_dir: Path) -> IvectorSystem:
    """All of training in this process, streaming `data` once per EM iteration; resumes
    after the last iteration finished in `exp_dir`. Returns the system also saved as
    exp_dir/extractor.npz."""
    done = resume_point(exp_dir, data, cfg)
    if done is None:
        system = init_system(data, cfg)
        save_iteration(exp_dir, system, 0)
        done = 0
    else:
        system = dataclasses.replace(IvectorSystem.load(model_path(exp_dir, done, cfg)),
                                     config=cfg)
    for iteration in range(done, cfg.em_iters):
        log.info("extractor EM iteration %d of %d", iteration + 1, cfg.em_iters)
        system = update_system(system, [accumulate_data(system, data)])
        save_iteration(exp_dir, system, iteration + 1)
    return system
