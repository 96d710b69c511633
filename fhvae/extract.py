"""Stage 4: frame-level z1/z2 and utterance/speaker s-vectors for any data dir.

Frame alignment. An utterance of T frames yields exactly T rows of z1 and of z2, row t
aligned with Kaldi's frame t. The utterance is padded by edge replication (seg_len//2
copies of the first frame on the left, seg_len-1-seg_len//2 copies of the last frame on
the right) and the window of seg_len frames starting at every padded frame is encoded, so
row t describes the window centred on frame t: frames t-10 .. t+9 for seg_len 20, with
indices below 0 or above T-1 replaced by the first or last frame. This works for any
T >= 1, also T < seg_len; utterances with T = 0 are skipped with a warning.

z1 of a window is encoded given z2 of the same window: the posterior means by default;
with `sample=True`, one draw from each posterior, using a generator seeded per utterance
(from the seed and the utterance id), so the draws do not depend on batching or on how
the data is split into jobs.

s-vector. The MAP estimate of mu2 (the same formula that resets the training cache):
the sum of the z2 posterior means of the utterance's floor(T/seg_len) non-overlapping
segments (frames 0..seg_len-1, seg_len..2*seg_len-1, ...; a remainder shorter than a
segment is not used) divided by (N + sigma2_z2). These segments are exactly the sliding
windows of rows seg_len//2, seg_len//2 + seg_len, ..., so no second encoder pass is
needed. An utterance shorter than seg_len uses one edge-padded segment: the window of its
middle row T//2. A speaker's s-vector is the mean of its utterances' s-vectors (as
Kaldi's ivector-mean computes speaker x-vectors).

Speech-only pooling (`svector_pool="speech"`). Silent or noise-only windows carry the
channel and noise rather than the speaker, so the s-vector may pool only the segments
whose majority of frames (counted over the window, edge copies included) are voiced in
the data dir's vad.scp (utils/compute_vad_decision.sh, as Kaldi's x-vector recipes drop
unvoiced frames). An utterance without a voiced segment keeps all of them (counted as
`no_voiced`). z1/z2 are the same in both modes.

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
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from fhvae.checkpoint import load_model
from fhvae.device import resolve_device
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import read_dict, read_kv, write_kv
from fhvae.io.tables import TableWriter, load_rxfile, read_scp, write_table
from fhvae.io.validate import read_sorted_table
from fhvae.model import FHVAE
from fhvae.objective import map_mu2

logger = logging.getLogger(__name__)

TABLES = ("z1", "z2", "svector")
SVECTOR_POOLS = ("all", "speech")
# The ':offset' and '[rows,cols]' range that may follow the file of a feats.scp entry.
_RX_TAIL = re.compile(r"(:\d+)?(\[[\d:,]*\])?$")


@dataclass
class ExtractOptions:
    """How latents are computed; `batch_size` is the number of windows per encoder call."""

    sample: bool = False
    seed: int = 0
    batch_size: int = 4096
    svector_only: bool = False     # only the non-overlapping windows: ~seg_len times cheaper
    compress: bool = False         # z1/z2 as Kaldi compressed matrices (s-vectors never)
    svector_pool: str = "all"      # all segments, or "speech": those voiced in vad.scp

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables a job writes: s-vectors only, or z1/z2 as well."""
        return ("svector",) if self.svector_only else TABLES


@dataclass
class Latents:
    """One utterance's outputs: z1 (T, z1_dim), z2 (T, z2_dim), svector (z2_dim,);
    z1/z2 are None when only s-vectors were asked for."""

    z1: np.ndarray | None
    z2: np.ndarray | None
    svector: np.ndarray
    no_voiced: bool = False        # speech pooling found no voiced segment: used them all


def window_index(num_frames: int, seg_len: int) -> np.ndarray:
    """(T, seg_len) frame indices of the edge-padded window centred on every frame."""
    offsets = np.arange(seg_len) - seg_len // 2
    return np.clip(np.arange(num_frames)[:, None] + offsets[None, :], 0, num_frames - 1)


def svector_rows(num_frames: int, seg_len: int) -> np.ndarray:
    """Rows whose windows are the non-overlapping segments used for the s-vector."""
    if num_frames < seg_len:
        return np.array([num_frames // 2])
    return np.arange(num_frames // seg_len) * seg_len + seg_len // 2


def speech_rows(num_frames: int, seg_len: int, voiced: np.ndarray) -> np.ndarray:
    """The s-vector rows whose windows are mostly voiced (empty when none is)."""
    rows = svector_rows(num_frames, seg_len)
    votes = (voiced[window_index(num_frames, seg_len)[rows]] > 0.5).sum(axis=1)
    return rows[2 * votes > seg_len]


def _utterance_noise(key: str, num_frames: int, model: FHVAE,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal draws for z2 and z1 of one utterance, reproducible from (seed, key)."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{key}".encode()))
    eps2 = torch.randn(num_frames, model.cfg.z2_dim, generator=gen)
    eps1 = torch.randn(num_frames, model.cfg.z1_dim, generator=gen)
    return eps2, eps1


def _check_features(key: str, feats: np.ndarray, feat_dim: int, source: str) -> None:
    if feats.ndim != 2 or feats.shape[1] != feat_dim:
        dim = feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}"
        raise FhvaeError(f"{source}: utterance '{key}' has feature dim {dim} "
                         f"but the model expects feat_dim {feat_dim}")
    if not np.isfinite(feats).all():
        raise FhvaeError(f"{source}: utterance '{key}' contains NaN or infinite features")


@dataclass
class VoicedFrames:
    """Per-utterance 0/1 voicing decisions (a vad.scp) for speech-only s-vector pooling."""

    source: str                    # the vad.scp, named in errors
    frames: dict[str, np.ndarray]

    def of(self, key: str, num_frames: int) -> np.ndarray:
        """The decisions of one utterance, which must have one per feature frame."""
        voiced = self.frames.get(key)
        if voiced is None:
            raise FhvaeError(f"{self.source}: no entry for utterance '{key}'")
        if voiced.ndim != 1 or voiced.shape[0] != num_frames:
            raise FhvaeError(f"{self.source}: utterance '{key}' has {voiced.size} VAD values "
                             f"but {num_frames} feature frames")
        return voiced


def _groups(utts: Iterable[tuple[str, np.ndarray]], model: FHVAE, source: str,
            min_frames: int) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Validated utterances gathered into groups of at least `min_frames` frames."""
    group: list[tuple[str, np.ndarray]] = []
    frames = 0
    for key, feats in utts:
        if feats.shape[0] == 0:
            logger.warning("%s: utterance '%s' has no frames; skipped", source, key)
            continue
        _check_features(key, feats, model.cfg.feat_dim, source)
        group.append((key, feats))
        frames += feats.shape[0]
        if frames >= min_frames:
            yield group
            group, frames = [], 0
    if group:
        yield group


@torch.no_grad()
def _encode_group(model: FHVAE, mvn: MVN, group: list[tuple[str, np.ndarray]],
                  device: torch.device, opts: ExtractOptions,
                  vad: VoicedFrames | None) -> list[tuple[str, Latents]]:
    """Encode every window of a group of utterances, `opts.batch_size` windows at a time."""
    seg_len, sigma2 = model.cfg.seg_len, model.cfg.sigma2_z2
    lengths = [feats.shape[0] for _, feats in group]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    frames = torch.from_numpy(np.concatenate([mvn.apply(f) for _, f in group])).to(device)
    windows = np.concatenate([window_index(n, seg_len) + s for n, s in zip(lengths, starts)])
    seg_rows = [svector_rows(n, seg_len) for n in lengths]
    no_voiced = [False] * len(group)
    if vad is not None:
        for i, ((key, _), n) in enumerate(zip(group, lengths)):
            voiced_rows = speech_rows(n, seg_len, vad.of(key, n))
            no_voiced[i] = voiced_rows.size == 0
            if not no_voiced[i]:
                seg_rows[i] = voiced_rows
    seg_rows = [rows + s for rows, s in zip(seg_rows, starts)]
    seg_utt = torch.from_numpy(np.repeat(np.arange(len(group)), [len(r) for r in seg_rows]))
    seg_rows_all = np.concatenate(seg_rows)
    if opts.svector_only:   # encode just the s-vector windows (z2 only); they become rows 0..
        windows, seg_rows_all = windows[seg_rows_all], np.arange(len(seg_rows_all))
    seg_index = torch.from_numpy(seg_rows_all).to(device)
    index = torch.from_numpy(windows).to(device)
    eps2 = eps1 = None
    if opts.sample and not opts.svector_only:
        noise = [_utterance_noise(key, n, model, opts.seed) for (key, _), n in zip(group, lengths)]
        eps2 = torch.cat([e2 for e2, _ in noise]).to(device)
        eps1 = torch.cat([e1 for _, e1 in noise]).to(device)

    z1_rows, z2_rows, z2_mu_rows = [], [], []
    for lo in range(0, index.shape[0], opts.batch_size):
        hi = lo + opts.batch_size
        x = frames[index[lo:hi]]                              # (B, seg_len, F)
        z2_mu, z2_logvar = model.encode_z2(x)
        z2_mu_rows.append(z2_mu.float())
        if opts.svector_only:
            continue
        z2 = z2_mu + eps2[lo:hi] * torch.exp(0.5 * z2_logvar) if opts.sample else z2_mu
        z1_mu, z1_logvar = model.encode_z1(x, z2)
        z1 = z1_mu + eps1[lo:hi] * torch.exp(0.5 * z1_logvar) if opts.sample else z1_mu
        z1_rows.append(z1.float())
        z2_rows.append(z2.float())

    sums = torch.zeros(len(group), model.cfg.z2_dim, device=device)
    sums.index_add_(0, seg_utt.to(device), torch.cat(z2_mu_rows)[seg_index])
    counts = torch.tensor([len(r) for r in seg_rows], device=device)
    svectors = map_mu2(sums, counts, sigma2).cpu().numpy()

    if opts.svector_only:
        return [(key, Latents(None, None, svectors[i], no_voiced[i]))
                for i, (key, _) in enumerate(group)]
    z1_all, z2_all = torch.cat(z1_rows).cpu().numpy(), torch.cat(z2_rows).cpu().numpy()
    return [(key, Latents(z1_all[s:e], z2_all[s:e], svectors[i], no_voiced[i]))
            for i, ((key, _), s, e) in enumerate(zip(group, starts[:-1], starts[1:]))]


def extract_latents(model: FHVAE, mvn: MVN, utts: Iterable[tuple[str, np.ndarray]],
                    device: torch.device, opts: ExtractOptions | None = None,
                    source: str = "input",
                    vad: VoicedFrames | None = None) -> Iterator[tuple[str, Latents]]:
    """Yield (key, Latents) for raw (T, F) feature matrices, in input order.

    Utterances are batched together so that every encoder call sees about
    `opts.batch_size` windows. `source` names the input in error messages. `vad` is
    needed, and used, only when `opts.svector_pool` is "speech".
    """
    opts = opts or ExtractOptions()
    if opts.svector_pool not in SVECTOR_POOLS:
        raise FhvaeError(f"unknown s-vector pooling '{opts.svector_pool}' (all or speech)")
    if opts.svector_pool == "speech" and vad is None:
        raise FhvaeError("speech-only s-vector pooling needs the utterances' VAD decisions")
    vad = vad if opts.svector_pool == "speech" else None
    model = model.to(device).eval()
    for group in _groups(utts, model, source, opts.batch_size):
        yield from _encode_group(model, mvn, group, device, opts, vad)


def split_contiguous(items: Sequence, job: int, num_jobs: int) -> Sequence:
    """Part `job` (1-based) of `num_jobs` contiguous parts whose sizes differ by at most one."""
    if not 1 <= job <= num_jobs:
        raise FhvaeError(f"job {job} is not in 1..{num_jobs}")
    size, extra = divmod(len(items), num_jobs)
    start = (job - 1) * size + min(job - 1, extra)
    return items[start:start + size + (1 if job <= extra else 0)]


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
        ark = Path(_RX_TAIL.sub("", rxfile))   # 'file[:offset][[range]]' -> file
        if ark not in arks and ark.is_file():  # pipes ("cmd |") have no file to stamp
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


def _vad_entries(data_dir: Path, part: Sequence[tuple[int, str, str]],
                 opts: ExtractOptions) -> dict[str, str] | None:
    """With speech pooling, vad.scp as {utterance: rxfile}, where every utterance of the
    part must have an entry (None without: nothing reads it)."""
    if opts.svector_pool != "speech":
        return None
    vad_scp = data_dir / "vad.scp"
    if not vad_scp.is_file():
        raise FhvaeError(f"{vad_scp}: no such file (speech-only s-vector pooling needs it: "
                         "run utils/compute_vad_decision.sh)")
    entries = read_dict(vad_scp)
    for lineno, key, _ in part:
        if key not in entries:
            raise FhvaeError(f"{vad_scp}: no entry for utterance '{key}' "
                             f"(feats.scp line {lineno})")
    return entries


def _load_vad(data_dir: Path, part: Sequence[tuple[int, str, str]],
              entries: Mapping[str, str]) -> VoicedFrames:
    """The decisions of the part's utterances (`entries`: vad.scp), read before encoding."""
    vad_scp = data_dir / "vad.scp"
    return VoicedFrames(str(vad_scp), {key: load_rxfile(entries[key], f"{vad_scp} ({key})")
                                       for _, key, _ in part})


def _job_is_done(out_dir: Path, job: int | None, fingerprint: dict[str, str]) -> bool:
    marker = _marker_path(out_dir, job)
    if not marker.is_file():
        return False
    recorded = read_dict(marker)
    return (all(recorded.get(k) == v for k, v in fingerprint.items())
            and all(p.is_file() for name in fingerprint["tables"].split(",")
                    for p in table_paths(out_dir, name, job)))


def _feats_entries(data_dir: Path) -> list[tuple[int, str, str]]:
    """(line number, utterance, rxfile) of every line of feats.scp, which must be a sorted
    Kaldi table (the outputs keep its order) with at least one line."""
    table = read_sorted_table(data_dir / "feats.scp")
    entries = [(n, k, v) for n, (k, v) in enumerate(table.pairs, 1)]
    if not entries:
        raise FhvaeError(f"{data_dir / 'feats.scp'}: no utterances")
    return entries


def check_speakers(data_dir: str | os.PathLike) -> None:
    """Every utterance of feats.scp has a speaker in utt2spk (checked before any work, so
    a bad utt2spk cannot fail the run after the tables were written)."""
    data_dir = Path(data_dir)
    spk_of = read_dict(data_dir / "utt2spk")
    for lineno, utt, _ in _feats_entries(data_dir):
        if utt not in spk_of:
            raise FhvaeError(f"{data_dir / 'utt2spk'}: no speaker for utterance '{utt}' "
                             f"(feats.scp line {lineno})")


def run_job(model_path: str | os.PathLike, data_dir: str | os.PathLike,
            out_dir: str | os.PathLike, job: int | None = None, num_jobs: int = 1,
            device: str = "auto", opts: ExtractOptions | None = None) -> dict[str, int]:
    """Extract one job's part of `data_dir` (all of it when job is None) into `out_dir`.

    Returns {'utterances': written, 'skipped': empty utterances}; a job whose marker
    matches the current model, data and options is not redone.
    """
    opts = opts or ExtractOptions()
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    if not model_path.is_file():
        raise FhvaeError(f"{model_path}: model not found")
    part = _feats_entries(data_dir)
    if job is not None:
        part = list(split_contiguous(part, job, num_jobs))
    vad_entries = _vad_entries(data_dir, part, opts)
    fingerprint = _fingerprint(model_path, part, opts, vad_entries)
    marker = _marker_path(out_dir, job)
    if _job_is_done(out_dir, job, fingerprint):
        logger.info("%s matches this model and data: job already done", marker)
        counts = read_dict(marker)
        return {name: int(counts[name]) for name in ("utterances", "skipped", "no_voiced")}
    marker.unlink(missing_ok=True)
    _remove_stale_temporaries(out_dir, job)
    vad = None if vad_entries is None else _load_vad(data_dir, part, vad_entries)

    dev = resolve_device(device)
    model, mvn, _ = load_model(model_path, dev)
    feats_scp = data_dir / "feats.scp"
    utts = ((key, load_rxfile(rx, f"{feats_scp}:{n} ({key})"))
            for n, key, rx in tqdm(part, desc="extract", unit="utt", disable=None))
    with contextlib.ExitStack() as stack:  # an exception discards all three tables
        writers = {name: stack.enter_context(TableWriter(
                       *table_paths(out_dir, name, job),
                       compress=opts.compress and name != "svector"))
                   for name in opts.tables}
        no_voiced = 0
        for key, lat in extract_latents(model, mvn, utts, dev, opts, str(feats_scp), vad):
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
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    total = skipped = no_voiced = 0
    entries = _feats_entries(data_dir)
    vad_entries = _vad_entries(data_dir, entries, opts)     # read once for every job
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
    check_counts(out_dir, data_dir, total, skipped, opts.tables)
    _log_no_voiced(no_voiced, opts)
    return total


def check_counts(out_dir: str | os.PathLike, data_dir: str | os.PathLike, written: int,
                 skipped: int, tables: Sequence[str] = TABLES) -> None:
    """Every utterance of feats.scp is in each output scp, except the skipped empty ones."""
    out_dir, feats_scp = Path(out_dir), Path(data_dir) / "feats.scp"
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
