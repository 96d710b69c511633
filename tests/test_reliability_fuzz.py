"""Fuzz: a valid tiny corpus gets one random (seeded) corruption per case, then the stage 1
(compute_fbank on wav.scp), stage 2 (make_index --mvn-out) or stage 4 (extract) entry point
runs on it. Every run must end with success, or with exit status 1 and exactly one ERROR
line, never a traceback, and no temporary file may be left behind.

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

from fhvae.bin import compute_fbank as fbank_bin
from fhvae.bin import extract as extract_bin
from fhvae.bin import make_index as index_bin
from fhvae.io.tables import read_scp
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


# ----------------------------------------------------------------- corruptions
def _text_file(rng: random.Random, d: Path, stage: int) -> Path:
    names = ["wav.scp"] if stage == 1 else ["feats.scp", "utt2spk", "utt2num_frames"]
    return d / rng.choice(names)


def edit_lines(rng: random.Random, d: Path, stage: int) -> str:
    path = _text_file(rng, d, stage)
    lines = path.read_bytes().splitlines(keepends=True)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.choice(["delete", "duplicate", "swap", "blank", "garbage", "one-field"])
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(j, lines[i])
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "blank":
        lines.insert(i, rng.choice([b"\n", b"   \n", b"\t\n"]))
    elif op == "garbage":
        lines.insert(i, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))) + b"\n")
    else:
        lines[i] = lines[i].split()[0] + b"\n"
    path.write_bytes(b"".join(lines))
    return f"{op} line {i + 1}/{j + 1} of {path.name}"


def flip_bytes(rng: random.Random, d: Path, stage: int) -> str:
    choices = ([_text_file(rng, d, stage)] + (sorted(d.glob("*.wav")) if stage == 1
                                              else [d / "feats.ark"]))
    path = rng.choice(choices)
    raw = bytearray(path.read_bytes())
    where = [rng.randrange(len(raw)) for _ in range(rng.randint(1, 8))]
    for k in where:
        raw[k] = rng.randrange(256)
    path.write_bytes(bytes(raw))
    return f"flip bytes {where} of {path.name}"


def truncate(rng: random.Random, d: Path, stage: int) -> str:
    path = rng.choice(sorted(d.glob("*.wav")) if stage == 1 else [d / "feats.ark", d / "feats.scp"])
    raw = path.read_bytes()
    cut = rng.randrange(len(raw))
    path.write_bytes(raw[:cut])
    return f"truncate {path.name} at {cut}/{len(raw)}"


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
    return f"offset of line {i + 1} -> {new}"


def change_dims(rng: random.Random, d: Path, stage: int) -> str:
    if stage == 1:
        return flip_bytes(rng, d, stage)
    feats = random_feats(LENGTHS, seed=1)
    utt = rng.choice(sorted(feats))
    shape = rng.choice([(feats[utt].shape[0], 40), (feats[utt].shape[0], 81), (0, 80)])
    feats[utt] = np.ones(shape, dtype=np.float32)
    write_feats(d, feats)
    return f"{utt} gets shape {shape}"


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
def test_corrupted_input_ends_in_success_or_one_error_line(corpus, tmp_path, case):
    rng = random.Random(SEED * 1000 + case)
    stage = (1, 2, 4)[case % 3]
    d = tmp_path / "case"
    shutil.copytree(corpus, d)
    for name in ("feats.scp", "wav.scp"):
        (d / name).write_text((d / name).read_text().replace(f"{corpus}/", f"{d}/"))
    what = rng.choice(CORRUPTIONS)(rng, d, stage)

    status, stderr = run_stage(stage, d, corpus.parent / "model.pt")
    context = f"stage {stage}, {what}:\n{stderr}"
    assert "Traceback" not in stderr and status in (0, 1), context
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    if status == 1:
        assert len(errors) == 1 and stderr.rstrip("\n").splitlines()[-1] == errors[0], context
    else:
        assert not errors, context
        if stage == 4:           # what a success wrote reads back completely
            assert all(np.isfinite(v).all() for _, v in read_scp(d / "out" / "z1.scp"))
    assert not list(d.rglob(".*.tmp*")), context
