"""Stage 4 as jobs and files: z1/z2/s-vector tables of any data dir, in parts, restartable.

The numbers themselves come from fhvae.inference (latents.py says how a frame's z1/z2 and
an utterance's s-vector are computed); this module splits a data dir into jobs, writes
Kaldi tables, merges the jobs' scps and writes the speaker s-vectors.

Outputs and restarts. A job writes its three tables under temporary names and renames
them only when complete, then writes a marker `extract[.J].done` recording the model
file (path, size, mtime), a digest of its part of feats.scp (and of vad.scp with speech
pooling), the sampling and pooling options and its counts. A re-run skips a job whose
marker matches; any other job is redone from scratch, so a killed extraction never leaves
an scp that points into a half-written ark.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.inference import TABLES, ExtractOptions, VoicedFrames, extract_latents, load
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import UTT2SPK, VAD_SCP, DataDir
from fhvae.io.rxfile import parse, read_matrix
from fhvae.io.split import split_contiguous
from fhvae.io.tables import TableWriter, read_scp, write_table
from fhvae.io.text_table import read_dict, read_kv, write_kv

logger = logging.getLogger(__name__)


def table_paths(out_dir: str | os.PathLike, name: str, job: int | None) -> tuple[Path, Path]:
    """(ark, scp) of table `name` for one job, or of the single-job output when job is None."""
    stem = f"{name}.{job}" if job is not None else name
    return Path(out_dir) / f"{stem}.ark", Path(out_dir) / f"{stem}.scp"


def _marker_path(out_dir: Path, job: int | None) -> Path:
    return out_dir / (f"extract.{job}.done" if job is not None else "extract.done")


def _file_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"


def _table_digest(entries: Iterable[tuple[str, str]]) -> str:
    """Digest of (key, rxfile) scp entries plus the size and mtime of every ark they point
    into, so tables re-computed in place also change it."""
    digest = hashlib.sha1()
    arks = set()
    for key, rxfile in entries:
        digest.update(f"{key} {rxfile}\n".encode())
        rx = parse(rxfile, f"utterance '{key}'")
        ark = Path(rx.path)
        if not rx.pipe and ark not in arks and ark.is_file():  # a pipe has no file to stamp
            arks.add(ark)
            digest.update(_file_stamp(ark).encode())
    return digest.hexdigest()


def _fingerprint(model_path: Path, part: Sequence[tuple[int, str, str]],
                 opts: ExtractOptions, vad: Mapping[str, str] | None) -> dict[str, str]:
    """What a job's outputs depend on; a re-run with the same fingerprint may skip the job:
    the model, its part of feats.scp, the options, and with speech pooling the part's
    entries of `vad` (vad.scp as {utterance: rxfile})."""
    pool = opts.svector_pool
    if vad is not None:
        pool += ":" + _table_digest((key, vad[key]) for _, key, _ in part)
    return {"model": _file_stamp(model_path),
            "data": _table_digest((key, rxfile) for _, key, rxfile in part),
            "sample": str(int(opts.sample)), "seed": str(opts.seed),
            "tables": ",".join(opts.tables), "compress": str(int(opts.compress)),
            "svector_pool": pool}


def _vad_entries(data: DataDir, part: Sequence[tuple[int, str, str]],
                 opts: ExtractOptions) -> dict[str, str] | None:
    """With speech pooling, vad.scp as {utterance: rxfile}, where every utterance of the
    part must have an entry (None without: nothing reads it)."""
    if opts.svector_pool != "speech":
        return None
    vad_scp = data.vad_scp
    if not vad_scp.is_file():
        raise FhvaeError(f"{vad_scp}: no such file (speech-only s-vector pooling needs it: "
                         "run utils/compute_vad_decision.sh)")
    entries = data.table(VAD_SCP)
    for lineno, key, _ in part:
        if key not in entries:
            raise FhvaeError(f"{vad_scp}: no entry for utterance '{key}' "
                             f"(feats.scp line {lineno})")
    return entries


class _VadReader(Mapping[str, np.ndarray]):
    """vad.scp as {utterance: decisions}, each read when asked for: a job holds one
    utterance's decisions at a time, not a value per frame of its whole part."""

    def __init__(self, vad_scp: Path, entries: Mapping[str, str]):
        self.vad_scp, self.entries = vad_scp, entries

    def __getitem__(self, key: str) -> np.ndarray:
        return read_matrix(self.entries[key], f"{self.vad_scp} ({key})")

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _job_is_done(out_dir: Path, job: int | None, fingerprint: dict[str, str]) -> bool:
    marker = _marker_path(out_dir, job)
    if not marker.is_file():
        return False
    recorded = read_dict(marker)
    return (all(recorded.get(k) == v for k, v in fingerprint.items())
            and all(p.is_file() for name in fingerprint["tables"].split(",")
                    for p in table_paths(out_dir, name, job)))


def check_speakers(data_dir: str | os.PathLike) -> None:
    """Every utterance of feats.scp has a speaker in utt2spk (checked before any work, so
    a bad utt2spk cannot fail the run after the tables were written)."""
    data = DataDir(data_dir)
    spk_of = data.table(UTT2SPK)
    for lineno, utt, _ in data.feats_entries():
        if utt not in spk_of:
            raise FhvaeError(f"{data.utt2spk}: no speaker for utterance '{utt}' "
                             f"(feats.scp line {lineno})")


def run_job(model_path: str | os.PathLike, data_dir: str | os.PathLike,
            out_dir: str | os.PathLike, job: int | None = None, num_jobs: int = 1,
            device: str = "auto", opts: ExtractOptions | None = None) -> dict[str, int]:
    """Extract one job's part of `data_dir` (all of it when job is None) into `out_dir`.

    Returns {'utterances': written, 'skipped': empty utterances}; a job whose marker
    matches the current model, data and options is not redone.
    """
    opts = opts or ExtractOptions()
    model_path, data, out_dir = Path(model_path), DataDir(data_dir), Path(out_dir)
    if not model_path.is_file():
        raise FhvaeError(f"{model_path}: model not found")
    part = data.feats_entries()
    if job is not None:
        part = list(split_contiguous(part, job, num_jobs))
    vad_entries = _vad_entries(data, part, opts)
    fingerprint = _fingerprint(model_path, part, opts, vad_entries)
    marker = _marker_path(out_dir, job)
    if _job_is_done(out_dir, job, fingerprint):
        logger.info("%s matches this model and data: job already done", marker)
        counts = read_dict(marker)
        return {name: int(counts[name]) for name in ("utterances", "skipped", "no_voiced")}
    marker.unlink(missing_ok=True)
    _remove_stale_temporaries(out_dir, job)
    vad = (None if vad_entries is None
           else VoicedFrames(str(data.vad_scp), _VadReader(data.vad_scp, vad_entries)))

    model, mvn, _ = load(model_path, device)
    feats_scp = data.feats_scp
    utts = data.read_feats(part, "extract")
    with contextlib.ExitStack() as stack:  # an exception discards all three tables
        writers = {name: stack.enter_context(TableWriter(
                       *table_paths(out_dir, name, job),
                       compress=opts.compress and name != "svector"))
                   for name in opts.tables}
        no_voiced = 0
        for key, lat in extract_latents(model, mvn, utts, None, opts, str(feats_scp), vad):
            for name, writer in writers.items():
                writer.write(key, getattr(lat, name))
            no_voiced += lat.no_voiced
    counts = {"utterances": writers["svector"].count,
              "skipped": len(part) - writers["svector"].count, "no_voiced": no_voiced}
    write_kv(marker, list(fingerprint.items()) + [(k, str(v)) for k, v in counts.items()])
    logger.info("wrote latents of %d utterances to %s (%d skipped)", counts["utterances"],
                out_dir, counts["skipped"])
    _log_no_voiced(no_voiced, opts)
    return counts


def _log_no_voiced(count: int, opts: ExtractOptions) -> None:
    """Say how many speech-pooled s-vectors fell back to all segments."""
    if opts.svector_pool == "speech":
        logger.info("speech-only s-vectors: %d utterances had no voiced segment and pooled "
                    "all segments", count)


def _remove_stale_temporaries(out_dir: Path, job: int | None) -> None:
    """Delete temporaries left by a killed run of the same job (never referenced by an scp)."""
    for name in TABLES:
        for path in table_paths(out_dir, name, job):
            for stale in out_dir.glob(f".{path.name}.tmp*"):
                stale.unlink(missing_ok=True)


def merge_jobs(model_path: str | os.PathLike, data_dir: str | os.PathLike,
               out_dir: str | os.PathLike, num_jobs: int,
               opts: ExtractOptions | None = None) -> int:
    """Combine the scps of `num_jobs` finished jobs into sorted {z1,z2,svector}.scp.

    Every job must have finished with this model, data and options; the arks stay per
    job (as in Kaldi). Returns the number of utterances.
    """
    opts = opts or ExtractOptions()
    model_path, data, out_dir = Path(model_path), DataDir(data_dir), Path(out_dir)
    total = skipped = no_voiced = 0
    entries = data.feats_entries()
    vad_entries = _vad_entries(data, entries, opts)     # read once for every job
    for job in range(1, num_jobs + 1):
        part = split_contiguous(entries, job, num_jobs)
        if not _job_is_done(out_dir, job, _fingerprint(model_path, part, opts, vad_entries)):
            raise FhvaeError(f"{_marker_path(out_dir, job)}: job {job} of {num_jobs} has not "
                             "finished with this model and data; re-run the extraction")
        counts = read_dict(_marker_path(out_dir, job))
        total += int(counts["utterances"])
        skipped += int(counts["skipped"])
        no_voiced += int(counts["no_voiced"])
    for name in opts.tables:
        lines = []
        for job in range(1, num_jobs + 1):
            lines.extend(table_paths(out_dir, name, job)[1].read_text().splitlines(True))
        lines.sort(key=lambda line: line.split(maxsplit=1)[0].encode())
        write_text_atomic(out_dir / f"{name}.scp", "".join(lines))
    check_counts(out_dir, data, total, skipped, opts.tables)
    _log_no_voiced(no_voiced, opts)
    return total


def check_counts(out_dir: str | os.PathLike, data_dir: str | os.PathLike, written: int,
                 skipped: int, tables: Sequence[str] = TABLES) -> None:
    """Every utterance of feats.scp is in each output scp, except the skipped empty ones."""
    out_dir, feats_scp = Path(out_dir), DataDir(data_dir).feats_scp
    expected = len(read_kv(feats_scp))
    if written + skipped != expected:
        raise FhvaeError(f"{out_dir}: {written} utterances extracted and {skipped} skipped, "
                         f"but {feats_scp} has {expected}")
    for name in tables:
        scp = out_dir / f"{name}.scp"
        found = len(read_kv(scp))
        if found != written:
            raise FhvaeError(f"{scp}: {found} entries, expected {written}")


def speaker_means(svector_scp: str | os.PathLike, utt2spk: str | os.PathLike,
                  out_dir: str | os.PathLike) -> int:
    """Write spk_svector.{ark,scp} (mean s-vector per speaker) and num_utts.ark.

    num_utts.ark is a text Int32 table exactly as Kaldi's `ivector-mean ... ark,t:num_utts.ark`
    writes it: `<spk> <count> ` lines. Speakers without any s-vector are left out.
    Returns the number of speakers.
    """
    spk_of = read_dict(utt2spk)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for utt, vec in read_scp(svector_scp):
        if utt not in spk_of:
            raise FhvaeError(f"{utt2spk}: no speaker for utterance '{utt}' of {svector_scp}")
        spk = spk_of[utt]
        sums[spk] = sums.get(spk, 0.0) + vec.astype(np.float64)
        counts[spk] = counts.get(spk, 0) + 1
    speakers = sorted(sums, key=str.encode)
    out_dir = Path(out_dir)
    write_table(out_dir / "spk_svector.ark", out_dir / "spk_svector.scp",
                ((spk, sums[spk] / counts[spk]) for spk in speakers))
    write_text_atomic(out_dir / "num_utts.ark", "".join(f"{spk} {counts[spk]} \n"
                                                        for spk in speakers))
    return len(speakers)
