#!/usr/bin/env python3
"""Concatenated utterance vectors (embedding fusion), e.g. an s-vector with the FBank
mean+std of the same utterance, to ask whether the FHVAE adds to what the statistics hold.

Usage: fuse_vectors.py <mvn.npz> <out-prefix> <part> [<part> ...]
A part is a vector scp, or meanstd:<data-dir> / mean:<data-dir> (FBank statistics
normalised with <mvn.npz>). Writes <out-prefix>.{ark,scp} for the utterances all parts have.
"""

from __future__ import annotations

import sys

import kaldiio
import numpy as np

from fhvae.features.mvn import MVN
from fhvae.features.stats_embedding import fbank_stats
from fhvae.io.tables import read_vectors


def main() -> None:
    mvn, out = MVN.load(sys.argv[1]), sys.argv[2]
    parts = []
    for part in sys.argv[3:]:
        kind, _, data = part.partition(":")
        if kind in ("meanstd", "mean") and data:
            means, meanstds = fbank_stats(data, mvn)
            parts.append(meanstds if kind == "meanstd" else means)
        else:
            parts.append(read_vectors(part))
    utts = sorted(set.intersection(*[set(p) for p in parts]))
    with kaldiio.WriteHelper(f"ark,scp:{out}.ark,{out}.scp") as writer:
        for utt in utts:
            writer(utt, np.concatenate([np.asarray(p[utt], dtype=np.float32) for p in parts]))


if __name__ == "__main__":
    main()
