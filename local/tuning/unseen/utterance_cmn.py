#!/usr/bin/env python3
"""A copy of a data dir whose features are normalised per utterance, the way Kaldi's
speaker recipes normalise before modelling (the FHVAE otherwise sees only global MVN).

Usage: utterance_cmn.py <src-data> <dst-data> <ark-prefix> [--window 0] [--norm-vars]
--window 0 subtracts the whole-utterance mean; N > 0 the mean of a centred N-frame window
(apply-cmvn-sliding --center=true). --norm-vars also divides by the utterance's standard
deviation. Every table but feats.scp/cmvn.scp is copied; features go to <ark-prefix>.ark.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import kaldiio
import numpy as np

MIN_STD = 1e-5


def sliding_cmn(x: np.ndarray, window: int) -> np.ndarray:
    """x minus the mean of a centred `window`-frame window, shifted inside at the edges."""
    t = len(x)
    cum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    lo = np.clip(np.arange(t) - window // 2, 0, None)
    hi = np.minimum(lo + window, t)
    lo = np.maximum(hi - window, 0)
    return x - (cum[hi] - cum[lo]) / (hi - lo)[:, None]


def normalise(x: np.ndarray, window: int, norm_vars: bool) -> np.ndarray:
    y = x - x.mean(0) if window == 0 else sliding_cmn(x, window)
    if norm_vars:
        y = y / np.maximum(x.std(0), MIN_STD)
    return y.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("ark_prefix", type=Path)
    parser.add_argument("--window", type=int, default=0)
    parser.add_argument("--norm-vars", action="store_true")
    args = parser.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    for table in args.src.iterdir():
        if table.is_file() and table.name not in ("feats.scp", "cmvn.scp"):
            shutil.copy(table, args.dst / table.name)
    target = f"ark,scp:{args.ark_prefix.resolve()}.ark,{args.dst.resolve()}/feats.scp"
    with kaldiio.WriteHelper(target) as writer:
        for utt, x in kaldiio.load_scp_sequential(str(args.src / "feats.scp")):
            writer(utt, normalise(x.astype(np.float64), args.window, args.norm_vars))


if __name__ == "__main__":
    main()
