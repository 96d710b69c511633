"""Writing a Kaldi data dir from a list of utterance records (one place for every corpus prep).

Each corpus recipe only knows how to find its utterances; the Kaldi rules (C-sorted, unique
keys, spk2utt derived from utt2spk, whitespace-free ids, consistent recordings) are enforced
here so that no recipe can write a data dir that stage 1 would reject later.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.datadir import CMVN_SCP, FEATS_SCP, SEGMENTS, SPK2GENDER, TEXT, UTT2SPK, WAV_SCP, DataDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One utterance of a corpus.

    `wav` is the wav.scp entry (a path or a `cmd |` pipe) of recording `rec`. Without
    `start`/`end` the recording is the utterance (rec defaults to utt); with them the
    utterance is [start, end) seconds of `rec` and a `segments` file is written.
    `labels` become `utt2<name>` files (e.g. {"gender": "f"} -> utt2gender).
    """

    utt: str
    spk: str
    wav: str
    rec: str = ""
    start: float | None = None
    end: float | None = None
    text: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def recording(self) -> str:
        return self.rec or self.utt


def _check_token(value: str, what: str, utt: str, data_dir: Path) -> None:
    if not value or any(c.isspace() for c in value):
        raise FhvaeError(f"{data_dir}: utterance '{utt}': {what} '{value}' is empty or has "
                         f"whitespace")


def _check(data_dir: Path, utts: list[Utterance]) -> None:
    """Raise FhvaeError on anything that would make an invalid Kaldi data dir."""
    if not utts:
        raise FhvaeError(f"{data_dir}: no utterances to write")
    segmented = utts[0].start is not None
    label_names = set(utts[0].labels)
    seen: set[str] = set()
    rec_wav: dict[str, str] = {}
    for u in utts:
        _check_token(u.utt, "utterance id", u.utt, data_dir)
        _check_token(u.spk, "speaker id", u.utt, data_dir)
        _check_token(u.recording, "recording id", u.utt, data_dir)
        if u.utt in seen:
            raise FhvaeError(f"{data_dir}: duplicate utterance id '{u.utt}'")
        seen.add(u.utt)
        if not u.utt.startswith(u.spk):
            raise FhvaeError(f"{data_dir}: utterance '{u.utt}' does not start with its speaker "
                             f"id '{u.spk}' (Kaldi sorting needs speaker-prefixed ids)")
        if (u.start is not None) != segmented or (u.start is None) != (u.end is None):
            raise FhvaeError(f"{data_dir}: utterance '{u.utt}': either every utterance is a "
                             f"segment (start and end) or none is")
        if segmented and not 0 <= round(u.start, 3) < round(u.end, 3):  # type: ignore[arg-type]
            raise FhvaeError(f"{data_dir}: utterance '{u.utt}': bad segment times "
                             f"{u.start}..{u.end}")
        if rec_wav.setdefault(u.recording, u.wav) != u.wav:
            raise FhvaeError(f"{data_dir}: recording '{u.recording}' has two audio sources: "
                             f"'{rec_wav[u.recording]}' and '{u.wav}'")
        if bool(u.text) != bool(utts[0].text):
            raise FhvaeError(f"{data_dir}: utterance '{u.utt}': either every utterance has a "
                             f"transcript or none has")
        if set(u.labels) != label_names:
            raise FhvaeError(f"{data_dir}: utterance '{u.utt}' has labels {sorted(u.labels)}, "
                             f"others have {sorted(label_names)}")
        for name, value in u.labels.items():
            _check_token(value, f"{name} label", u.utt, data_dir)
    # Kaldi needs utt2spk sorted by utterance to also be sorted by speaker.
    by_utt = sorted(utts, key=lambda u: u.utt.encode("utf-8"))
    for prev, cur in zip(by_utt, by_utt[1:]):
        if cur.spk.encode("utf-8") < prev.spk.encode("utf-8"):
            raise FhvaeError(f"{data_dir}: utterance '{cur.utt}' (speaker '{cur.spk}') sorts "
                             f"after '{prev.utt}' (speaker '{prev.spk}'); give speakers "
                             f"equal-length ids or a separator that sorts first")


def write_data_dir(data_dir: str | os.PathLike, utts: list[Utterance]) -> None:
    """Write wav.scp, utt2spk, spk2utt, [segments], [text], utt2<label> into `data_dir`.

    Every file is C-sorted and written atomically. Files an earlier run left that would now
    be stale (segments, text, other utt2<label>, features of the old utterance list) are
    removed, so re-running a prep with other settings never mixes two corpora.
    """
    data_dir = Path(data_dir)
    _check(data_dir, utts)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = DataDir(data_dir)
    segmented = utts[0].start is not None
    optional: dict[str, list[tuple[str, object]]] = {}
    if segmented:
        optional[SEGMENTS] = [(u.utt, f"{u.recording} {u.start:.3f} {u.end:.3f}")
                                for u in utts]
    if utts[0].text:
        optional[TEXT] = [(u.utt, " ".join(u.text.split())) for u in utts]  # type: ignore[union-attr]
    for name in utts[0].labels:
        optional[f"utt2{name}"] = [(u.utt, u.labels[name]) for u in utts]
    # Stale files go first: an interrupted run must not leave old features beside new lists.
    derived = [SEGMENTS, TEXT, FEATS_SCP, CMVN_SCP, SPK2GENDER,
               *(p.name for p in data_dir.glob("utt2*"))]
    for stale in derived:
        if stale not in optional and stale != UTT2SPK:
            out.remove(stale)

    recordings = {u.recording: u.wav for u in utts}
    out.write(WAV_SCP, recordings.items())
    num_spks = out.write_utt2spk((u.utt, u.spk) for u in utts)
    for name, pairs in optional.items():
        out.write(name, pairs)
    logger.info("%s: %d utterances, %d speakers, %d recordings", data_dir, len(utts),
                num_spks, len(recordings))
