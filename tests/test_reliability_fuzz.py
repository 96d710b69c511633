"""Fuzz: a valid tiny corpus gets one random (seeded) corruption per case, then the stage 1
(compute_fbank on wav.scp), stage 2 (make_index --mvn-out) or stage 4 (extract) entry point
runs on it. Every run must end with success, or with exit status 1 and exactly one ERROR
line, never a traceback, and no temporary file may be left behind. A success must have
written complete, consistent outputs, and every utterance the corruption did not touch
must come out exactly as from the clean corpus.

Where the verdict is known, only that verdict passes: a duplicate key, a line with a key
and no value or an empty line in a table the stage reads, an offset moved off its matrix,
a matrix of another dimension and, for extraction, a feats.scp out of Kaldi's sort order
must fail with one error line naming the place; a corrupted table the stage does not read
(utt2spk for make_index, utt2num_frames for extract) must not change anything. Random bytes
(flipped, truncated, garbage lines) and deleted lines may go either way.

Corruptions: truncate or flip bytes of an ark or a wav file, delete / duplicate / swap /
blank / garbage lines or flipped bytes in feats.scp, utt2spk, utt2num_frames and wav.scp,
offsets moved or pointing past the end, matrices of another dimension."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import kaldiio

from fhvae.bin import compute_fbank as fbank_bin
from fhvae.bin import extract as extract_bin
from fhvae.bin import make_index as index_bin
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN
from test_reliability_data import (ROOT, random_feats, run_in_process, save_tiny_model,
                                   write_feats)

NUM_CASES = 40
SEED = 2018
LENGTHS = {"a-u1": 45, "a-u2": 23, "b-u1": 31, "b-u2": 60}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """base/: wavs + wav.scp (paths and a pipe) and a feature data dir, plus a tiny model."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("fuzz") / "base"
    rng = np.random.default_rng(0)
    base.mkdir()
    lines = []
    for i, utt in enumerate(sorted(LENGTHS)):
        wav = base / f"{utt}.wav"
        soundfile.write(wav, rng.normal(0, 0.1, 16000 * (i + 1) // 8), 16000, subtype="PCM_16")
        lines.append(f"{utt} cat {wav} |" if i == 1 else f"{utt} {wav}")
    (base / "wav.scp").write_text("\n".join(lines) + "\n")
    write_feats(base, random_feats(LENGTHS))
    save_tiny_model(base.parent / "model.pt")
    return base


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory) -> dict[int, Path]:
    """Each stage's outputs on the uncorrupted corpus (the reference for untouched input)."""
    outputs = {}
    for stage in (1, 2, 4):
        d = tmp_path_factory.mktemp(f"clean{stage}") / "case"
        shutil.copytree(corpus, d)
        _repoint(corpus, d)
        status, stderr = run_stage(stage, d, corpus.parent / "model.pt")
        assert status == 0, stderr
        outputs[stage] = d
    return outputs


def _repoint(src: Path, d: Path) -> None:
    """feats.scp and wav.scp of a copied dir refer to the copy's own files."""
    for name in ("feats.scp", "wav.scp"):
        (d / name).write_text((d / name).read_text().replace(f"{src}/", f"{d}/"))


def _table(scp: Path) -> dict[str, np.ndarray]:
    """An scp read with kaldiio's own loader (not fhvae's reader)."""
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def _inputs(d: Path, stage: int) -> dict[str, object]:
    """What each utterance's output depends on: its wav.scp entry and wav bytes (stage 1)
    or its feature matrix (stages 2, 4), None where it cannot be read."""
    if stage == 1:
        entries = dict(line.split(maxsplit=1) for line in (d / "wav.scp").read_text(
            errors="replace").splitlines() if len(line.split(maxsplit=1)) == 2)
        return {k: (v.replace(str(d), ""), _bytes(d / f"{k}.wav")) for k, v in entries.items()}
    out = {}
    for line in (d / "feats.scp").read_text(errors="replace").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            try:
                out[parts[0]] = np.asarray(kaldiio.load_mat(parts[1]))
            except Exception:   # noqa: BLE001 - unreadable: not an untouched utterance
                out[parts[0]] = None
    return out


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _untouched(case: Path, ref: Path, stage: int) -> set[str]:
    mine, theirs = _inputs(case, stage), _inputs(ref, stage)
    same = set()
    for key, value in mine.items():
        other = theirs.get(key)
        if stage == 1 and value == other:
            same.add(key)
        elif stage != 1 and value is not None and other is not None and \
                value.shape == other.shape and np.array_equal(value, other):
            same.add(key)
    return same


def check_success(stage: int, d: Path, ref: Path) -> None:
    """A successful run wrote complete outputs; untouched utterances match the clean run."""
    untouched = _untouched(d, ref, stage)
    if stage == 1:
        feats = _table(d / "out.scp")
        frames = {k: int(v) for k, v in (line.split() for line in
                                         (d / "out_frames").read_text().splitlines())}
        assert {k: v.shape for k, v in feats.items()} == {k: (n, 80) for k, n in frames.items()}
        expected = _table(ref / "out.scp")
    elif stage == 2:
        index = SegmentIndex.load(d / "fhvae" / "seg_index.npz")
        mvn = MVN.load(d / "fhvae" / "mvn.npz")
        matrices = [index.read_utt(u) for u in range(index.num_utts)]
        assert index.num_utts > 0 and all(m.shape[0] >= index.seg_len for m in matrices)
        stacked = np.concatenate(matrices).astype(np.float64)
        np.testing.assert_allclose(mvn.mean, stacked.mean(0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(mvn.std, stacked.std(0), rtol=1e-3, atol=1e-4)
        reference = SegmentIndex.load(ref / "fhvae" / "seg_index.npz")
        assert untouched <= {str(k) for k in index.utt_ids}
        feats = {str(k): m for k, m in zip(index.utt_ids, matrices)}
        expected = {str(k): reference.read_utt(u) for u, k in enumerate(reference.utt_ids)}
    else:
        tables = {name: _table(d / "out" / f"{name}.scp") for name in ("z1", "z2", "svector")}
        assert tables["z1"].keys() == tables["z2"].keys() == tables["svector"].keys()
        assert all(np.isfinite(v).all() for t in tables.values() for v in t.values())
        assert untouched <= tables["z1"].keys()
        feats = tables["z1"]
        expected = _table(ref / "out" / "z1.scp")
    for key in untouched & feats.keys():
        np.testing.assert_allclose(feats[key], expected[key], rtol=1e-5, atol=1e-5,
                                   err_msg=key)


# ----------------------------------------------------------------- corruptions
# Each corruption returns (what it did, the verdict): ANY, OK (success, and the outputs of
# every utterance as from the clean corpus) or the fragment the one error line must hold.
ANY, OK = None, "ok"
READS = {1: {"wav.scp"}, 2: {"feats.scp", "utt2num_frames"}, 4: {"feats.scp", "utt2spk"}}


def _text_file(rng: random.Random, d: Path, stage: int) -> Path:
    names = ["wav.scp"] if stage == 1 else ["feats.scp", "utt2spk", "utt2num_frames"]
    return d / rng.choice(names)


def edit_lines(rng: random.Random, d: Path, stage: int) -> tuple[str, str | None]:
    path = _text_file(rng, d, stage)
    lines = path.read_bytes().splitlines(keepends=True)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.choice(["delete", "duplicate", "swap", "blank", "garbage", "one-field"])
    key = lines[i].split()[0].decode()
    verdict = ANY
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(j, lines[i])
        verdict = f"duplicate key '{key}'"
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
        if i != j and stage == 4 and path.name == "feats.scp":
            verdict = f"{path.name}:{min(i, j) + 2}: not sorted"     # Kaldi's sort order
    elif op == "blank":
        lines.insert(i, rng.choice([b"\n", b"   \n", b"\t\n"]))
        verdict = f"{path.name}:{i + 1}:"
    elif op == "garbage":
        lines.insert(i, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))) + b"\n")
    else:
        lines[i] = lines[i].split()[0] + b"\n"
        verdict = f"{path.name}:{i + 1}:"
    if path.name not in READS[stage]:
        verdict = OK                     # a table this stage does not read changes nothing
    path.write_bytes(b"".join(lines))
    return f"{op} line {i + 1}/{j + 1} of {path.name}", verdict


def flip_bytes(rng: random.Random, d: Path, stage: int) -> str:
    choices = ([_text_file(rng, d, stage)] + (sorted(d.glob("*.wav")) if stage == 1
                                              else [d / "feats.ark"]))
    path = rng.choice(choices)
    raw = bytearray(path.read_bytes())
    where = [rng.randrange(len(raw)) for _ in range(rng.randint(1, 8))]
    for k in where:
        raw[k] = rng.randrange(256)
    path.write_bytes(bytes(raw))
    return f"flip bytes {where} of {path.name}", ANY


def truncate(rng: random.Random, d: Path, stage: int) -> str:
    path = rng.choice(sorted(d.glob("*.wav")) if stage == 1 else [d / "feats.ark", d / "feats.scp"])
    raw = path.read_bytes()
    cut = rng.randrange(len(raw))
    path.write_bytes(raw[:cut])
    return f"truncate {path.name} at {cut}/{len(raw)}", ANY


def move_offset(rng: random.Random, d: Path, stage: int) -> str:
    if stage == 1:
        return edit_lines(rng, d, stage)
    scp = d / "feats.scp"
    rows = [line.split() for line in scp.read_text().splitlines()]
    i = rng.randrange(len(rows))
    ark, offset = rows[i][1].rsplit(":", 1)
    new = rng.choice([int(offset) + rng.randint(-40, 40), 10**9, 0, -1])
    rows[i][1] = f"{ark}:{new}"
    scp.write_text("".join(" ".join(r) + "\n" for r in rows))
    # Off its matrix the bytes are no matrix: the utterance is unreadable, named.
    verdict = OK if new == int(offset) else f"{rows[i][0]}"
    return f"offset of line {i + 1} -> {new}", verdict


def change_dims(rng: random.Random, d: Path, stage: int) -> str:
    if stage == 1:
        return flip_bytes(rng, d, stage)
    feats = random_feats(LENGTHS, seed=1)
    utt = rng.choice(sorted(feats))
    shape = rng.choice([(feats[utt].shape[0], 40), (feats[utt].shape[0], 81), (0, 80)])
    feats[utt] = np.ones(shape, dtype=np.float32)
    write_feats(d, feats)
    return f"{utt} gets shape {shape}", (f"'{utt}'" if shape[0] else ANY)


CORRUPTIONS = (edit_lines, flip_bytes, truncate, move_offset, change_dims)


def run_stage(stage: int, d: Path, model: Path) -> tuple[int, str]:
    if stage == 1:
        return run_in_process(fbank_bin.main, [
            "--config", str(ROOT / "conf" / "fbank.conf"), "--utt2num-frames",
            str(d / "out_frames"), str(d / "wav.scp"), str(d / "out.ark"), str(d / "out.scp")])
    if stage == 2:
        return run_in_process(index_bin.main, ["--mvn-out", str(d / "fhvae" / "mvn.npz"),
                                               str(d)])
    return run_in_process(extract_bin.main, [str(model), str(d), str(d / "out"),
                                             "--device", "cpu", "--batch-size", "64"])


@pytest.mark.parametrize("case", range(NUM_CASES))
def test_corrupted_input_ends_in_success_or_one_error_line(corpus, clean, tmp_path, case):
    rng = random.Random(SEED * 1000 + case)
    stage = (1, 2, 4)[case % 3]
    d = tmp_path / "case"
    shutil.copytree(corpus, d)
    _repoint(corpus, d)
    what, verdict = rng.choice(CORRUPTIONS)(rng, d, stage)
    check_outcome(stage, d, clean[stage], corpus.parent / "model.pt", what, verdict)


def check_outcome(stage: int, d: Path, ref: Path, model: Path, what: str,
                  verdict: str | None) -> None:
    status, stderr = run_stage(stage, d, model)
    context = f"stage {stage}, {what} (expected: {verdict or 'either'}):\n{stderr}"
    assert "Traceback" not in stderr and status in (0, 1), context
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    if status == 1:
        assert len(errors) == 1 and stderr.rstrip("\n").splitlines()[-1] == errors[0], context
        assert verdict not in (OK,) and (verdict is None or verdict in errors[0]), context
    else:
        assert verdict in (ANY, OK) and not errors, context
        check_success(stage, d, ref)
        if verdict == OK:                          # nothing it reads changed: same outputs
            assert _untouched(d, ref, stage) == set(LENGTHS), context
    assert not list(d.rglob(".*.tmp*")), context


# Known verdicts whatever the seed draws: (stage, table, line edit, expected verdict).
KNOWN = [(stage, name, op, OK if name not in READS[stage] else verdict)
         for stage, names in ((1, ["wav.scp"]), (2, ["feats.scp", "utt2num_frames", "utt2spk"]),
                              (4, ["feats.scp", "utt2spk", "utt2num_frames"]))
         for name in names
         for op, verdict in (("duplicate", "duplicate key 'a-u2'"),
                             ("one-field", f"{name}:2:"), ("blank", f"{name}:2:"))]
KNOWN.append((4, "feats.scp", "swap", "feats.scp:3: not sorted"))


@pytest.mark.parametrize("stage, name, op, verdict", KNOWN,
                         ids=[f"{s}-{n}-{o}" for s, n, o, _ in KNOWN])
def test_corruptions_with_a_known_verdict(corpus, clean, tmp_path, stage, name, op, verdict):
    d = tmp_path / "case"
    shutil.copytree(corpus, d)
    _repoint(corpus, d)
    lines = (d / name).read_text().splitlines(keepends=True)
    if op == "duplicate":
        lines.insert(2, lines[1])                  # a-u2 twice (in order: not an order error)
    elif op == "one-field":
        lines[1] = lines[1].split()[0] + "\n"
    elif op == "blank":
        lines.insert(1, "  \n")
    else:
        lines[1], lines[2] = lines[2], lines[1]
    (d / name).write_text("".join(lines))
    check_outcome(stage, d, clean[stage], corpus.parent / "model.pt", f"{op} in {name}",
                  verdict)
