"""FHVAE training with hierarchical sampling (paper, Algorithm 1).

    for each sequence batch n (K sequences, prefetched in the background):
        reset the K table rows to their MAP estimate (no grad; over the non-overlapping
        windows by default, see reset_windows) and the table's Adam state
        for each of its segment batches: one Adam step on the discriminative segment bound,
            at the lr the schedule gives that step (lr_schedule.py; constant by default)
        every log_every / dev_every / ckpt_every steps: log, evaluate + early stop, checkpoint

The table's optimizer state is reset together with the rows: its moments describe the
previous K sequences, which row k no longer stands for. To make that reset a one-liner the
table has its own Adam instance (same lr and betas; Adam is per-parameter, so this equals one
optimizer over everything).

Resume is exact: last.pt holds the model, both optimizers, the RNG states and the
RunState (the position: sequence batch, step inside it; best dev bound, time used); the
sampler recomputes everything else from the position, and the schedule the lr of each
step from the step and the time used (the lr in the optimizers' saved param_groups is
overwritten before every step). Under torchrun each rank trains on its own shard of
sequences with its own table; the table is kept out of DistributedDataParallel so only
network gradients are averaged, and rank 0 gathers the per-rank table/RNG states into its
checkpoints.

Around the loop: the other modules of fhvae/training (see its __init__) and
inference.sequence_mu2 (the table reset's MAP estimate).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from fhvae.data.index import SegmentIndex
from fhvae.data.loader import SegmentBuffer, SequenceBatchLoader
from fhvae.data.sampler import (FlatSampler, HierarchicalSampler, SeqBatch, eval_seq_batches,
                                make_seq_batch)
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import sequence_mu2
from fhvae.model import FHVAE
from fhvae.objective import fhvae_loss, segment_lower_bound
from fhvae.training.checkpoint import (DEV_LB, MODEL_FILE_KEYS, NET_OPT, RANK_STATES, SCALER,
                                       STEP, WEIGHTS, WORLD, RunState, check_resumable,
                                       load_checkpoint, model_file, rng_state, save_checkpoint,
                                       set_rng_state, to_cpu)
from fhvae.training.config import TrainConfig, resolve_config
from fhvae.training.lr_schedule import decay_progress, lr_at
from fhvae.training.metrics import append_metrics, plot_metrics, start_metrics, truncate_metrics
from fhvae.training.progress import Progress
from fhvae.training.runtime import (autocast, compute_path, init_distributed, make_adam,
                                    runnable_amp)

logger = logging.getLogger(__name__)

DEV_GROUP = 256      # dev sequences whose features are loaded at once
DEV_SEED = 1234      # reparameterisation noise of the dev bound (fixed: deterministic metric)
MU2_BATCH = 4096     # windows per z2-encoder call when the table or the dev mu2 is estimated


# ----------------------------------------------------------------------------- steps
def reset_windows(index: SegmentIndex, buf: SegmentBuffer, shift: int) -> SegmentBuffer:
    """The windows, every `shift` frames (0: seg_len), of the sequence batch in `buf`, for
    the table reset.

    Algorithm 1 averages the z2 encoder over the training windows (every seg_shift frames);
    the default shift seg_len averages over the non-overlapping windows instead. That is the
    estimator the extractor uses for s-vectors, so a reset row is exactly the s-vector of its
    sequence under the current model, and it costs seg_shift/seg_len of the literal reset
    (8/20 in the shipped configs) while covering the same frames.
    """
    batch = make_seq_batch(index, buf.batch.seqs, shift or buf.seg_len, buf.batch.number, ())
    return SegmentBuffer(buf.frames, batch, buf.seg_len)


@torch.no_grad()
def reset_table(model: FHVAE, table_opt: torch.optim.Optimizer, buf: SegmentBuffer) -> None:
    """Algorithm 1 lines 3-5: rows <- MAP estimates; the table's Adam moments start afresh."""
    model.mu2.copy_(sequence_mu2(model, buf, buf.rows, model.cfg.num_seqs, MU2_BATCH))
    table_opt.state.clear()


@torch.no_grad()
def evaluate(model: FHVAE, loader: SequenceBatchLoader, index: SegmentIndex,
             batch_size: int, amp_ctx) -> float:
    """Mean segment lower bound over non-overlapping segments of every dev sequence.

    Each dev sequence's mu2 is its MAP estimate from its own segments. The sampling noise
    comes from a forked, fixed-seed RNG: the metric is deterministic and the training RNG
    streams are left exactly where they were.
    """
    total, count = 0.0, 0
    devices = [model.mu2.device] if model.mu2.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(DEV_SEED)
        for batch in eval_seq_batches(index, DEV_GROUP):
            buf = loader.load(batch)
            mu2 = sequence_mu2(model, buf, buf.rows, batch.seqs.size, MU2_BATCH)
            for start in range(0, batch.num_segments, batch_size):
                which = slice(start, start + batch_size)
                x, rows = buf[which], buf.rows[which]
                with amp_ctx():
                    out = model(x)
                lb = segment_lower_bound(x, out, mu2[rows], buf.row_num_segs[rows],
                                         model.cfg.sigma2_z2)["lb"]
                total += float(lb.double().sum())
                count += int(lb.shape[0])
    return total / max(count, 1)


# ----------------------------------------------------------------------------- the loop
class Trainer:
    """One training run in an experiment directory (resumes from ckpt/last.pt if present)."""

    def __init__(self, cfg: TrainConfig, train_index: SegmentIndex,
                 dev_index: SegmentIndex | None, mvn: MVN, exp_dir: str | os.PathLike):
        self.rank, self.world, self.device = init_distributed(cfg.device)
        self.cfg = cfg = resolve_config(cfg, train_index, self.world)
        self.exp = Path(exp_dir)
        self.mvn = mvn
        if mvn.dim != train_index.feat_dim:
            raise FhvaeError(f"MVN statistics have dimension {mvn.dim}, features have "
                             f"{train_index.feat_dim}")
        index = train_index.shard(self.rank, self.world) if self.world > 1 else train_index
        if self.world > 1 and cfg.mode == "hierarchical" and cfg.seq_batch_size > index.num_seqs:
            raise FhvaeError(f"seq_batch_size K={cfg.seq_batch_size} exceeds the "
                             f"{index.num_seqs} sequences of rank {self.rank}'s shard "
                             f"({train_index.num_seqs} over {self.world} ranks); lower it")
        if cfg.mode == "flat":
            self.sampler = FlatSampler(index, cfg.seg_shift, cfg.seed, self.rank)
        else:
            self.sampler = HierarchicalSampler(index, cfg.seq_batch_size, cfg.seg_shift,
                                               cfg.seed, self.rank, cfg.random_offsets)
        self.index = index
        self.loader = SequenceBatchLoader(index, mvn, self.device, cfg.prefetch)
        if dev_index is not None and dev_index.feat_dim != train_index.feat_dim:
            raise FhvaeError(f"dev features have dimension {dev_index.feat_dim}, training "
                             f"features {train_index.feat_dim}")
        self.dev_index = dev_index
        self.dev_loader = (SequenceBatchLoader(dev_index, mvn, self.device, prefetch=False)
                           if dev_index is not None and self.rank == 0 else None)

        self._build_networks()
        self.run = RunState()
        self._timed_out = False   # not saved: a resumed run with a larger budget goes on
        # Sums of the metrics of the steps since the last metrics row, and their number.
        self._window: dict[str, torch.Tensor] = {}
        self._window_steps = 0
        self._lr = cfg.lr         # the lr of the latest step (logged)
        self.last_path = self.exp / "ckpt" / "last.pt"
        self.best_path = self.exp / "ckpt" / "best.pt"
        self.tsv = self.exp / "train_metrics.tsv"
        if self.last_path.is_file():
            self._resume()
        elif self.rank == 0:
            start_metrics(self.tsv)

    def _build_networks(self) -> None:
        """The model (the same initial weights on every rank), both Adams, the gradient
        scaler, the autocast setting and, under torchrun, the DDP wrapper."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.model = FHVAE(cfg.model).to(self.device)   # same init on every rank
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, self.rank]).generate_state(1)[0]))
        nets = [p for name, p in self.model.named_parameters() if name != "mu2"]
        self.net_opt = make_adam(nets, cfg.lr, cfg.betas)
        self.table_opt = make_adam([self.model.mu2], cfg.lr, cfg.betas)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16"
                                           and self.device.type == "cuda")
        self.amp = runnable_amp(cfg.amp, self.device)
        if self.rank == 0:
            logger.info(compute_path(cfg.amp, self.amp, self.device))
        self.net = self.model
        if self.world > 1:
            # The attribute DDP reads to leave parameters alone: the table is per-rank.
            self.model._ddp_params_and_buffers_to_ignore = ["mu2"]
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict:
        """The model file of the current weights."""
        return model_file(self.model, self.mvn, self.cfg.to_dict(), self.run.step)

    def _rank_state(self) -> dict:
        """The state that differs between ranks: table, its Adam moments, RNG streams."""
        return {"mu2": self.model.mu2.detach().cpu(), "table_opt": self.table_opt.state_dict(),
                "rng": rng_state()}

    def save_last(self) -> None:
        states = [self._rank_state()]
        if self.world > 1:
            gathered = [None] * self.world if self.rank == 0 else None
            dist.gather_object(to_cpu(states[0]), gathered, dst=0)
            states = gathered
        if self.rank != 0:
            return
        payload = {**self._payload(), NET_OPT: self.net_opt.state_dict(),
                   SCALER: self.scaler.state_dict(), RANK_STATES: states, WORLD: self.world,
                   **self.run.to_payload()}
        save_checkpoint(self.last_path, payload)

    def _resume(self) -> None:
        ckpt = load_checkpoint(self.last_path, map_location="cpu")
        check_resumable(self.last_path, ckpt, self.cfg.model.to_dict(), self.cfg.to_dict(),
                        self.world)
        self.model.load_state_dict(ckpt[WEIGHTS])
        self.net_opt.load_state_dict(ckpt[NET_OPT])
        self.scaler.load_state_dict(ckpt[SCALER])
        mine = ckpt[RANK_STATES][self.rank]
        with torch.no_grad():
            self.model.mu2.copy_(mine["mu2"])
        self.table_opt.load_state_dict(mine["table_opt"])
        set_rng_state(mine["rng"])
        self.run = RunState.from_payload(ckpt)
        if self.rank == 0:
            truncate_metrics(self.tsv, self.run.step)
        logger.info("resumed from %s at step %d (sequence batch %d, step %d in it)",
                    self.last_path, self.run.step, self.run.seq_batch, self.run.inner)

    def write_final(self) -> Path:
        """final.pt = the best model by dev lower bound (the last one without a dev set)."""
        final = self.exp / "final.pt"
        if self.rank != 0:
            return final
        if self.dev_index is not None and self.best_path.is_file():
            best = load_checkpoint(self.best_path)
            payload = {k: best[k] for k in MODEL_FILE_KEYS}
        else:
            payload = self._payload()
        save_checkpoint(final, payload)
        plot_metrics(self.tsv, self.exp / "loss.png")
        logger.info("wrote %s (step %d)", final, payload[STEP])
        return final

    # ------------------------------------------------------------------ helpers
    def _amp(self):
        """The autocast context of this run's steps and dev bound."""
        return autocast(self.amp, self.device)

    def _agree_min(self, value: int) -> int:
        """The minimum of `value` over ranks (every rank must take the same number of steps)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def _agree_max_elapsed(self) -> float:
        """The largest run.elapsed over ranks: every rank stops at the same step and sets
        the same lr."""
        if self.world == 1:
            return self.run.elapsed
        t = torch.tensor([self.run.elapsed], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def _check_finite(self, loss: torch.Tensor, metrics: dict) -> bool:
        finite = int(torch.isfinite(loss).item())
        if self._agree_min(finite):
            return True
        if self.cfg.skip_nonfinite:
            self.run.skipped += 1
            logger.warning("non-finite loss at step %d: batch skipped (%d so far)",
                           self.run.step + 1, self.run.skipped)
            return False
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in metrics.items())
        raise FhvaeError(f"non-finite loss at step {self.run.step + 1} (sequence batch "
                         f"{self.run.seq_batch}, {terms}); last/best checkpoints kept in "
                         f"{self.last_path.parent}")

    def _dev_eval(self) -> float:
        """Rank 0 evaluates; every rank learns the value (they must agree on stopping)."""
        value = evaluate(self.model, self.dev_loader, self.dev_index, self.cfg.batch_size,
                         self._amp) if self.rank == 0 else 0.0
        if self.world > 1:
            t = torch.tensor([value], dtype=torch.float64, device=self.device)
            dist.broadcast(t, src=0)
            value = float(t.item())
        if value > self.run.best_dev:
            self.run.best_dev, self.run.best_step = value, self.run.step
            if self.rank == 0:
                save_checkpoint(self.best_path, {**self._payload(), DEV_LB: value})
        return value

    def _scheduled_dev(self) -> float | None:
        """The dev bound every dev_every steps (None on other steps or without a dev set);
        sets `stopped` when it has not improved for `patience` steps."""
        if self.dev_index is None or self.run.step % self.cfg.dev_every:
            return None
        value = self._dev_eval()
        if self.run.step - self.run.best_step >= self.cfg.patience:
            logger.info("early stop: no dev improvement for %d steps",
                        self.run.step - self.run.best_step)
            self.run.stopped = True
        return value

    def _check_time(self) -> bool:
        """Whether the time budget is spent on any rank (looked at every log_every steps,
        when the lr schedule's clock, run.budget_elapsed, moves on too)."""
        if not (self.cfg.max_minutes and self.run.step % self.cfg.log_every == 0):
            return False
        self.run.budget_elapsed = self._agree_max_elapsed()
        if self.run.budget_elapsed < 60 * self.cfg.max_minutes:
            return False
        logger.info("time budget: stopping after %.1f min of training (max_minutes %g) at "
                    "step %d", self.run.elapsed / 60, self.cfg.max_minutes, self.run.step)
        return True

    def _finished(self) -> bool:
        """max_steps reached, early-stopped or out of time."""
        return self.run.stopped or self._timed_out or self.run.step >= self.cfg.max_steps

    # ------------------------------------------------------------------ main loop
    def train(self) -> Path:
        cfg = self.cfg
        if self.rank == 0:
            self.exp.mkdir(parents=True, exist_ok=True)
            cfg.save(self.exp / "config.yaml")
        started = time.time() - self.run.elapsed
        try:
            with Progress(cfg.max_steps, self.run.step, enabled=self.rank == 0) as progress:
                self._loop(started, progress)
        finally:
            self.loader.close()
        self.save_last()
        return self.write_final()

    def _loop(self, started: float, progress: Progress) -> None:
        """Sequence batches until max_steps, early stopping or the time budget."""
        upcoming = None
        while not self._finished():
            batch, upcoming = self._next_seq_batch(upcoming)
            buf = self.loader.load(batch)
            num_batches = self._agree_min(self.cfg.num_seg_batches
                                          or batch.default_num_batches(self.cfg.batch_size))
            seg_batches = batch.batch_indices(num_batches, self.cfg.batch_size)
            if self.run.inner == 0 and (self.cfg.mode == "hierarchical"
                                        or self.run.seq_batch == 0):
                reset_table(self.model, self.table_opt,
                            reset_windows(self.index, buf, self.cfg.reset_shift))
            for j in range(self.run.inner, num_batches):
                metrics = self.step(buf, torch.from_numpy(seg_batches[j]).to(self.device))
                if self.after_step(metrics, j + 1 == num_batches, started, progress):
                    break

    def _next_seq_batch(self, upcoming: SeqBatch | None) -> tuple[SeqBatch, SeqBatch]:
        """The sequence batch at the run's position (the prefetched one when it is) and the
        one after it, whose loading starts now in the background."""
        number = self.run.seq_batch
        batch = (upcoming if upcoming is not None and upcoming.number == number
                 else self.sampler.seq_batch(number))
        upcoming = self.sampler.seq_batch(number + 1)
        self.loader.prefetch(upcoming)
        return batch, upcoming

    def step(self, buf: SegmentBuffer, which: torch.Tensor) -> dict | None:
        """One Adam step on the segments `which` of `buf`; its metrics, or None when the
        batch was skipped (non-finite loss with skip_nonfinite)."""
        self._set_lr()
        with self._amp():
            loss, metrics = fhvae_loss(self.net, buf[which], buf.rows[which],
                                       buf.row_num_segs, self.cfg.alpha)
        self.net_opt.zero_grad(set_to_none=True)
        self.table_opt.zero_grad(set_to_none=True)
        if not self._check_finite(loss, metrics):
            return None
        self.scaler.scale(loss).backward()
        self.scaler.step(self.net_opt)
        self.scaler.step(self.table_opt)
        self.scaler.update()
        return metrics

    def _set_lr(self) -> None:
        """Both optimizers at the schedule's lr for the coming step, a function of the step
        and run.budget_elapsed only: a resumed run sets what the uninterrupted one did."""
        step = self.run.step + 1
        self._lr = lr_at(self.cfg, step,
                         decay_progress(self.cfg, step, self.run.budget_elapsed))
        for opt in (self.net_opt, self.table_opt):
            for group in opt.param_groups:
                group["lr"] = self._lr

    def after_step(self, metrics: dict | None, last_of_seq_batch: bool, started: float,
                   progress: Progress) -> bool:
        """Count the step, then dev bound, time budget, metrics row and log line,
        checkpoint, plot; whether training is finished."""
        if metrics is not None:
            for k, v in metrics.items():
                self._window[k] = self._window.get(k, 0.0) + v
            self._window_steps += 1
        run = self.run
        run.step += 1
        progress.step()
        run.seq_batch, run.inner = ((run.seq_batch + 1, 0) if last_of_seq_batch
                                    else (run.seq_batch, run.inner + 1))
        dev = self._scheduled_dev()
        run.elapsed = time.time() - started
        self._timed_out = self._check_time()
        if self._timed_out and dev is None and self.dev_index is not None:
            dev = self._dev_eval()       # the model this run ends with gets its dev bound
        if run.step % self.cfg.log_every == 0 or dev is not None:
            self._log(dev, progress)
        if run.step % self.cfg.ckpt_every == 0 and not run.stopped:
            self.save_last()
        if dev is not None and self.rank == 0:
            plot_metrics(self.tsv, self.exp / "loss.png")
        return self._finished()

    def _log(self, dev: float | None, progress: Progress) -> None:
        """A metrics row (the means since the previous one) and a log line."""
        run = self.run
        means = ({k: float(v) / self._window_steps for k, v in self._window.items()}
                 if self._window_steps else None)
        if means is not None and self.rank == 0:
            append_metrics(self.tsv, run.step, run.seq_batch - (run.inner == 0), means,
                           "" if dev is None else f"{dev:.4f}", self._lr, run.elapsed)
        progress.line(run.step, means,
                      None if dev is None else (dev, run.best_dev, run.best_step), self._lr)
        self._window, self._window_steps = {}, 0


def train(cfg: TrainConfig, train_index: SegmentIndex, dev_index: SegmentIndex | None,
          mvn: MVN, exp_dir: str | os.PathLike) -> Path:
    """Train (or resume) in exp_dir; returns the path of final.pt."""
    final = Trainer(cfg, train_index, dev_index, mvn, exp_dir).train()
    if dist.is_initialized():
        dist.destroy_process_group()
    return final
