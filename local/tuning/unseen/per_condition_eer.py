#!/usr/bin/env python3
"""Which unseen condition breaks an embedding: EER of a scored trial list restricted to
trials whose two sides share the noise type (noise=...) or the channel (chan=...).

Usage: per_condition_eer.py <score-dir> <eval-data> <system> [<system> ...]
(<score-dir>/scores_<system> as stage 5 and score_svectors.py write them)
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from fhvae.evaluate.metrics import compute_eer
from fhvae.io.datadir import UTT2CHANNEL, UTT2NOISE, UTT2SPK, DataDir


def main() -> None:
    score_dir, data = sys.argv[1], sys.argv[2]
    labels = DataDir(data)
    spk = labels.table(UTT2SPK)
    factors = {"noise": labels.table(UTT2NOISE), "chan": labels.table(UTT2CHANNEL)}
    for system in sys.argv[3:]:
        by_condition: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        with open(f"{score_dir}/scores_{system}") as scores:
            for line in scores:
                a, b, score = line.split()
                for name, labels in factors.items():
                    if labels[a] == labels[b]:
                        by_condition[f"{name}={labels[a]}"][spk[a] == spk[b]].append(float(score))
        print(system, " ".join(
            f"{key}:{compute_eer(np.array(target), np.array(nontarget)):.1f}"
            for key, (nontarget, target) in sorted(by_condition.items()) if target and nontarget))


if __name__ == "__main__":
    main()
