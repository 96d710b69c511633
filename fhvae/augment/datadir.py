"""The augmented data dir: the source dir's labels under new utterance ids, new features.

Utterance `<utt>` becomes `<utt>-<suffix>` with the source's speaker (a prefix of the new
id, so Kaldi's speaker-sorted order holds). Every utterance-keyed table (text, utt2*,
vad.scp) and every CTM (phone alignments) is carried under the new ids, since the new
features are frame-aligned with the source; speaker tables (spk2gender, ...) are copied;
utt2uniq maps each copy to its source utterance (Kaldi's augmentation convention, so that
a held-out split keeps copies together). What described the source audio does not hold
for the new features and is left out: wav.scp, segments, reco2*, and the source's
feats.scp/cmvn.scp/utt2num_frames, which fhvae.io.feature_dir writes anew (cmvn.scp per
speaker, as compute-cmvn-stats --spk2utt).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.datadir import (CMVN_SCP, FEATS_SCP, FRAME_SHIFT, SEGMENTS, UTT2NUM_FRAMES,
                              UTT2SPK, UTT2UNIQ, WAV_SCP, DataDir)
from fhvae.io.feature_dir import write_feature_dir

# Utterance tables that describe the source audio or features, not the new ones.
NOT_CARRIED = (WAV_SCP, SEGMENTS, FEATS_SCP, UTT2NUM_FRAMES)


def new_id(utt: str, suffix: str) -> str:
    """`<utt>-<suffix>`, the augmented copy's utterance id."""
    return f"{utt}-{suffix}"


def check_suffix(suffix: str) -> None:
    if not suffix or any(c.isspace() for c in suffix):
        raise FhvaeError(f"utterance-id suffix '{suffix}' is empty or has whitespace")


def condition_labels(target: str | os.PathLike, names: list[str]) -> dict[str, str]:
    """{table: label} for each table of `names` (e.g. utt2noise) in which every utterance
    of the target dir has the same label; tables absent or mixed there are left out."""
    out, target_dir = {}, DataDir(target)
    for name in names:
        if target_dir.has(name):
            labels = set(target_dir.table(name).values())
            if len(labels) == 1:
                out[name] = labels.pop()
    return out


def _renamed_source(src: DataDir, tmp: DataDir, suffix: str, relabel: dict[str, str]) -> None:
    """The source's tables under the new ids in `tmp` (utterance tables with their values,
    or the label of `relabel`), speaker tables as they are, CTMs with renamed first fields."""
    tmp.path.mkdir(parents=True)
    kinds = src.kinds()
    for name, kind in kinds.items():
        if (kind == "utt" and name not in NOT_CARRIED) or (kind == "spk" and name != CMVN_SCP):
            pairs = src.loose_pairs(name)[0]
            if kind == "utt":
                pairs = [(new_id(k, suffix), relabel.get(name, v)) for k, v in pairs]
            tmp.write(name, pairs)
    if UTT2UNIQ not in kinds:
        tmp.write(UTT2UNIQ, [(new_id(u, suffix), u) for u, _ in src.loose_pairs(UTT2SPK)[0]])
    for ctm in src.ctms():
        lines = [line.split(maxsplit=1)
                 for line in src.file(ctm).read_text(encoding="utf-8").splitlines()]
        tmp.write_text(ctm, "".join(f"{new_id(f[0], suffix)} {f[1]}\n"
                                    for f in lines if len(f) == 2))
    if src.has(FRAME_SHIFT):
        tmp.write_text(FRAME_SHIFT, src.file(FRAME_SHIFT).read_text())


def write_augmented_dir(src: str | os.PathLike, dst: str | os.PathLike,
                        feats_scp: str | os.PathLike, cmvn_ark: str | os.PathLike,
                        suffix: str, relabel: dict[str, str] | None = None) -> int:
    """Write data dir `dst`: the utterances of `feats_scp` (ids `<utt>-<suffix>` of
    utterances of `src`) with the source's carried tables, `relabel` {table: label}
    replacing the values of those utterance tables. Returns the number of utterances."""
    source, dst = DataDir(src), Path(dst)
    check_suffix(suffix)
    if not source.has(UTT2SPK):
        raise FhvaeError(f"{source.utt2spk}: no such file")
    tmp = dst.parent / f".{dst.name}.src.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _renamed_source(source, DataDir(tmp), suffix, relabel or {})
        return write_feature_dir(tmp, dst, feats_scp, cmvn_ark)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
