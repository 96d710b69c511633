"""One FBank job of stage 1: a wav.scp (+ segments) part -> one ark/scp pair.

The ark/scp go through fhvae.io.tables.write_table (temp names + rename) and the
utt2num_frames/utt2dur parts are written only after it, so a failed job leaves nothing
that a later stage could mistake for output.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from fhvae.features.fbank import FbankComputer
from fhvae.io.audio import iter_utterances
from fhvae.io.tables import write_table
from fhvae.io.text_table import write_kv
from fhvae.progress import progress

logger = logging.getLogger(__name__)


@dataclass
class JobStats:
    """What one job did. `durations` covers every utterance (like Kaldi's utt2dur), also
    the `skipped` ones, shorter than one frame, that have no features."""

    num_done: int = 0
    num_frames: list[tuple[str, int]] = field(default_factory=list)
    durations: list[tuple[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)     # audio unreadable (permissive only)


def compute_fbank_job(computer: FbankComputer, wav_scp: str | os.PathLike,
                      ark: str | os.PathLike, scp: str | os.PathLike,
                      segments: str | os.PathLike | None = None,
                      utt2num_frames: str | os.PathLike | None = None,
                      utt2dur: str | os.PathLike | None = None,
                      compress: bool = False, permissive: bool = False) -> JobStats:
    """Compute features for every utterance of wav_scp (or segments) into ark+scp.

    The scp refers to the ark by its absolute path, so feats.scp works from any cwd.
    Utterances too short for one frame are skipped with a warning, as Kaldi does.
    `compress` writes Kaldi compressed matrices, as `compute-fbank-feats ... |
    copy-feats --compress=true` in Kaldi's make_fbank.sh. `permissive` skips (and logs)
    an utterance whose audio cannot be read instead of stopping, as Kaldi's make_fbank.sh
    does by reading `scp,p:`; the caller decides how many failures are too many.
    """
    stats = JobStats()
    channel = computer.config.channel

    def failed(utt: str, err: Exception) -> None:
        logger.warning("%s; skipped (no features)", err)
        stats.failed.append(utt)

    def features() -> Iterator[tuple[str, np.ndarray]]:
        utterances = iter_utterances(wav_scp, segments, channel,
                                     on_error=failed if permissive else None)
        for utt, samples, rate in progress(utterances, "fbank", unit="utt"):
            feats = computer(samples, rate, utt)
            stats.durations.append((utt, samples.shape[0] / rate))
            if feats.shape[0] == 0:
                logger.warning("utterance '%s' (%d samples) is shorter than one frame: "
                               "no features written", utt, samples.shape[0])
                stats.skipped.append(utt)
                continue
            stats.num_frames.append((utt, feats.shape[0]))
            yield utt, feats

    stats.num_done = write_table(ark, scp, features(), compress=compress)
    if utt2num_frames is not None:
        write_kv(utt2num_frames, stats.num_frames)
    if utt2dur is not None:
        write_kv(utt2dur, [(utt, f"{dur:.4f}") for utt, dur in stats.durations])
    logger.info("%s: %d utterances done, %d skipped (shorter than one frame), %d failed "
                "(audio unreadable)", wav_scp if segments is None else segments, stats.num_done,
                len(stats.skipped), len(stats.failed))
    return stats
