"""Kaldi data-dir text tables (`<key> <value>` per line): reading with precise errors, and
the generic operations built on them (filtering, subsetting, splitting into parts)."""

from __future__ import annotations

import bisect
import io
import itertools
import logging
import os
import random
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic

log = logging.getLogger(__name__)


def read_kv(path: str | os.PathLike, *, allow_empty_value: bool = False) -> list[tuple[str, str]]:
    """Read `<key> <rest-of-line>` lines in file order.

    Raises FhvaeError naming file and line for a missing file, a line without a value,
    or a duplicate key. Order is kept so callers can check Kaldi's sorting rule.
    """
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(_utf8_lines(path), 1):
        parts = line.rstrip("\n").split(maxsplit=1)
        if not parts:
            raise FhvaeError(f"{path}:{lineno}: empty line")
        key = parts[0]
        value = parts[1].strip() if len(parts) == 2 else ""
        if not value and not allow_empty_value:
            raise FhvaeError(f"{path}:{lineno}: key '{key}' has no value")
        if key in seen:
            raise FhvaeError(f"{path}:{lineno}: duplicate key '{key}'")
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _utf8_lines(path: Path) -> list[str]:
    """The lines of a text table; bytes that are not UTF-8 are an error naming the line."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        return list(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))  # as open() splits
    except UnicodeDecodeError as err:
        lineno = raw.count(b"\n", 0, err.start) + 1
        raise FhvaeError(f"{path}:{lineno}: not UTF-8 text (byte {raw[err.start]:#04x})") from None


def read_dict(path: str | os.PathLike) -> dict[str, str]:
    """`read_kv` as a dict (keys unique by construction)."""
    return dict(read_kv(path))


def write_kv(path: str | os.PathLike, pairs: list[tuple[str, object]]) -> None:
    """Write `<key> <value>` lines atomically, sorted as LC_ALL=C sort would sort them."""
    ordered = sorted(pairs, key=lambda kv: c_order(kv[0]))
    write_text_atomic(path, "".join(f"{k} {v}\n" for k, v in ordered))


def c_order(key: str) -> bytes:
    """Sort key that reproduces `LC_ALL=C sort` (byte order of the UTF-8 encoding)."""
    return key.encode("utf-8")


def read_loose(path: str | os.PathLike) -> tuple[list[tuple[str, str]], int]:
    """Read a possibly messy `<key> <value>` file, as the fixer must.

    Blank lines are skipped and only the first line of a duplicated key is kept.
    Returns the pairs in file order and the number of duplicate lines dropped.
    """
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    dropped = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if parts[0] in seen:
                dropped += 1
                continue
            seen.add(parts[0])
            pairs.append((parts[0], parts[1].strip() if len(parts) == 2 else ""))
    return pairs, dropped


UTT_TABLES = ("utt2spk", "feats.scp", "vad.scp", "text", "segments")


def table_kinds(data_dir: str | os.PathLike,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The `<key> <value>` files present in a data dir, each mapped to what its keys are.

    'utt' (utt2spk, feats.scp, vad.scp, text, segments, utt2*, and wav.scp without
    segments), 'spk' (spk2* except spk2utt, which is derived from utt2spk; cmvn.scp) or
    'reco' (reco2*, and wav.scp when segments exist). Other files are not tables, unless
    `extra` names them with their kind (Kaldi's --utt-extra-files/--spk-extra-files).
    """
    data_dir = Path(data_dir)
    has_segments = (data_dir / "segments").is_file()
    kinds: dict[str, str] = {}
    for path in sorted(data_dir.iterdir()):
        name = path.name
        if not path.is_file() or name == "spk2utt":
            continue
        if name == "wav.scp":
            kinds[name] = "reco" if has_segments else "utt"
        elif name in UTT_TABLES or name.startswith("utt2"):
            kinds[name] = "utt"
        elif name.startswith("spk2") or name == "cmvn.scp":
            kinds[name] = "spk"
        elif name.startswith("reco2"):
            kinds[name] = "reco"
        elif extra and name in extra:
            kinds[name] = extra[name]
    return kinds


def write_filtered(src: str | os.PathLike, dst: str | os.PathLike, keep_utts: set[str],
                   extra: dict[str, str] | None = None) -> int:
    """Write the tables of data dir `src` into `dst`, restricted to `keep_utts`.

    Speakers and recordings follow from the kept utterances (without segments, each
    utterance is its own recording, as in Kaldi); spk2utt is regenerated
    from utt2spk; every file comes out sorted and duplicate-free. Per-utterance CTM
    files (`*.ctm`, several lines per utterance) are filtered on their first field.
    All inputs are read before anything is written, so `dst` may be `src`. `extra` adds
    tables as `table_kinds` does.
    Returns the number of utterances written.
    """
    src, dst = Path(src), Path(dst)
    kinds = table_kinds(src, extra)
    if "utt2spk" not in kinds:
        raise FhvaeError(f"{src}/utt2spk: no such file")
    tables = {name: read_loose(src / name)[0] for name in kinds}
    ctms = {p.name: p.read_text(encoding="utf-8").splitlines(True) for p in sorted(src.glob("*.ctm"))}
    utt2spk = {u: s for u, s in tables["utt2spk"] if u in keep_utts}
    if "segments" in tables:
        segments = dict(tables["segments"])
        recos = {segments[u].split()[0] for u in utt2spk if u in segments}
    else:
        recos = set(utt2spk)
    keep = {"utt": set(utt2spk), "spk": set(utt2spk.values()), "reco": recos}
    dst.mkdir(parents=True, exist_ok=True)
    for name, pairs in tables.items():
        write_kv(dst / name, [(k, v) for k, v in pairs if k in keep[kinds[name]]])
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_order):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    write_kv(dst / "spk2utt", [(s, " ".join(u)) for s, u in spk2utt.items()])
    for name, lines in ctms.items():
        write_text_atomic(dst / name, "".join(ln for ln in lines if ln.split()[:1]
                                              and ln.split()[0] in keep["utt"]))
    return len(utt2spk)


def read_key_list(path: str | os.PathLike) -> list[str]:
    """First field of every non-blank line (an utterance or speaker list)."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    with open(path, encoding="utf-8") as handle:
        return [line.split()[0] for line in handle if line.strip()]


SUBSET_MODES = ("spread", "first", "last", "shortest", "speakers", "per-spk")


def _utt_lengths(src: Path) -> dict[str, float]:
    """Utterance lengths for --shortest: utt2num_frames, else feats.scp, else utt2dur."""
    if (src / "utt2num_frames").is_file():
        return {u: float(n) for u, n in read_kv(src / "utt2num_frames")}
    if (src / "feats.scp").is_file():
        from fhvae.io.tables import read_scp  # numpy/kaldiio only when needed
        return {u: float(m.shape[0]) for u, m in read_scp(src / "feats.scp")}
    if (src / "utt2dur").is_file():
        return {u: float(d) for u, d in read_kv(src / "utt2dur")}
    raise FhvaeError(f"{src}: --shortest needs utt2num_frames, feats.scp or utt2dur")


def select_utts(src: str | os.PathLike, mode: str, num: int) -> set[str]:
    """The utterances `subset_data_dir.sh [--<mode>] <src> <num> <dst>` keeps, as Kaldi.

    spread: `num` utterances spread evenly through utt2spk (what Kaldi's subset_scp.pl
    does by default; deterministic); first/last: the first/last `num` lines of utt2spk;
    shortest: the `num` shortest (ties by id); speakers: whole speakers in a fixed random
    order until at least `num` utterances; per-spk: up to `num` utterances of each
    speaker, evenly spaced through its list.
    """
    src = Path(src)
    pairs = read_kv(src / "utt2spk")
    if num < 1:
        raise FhvaeError(f"number of utterances must be positive, got {num}")
    if mode in ("spread", "first", "last", "shortest") and num > len(pairs):
        raise FhvaeError(f"{src}/utt2spk: cannot subset to {num} utterances, it has only "
                         f"{len(pairs)}")
    utts = [u for u, _ in pairs]
    if mode == "first":
        return set(utts[:num])
    if mode == "last":
        return set(utts[-num:])
    if mode == "spread":
        return {utts[(2 * i + 1) * len(utts) // (2 * num)] for i in range(num)}
    if mode == "shortest":
        lengths = _utt_lengths(src)
        known = [u for u in utts if u in lengths]
        return set(sorted(known, key=lambda u: (lengths[u], c_order(u)))[:num])
    by_spk: dict[str, list[str]] = {}
    for utt, spk in pairs:
        by_spk.setdefault(spk, []).append(utt)
    if mode == "per-spk":
        return {u for us in by_spk.values() for u in us[::max(1, len(us) // num)][:num]}
    if mode == "speakers":
        order = sorted(by_spk, key=c_order)
        random.Random(0).shuffle(order)
        keep: set[str] = set()
        for spk in order:
            if len(keep) >= num:
                break
            keep.update(by_spk[spk])
        return keep
    raise FhvaeError(f"unknown subset mode '{mode}' (one of {', '.join(SUBSET_MODES)})")


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *,
                    utt_list: str | os.PathLike | None = None, first: int | None = None,
                    spk_list: str | os.PathLike | None = None, mode: str | None = None,
                    num: int | None = None) -> int:
    """Copy data dir `src` to `dst` keeping the utterances chosen by exactly one selector.

    `utt_list`/`spk_list` name files whose first field is an utterance/speaker id; ids
    that `src` lacks are skipped, as Kaldi's filter_scp.pl skips them (a warning names
    the first). `mode` and `num` select as `select_utts`; `first=N` is mode 'first'.
    Returns the number of utterances in `dst`.
    """
    src, dst = Path(src), Path(dst)
    if first is not None:
        mode, num = "first", first
    if sum(x is not None for x in (utt_list, spk_list, mode)) != 1 or (mode and num is None):
        raise FhvaeError("subset_data_dir: give exactly one of utt_list, spk_list, mode+num")
    if dst.resolve() == src.resolve():
        raise FhvaeError(f"{dst}: destination is the source data dir")
    if mode is not None:
        return write_filtered(src, dst, select_utts(src, mode, num))  # type: ignore[arg-type]
    pairs = read_kv(src / "utt2spk")
    list_path = Path(utt_list if utt_list is not None else spk_list)  # type: ignore[arg-type]
    known = {u for u, _ in pairs} if utt_list is not None else {s for _, s in pairs}
    wanted = read_key_list(list_path)
    missing = [(i, key) for i, key in enumerate(wanted, 1) if key not in known]
    if missing:
        what = "utterance" if utt_list is not None else "speaker"
        lineno, key = missing[0]
        log.warning("%s:%d: %s '%s' is not in %s/utt2spk (%d such ids skipped)",
                    list_path, lineno, what, key, src, len(missing))
    wanted_set = set(wanted)
    keep = {u for u, s in pairs if (u if utt_list is not None else s) in wanted_set}
    return write_filtered(src, dst, keep)


def balanced_cuts(sizes: list[int], num_parts: int) -> list[int]:
    """Cut points 0 = c_0 < ... < c_n = len(sizes) splitting groups into n contiguous parts.

    Each cut is placed at the group boundary whose cumulative size is closest to the
    ideal j·total/n, so with unit sizes the parts differ by at most one line.
    """
    cum = [0, *itertools.accumulate(sizes)]
    total, ngroups = cum[-1], len(sizes)
    cuts = [0]
    for j in range(1, num_parts):
        target = j * total / num_parts
        lo, hi = cuts[-1] + 1, ngroups - (num_parts - j)
        i = bisect.bisect_left(cum, target)
        best = min((c for c in (i - 1, i) if lo <= c <= hi),
                   key=lambda c: abs(cum[c] - target), default=min(max(i, lo), hi))
        cuts.append(best)
    cuts.append(ngroups)
    return cuts


def split_scp(in_path: str | os.PathLike, out_paths: list[str | os.PathLike],
              utt2spk: str | os.PathLike | None = None) -> list[int]:
    """Split a key-first text file into len(out_paths) contiguous, balanced parts.

    Every line lands in exactly one part. With `utt2spk`, all lines of a speaker stay in
    one part (a speaker's lines must then be contiguous, as in a sorted Kaldi dir).
    Returns the number of lines in each part.
    """
    in_path = Path(in_path)
    if not in_path.is_file():
        raise FhvaeError(f"{in_path}: no such file")
    lines = [line + "\n" for line in in_path.read_text(encoding="utf-8").splitlines()]
    spk_of = read_dict(utt2spk) if utt2spk is not None else None
    sizes: list[int] = []
    done_spk: set[str] = set()
    prev = None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise FhvaeError(f"{in_path}:{lineno}: empty line")
        if spk_of is None:
            sizes.append(1)
            continue
        key = line.split()[0]
        if key not in spk_of:
            raise FhvaeError(f"{in_path}:{lineno}: utterance '{key}' is not in {utt2spk}")
        spk = spk_of[key]
        if spk == prev:
            sizes[-1] += 1
            continue
        if spk in done_spk:
            raise FhvaeError(f"{in_path}:{lineno}: lines of speaker '{spk}' are not contiguous "
                             "(utterance ids should start with the speaker id)")
        done_spk.add(spk)
        prev = spk
        sizes.append(1)
    unit = "lines" if spk_of is None else "speakers"
    if len(out_paths) > len(sizes):
        raise FhvaeError(f"{in_path}: cannot split {len(sizes)} {unit} into {len(out_paths)} parts")
    cuts = balanced_cuts(sizes, len(out_paths))
    start_line = [0]
    for size in sizes:
        start_line.append(start_line[-1] + size)
    counts = []
    for part, out in enumerate(out_paths):
        a, b = start_line[cuts[part]], start_line[cuts[part + 1]]
        write_text_atomic(out, "".join(lines[a:b]))
        counts.append(b - a)
    return counts


SPLIT_UNITS = {"spk": "", "utt": "utt", "reco": "reco"}  # unit -> suffix of split<N><suffix>


def _split_groups(data: Path, per: str) -> tuple[list[list[str]], str]:
    """Utterances of utt2spk in groups that must stay whole, in utt2spk order."""
    pairs = read_kv(data / "utt2spk")
    if per == "utt":
        return [[u] for u, _ in pairs], "utterances"
    if per == "reco":
        reco_of = ({u: v.split()[0] for u, v in read_kv(data / "segments")}
                   if (data / "segments").is_file() else {})
        by_reco: dict[str, list[str]] = {}
        for utt, _ in pairs:
            by_reco.setdefault(reco_of.get(utt, utt), []).append(utt)
        return [by_reco[r] for r in sorted(by_reco, key=c_order)], "recordings"
    groups: list[list[str]] = []
    seen: set[str] = set()
    prev = None
    for lineno, (utt, spk) in enumerate(pairs, 1):
        if spk != prev:
            if spk in seen:
                raise FhvaeError(f"{data}/utt2spk:{lineno}: utterances of speaker '{spk}' are "
                                 "not contiguous (speaker ids should prefix utterance ids; "
                                 "or split with --per-utt)")
            seen.add(spk)
            groups.append([])
            prev = spk
        groups[-1].append(utt)
    return groups, "speakers"


def _split_is_current(data: Path, parts: list[Path]) -> bool:
    """Every table of `data` has a copy in every part that is not older than it."""
    names = [*table_kinds(data), "spk2utt"]
    for part in parts:
        for name in names:
            copy, orig = part / name, data / name
            if orig.is_file() and (not copy.is_file()
                                   or copy.stat().st_mtime < orig.stat().st_mtime):
                return False
    return True


def split_data_dir(data_dir: str | os.PathLike, num_parts: int,
                   per: str = "spk") -> tuple[Path, bool]:
    """Split a data dir into `<data>/split<N>[utt|reco]/<n>/`, n = 1..N, as Kaldi's
    split_data.sh: contiguous, balanced parts of utt2spk with every table filtered to
    match; speakers (per='spk', the default), recordings ('reco') or nothing ('utt') kept
    whole. Nothing is done when every part is newer than the source tables.
    Returns the split directory and whether it was (re)written.
    """
    data = Path(data_dir)
    if per not in SPLIT_UNITS:
        raise FhvaeError(f"split_data_dir: per must be one of {', '.join(SPLIT_UNITS)}")
    if num_parts < 1:
        raise FhvaeError(f"number of parts must be positive, got {num_parts}")
    out = data / f"split{num_parts}{SPLIT_UNITS[per]}"
    parts = [out / str(n) for n in range(1, num_parts + 1)]
    if not (data / "utt2spk").is_file():
        raise FhvaeError(f"{data}/utt2spk: no such file")
    if _split_is_current(data, parts):
        return out, False
    groups, unit = _split_groups(data, per)
    if num_parts > len(groups):
        raise FhvaeError(f"{data}: cannot split {len(groups)} {unit} into {num_parts} parts")
    cuts = balanced_cuts([len(g) for g in groups], num_parts)
    for n, part in enumerate(parts):
        keep = {u for group in groups[cuts[n]:cuts[n + 1]] for u in group}
        write_filtered(data, part, keep)
    return out, True
