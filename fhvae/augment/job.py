"""Augmentation as jobs and files: a source data dir (or one part of its split) decoded
toward each target condition into Kaldi feature tables, then merged into data dirs.

For `<out-root>`, source `data/train` and target `data/noisy`, the output dir is
`<out-root>/train_aug_noisy` (utterance ids `<utt>-noisy`, or `--suffix`), its features in
`<ark-dir>/raw_fbank_train_aug_noisy[.J].{ark,scp}` (absolute paths, as make_fbank.sh).
Every job estimates the domains from the whole source and target dirs (s-vectors of
non-overlapping windows only: a small fraction of the decoding), so parts need nothing
from each other and give the numbers of a single run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fhvae.augment.datadir import check_suffix, condition_labels, new_id, write_augmented_dir
from fhvae.augment.decode import RESIDUALS, with_residual
from fhvae.augment.domain import METHODS, Z2Move, make_move, svectors
from fhvae.errors import FhvaeError
from fhvae.inference import FRAME_MODES, ExtractOptions, decode_frames, extract_latents, load
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import UTT2CHANNEL, UTT2NOISE, UTT2SPK, DataDir
from fhvae.io.tables import TableWriter

logger = logging.getLogger(__name__)


@dataclass
class AugmentOptions:
    """How the copies are made; `relabel` names the utterance tables (e.g. utt2noise) set
    to the target's label where the target dir has a single one."""

    method: str = "shift"
    frames: str = "centre"
    residual: str = "add"      # what of the source's residual is kept (decode.RESIDUALS)
    seed: int = 0
    compress: bool = False
    batch_size: int = 4096
    device: str = "auto"
    relabel: list[str] = field(default_factory=lambda: [UTT2NOISE, UTT2CHANNEL])

    def check(self) -> None:
        if self.method not in METHODS:
            raise FhvaeError(f"unknown z2 method '{self.method}' (one of {', '.join(METHODS)})")
        if self.residual not in RESIDUALS:
            raise FhvaeError(f"unknown residual rule '{self.residual}' "
                             f"(one of {', '.join(RESIDUALS)})")
        if self.frames not in FRAME_MODES:
            raise FhvaeError(f"unknown frame formation '{self.frames}' "
                             f"(one of {', '.join(FRAME_MODES)})")


@dataclass
class Target:
    """One target condition: its data dir, the output dir and the new ids' suffix."""

    data_dir: Path
    out_dir: Path
    suffix: str

    @property
    def name(self) -> str:
        return self.out_dir.name


def plan_targets(src: str | os.PathLike, targets: Sequence[str | os.PathLike],
                 out_root: str | os.PathLike, suffix: str | None = None) -> list[Target]:
    """The output dir `<out-root>/<src>_aug_<target>` and suffix of every target dir."""
    src = Path(src)
    if suffix is not None and len(targets) != 1:
        raise FhvaeError("--suffix names the copies of one target dir; with several, each "
                         "target dir's name is its suffix")
    plan = []
    for target in map(Path, targets):
        feats_scp = DataDir(target).feats_scp
        if not feats_scp.is_file():
            raise FhvaeError(f"{feats_scp}: no such file")
        name = Path(os.path.abspath(target)).name
        plan.append(Target(target, Path(out_root) / f"{Path(os.path.abspath(src)).name}_aug_{name}",
                           suffix if suffix is not None else name))
        check_suffix(plan[-1].suffix)
    names = [t.name for t in plan]
    for name in names:
        if names.count(name) > 1:
            raise FhvaeError(f"two target dirs would both write {name}: give them distinct names")
    return plan


def table_paths(ark_dir: str | os.PathLike, target: Target,
                job: int | None) -> tuple[Path, Path]:
    """(ark, scp) of one target's features from one job (or the single run)."""
    stem = f"raw_fbank_{target.name}" + (f".{job}" if job is not None else "")
    return Path(ark_dir) / f"{stem}.ark", Path(ark_dir) / f"{stem}.scp"


def _moves(model, mvn, src: Path, targets: list[Target], opts: AugmentOptions) -> list[Z2Move]:
    source = svectors(model, mvn, src, opts.batch_size)
    return [make_move(opts.method, source, svectors(model, mvn, t.data_dir, opts.batch_size),
                      opts.seed) for t in targets]


def augment_part(model_path: str | os.PathLike, src: str | os.PathLike,
                 part: str | os.PathLike, targets: list[Target], ark_dir: str | os.PathLike,
                 job: int | None = None, opts: AugmentOptions | None = None) -> int:
    """Decode every utterance of data dir `part` (the source dir, or one part of its split)
    toward each target into that target's table of job `job`. Returns the utterances
    written per target (utterances without frames are skipped with a warning)."""
    opts = opts or AugmentOptions()
    opts.check()
    model_path, src, part = Path(model_path), Path(src), Path(part)
    if not model_path.is_file():
        raise FhvaeError(f"{model_path}: model not found")
    model, mvn, _ = load(model_path, opts.device)
    moves = _moves(model, mvn, src, targets, opts)
    pending: dict[str, np.ndarray] = {}    # features read but not yet decoded

    part_dir = DataDir(part)

    def reading() -> Iterator[tuple[str, np.ndarray]]:
        for utt, feats in part_dir.read_feats(part_dir.feats_entries(), "augment"):
            pending[utt] = feats
            yield utt, feats

    latents = extract_latents(model, mvn, reading(), None,
                              ExtractOptions(batch_size=opts.batch_size), str(part_dir.feats_scp))
    with contextlib.ExitStack() as stack:   # an exception discards every table
        writers = [stack.enter_context(TableWriter(*table_paths(ark_dir, t, job),
                                                   compress=opts.compress)) for t in targets]
        for utt, lat in latents:
            source = mvn.apply(pending.pop(utt))
            own = (decode_frames(model, lat.z1, lat.z2, opts.frames, opts.batch_size)
                   if opts.residual != "none" else source)
            for target, move, writer in zip(targets, moves, writers):
                moved = decode_frames(model, lat.z1, move(utt, lat.z2), opts.frames,
                                         opts.batch_size)
                writer.write(new_id(utt, target.suffix),
                             mvn.invert(with_residual(source, own, moved, opts.residual)))
    logger.info("%s: %d utterances decoded toward %d target(s)", part, writers[0].count,
                len(targets))
    return writers[0].count


def merge(src: str | os.PathLike, targets: list[Target], ark_dir: str | os.PathLike,
          num_jobs: int | None = None, opts: AugmentOptions | None = None) -> dict[str, int]:
    """Write each target's data dir from its job tables (`num_jobs` of them, or the single
    run's when None). Returns {output dir: utterances}."""
    opts = opts or AugmentOptions()
    src, counts = Path(src), {}
    num_src = len(DataDir(src).pairs(UTT2SPK))
    for target in targets:
        jobs = [None] if num_jobs is None else range(1, num_jobs + 1)
        lines = []
        for job in jobs:
            scp = table_paths(ark_dir, target, job)[1]
            if not scp.is_file():
                raise FhvaeError(f"{scp}: no such file (job {job} of {num_jobs} has not finished)")
            lines.extend(scp.read_text().splitlines(True))
        lines.sort(key=lambda line: line.split(maxsplit=1)[0].encode())
        merged = Path(ark_dir) / f"raw_fbank_{target.name}.scp"
        if num_jobs is not None:
            write_text_atomic(merged, "".join(lines))
        cmvn_ark = Path(os.path.abspath(ark_dir)) / f"cmvn_{target.name}.ark"
        relabel = condition_labels(target.data_dir, opts.relabel)
        counts[str(target.out_dir)] = write_augmented_dir(src, target.out_dir, merged, cmvn_ark,
                                                          target.suffix, relabel)
        if counts[str(target.out_dir)] != num_src:
            logger.warning("%s: %d of the %d utterances of %s (the others have no frames)",
                           target.out_dir, counts[str(target.out_dir)], num_src, src)
    return counts

