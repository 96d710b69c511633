#!/usr/bin/env python3
"""The augmentation table: frame phone classifiers trained on (a) clean speech, (b) clean +
FHVAE-augmented, (c) clean + real speech of the conditions, tested per condition of each
evaluated set (see fhvae/evaluate/augment_probe.py).

  local/augment_probe.py --model M --clean DIR --augmented DIR... --real DIR... \
      --eval DIR [--eval DIR ...] --out results.md
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhvae.bin.cli import run_main  # noqa: E402
from fhvae.evaluate.augment_probe import (Frames, eval_conditions, evaluate,  # noqa: E402
                                          read_frames, render, train_systems)
from fhvae.inference import load  # noqa: E402
from fhvae.io.atomic import write_text_atomic  # noqa: E402

log = logging.getLogger("augment_probe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint (its MVN and window length)")
    parser.add_argument("--clean", required=True, help="clean training data dir (a)")
    parser.add_argument("--augmented", nargs="+", required=True,
                        help="augmented data dirs added for (b)")
    parser.add_argument("--real", nargs="+", required=True,
                        help="real data dirs of the conditions added for (c)")
    parser.add_argument("--eval", action="append", required=True,
                        help="evaluated data dir (utt2noise, utt2channel, phone_ali.ctm)")
    parser.add_argument("--out", required=True, help="markdown output")
    parser.add_argument("--stride", type=int, default=4, help="every n-th labelled frame")
    parser.add_argument("--resamples", type=int, default=1000, help="speaker resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    args = parser.parse_args(argv)
    model, mvn, _ = load(args.model, "cpu")
    seg_len = model.cfg.seg_len
    clean = read_frames(args.clean, mvn, seg_len, args.stride)
    augmented = Frames.join([read_frames(d, mvn, seg_len, args.stride) for d in args.augmented])
    real = Frames.join([read_frames(d, mvn, seg_len, args.stride) for d in args.real])
    systems = train_systems(clean, augmented, real)
    lines = [f"Training frames (one labelled frame in {args.stride}): "
             + ", ".join(f"{s} {n}" for s, n in systems.frames.items())
             + f"; {len(systems.kept)} phones kept (the rest merged).\n"]
    for data in args.eval:
        test = read_frames(data, mvn, seg_len, args.stride)
        lines.append(f"### {data}\n")
        for table in evaluate(systems, test, eval_conditions(data), args.resamples, args.seed):
            lines.append(render(table))
            log.info("%s, %s: gap closed %.2f [%.2f, %.2f]", data, table.input, table.closure,
                     *table.closure_interval)
    write_text_atomic(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    run_main(main)
