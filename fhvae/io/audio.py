"""Audio of a Kaldi data dir: wav.scp entries (paths or `cmd |` pipes) and `segments`.

Samples come back on Kaldi's int16 scale (a full-scale sine peaks at 32767), because the
FBank log energies, and every threshold tuned on Kaldi features, assume that scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import soundfile

from fhvae.errors import FhvaeError
from fhvae.io.rxfile import open_rxfile
from fhvae.io.text_table import read_kv

# Kaldi's extract-segments accepts a segment ending this far past the end of the recording
# (rounding in the segmentation) and truncates it; anything further is an error.
MAX_SEGMENT_OVERSHOOT_S = 0.5


@dataclass(frozen=True)
class Segment:
    """One line of `segments`: utterance `utt` is [start, end) seconds of recording `rec`."""

    utt: str
    rec: str
    start: float
    end: float  # -1: to the end of the recording


def read_wav_scp(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(recording id, rxfile) pairs of a wav.scp in file order; empty -> FhvaeError."""
    pairs = read_kv(path)
    if not pairs:
        raise FhvaeError(f"{path}: empty (no recordings in this data dir)")
    return pairs


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """Parse `<utt> <rec> <start> <end>` lines with file:line errors."""
    segments = []
    for lineno, (utt, rest) in enumerate(read_kv(path), 1):
        fields = rest.split()
        try:
            if len(fields) != 3:
                raise ValueError
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise FhvaeError(f"{path}:{lineno}: expected '<utt> <rec> <start> <end>'") from None
        if start < 0 or (end != -1 and end <= start):
            raise FhvaeError(f"{path}:{lineno}: bad times for '{utt}': start {start}, end {end}")
        segments.append(Segment(utt, fields[0], start, end))
    if not segments:
        raise FhvaeError(f"{path}: empty (no utterances in this data dir)")
    return segments


def load_audio(rxfile: str, where: str) -> tuple[np.ndarray, int]:
    """(samples (N, C) float64 on the int16 scale, sample rate) of one wav.scp entry.

    A trailing '|' makes the entry a shell command whose stdout is a WAV file; it is run
    with `bash -c` like Kaldi's pipes. `where` names the entry in error messages.
    """
    with open_rxfile(rxfile, where, "audio file") as source:
        try:
            samples, rate = soundfile.read(source, dtype="float64", always_2d=True)
        except Exception as err:  # libsndfile reports every format problem as a RuntimeError
            reason = (str(err).strip().splitlines() or [""])[0]
            raise FhvaeError(f"{where}: unreadable audio ({type(err).__name__}: "
                             f"{reason})") from None
    return samples * 32768.0, int(rate)


def select_channel(samples: np.ndarray, channel: int, where: str) -> np.ndarray:
    """One channel of (N, C) samples; channel -1 means 'must be mono' (error otherwise)."""
    num_channels = samples.shape[1]
    if channel == -1:
        if num_channels != 1:
            raise FhvaeError(f"{where}: audio has {num_channels} channels; choose one with "
                             f"--channel=N")
        return samples[:, 0]
    if not 0 <= channel < num_channels:
        raise FhvaeError(f"{where}: --channel={channel} but audio has {num_channels} channel(s)")
    return samples[:, channel]


def cut_segment(samples: np.ndarray, rate: int, seg: Segment, where: str) -> np.ndarray:
    """Samples [start, end) of a recording, with Kaldi's truncating sample arithmetic."""
    num = samples.shape[0]
    start = int(seg.start * rate)
    end = num if seg.end == -1 else int(seg.end * rate)
    if start >= num:
        raise FhvaeError(f"{where}: segment starts at {seg.start}s, after the end of recording "
                         f"'{seg.rec}' ({num / rate:.3f}s)")
    if end > num:
        if seg.end - num / rate > MAX_SEGMENT_OVERSHOOT_S:
            raise FhvaeError(f"{where}: segment ends at {seg.end}s, recording '{seg.rec}' is only "
                             f"{num / rate:.3f}s long")
        end = num
    return samples[start:end]


def iter_utterances(wav_scp: str | os.PathLike, segments: str | os.PathLike | None = None,
                    channel: int = -1,
                    on_error: Callable[[str, FhvaeError], None] | None = None,
                    ) -> Iterator[tuple[str, np.ndarray, int]]:
    """Yield (utt, mono samples on the int16 scale, sample rate) for every utterance.

    Without `segments` each recording is an utterance. With it, each recording is read
    once for consecutive segments of the same recording (the usual sorted layout).
    With `on_error`, an utterance whose audio cannot be had (missing or unreadable file,
    failing pipe, unknown recording, segment outside its recording) is passed to it and
    skipped, as Kaldi's permissive `scp,p:` reading does; without it the error is raised.
    """
    recordings = read_wav_scp(wav_scp)
    if segments is None:
        for rec, rxfile in recordings:
            where = f"{wav_scp}: utterance '{rec}'"
            try:
                samples, rate = _load_channel(rxfile, channel, where)
            except FhvaeError as err:
                _report(on_error, rec, err)
                continue
            yield rec, samples, rate
        return
    rxfiles = dict(recordings)
    loaded: tuple[str, tuple[np.ndarray, int] | None] | None = None   # None: unreadable
    for seg in read_segments(segments):
        where = f"{segments}: utterance '{seg.utt}'"
        try:
            if loaded is None or loaded[0] != seg.rec:
                loaded = (seg.rec, None)
                if seg.rec not in rxfiles:
                    raise FhvaeError(f"{where}: recording '{seg.rec}' is not in {wav_scp}")
                loaded = (seg.rec, _load_channel(rxfiles[seg.rec], channel,
                                                 f"{where} (recording '{seg.rec}' of {wav_scp})"))
            if loaded[1] is None:    # each later segment names itself, not the first one
                raise FhvaeError(f"{where}: recording '{seg.rec}' could not be read (see its "
                                 "first segment)")
            samples, rate = loaded[1]
            cut = cut_segment(samples, rate, seg, where)
        except FhvaeError as err:
            _report(on_error, seg.utt, err)
            continue
        yield seg.utt, cut, rate


def _report(on_error: Callable[[str, FhvaeError], None] | None, utt: str,
            err: FhvaeError) -> None:
    """Hand a per-utterance failure to `on_error`, or raise it when there is none."""
    if on_error is None:
        raise err
    on_error(utt, err)


def _load_channel(rxfile: str, channel: int, where: str) -> tuple[np.ndarray, int]:
    samples, rate = load_audio(rxfile, where)
    return select_channel(samples, channel, where), rate
