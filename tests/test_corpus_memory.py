"""Stage 0's memory per utterance: rendering the corpus and writing its data dirs must not
hold every utterance's phone alignment (44 segments, ~11 kB as objects, and its CTM lines,
~4 kB more, before the fix). What may grow is the plan and the text tables, about 1.3 kB an
utterance (docs/benchmarks.md, 'Memory per stage'): the peak traced allocation of the
main process grows by less than BUDGET bytes for each utterance added from N to 4N.
Only the command line is used, so this also measures a checkout from before the fix."""

from __future__ import annotations

import sys

import pytest

from helpers import ROOT, clean_env, run

UTTS_PER_SPK = 4
TRAIN_SPK = 4            # N = 16 training utterances; the larger corpus has 4N
BUDGET = 3000            # bytes per added utterance (measured: 1.3 kB; before the fix 19.7 kB)
PEAK = """
import sys, tracemalloc
sys.path.insert(0, "local")
import make_corpus
tracemalloc.start()
assert make_corpus.main(sys.argv[1:]) == 0
print("peak", tracemalloc.get_traced_memory()[1])
"""


def peak_bytes(tmp_path, train_spk: int) -> int:
    out = tmp_path / f"spk{train_spk}"
    proc = run([sys.executable, "-c", PEAK, "--nj", "2", "--no-progress",
                "--num-train-spk", str(train_spk), "--num-dev-spk", "1", "--num-test-spk", "1",
                "--num-unseen-spk", "0", "--utts-per-spk", str(UTTS_PER_SPK),
                str(out / "corpus"), str(out / "data")], cwd=ROOT, env=clean_env(),
               timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split("peak")[-1])


@pytest.mark.timeout(600)
def test_stage_0_holds_no_alignment_per_utterance(tmp_path):
    small, large = (peak_bytes(tmp_path, n) for n in (TRAIN_SPK, 4 * TRAIN_SPK))
    per_utt = (large - small) / (3 * TRAIN_SPK * UTTS_PER_SPK)
    print(f"peak {small / 1e6:.2f} MB at {TRAIN_SPK * UTTS_PER_SPK} training utterances, "
          f"{large / 1e6:.2f} MB at 4x: {per_utt:.0f} bytes per added utterance")
    assert per_utt < BUDGET, f"{per_utt:.0f} bytes per utterance"
