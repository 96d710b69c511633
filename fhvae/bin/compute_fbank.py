"""Stage 1 job: FBank features of a wav.scp (+ segments) part into one ark/scp pair.

  python -m fhvae.bin.compute_fbank [--config conf/fbank.conf] [--backend knf|psf]
      [--segments SEGMENTS] [--channel N] [--utt2num-frames F] [--utt2dur F] [--compress]
      <wav.scp> <out.ark> <out.scp>

utils/make_fbank.sh runs one of these per job; see fhvae/features/fbank.py for the options.
"""

from __future__ import annotations

import argparse
import dataclasses

from fhvae.bin.cli import run_main
from fhvae.features.fbank import BACKENDS, FbankComputer, read_fbank_config
from fhvae.features.job import compute_fbank_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compute_fbank", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="Kaldi-style FBank options file (--name=value lines)")
    parser.add_argument("--backend", choices=BACKENDS, default="knf")
    parser.add_argument("--segments", help="Kaldi segments file: utterances cut from wav.scp")
    parser.add_argument("--channel", type=int,
                        help="channel of multi-channel audio (overrides the config; -1: mono only)")
    parser.add_argument("--utt2num-frames", help="also write '<utt> <frames>' lines here")
    parser.add_argument("--utt2dur", help="also write '<utt> <seconds>' lines here")
    parser.add_argument("--compress", action="store_true",
                        help="write Kaldi compressed matrices (as copy-feats --compress=true)")
    parser.add_argument("--permissive", action="store_true",
                        help="skip (with a warning) utterances whose audio cannot be read, "
                             "as Kaldi's scp,p: reading; the caller counts the failures")
    parser.add_argument("wav_scp")
    parser.add_argument("ark")
    parser.add_argument("scp")
    args = parser.parse_args(argv)
    config = read_fbank_config(args.config)
    if args.channel is not None:
        config = dataclasses.replace(config, channel=args.channel)
    compute_fbank_job(FbankComputer(config, args.backend), args.wav_scp, args.ark, args.scp,
                      segments=args.segments, utt2num_frames=args.utt2num_frames,
                      utt2dur=args.utt2dur, compress=args.compress,
                      permissive=args.permissive)
    return 0


if __name__ == "__main__":
    run_main(main)
