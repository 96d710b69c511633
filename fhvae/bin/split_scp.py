"""Split an scp (or any key-first file) into contiguous, balanced parts, with the command
lines of Kaldi's split_scp.pl:
`python -m fhvae.bin.split_scp [--utt2spk=F] <in.scp> <out.1.scp> ... <out.N.scp>`,
`... [--utt2spk=F] -j N k <in.scp> <out.scp>` (only part k of N, counted from 0, as Kaldi)
or `... --num-parts N <in.scp> <out-pattern with JOB>` (JOB -> 1..N).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.split import split_scp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="split_scp.sh", description=__doc__)
    parser.add_argument("--utt2spk", help="keep all lines of a speaker in one part")
    parser.add_argument("--num-parts", type=int,
                        help="N parts named by replacing JOB in the single output pattern")
    parser.add_argument("-j", nargs=2, type=int, metavar=("N", "K"),
                        help="write only part K (0-based) of N to the single output")
    parser.add_argument("in_scp")
    parser.add_argument("outputs", nargs="+")
    args = parser.parse_args(argv)
    outputs = args.outputs
    if args.num_parts is not None:
        if len(outputs) != 1 or "JOB" not in outputs[0] or args.num_parts < 1:
            raise FhvaeError("--num-parts N needs N >= 1 and one output pattern containing JOB")
        outputs = [outputs[0].replace("JOB", str(j)) for j in range(1, args.num_parts + 1)]
    if args.j is None:
        split_scp(args.in_scp, outputs, utt2spk=args.utt2spk)
        return 0
    num, job = args.j
    if len(outputs) != 1 or not 0 <= job < num:
        raise FhvaeError(f"-j {num} {job} needs 0 <= {job} < {num} and one output file")
    out = Path(outputs[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        split_scp(args.in_scp, [Path(tmp, str(i)) for i in range(num)], utt2spk=args.utt2spk)
        os.replace(Path(tmp, str(job)), out)
    return 0


if __name__ == "__main__":
    run_main(main)
