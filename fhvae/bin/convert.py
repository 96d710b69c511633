"""Voice conversion as audio, with objective scores and a listening page
(fhvae/convert/pipeline.py has the layout of <out-dir>, docs/convert.md the method).

  python -m fhvae convert [options] <model.pt> <data-dir> <out-dir>

<data-dir> needs feats.scp and utt2spk (and utt2<factor> for --target-factor);
phone_ali.ctm adds the phone score, wav.scp the original audio on the page.
"""

from __future__ import annotations

import argparse

import torch

from fhvae.bin.cli import field_defaults, run_main
from fhvae.convert.pipeline import ConvertOptions, convert_data_dir
from fhvae.convert.voices import Z2_MODES
from fhvae.inference import FRAME_MODES
from fhvae.io.datadir import FACTOR_FILES


def build_parser() -> argparse.ArgumentParser:
    d = field_defaults(ConvertOptions)
    parser = argparse.ArgumentParser(
        prog="python -m fhvae convert",
        description="Decode each held-out utterance's z1 with another speaker's (or "
                    "condition's) z2, invert the FBank to WAV, score it, write index.html.")
    parser.add_argument("model", help="checkpoint (e.g. exp/fhvae/final.pt)")
    parser.add_argument("data_dir", help="Kaldi data dir with feats.scp and utt2spk")
    parser.add_argument("out_dir", help="output directory (wav/, png/, index.html, scores.md)")
    parser.add_argument("--num-pairs", type=int, default=d.num_pairs,
                        help=f"examples on the listening page (default {d.num_pairs})")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help=f"seed of the held-out sources, targets and examples "
                             f"(default {d.seed})")
    parser.add_argument("--target-factor", choices=list(FACTOR_FILES), default=d.target_factor,
                        help=f"what the target is (default {d.target_factor}; "
                             "noise/channel/gender read utt2noise/utt2channel/utt2gender)")
    parser.add_argument("--z2-mode", choices=Z2_MODES, default=d.z2_mode,
                        help=f"replace: the target's mean s-vector at every frame; shift: the "
                             f"source's z2 moved by target - source s-vector "
                             f"(default {d.z2_mode})")
    parser.add_argument("--frame-mode", choices=FRAME_MODES, default=d.frame_mode,
                        help=f"output frame t: the centre of window t's decoding, or the "
                             f"average of all decoded frames on t (default {d.frame_mode})")
    parser.add_argument("--max-sources", type=int, default=d.max_sources,
                        help="convert at most this many held-out utterances "
                             "(default 0: one per speaker/condition)")
    parser.add_argument("--griffin-lim-iters", type=int, default=d.griffin_lim_iters,
                        help=f"Griffin-Lim iterations (default {d.griffin_lim_iters})")
    parser.add_argument("--fbank-config",
                        help="the Kaldi FBank options of feats.scp (e.g. conf/fbank.conf; "
                             "default: Kaldi's with --num-mel-bins=80 --dither=0)")
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--num-threads", type=int, default=d.num_threads,
                        help="CPU threads for torch (default 0: torch's choice)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    opts = ConvertOptions(num_pairs=args.num_pairs, seed=args.seed,
                          target_factor=args.target_factor, z2_mode=args.z2_mode,
                          frame_mode=args.frame_mode, max_sources=args.max_sources,
                          griffin_lim_iters=args.griffin_lim_iters,
                          fbank_config=args.fbank_config, device=args.device,
                          num_threads=args.num_threads)
    convert_data_dir(args.model, args.data_dir, args.out_dir, opts)
    return 0


if __name__ == "__main__":
    run_main(main)
