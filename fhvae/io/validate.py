"""Check a Kaldi data dir against the rules every stage relies on, and repair what can be.

The validator stops at the first problem with one line naming the file and line, so a
user can fix it in an editor; the fixer repairs what is mechanical (order, duplicates,
utterances missing from some files, a stale spk2utt) and keeps a backup.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.datadir import (FEATS_SCP, SEGMENTS, SPK2UTT, TEXT, UTT2DUR, UTT2LANG,
                              UTT2NUM_FRAMES, UTT2SPK, WAV_SCP, DataDir)
from fhvae.io.rxfile import parse
from fhvae.io.subset import write_filtered
from fhvae.io.text_table import Table, c_order

# Tables read first, in this order, so the "first problem" is deterministic.
CORE_FILES = (UTT2SPK, SPK2UTT, WAV_SCP, SEGMENTS, FEATS_SCP)
BACKUP_DIR = ".backup"


@dataclass
class DataDirSummary:
    """What a valid data dir holds (for the one-line OK report)."""

    num_utts: int
    num_spks: int
    files: list[str]

    def __str__(self) -> str:
        return f"{self.num_utts} utterances, {self.num_spks} speakers; {' '.join(self.files)}"


def _same_keys(table: Table, ref: Table, what: str) -> None:
    """Both-way key equality, reporting the first stray line of either file."""
    for key, _ in table.pairs:
        if key not in ref.line:
            raise FhvaeError(f"{table.where(key)}: {what} '{key}' is not in {ref.path.name}")
    for key, _ in ref.pairs:
        if key not in table.line:
            raise FhvaeError(f"{ref.where(key)}: {what} '{key}' is not in {table.path.name}")


def _check_speakers(utt2spk: Table, spk2utt: Table) -> None:
    spk_of = dict(utt2spk.pairs)
    listed: set[str] = set()
    for spk, utts in spk2utt.pairs:
        for utt in utts.split():
            if utt in listed:
                raise FhvaeError(f"{spk2utt.where(spk)}: utterance '{utt}' is listed twice")
            listed.add(utt)
            if utt not in spk_of:
                raise FhvaeError(f"{spk2utt.where(spk)}: utterance '{utt}' is not in utt2spk")
            if spk_of[utt] != spk:
                raise FhvaeError(f"{spk2utt.where(spk)}: utterance '{utt}' is under speaker "
                                 f"'{spk}' but utt2spk says '{spk_of[utt]}'")
    for utt, spk in utt2spk.pairs:
        if utt not in listed:
            raise FhvaeError(f"{utt2spk.where(utt)}: utterance '{utt}' of speaker '{spk}' "
                             "is not in spk2utt")


def _check_speaker_order(utt2spk: Table) -> None:
    """Kaldi splits and filters by speaker on utt2spk as sorted by utterance, so that order
    must also be speaker order (speaker ids prefixes of utterance ids)."""
    for (_, prev), (utt, spk) in zip(utt2spk.pairs, utt2spk.pairs[1:]):
        if c_order(spk) < c_order(prev):
            raise FhvaeError(f"{utt2spk.where(utt)}: utterance '{utt}' of speaker '{spk}' comes "
                             f"after speaker '{prev}': utt2spk is not also sorted by speaker "
                             "(make speaker ids prefixes of utterance ids, or --no-spk-sort)")


def _check_segments(segments: Table, wav: Table | None) -> None:
    for utt, value in segments.pairs:
        fields = value.split()
        if len(fields) != 3:
            raise FhvaeError(f"{segments.where(utt)}: expected '<utt> <recording> <start> <end>'")
        reco, start, end = fields
        if wav is not None and reco not in wav.line:
            raise FhvaeError(f"{segments.where(utt)}: recording '{reco}' is not in wav.scp")
        try:
            t0, t1 = float(start), float(end)
        except ValueError:
            raise FhvaeError(f"{segments.where(utt)}: start/end are not numbers") from None
        if not 0 <= t0 < t1:
            raise FhvaeError(f"{segments.where(utt)}: need 0 <= start < end, got {start} {end}")


def _check_wav_paths(wav: Table) -> None:
    """Plain paths must exist (relative to the current directory); `cmd |` is not run."""
    for key, value in wav.pairs:
        rx = parse(value, wav.where(key))
        if rx.pipe:
            continue
        if not os.path.exists(rx.path):
            raise FhvaeError(f"{wav.where(key)}: '{key}': audio file not found: {value}")


def _check_feats_arks(feats: Table) -> None:
    """The file of every feats.scp entry that is not a pipe must exist."""
    seen: set[str] = set()
    for key, value in feats.pairs:
        rx = parse(value, feats.where(key))
        if rx.pipe:
            continue
        ark = rx.path
        if ark not in seen and not os.path.exists(ark):
            raise FhvaeError(f"{feats.where(key)}: '{key}': feature file not found: {ark}")
        seen.add(ark)


def _check_value(table: Table, key: str, value: str) -> None:
    """Numeric per-utterance files must hold positive numbers."""
    name = table.path.name
    try:
        if name == UTT2NUM_FRAMES and int(value) > 0:
            return
        if name in (UTT2DUR, "reco2dur") and float(value) > 0:
            return
    except ValueError:
        pass
    if name in (UTT2NUM_FRAMES, UTT2DUR, "reco2dur"):
        raise FhvaeError(f"{table.where(key)}: expected a positive number, got '{value}'")


def validate_data_dir(data_dir: str | os.PathLike, *, need_wav: bool = True,
                      need_feats: bool = True, check_paths: bool = True,
                      need_text: bool = False, spk_sort: bool = False) -> DataDirSummary:
    """Raise FhvaeError on the first rule a Kaldi data dir breaks; else summarise it.

    Rules: required files present (utt2spk, spk2utt, wav.scp unless need_wav is False,
    feats.scp unless need_feats is False, text if need_text); with spk_sort, utt2spk
    also in speaker order (Kaldi's default check); every table sorted (LC_ALL=C) with unique
    keys; utt2spk and spk2utt agree both ways; utterances = wav.scp keys, or segments
    keys whose recordings are in wav.scp with 0 <= start < end; plain wav.scp paths and
    feats.scp ark files exist (when check_paths); feats.scp keys = utterances; utt2*,
    text, spk2* and reco2* files keyed by known utterances/speakers/recordings.
    """
    data = DataDir(data_dir)
    if not data.path.is_dir():
        raise FhvaeError(f"{data}: not a directory")
    required = {UTT2SPK: "", SPK2UTT: "", WAV_SCP: " unless --no-wav",
                FEATS_SCP: " unless --no-feats", TEXT: " unless --no-text"}
    wanted = {WAV_SCP: need_wav, FEATS_SCP: need_feats, TEXT: need_text}
    for name, unless in required.items():
        if wanted.get(name, True) and not data.has(name):
            raise FhvaeError(f"{data.file(name)}: no such file (required{unless})")
    kinds = data.kinds()
    present = [n for n in CORE_FILES if data.has(n)]
    present += [n for n in kinds if n not in CORE_FILES]
    # The core tables are checked against each other; every other table only against their
    # keys, one at a time, so memory is the core tables plus the largest other one.
    tables = {name: data.sorted_table(name) for name in present if name in CORE_FILES}

    utt2spk, spk2utt = tables[UTT2SPK], tables[SPK2UTT]
    wav, segments, feats = (tables.get(n) for n in (WAV_SCP, SEGMENTS, FEATS_SCP))
    _check_speakers(utt2spk, spk2utt)
    if spk_sort:
        _check_speaker_order(utt2spk)
    if segments is not None:
        _same_keys(segments, utt2spk, "utterance")
        _check_segments(segments, wav)
    elif wav is not None:
        _same_keys(wav, utt2spk, "utterance")
    if wav is not None and check_paths:
        _check_wav_paths(wav)
    if feats is not None:
        _same_keys(feats, utt2spk, "utterance")
        if check_paths:
            _check_feats_arks(feats)

    known = {"utt": utt2spk.line, "spk": spk2utt.line,
             "reco": wav.line if wav is not None else None}
    for name in present:
        if name in CORE_FILES:
            continue
        table, keys = data.sorted_table(name), known[kinds[name]]
        for key, value in table.pairs:
            if keys is not None and key not in keys:
                raise FhvaeError(f"{table.where(key)}: unknown {kinds[name]} '{key}'")
            _check_value(table, key, value)
    return DataDirSummary(len(utt2spk.pairs), len(spk2utt.pairs), present)


@dataclass
class FixReport:
    """What fix_data_dir changed."""

    before: int
    after: int
    duplicates: int
    backup: Path

    @property
    def dropped(self) -> int:
        return self.before - self.after


def _usable_utts(data: DataDir) -> set[str]:
    """Utterances present in utt2spk, wav.scp (or valid segments whose recording is in
    wav.scp), feats.scp, text and utt2lang: those Kaldi's fix_data_dir.sh keeps. Each
    table is read on its own and only its keys are held."""
    def keys(name: str) -> set[str]:
        return {key for key, _ in data.loose_pairs(name)[0]}

    keep = keys(UTT2SPK)
    if data.has(SEGMENTS):
        recos = keys(WAV_SCP) if data.has(WAV_SCP) else None
        good = set()
        for utt, value in data.loose_pairs(SEGMENTS)[0]:
            fields = value.split()
            try:
                ok = len(fields) == 3 and 0 <= float(fields[1]) < float(fields[2])
            except ValueError:
                ok = False
            if ok and (recos is None or fields[0] in recos):
                good.add(utt)
        keep &= good
    elif data.has(WAV_SCP):
        keep &= keys(WAV_SCP)
    for name in (FEATS_SCP, TEXT, UTT2LANG):
        if data.has(name):
            keep &= keys(name)
    return keep


def fix_data_dir(data_dir: str | os.PathLike,
                 extra: dict[str, str] | None = None) -> FixReport:
    """Sort and de-duplicate every table, keep only the utterances present in utt2spk,
    wav.scp/segments, feats.scp, text and utt2lang, filter the other tables (utt2*, spk2*,
    cmvn.scp, vad.scp, reco2*) to match and regenerate spk2utt, as Kaldi's fix_data_dir.sh.
    The original files are first copied to `<data>/.backup/`. No utterance left is an
    error, and then nothing is changed. `extra` maps more file names to 'utt' or 'spk'.
    """
    data = DataDir(data_dir)
    if not data.path.is_dir():
        raise FhvaeError(f"{data}: no such directory")
    if not data.has(UTT2SPK):
        raise FhvaeError(f"{data.utt2spk}: no such file")
    duplicates = before = 0
    for name in data.kinds(extra):        # one table at a time (memory: the largest one)
        pairs, dropped = data.loose_pairs(name)
        duplicates += dropped
        if name == UTT2SPK:
            before = len(pairs)
    keep = _usable_utts(data)
    if not keep:
        raise FhvaeError(f"{data}: no utterances remained (none is in all of utt2spk, "
                         "wav.scp/segments, feats.scp, text): not proceeding further")
    backup = data.file(BACKUP_DIR)
    if backup.exists():
        shutil.rmtree(backup)
    backup.mkdir()
    for path in data.path.iterdir():
        if path.is_file():
            shutil.copy2(path, backup / path.name)
    after = write_filtered(data, data, keep, extra)
    return FixReport(before, after, duplicates, backup)
