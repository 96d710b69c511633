"""Stage 3: train an FHVAE with hierarchical sampling (resumes from <exp-dir>/ckpt/last.pt).

Usage: python -m fhvae.bin.train --config conf/fhvae.yaml --train-index IDX --mvn MVN
           [--dev-index IDX] [--seed N] [--seq-batch-size K] [--max-steps N]
           [--device auto|cpu|cuda|cuda:N] [--mode hierarchical|flat] [--num-threads N]
           [--set key=value ...] <exp-dir>
Run under `torchrun --nproc_per_node=N` for data-parallel training.
"""

from __future__ import annotations

import argparse
import logging

import torch
import yaml

from fhvae.bin.cli import run_main
from fhvae.data.index import SegmentIndex
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.training.config import TrainConfig
from fhvae.training.loop import train

logger = logging.getLogger("fhvae.bin.train")


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """`key=value` (YAML value; `model.hidden=128` for model fields) on top of the config."""
    data = cfg.to_dict()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise FhvaeError(f"--set expects key=value, got '{item}'")
        *parents, leaf = key.split(".")
        target = data
        for name in parents:
            if not isinstance(target.get(name), dict):
                raise FhvaeError(f"--set {item}: '{name}' is not a group of options")
            target = target[name]
        try:
            target[leaf] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise FhvaeError(f"--set {item}: value is not valid YAML") from None
    return TrainConfig.from_dict(data, "--set")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML training configuration")
    parser.add_argument("--train-index", required=True, help="seg_index.npz of the training set")
    parser.add_argument("--dev-index", help="index of the dev set (early stopping, best.pt)")
    parser.add_argument("--mvn", required=True, help="mvn.npz of the training set")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--seq-batch-size", type=int, help="K, sequences per sequence batch")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's)")
    parser.add_argument("--mode", choices=("hierarchical", "flat"))
    parser.add_argument("--num-threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config option (repeatable)")
    parser.add_argument("exp_dir")
    args = parser.parse_args(argv)

    cfg = TrainConfig.load(args.config)
    flags = {"seed": args.seed, "seq_batch_size": args.seq_batch_size,
             "max_steps": args.max_steps, "device": args.device, "mode": args.mode}
    cfg = apply_overrides(cfg, [f"{k}={v}" for k, v in flags.items() if v is not None]
                          + args.set)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    train_index = SegmentIndex.load(args.train_index)
    dev_index = SegmentIndex.load(args.dev_index) if args.dev_index else None
    logger.info("training on %d sequences (%d utterances), dev: %s", train_index.num_seqs,
                train_index.num_utts,
                f"{dev_index.num_seqs} sequences" if dev_index else "none")
    train(cfg, train_index, dev_index, MVN.load(args.mvn), args.exp_dir)
    return 0


if __name__ == "__main__":
    run_main(main)
