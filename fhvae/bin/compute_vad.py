"""Energy VAD job, Kaldi's compute-vad on our FBank: one feats.scp part -> one ark/scp pair.

  python -m fhvae.bin.compute_vad [--config conf/vad.conf] [--vad-energy-threshold X]
      [--vad-energy-mean-scale X] [--vad-frames-context N] [--vad-proportion-threshold X]
      <feats.scp> <out.ark> <out.scp>

utils/compute_vad_decision.sh runs one of these per job; the decision and the frame
log-energy used in place of MFCC c0 are described in fhvae/features/vad.py. Options on the
command line override the config file, as in Kaldi.
"""

from __future__ import annotations

import argparse
import dataclasses

from fhvae.bin.cli import run_main
from fhvae.features.vad import VadOptions, compute_vad_job, read_vad_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compute_vad", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="Kaldi-style VAD options file (--name=value lines)")
    for field in dataclasses.fields(VadOptions):
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name,
                            type=int if field.type == "int" else float,
                            help=f"(compute-vad default {field.default})")
    parser.add_argument("feats_scp")
    parser.add_argument("ark")
    parser.add_argument("scp")
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(VadOptions)
                 if getattr(args, f.name) is not None}
    opts = dataclasses.replace(read_vad_config(args.config), **overrides)
    opts.check("command line")
    compute_vad_job(args.feats_scp, args.ark, args.scp, opts)
    return 0


if __name__ == "__main__":
    run_main(main)
