"""Audio files of the conversion: FBank -> 16-bit WAV -> re-analysed FBank, and the
original audio of a data dir's utterances (wav.scp, segments)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from fhvae.convert.mel_inversion import invert_fbank
from fhvae.errors import FhvaeError
from fhvae.features.fbank import FbankComputer, FbankConfig
from fhvae.io.atomic import atomic_path
from fhvae.io.audio import iter_utterances
from fhvae.io.datadir import SEGMENTS, WAV_SCP, DataDir

log = logging.getLogger(__name__)


@dataclass
class Audio:
    """Int16-scale samples as written, and the FBank re-analysed from them."""

    samples: np.ndarray
    fbank: np.ndarray


def write_wav(path: Path, samples: np.ndarray, rate: int) -> np.ndarray:
    """Write int16-scale samples as 16-bit PCM atomically; return what was written."""
    written = np.clip(np.round(samples), -32768, 32767)
    clipped = int(np.sum(np.abs(samples) > 32767))
    if clipped:
        log.warning("%s: %d samples clipped", path, clipped)
    with atomic_path(path) as tmp:
        soundfile.write(tmp, (written / 32768.0).astype(np.float32), rate, format="WAV",
                        subtype="PCM_16")
    return written


class Synthesiser:
    """FBank -> WAV file -> re-analysed FBank, with one FBank configuration."""

    def __init__(self, config: FbankConfig, iterations: int, seed: int):
        self.config, self.iterations, self.seed = config, iterations, seed
        self.analyse = FbankComputer(config)
        self.rate = int(config.sample_frequency)

    def __call__(self, fbank: np.ndarray, path: Path) -> Audio:
        samples = write_wav(path, invert_fbank(fbank, self.config, self.iterations, self.seed),
                            self.rate)
        return Audio(samples, self.analyse(samples, self.rate, path.stem))


def original_audio(data_dir: Path, utts: set[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Samples of `utts` from wav.scp (and segments); {} without wav.scp."""
    data = DataDir(data_dir)
    wav_scp, segments = data.file(WAV_SCP), data.file(SEGMENTS)
    if not wav_scp.is_file():
        return {}
    failed: dict[str, FhvaeError] = {}
    found = {utt: (samples, rate) for utt, samples, rate in
             iter_utterances(wav_scp, segments if segments.is_file() else None,
                             on_error=failed.__setitem__) if utt in utts}
    bad = next((failed[u] for u in sorted(utts) if u in failed), None)
    if bad is not None:
        raise bad
    return found
