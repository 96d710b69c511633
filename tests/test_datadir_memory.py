"""Stage 1's fix_data_dir (and every subset or latent data dir written by write_filtered)
must not hold a data dir's phone alignment (44 CTM lines an utterance, ~6 kB as a list of
lines before that fix), nor all of its tables at once (the built-in corpus's ten, ~3 kB an
utterance together, before the next fix): it holds utt2spk and one table at a time.
validate_data_dir holds the five core tables and one other. The peak traced allocation
grows by less than the BUDGET bytes for each utterance added from N to 4N (docs/
benchmarks.md, 'Memory per stage'). Only the command line is used, so this also measures
a checkout from before the fixes."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import ROOT, clean_env, run

sys.path.insert(0, str(ROOT / "bench"))
from bench_memory_per_utt import write_tables  # noqa: E402  # the data dir bench/ measures

NUM_UTTS = 400           # N; the larger data dir has 4N
BUDGET = 2000            # bytes per added utterance (measured: 1.1 kB; with every table held
                         # 4.1 kB, and before that with the CTM too 11.6 kB)
BUDGET_VALIDATE = 2500   # measured: 1.5 kB; with every table held 2.7 kB
PEAK = """
import sys, tracemalloc
from importlib import import_module
main = import_module(sys.argv[1]).main
tracemalloc.start()
assert main(sys.argv[2:]) == 0
print("peak", tracemalloc.get_traced_memory()[1])
"""


def peak_bytes(module: str, *args: Path | str) -> int:
    proc = run([sys.executable, "-c", PEAK, module, *map(str, args)], cwd=ROOT,
               env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split("peak")[-1])


def test_fix_data_dir_streams_the_alignment(tmp_path):
    peaks = []
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        data = tmp_path / f"data{num_utts}"
        write_tables(data, num_utts)
        peaks.append(peak_bytes("fhvae.bin.fix_data_dir", data))
        assert (data / "phone_ali.ctm").read_bytes() == (
            data / ".backup" / "phone_ali.ctm").read_bytes()
    per_utt = (peaks[1] - peaks[0]) / (3 * NUM_UTTS)
    print(f"fix_data_dir: {per_utt:.0f} bytes per added utterance")
    assert per_utt < BUDGET, f"{per_utt:.0f} bytes per utterance"


def test_validate_data_dir_holds_the_core_tables_and_one_other(tmp_path):
    peaks = []
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        data = tmp_path / f"data{num_utts}"
        write_tables(data, num_utts)
        peaks.append(peak_bytes("fhvae.bin.validate_data_dir", "--no-path-check", data))
    per_utt = (peaks[1] - peaks[0]) / (3 * NUM_UTTS)
    print(f"validate_data_dir: {per_utt:.0f} bytes per added utterance")
    assert per_utt < BUDGET_VALIDATE, f"{per_utt:.0f} bytes per utterance"
