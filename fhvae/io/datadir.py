"""Kaldi data-dir text tables (`<key> <value>` per line): reading with precise errors, and
the generic operations built on them (filtering, subsetting, splitting into parts)."""

from __future__ import annotations

import bisect
import io
import itertools
import os
from pathlib import Path

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic


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


def table_kinds(data_dir: str | os.PathLike) -> dict[str, str]:
    """The `<key> <value>` files present in a data dir, each mapped to what its keys are.

    'utt' (utt2spk, feats.scp, text, segments, utt2*, and wav.scp without segments),
    'spk' (spk2* except spk2utt, which is derived from utt2spk; cmvn.scp) or
    'reco' (reco2*, and wav.scp when segments exist). Other files are not tables.
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
        elif name in ("utt2spk", "feats.scp", "text", "segments") or name.startswith("utt2"):
            kinds[name] = "utt"
        elif name.startswith("spk2") or name == "cmvn.scp":
            kinds[name] = "spk"
        elif name.startswith("reco2"):
            kinds[name] = "reco"
    return kinds


def write_filtered(src: str | os.PathLike, dst: str | os.PathLike, keep_utts: set[str]) -> int:
    """Write the tables of data dir `src` into `dst`, restricted to `keep_utts`.

    Speakers and recordings follow from the kept utterances; spk2utt is regenerated
    from utt2spk; every file comes out sorted and duplicate-free. Per-utterance CTM
    files (`*.ctm`, several lines per utterance) are filtered on their first field.
    All inputs are read before anything is written, so `dst` may be `src`.
    Returns the number of utterances written.
    """
    src, dst = Path(src), Path(dst)
    kinds = table_kinds(src)
    if "utt2spk" not in kinds:
        raise FhvaeError(f"{src}/utt2spk: no such file")
    tables = {name: read_loose(src / name)[0] for name in kinds}
    ctms = {p.name: p.read_text(encoding="utf-8").splitlines(True) for p in sorted(src.glob("*.ctm"))}
    utt2spk = {u: s for u, s in tables["utt2spk"] if u in keep_utts}
    segments = dict(tables.get("segments", []))
    keep = {
        "utt": set(utt2spk),
        "spk": set(utt2spk.values()),
        "reco": {segments[u].split()[0] for u in utt2spk if u in segments},
    }
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


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *,
                    utt_list: str | os.PathLike | None = None, first: int | None = None,
                    spk_list: str | os.PathLike | None = None) -> int:
    """Copy data dir `src` to `dst` keeping the utterances chosen by exactly one selector.

    `utt_list`/`spk_list` name files whose first field is an utterance/speaker id (an id
    that `src` lacks is an error naming file and line); `first` keeps the first N
    utterances of utt2spk. Returns the number of utterances in `dst`.
    """
    src, dst = Path(src), Path(dst)
    if sum(x is not None for x in (utt_list, first, spk_list)) != 1:
        raise FhvaeError("subset_data_dir: give exactly one of utt_list, first, spk_list")
    if dst.resolve() == src.resolve():
        raise FhvaeError(f"{dst}: destination is the source data dir")
    pairs = read_kv(src / "utt2spk")
    if first is not None:
        if not 0 < first <= len(pairs):
            raise FhvaeError(f"{src}/utt2spk: cannot take the first {first} of {len(pairs)} utterances")
        keep = {u for u, _ in pairs[:first]}
    else:
        list_path = Path(utt_list if utt_list is not None else spk_list)
        known = {u for u, _ in pairs} if utt_list is not None else {s for _, s in pairs}
        wanted = read_key_list(list_path)
        for lineno, key in enumerate(wanted, 1):
            if key not in known:
                what = "utterance" if utt_list is not None else "speaker"
                raise FhvaeError(f"{list_path}:{lineno}: {what} '{key}' is not in {src}/utt2spk")
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
