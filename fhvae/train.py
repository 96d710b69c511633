"""FHVAE training with hierarchical sampling (paper, Algorithm 1).

    for each sequence batch n (K sequences, prefetched in the background):
        reset the K table rows to their MAP estimate (no grad; over the non-overlapping
        windows by default, see reset_windows) and the table's Adam state
        for each of its segment batches: one Adam step on the discriminative segment bound
        every log_every / dev_every / ckpt_every steps: log, evaluate + early stop, checkpoint

The table's optimizer state is reset together with the rows: its moments describe the
previous K sequences, which row k no longer stands for. To make that reset a one-liner the
table has its own Adam instance (same lr and betas; Adam is per-parameter, so this equals one
optimizer over everything).

Resume is exact: last.pt holds the model, both optimizers, the RNG states and the sampler
position (sequence batch, step inside it); the sampler recomputes everything else from the
position. Under torchrun each rank trains on its own shard of sequences with its own table;
the table is kept out of DistributedDataParallel so only network gradients are averaged,
and rank 0 gathers the per-rank table/RNG states into its checkpoints.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel

from fhvae.checkpoint import load_checkpoint, save_checkpoint
from fhvae.data.index import SegmentIndex
from fhvae.data.loader import SegmentBuffer, SequenceBatchLoader
from fhvae.data.sampler import (FlatSampler, HierarchicalSampler, eval_seq_batches,
                                make_seq_batch)
from fhvae.device import resolve_device
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import sequence_mu2
from fhvae.io.atomic import atomic_path, write_text_atomic
from fhvae.model import FHVAE, ModelConfig
from fhvae.progress import Progress
from fhvae.objective import fhvae_loss, segment_lower_bound

logger = logging.getLogger(__name__)

METRICS = ("loss", "lb", "log_px", "kl_z1", "kl_z2", "log_pmu2", "log_qy", "acc")
TSV_COLUMNS = ("step", "seq_batch", *METRICS, "dev_lb", "elapsed")
# Settings that fix the sampler's streams: resuming with other values would not continue
# the same run, so they must match the checkpoint.
RESUME_KEYS = ("mode", "seed", "batch_size", "seg_shift", "num_seg_batches", "random_offsets")
DEV_GROUP = 256      # dev sequences whose features are loaded at once
DEV_SEED = 1234      # reparameterisation noise of the dev bound (fixed: deterministic metric)
MU2_BATCH = 4096     # windows per z2-encoder call when the table or the dev mu2 is estimated


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as <exp>/config.yaml (model fields under `model:`)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    mode: str = "hierarchical"         # or "flat": the original M-row table (baseline)
    seq_batch_size: int = 2000         # K
    batch_size: int = 256              # segments per step
    num_seg_batches: int = 0           # B_seg per sequence batch; 0 = one pass over its segments
    seg_shift: int = 8                 # training windows start every seg_shift frames
    random_offsets: bool = False       # each sequence batch shifts every utterance's window
                                       # grid by a random 0..seg_shift-1 frames (as the
                                       # reference draws window starts), not a fixed grid
    reset_shift: int = 0               # windows the table reset averages; 0 = seg_len (see reset_windows)
    alpha: float = 10.0
    lr: float = 1e-3
    betas: tuple[float, float] = (0.95, 0.999)
    max_steps: int = 500_000
    max_minutes: float = 0.0           # stop after this much training wall time in all (0: no
                                       # limit), e.g. inside a cluster job's time limit; the
                                       # model written is then the best one so far
    patience: int = 50_000             # early stop after this many steps without dev improvement
    dev_every: int = 5_000
    log_every: int = 100
    ckpt_every: int = 1_000
    seed: int = 0
    device: str = "auto"               # auto | cpu | cuda | cuda:N (fhvae.device)
    amp: str = "none"                  # none | bf16 (GPU or CPU autocast) | fp16 (GPU only)
    skip_nonfinite: bool = False       # skip (and count) non-finite batches instead of stopping
    prefetch: bool = True

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "TrainConfig":
        data = dict(data)
        model = data.pop("model", None) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        model_names = {f.name for f in dataclasses.fields(ModelConfig)}
        for key in data:
            if key not in names:
                raise FhvaeError(f"{where}: unknown option '{key}'")
        for key in model:
            if key not in model_names:
                raise FhvaeError(f"{where}: unknown model option '{key}'")
        if "betas" in data:
            data["betas"] = tuple(float(b) for b in data["betas"])
        cfg = cls(model=ModelConfig(**model), **data)
        if cfg.mode not in ("hierarchical", "flat"):
            raise FhvaeError(f"{where}: mode must be hierarchical or flat, got '{cfg.mode}'")
        if cfg.reset_shift < 0:
            raise FhvaeError(f"{where}: reset_shift must be >= 0, got {cfg.reset_shift}")
        if cfg.max_minutes < 0:
            raise FhvaeError(f"{where}: max_minutes must be >= 0, got {cfg.max_minutes}")
        if cfg.amp not in ("none", "bf16", "fp16"):
            raise FhvaeError(f"{where}: amp must be none, bf16 or fp16, got '{cfg.amp}'")
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FhvaeError(f"{path}: config not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise FhvaeError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise FhvaeError(f"{path}: expected a mapping of options")
        return cls.from_dict(data, str(path))

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------- set-up
def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world, device); joins the torchrun process group when WORLD_SIZE is set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index is None:       # cuda or auto: under torchrun, the rank's own GPU
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        elif world > 1:
            raise FhvaeError(f"device '{device}' names one GPU for {world} processes; under "
                             "torchrun use cuda or auto (each takes its LOCAL_RANK's GPU)")
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


def resolve_config(cfg: TrainConfig, index: SegmentIndex, world: int) -> TrainConfig:
    """Fill the data-dependent model fields (features, segment length, table rows)."""
    if cfg.mode == "flat" and world > 1:
        raise FhvaeError("mode flat (the single-table baseline) runs in one process only")
    rows = index.num_seqs if cfg.mode == "flat" else cfg.seq_batch_size
    model = dataclasses.replace(cfg.model, feat_dim=index.feat_dim, seg_len=index.seg_len,
                                num_seqs=rows)
    return dataclasses.replace(cfg, model=model)


def _rng_state() -> dict:
    """All RNG states in checkpoint-safe types (tensors, ints, lists)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                       *np_state[2:]],
             "python": [list(t) if isinstance(t, tuple) else t for t in random.getstate()]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(tuple(tuple(t) if isinstance(t, list) else t for t in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@functools.cache
def cpu_bf16_error() -> str | None:
    """None if this CPU runs the model's layers in bfloat16 under autocast, else why not.

    oneDNN's bf16 LSTM needs AVX-512 (bf16 or core) or AMX; on an AVX2-only CPU it fails
    with "could not create a primitive descriptor". Found by trying a tiny LSTM forward and
    backward once per process, not by CPU model."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        lstm = torch.nn.LSTM(2, 2, batch_first=True)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out, _ = lstm(torch.ones(1, 2, 2))
            out.float().sum().backward()
        except RuntimeError as err:
            return str(err).split(". ", 1)[0].strip()
    return None


# ----------------------------------------------------------------------------- steps
def make_adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel: the same update, one kernel over all tensors instead of
    ~10 ops per tensor (4 vs 20 ms per step for the paper model on 2 CPU cores)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


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


def plot_metrics(tsv: Path, png: Path) -> None:
    """loss.png: training loss, lower bound (train and dev) and accuracy against steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [line.rstrip("\n").split("\t") for line in tsv.read_text().splitlines()[1:]]
    if not rows:
        return
    col = {name: i for i, name in enumerate(TSV_COLUMNS)}
    step = [int(r[col["step"]]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, name in zip(axes, ("loss", "lb", "acc")):
        ax.plot(step, [float(r[col[name]]) for r in rows], label=f"train {name}")
        ax.set_xlabel("step")
        ax.set_title(name)
    dev = [(s, float(r[col["dev_lb"]])) for s, r in zip(step, rows) if r[col["dev_lb"]]]
    if dev:
        axes[1].plot(*zip(*dev), "o-", label="dev lb")
    axes[1].legend()
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


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

        torch.manual_seed(cfg.seed)
        self.model = FHVAE(cfg.model).to(self.device)   # same init on every rank
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, self.rank]).generate_state(1)[0]))
        nets = [p for name, p in self.model.named_parameters() if name != "mu2"]
        self.net_opt = make_adam(nets, cfg.lr, cfg.betas)
        self.table_opt = make_adam([self.model.mu2], cfg.lr, cfg.betas)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16"
                                           and self.device.type == "cuda")
        self.amp = cfg.amp
        if cfg.amp == "bf16" and self.device.type == "cpu" and (why := cpu_bf16_error()):
            # A config written for a GPU node must not crash a CPU node: same run in float32.
            logger.warning("amp bf16: this CPU (%s) cannot run the model in bfloat16 (%s); "
                           "training in float32", torch.backends.cpu.get_cpu_capability(), why)
            self.amp = "none"
        self.net = self.model
        if self.world > 1:
            # The attribute DDP reads to leave parameters alone: the table is per-rank.
            self.model._ddp_params_and_buffers_to_ignore = ["mu2"]
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        # Position: the next step is segment batch `inner` of sequence batch `seq_batch`.
        self.step = self.seq_batch = self.inner = self.skipped = 0
        self.best_dev, self.best_step, self.elapsed, self.stopped = -math.inf, 0, 0.0, False
        # Sums of the metrics of the steps since the last metrics row, and their number.
        self._window: dict[str, torch.Tensor] = {}
        self._window_steps = 0
        self.last_path = self.exp / "ckpt" / "last.pt"
        self.best_path = self.exp / "ckpt" / "best.pt"
        self.tsv = self.exp / "train_metrics.tsv"
        if self.last_path.is_file():
            self._resume()
        elif self.rank == 0:
            write_text_atomic(self.tsv, "\t".join(TSV_COLUMNS) + "\n")

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict:
        """What load_model needs (model, config, MVN) plus the run's metadata."""
        return {"model_config": self.cfg.model.to_dict(), "model": self.model.state_dict(),
                "mvn_mean": torch.from_numpy(self.mvn.mean),
                "mvn_std": torch.from_numpy(self.mvn.std),
                "train_config": self.cfg.to_dict(), "step": self.step}

    def _rank_state(self) -> dict:
        """The state that differs between ranks: table, its Adam moments, RNG streams."""
        return {"mu2": self.model.mu2.detach().cpu(), "table_opt": self.table_opt.state_dict(),
                "rng": _rng_state()}

    def save_last(self) -> None:
        states = [self._rank_state()]
        if self.world > 1:
            gathered = [None] * self.world if self.rank == 0 else None
            dist.gather_object(_to_cpu(states[0]), gathered, dst=0)
            states = gathered
        if self.rank != 0:
            return
        payload = self._payload()
        payload.update(net_opt=self.net_opt.state_dict(), scaler=self.scaler.state_dict(),
                       rank_states=states, seq_batch=self.seq_batch, inner=self.inner,
                       skipped=self.skipped, best_dev=self.best_dev, best_step=self.best_step,
                       elapsed=self.elapsed, stopped=self.stopped, world=self.world)
        save_checkpoint(self.last_path, payload)

    def _resume(self) -> None:
        ckpt = load_checkpoint(self.last_path, map_location="cpu")
        want = self.cfg.model.to_dict()
        if ckpt["model_config"] != want:
            diff = ", ".join(f"{k}: {ckpt['model_config'].get(k)} -> {v}"
                             for k, v in want.items() if ckpt["model_config"].get(k) != v)
            raise FhvaeError(f"{self.last_path}: model config differs from the requested one "
                             f"({diff}); use a new experiment directory")
        old = ckpt["train_config"]
        for key in RESUME_KEYS:
            if old.get(key) != self.cfg.to_dict()[key]:
                raise FhvaeError(f"{self.last_path}: {key} was {old.get(key)}, now "
                                 f"{self.cfg.to_dict()[key]}; cannot resume the same run")
        if ckpt["world"] != self.world:
            raise FhvaeError(f"{self.last_path}: written by {ckpt['world']} process(es), "
                             f"resuming with {self.world}")
        self.model.load_state_dict(ckpt["model"])
        self.net_opt.load_state_dict(ckpt["net_opt"])
        self.scaler.load_state_dict(ckpt["scaler"])
        mine = ckpt["rank_states"][self.rank]
        with torch.no_grad():
            self.model.mu2.copy_(mine["mu2"])
        self.table_opt.load_state_dict(mine["table_opt"])
        _set_rng_state(mine["rng"])
        for key in ("step", "seq_batch", "inner", "skipped", "best_dev", "best_step",
                    "elapsed", "stopped"):
            setattr(self, key, ckpt[key])
        if self.rank == 0:
            _truncate_tsv(self.tsv, self.step)
        logger.info("resumed from %s at step %d (sequence batch %d, step %d in it)",
                    self.last_path, self.step, self.seq_batch, self.inner)

    def write_final(self) -> Path:
        """final.pt = the best model by dev lower bound (the last one without a dev set)."""
        final = self.exp / "final.pt"
        if self.rank != 0:
            return final
        if self.dev_index is not None and self.best_path.is_file():
            best = load_checkpoint(self.best_path)
            payload = {k: best[k] for k in ("model_config", "model", "mvn_mean", "mvn_std",
                                            "train_config", "step")}
        else:
            payload = self._payload()
        save_checkpoint(final, payload)
        plot_metrics(self.tsv, self.exp / "loss.png")
        logger.info("wrote %s (step %d)", final, payload["step"])
        return final

    # ------------------------------------------------------------------ helpers
    def _amp(self):
        """bf16 autocasts on any device (CPU autocast supports it; a CPU without bf16 kernels
        runs in float32, see __init__); fp16 needs the CUDA gradient scaler, so on CPU it runs
        in float32."""
        if self.amp == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.amp == "fp16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast(self.device.type, enabled=False)

    def _agree_min(self, value: int) -> int:
        """The minimum of `value` over ranks (every rank must take the same number of steps)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def _out_of_time(self) -> bool:
        """Whether any rank has used up max_minutes (all ranks must stop at the same step)."""
        over = int(self.elapsed >= 60 * self.cfg.max_minutes)
        return self._agree_min(1 - over) == 0

    def _check_finite(self, loss: torch.Tensor, metrics: dict) -> bool:
        finite = int(torch.isfinite(loss).item())
        if self._agree_min(finite):
            return True
        if self.cfg.skip_nonfinite:
            self.skipped += 1
            logger.warning("non-finite loss at step %d: batch skipped (%d so far)",
                           self.step + 1, self.skipped)
            return False
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in metrics.items())
        raise FhvaeError(f"non-finite loss at step {self.step + 1} (sequence batch "
                         f"{self.seq_batch}, {terms}); last/best checkpoints kept in "
                         f"{self.last_path.parent}")

    def _dev_eval(self) -> float:
        """Rank 0 evaluates; every rank learns the value (they must agree on stopping)."""
        value = evaluate(self.model, self.dev_loader, self.dev_index, self.cfg.batch_size,
                         self._amp) if self.rank == 0 else 0.0
        if self.world > 1:
            t = torch.tensor([value], dtype=torch.float64, device=self.device)
            dist.broadcast(t, src=0)
            value = float(t.item())
        if value > self.best_dev:
            self.best_dev, self.best_step = value, self.step
            if self.rank == 0:
                save_checkpoint(self.best_path, {**self._payload(), "dev_lb": value})
        return value

    def _train_step(self, buf: SegmentBuffer, which: torch.Tensor) -> dict | None:
        """One Adam step on the segments `which` of `buf`; its metrics, or None when the
        batch was skipped (non-finite loss with skip_nonfinite)."""
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

    def _scheduled_dev(self) -> float | None:
        """The dev bound every dev_every steps (None on other steps or without a dev set);
        sets `stopped` when it has not improved for `patience` steps."""
        if self.dev_index is None or self.step % self.cfg.dev_every:
            return None
        value = self._dev_eval()
        if self.step - self.best_step >= self.cfg.patience:
            logger.info("early stop: no dev improvement for %d steps",
                        self.step - self.best_step)
            self.stopped = True
        return value

    def _check_time(self) -> bool:
        """Whether the time budget is spent (looked at every log_every steps)."""
        if not (self.cfg.max_minutes and self.step % self.cfg.log_every == 0
                and self._out_of_time()):
            return False
        logger.info("time budget: stopping after %.1f min of training (max_minutes %g) at "
                    "step %d", self.elapsed / 60, self.cfg.max_minutes, self.step)
        return True

    # ------------------------------------------------------------------ main loop
    def train(self) -> Path:
        cfg = self.cfg
        if self.rank == 0:
            self.exp.mkdir(parents=True, exist_ok=True)
            cfg.save(self.exp / "config.yaml")
        started = time.time() - self.elapsed
        try:
            with Progress(cfg.max_steps, self.step, enabled=self.rank == 0) as progress:
                self._loop(started, progress)
        finally:
            self.loader.close()
        self.save_last()
        return self.write_final()

    def _loop(self, started: float, progress: Progress) -> None:
        """Sequence batches until max_steps, early stopping or the time budget."""
        cfg = self.cfg
        upcoming = None
        timed_out = False      # not saved: a resumed run with a larger budget goes on
        while not (self.stopped or timed_out) and self.step < cfg.max_steps:
            batch = (upcoming if upcoming is not None and upcoming.number == self.seq_batch
                     else self.sampler.seq_batch(self.seq_batch))
            upcoming = self.sampler.seq_batch(self.seq_batch + 1)
            self.loader.prefetch(upcoming)
            buf = self.loader.load(batch)
            num_batches = self._agree_min(cfg.num_seg_batches
                                          or batch.default_num_batches(cfg.batch_size))
            seg_batches = batch.batch_indices(num_batches, cfg.batch_size)
            if self.inner == 0 and (cfg.mode == "hierarchical" or self.seq_batch == 0):
                reset_table(self.model, self.table_opt,
                            reset_windows(self.index, buf, cfg.reset_shift))
            for j in range(self.inner, num_batches):
                if self.stopped or timed_out or self.step >= cfg.max_steps:
                    break
                metrics = self._train_step(buf, torch.from_numpy(seg_batches[j]).to(self.device))
                if metrics is not None:
                    for k, v in metrics.items():
                        self._window[k] = self._window.get(k, 0.0) + v
                    self._window_steps += 1
                self.step += 1
                progress.step()
                done = j + 1 == num_batches
                self.seq_batch, self.inner = ((self.seq_batch + 1, 0) if done
                                              else (self.seq_batch, j + 1))
                timed_out = self._end_of_step(started, progress)

    def _end_of_step(self, started: float, progress: Progress) -> bool:
        """Dev bound, time budget, metrics row and log line, checkpoint, plot; whether the
        time budget ran out."""
        cfg = self.cfg
        dev = self._scheduled_dev()
        self.elapsed = time.time() - started
        timed_out = self._check_time()
        if timed_out and dev is None and self.dev_index is not None:
            dev = self._dev_eval()       # the model this run ends with gets its dev bound
        dev_lb = "" if dev is None else f"{dev:.4f}"
        if self.step % cfg.log_every == 0 or dev is not None:
            means = ({k: float(v) / self._window_steps for k, v in self._window.items()}
                     if self._window_steps else None)
            if means is not None:
                self._log_row(means, dev_lb)
            progress.line(self.step, means,
                          None if dev is None else (dev, self.best_dev, self.best_step))
            self._window, self._window_steps = {}, 0
        if self.step % cfg.ckpt_every == 0 and not self.stopped:
            self.save_last()
        if dev is not None and self.rank == 0:
            plot_metrics(self.tsv, self.exp / "loss.png")
        return timed_out

    def _log_row(self, means: dict, dev_lb: str) -> None:
        if self.rank != 0:
            return
        seq_batch = self.seq_batch - (self.inner == 0)
        fields = [str(self.step), str(seq_batch), *(f"{means[k]:.4f}" for k in METRICS),
                  dev_lb, f"{self.elapsed:.1f}"]
        with open(self.tsv, "a") as handle:
            handle.write("\t".join(fields) + "\n")


def _to_cpu(obj):
    """Tensors of a nested dict/list moved to CPU (for gathering per-rank state)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _truncate_tsv(tsv: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint we resume from (they will be redone)."""
    if not tsv.is_file():
        write_text_atomic(tsv, "\t".join(TSV_COLUMNS) + "\n")
        return
    lines = tsv.read_text().splitlines(keepends=True)
    keep = lines[:1] + [line for line in lines[1:] if int(line.split("\t", 1)[0]) <= step]
    write_text_atomic(tsv, "".join(keep))


def train(cfg: TrainConfig, train_index: SegmentIndex, dev_index: SegmentIndex | None,
          mvn: MVN, exp_dir: str | os.PathLike) -> Path:
    """Train (or resume) in exp_dir; returns the path of final.pt."""
    final = Trainer(cfg, train_index, dev_index, mvn, exp_dir).train()
    if dist.is_initialized():
        dist.destroy_process_group()
    return final
