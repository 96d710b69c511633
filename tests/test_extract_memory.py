"""Stage 4 with speech-only s-vector pooling must not read the VAD decisions of a job's
whole part before encoding (a value per frame: 1.35 kB an utterance of 200 frames, with
its array, before the fix). What a job may hold per utterance is its feats.scp and vad.scp
lines (0.4 kB): the peak traced allocation grows by less than BUDGET bytes for each
utterance added from N to 4N."""

from __future__ import annotations

import tracemalloc

import numpy as np
import torch

from fhvae.extract import run_job
from fhvae.inference import ExtractOptions
from fhvae.io.tables import write_table
from test_extract import make_data, save_model

NUM_UTTS = 100           # N; the larger part has 4N
FRAMES = 200
BUDGET = 900             # bytes per added utterance (measured: 0.4 kB; before the fix 1.35 kB)


def peak_bytes(model, data, out) -> int:
    tracemalloc.start()
    try:
        counts = run_job(model, data, out, device="cpu",
                         opts=ExtractOptions(svector_only=True, svector_pool="speech"))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert counts["utterances"] == len((data / "vad.scp").read_text().splitlines())


def test_speech_pooling_reads_one_utterances_vad_at_a_time(tmp_path):
    torch.set_num_threads(1)
    model = save_model(tmp_path / "model.pt")
    rng = np.random.default_rng(3)
    peaks = []
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        utts = [f"spk{k // 4:03d}-u{k % 4}" for k in range(num_utts)]
        data = make_data(tmp_path / f"data{num_utts}", dict.fromkeys(utts, FRAMES))
        write_table(tmp_path / f"vad{num_utts}.ark", data / "vad.scp",
                    [(u, (rng.random(FRAMES) < 0.7).astype(np.float32)) for u in utts])
        peaks.append(peak_bytes(model, data, tmp_path / f"out{num_utts}"))
    per_utt = (peaks[1] - peaks[0]) / (3 * NUM_UTTS)
    print(f"speech-pooled extraction: {per_utt:.0f} bytes per added utterance")
    assert per_utt < BUDGET, f"{per_utt:.0f} bytes per utterance"
