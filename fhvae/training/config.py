"""The settings of a training run: <exp>/config.yaml, checked when read."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fhvae.data.index import SegmentIndex
from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic
from fhvae.training.lr_schedule import check_schedule
from fhvae.model import ModelConfig


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
    reset_shift: int = 0               # windows the table reset averages; 0 = seg_len
                                       # (see loop.reset_windows)
    alpha: float = 10.0
    lr: float = 1e-3                   # the peak lr when a schedule is set (lr_schedule.py)
    lr_schedule: str = "constant"      # constant | cosine | linear: decay after the warm-up
                                       # to lr_floor x lr at max_steps (or max_minutes)
    warmup_steps: int = 0              # lr rises linearly from lr/warmup_steps to lr
    lr_floor: float = 0.0              # the lr at the end of the decay, as a fraction of lr
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
                                       # | auto (bf16 on a CPU with native bf16: runtime.py)
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
        if cfg.amp not in ("none", "bf16", "fp16", "auto"):
            raise FhvaeError(f"{where}: amp must be none, bf16, fp16 or auto, got '{cfg.amp}'")
        check_schedule(cfg, where)
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


def resolve_config(cfg: TrainConfig, index: SegmentIndex, world: int) -> TrainConfig:
    """Fill the data-dependent model fields (features, segment length, table rows)."""
    if cfg.mode == "flat" and world > 1:
        raise FhvaeError("mode flat (the single-table baseline) runs in one process only")
    rows = index.num_seqs if cfg.mode == "flat" else cfg.seq_batch_size
    model = dataclasses.replace(cfg.model, feat_dim=index.feat_dim, seg_len=index.seg_len,
                                num_seqs=rows)
    return dataclasses.replace(cfg, model=model)
