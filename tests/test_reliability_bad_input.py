"""Bad input through the stage 2, 3 and 4 entry points: every fault ends with exit status 1,
one `ERROR (...)` line naming the file and the utterance/line as the last line of stderr,
no traceback, and no new or changed file. A full disk is simulated on a 64 KiB tmpfs
(when this machine lets us mount one) and by an OSError(ENOSPC) planted in the writers.

Most cases run `run_main(<stage>.main, argv)` in this process (argument parsing, the library
and the error boundary exactly as `python -m` runs them, without a new interpreter per case);
one case per stage also runs as a real process."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import fhvae.io.atomic
import fhvae.io.tables
from fhvae.bin import extract as extract_bin
from fhvae.bin import make_index as index_bin
from fhvae.bin import train as train_bin
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.training.checkpoint import load_checkpoint, save_checkpoint
from helpers import run, skip_unless_ci
from test_reliability_data import (assert_clean_error, listing, random_feats, run_cli,
                                   run_in_process, save_tiny_model, write_feats,
                                   write_train_config)

LENGTHS = {"s0-u1": 41, "s0-u2": 33, "s1-u1": 57, "s1-u2": 26, "s2-u1": 48}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A valid 80-dim data dir, its index and statistics, a tiny model and train config."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bad_input")
    data = write_feats(root / "data", random_feats(LENGTHS))
    index = SegmentIndex.build(data)
    index.save(root / "train.npz")
    compute_mvn(index.read_utt(u) for u in range(index.num_utts)).save(root / "mvn.npz")
    save_tiny_model(root / "model.pt")
    write_train_config(root / "conf.yaml", seq_batch_size=3, max_steps=4, ckpt_every=2)
    return root


def copy_data(base: Path, dest: Path) -> Path:
    """The base data dir at `dest`, its feats.scp pointing into the copied ark."""
    shutil.copytree(base / "data", dest)
    scp = dest / "feats.scp"
    scp.write_text(scp.read_text().replace(f"{base / 'data'}/", f"{dest}/"))
    return dest


def scp_lines(data: Path) -> list[list[str]]:
    return [line.split() for line in (data / "feats.scp").read_text().splitlines()]


def set_scp(data: Path, rows: list[list[str]]) -> None:
    (data / "feats.scp").write_text("".join(" ".join(r) + "\n" for r in rows))


# ----------------------------------------------------------------- corruptions of a data dir
def empty_ark(d: Path):
    (d / "feats.ark").write_bytes(b"")
    return "s0-u1", "past the end"


def truncated_ark(d: Path):
    key, rx = scp_lines(d)[2]                    # cut inside the third matrix
    raw = (d / "feats.ark").read_bytes()
    (d / "feats.ark").write_bytes(raw[:int(rx.rsplit(":", 1)[1]) + 100])
    return key, "truncated or corrupt"


def corrupt_header(d: Path):
    key, rx = scp_lines(d)[2]
    offset = int(rx.rsplit(":", 1)[1])
    raw = bytearray((d / "feats.ark").read_bytes())
    raw[offset:offset + 5] = b"\0BXX "          # not a Kaldi matrix token
    (d / "feats.ark").write_bytes(bytes(raw))
    return key, "truncated or corrupt"


def offset_past_end(d: Path):
    rows = scp_lines(d)
    rows[3][1] = rows[3][1].rsplit(":", 1)[0] + ":99999999"
    set_scp(d, rows)
    return rows[3][0], "past the end"


def duplicate_utt(d: Path):
    rows = scp_lines(d)
    set_scp(d, rows[:2] + [rows[1]] + rows[2:])
    return "feats.scp:3", f"duplicate key '{rows[1][0]}'"


def nan_features(d: Path):
    feats = random_feats(LENGTHS)
    feats["s1-u1"][5, 7] = np.nan
    write_feats(d, feats)                        # same shapes: same offsets as the index
    return "s1-u1", "NaN or infinite"


def mixed_dims(d: Path):
    feats = random_feats(LENGTHS)
    feats["s2-u1"] = feats["s2-u1"][:, :40].copy()
    write_feats(d, feats)
    return "s2-u1", "(48, 40)"


def unsorted_scp(d: Path):
    rows = scp_lines(d)
    set_scp(d, [rows[1], rows[0]] + rows[2:])
    return "feats.scp:2", "not sorted"


def missing_speaker(d: Path):
    lines = (d / "utt2spk").read_text().splitlines(True)
    (d / "utt2spk").write_text("".join(lines[:3] + lines[4:]))
    return "utt2spk", "s1-u2"


def empty_scp(d: Path):
    (d / "feats.scp").write_text("")
    return "feats.scp", "no utterances"


def assert_fails_cleanly(root: Path, main: Callable, argv: list[str], *fragments: str) -> str:
    before = listing(root)
    status, stderr = run_in_process(main, argv)
    line = assert_clean_error(status, stderr, *fragments)
    assert listing(root) == before, "a failed run left or changed files"
    return line


# ----------------------------------------------------------------- stage 2
@pytest.mark.parametrize("corrupt", [empty_ark, truncated_ark, corrupt_header, offset_past_end,
                                     duplicate_utt, mixed_dims],
                         ids=lambda f: f.__name__)
def test_make_index_bad_input(base, tmp_path, corrupt):
    data = copy_data(base, tmp_path / "data")
    fragments = corrupt(data)
    assert_fails_cleanly(tmp_path, index_bin.main,
                         ["--mvn-out", str(data / "fhvae" / "mvn.npz"), str(data)], *fragments)


def test_make_index_nan_features(base, tmp_path):
    """Found by the statistics pass (mvn.npz was silently NaN before)."""
    data = copy_data(base, tmp_path / "data")
    fragments = nan_features(data)
    status, stderr = run_in_process(index_bin.main,
                                    ["--mvn-out", str(data / "fhvae" / "mvn.npz"), str(data)])
    assert_clean_error(status, stderr, *fragments)
    assert not (data / "fhvae" / "mvn.npz").exists()


def test_make_index_reports_and_counts_short_utterances(base, tmp_path):
    data = copy_data(base, tmp_path / "data")
    feats = random_feats({**LENGTHS, "s2-u2": 19, "s2-u3": 3})
    write_feats(data, feats)
    proc = run_cli("fhvae.bin.make_index", data)
    assert proc.returncode == 0, proc.stderr
    assert "excluded 2 utterance(s) shorter than 20 frames: s2-u2 s2-u3" in proc.stderr
    assert "5 utts" in proc.stdout and "2 excluded (< 20 frames)" in proc.stdout
    assert SegmentIndex.load(data / "fhvae" / "seg_index.npz").num_utts == 5


def test_make_index_real_process(base, tmp_path):
    data = copy_data(base, tmp_path / "data")
    key, what = truncated_ark(data)
    before = listing(tmp_path)
    proc = run_cli("fhvae.bin.make_index", "--mvn-out", data / "mvn.npz", data)
    assert_clean_error(proc.returncode, proc.stderr, key, what, "feats.ark")
    assert listing(tmp_path) == before


# ----------------------------------------------------------------- stage 3
def train_argv(base: Path, exp: Path, index: Path | None = None, mvn: Path | None = None):
    return ["--config", str(base / "conf.yaml"), "--train-index", str(index or base / "train.npz"),
            "--mvn", str(mvn or base / "mvn.npz"), "--num-threads", "1", str(exp)]


def test_train_incompatible_or_corrupt_checkpoint(base, tmp_path):
    exp = tmp_path / "exp"
    status, stderr = run_in_process(train_bin.main, train_argv(base, exp))
    assert status == 0, stderr
    last = exp / "ckpt" / "last.pt"
    other = write_train_config(tmp_path / "other.yaml", seq_batch_size=3, max_steps=4,
                               model=dict(hidden=12, num_layers=1, z1_dim=4, z2_dim=4))
    argv = train_argv(base, exp)
    argv[1] = str(other)
    assert_fails_cleanly(tmp_path, train_bin.main, argv, "last.pt", "hidden: 8 -> 12")
    last.write_bytes(last.read_bytes()[:5000])
    assert_fails_cleanly(tmp_path, train_bin.main, train_argv(base, exp), str(last),
                         "not a readable checkpoint")


def test_train_bad_statistics_and_index(base, tmp_path):
    exp = tmp_path / "exp"
    bad = tmp_path / "mvn.npz"
    bad.write_bytes((base / "mvn.npz").read_bytes()[:100])
    assert_fails_cleanly(tmp_path, train_bin.main, train_argv(base, exp, mvn=bad), str(bad))
    MVN(np.zeros(40, np.float32), np.ones(40, np.float32)).save(bad)
    assert_fails_cleanly(tmp_path, train_bin.main, train_argv(base, exp, mvn=bad),
                         "dimension 40", "features have 80")
    assert_fails_cleanly(tmp_path, train_bin.main,
                         train_argv(base, exp, index=base / "mvn.npz"), "mvn.npz",
                         "not a segment index")


def test_train_nan_in_features_names_the_utterance(base, tmp_path):
    """Features rewritten after stage 2: the first read of the bad utterance stops the run
    before any checkpoint (config.yaml and the metrics header describe the run and stay)."""
    data = copy_data(base, tmp_path / "data")
    SegmentIndex.build(data).save(tmp_path / "train.npz")
    key, what = nan_features(data)
    exp = tmp_path / "exp"
    status, stderr = run_in_process(train_bin.main,
                                    train_argv(base, exp, index=tmp_path / "train.npz"))
    assert_clean_error(status, stderr, key, what, "feats.ark")
    assert not (exp / "ckpt").exists() and not (exp / "final.pt").exists()


def test_train_real_process_incompatible_checkpoint(base, tmp_path):
    exp = tmp_path / "exp"
    (exp / "ckpt").mkdir(parents=True)
    save_tiny_model(exp / "ckpt" / "last.pt", hidden=16)
    payload = load_checkpoint(exp / "ckpt" / "last.pt")
    save_checkpoint(exp / "ckpt" / "last.pt", {**payload, "train_config": {}, "world": 1})
    before = listing(tmp_path)
    proc = run_cli("fhvae.bin.train", *train_argv(base, exp))
    assert_clean_error(proc.returncode, proc.stderr, "last.pt: model config differs",
                       "hidden: 16 -> 8")
    assert listing(tmp_path) == before


# ----------------------------------------------------------------- stage 4
@pytest.mark.parametrize("corrupt", [truncated_ark, corrupt_header, offset_past_end,
                                     duplicate_utt, unsorted_scp, missing_speaker, empty_scp],
                         ids=lambda f: f.__name__)
def test_extract_bad_input(base, tmp_path, corrupt):
    data = copy_data(base, tmp_path / "data")
    fragments = corrupt(data)
    assert_fails_cleanly(tmp_path, extract_bin.main,
                         [str(base / "model.pt"), str(data), str(tmp_path / "out"),
                          "--device", "cpu"], *fragments)


def test_extract_bad_checkpoints(base, tmp_path):
    good = load_checkpoint(base / "model.pt")
    cases = {
        "truncated.pt": ((base / "model.pt").read_bytes()[:3000], "not a readable checkpoint"),
        "pickle.pt": (b"\x80\x04\x95garbage", "not a readable checkpoint"),
    }
    for name, (raw, what) in cases.items():
        (tmp_path / name).write_bytes(raw)
    save_checkpoint(tmp_path / "other.pt", {**good, "model_config": {
        **good["model_config"], "hidden": 12}})
    save_checkpoint(tmp_path / "unknown.pt", {**good, "model_config": {
        **good["model_config"], "no_such_option": 1}})
    cases["other.pt"] = (None, "weights do not match its model_config")
    cases["unknown.pt"] = (None, "incompatible model_config")
    for name, (_, what) in cases.items():
        assert_fails_cleanly(tmp_path, extract_bin.main,
                             [str(tmp_path / name), str(base / "data"), str(tmp_path / "out"),
                              "--device", "cpu"], name, what)


# ----------------------------------------------------------------- full disk
@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "64k"):
    path.mkdir()
    mounted = shutil.which("mount") is not None and run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        timeout=30).returncode == 0
    if not mounted:
        skip_unless_ci("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        run(["umount", str(path)], check=True, timeout=30)


def test_full_disk_on_a_tiny_tmpfs(base, tmp_path):
    lengths = {f"s{i % 3}-u{i:02d}": 200 for i in range(12)}   # z1+z2 alone: 77 KiB
    data = write_feats(tmp_path / "data", random_feats(lengths))
    with tiny_tmpfs(tmp_path / "full") as full:
        line = assert_fails_cleanly(full, extract_bin.main,
                                    [str(base / "model.pt"), str(data), str(full / "out"),
                                     "--device", "cpu"], "No space left on device", str(full))
        assert line.endswith(".ark"), line
        assert not listing(full)
        # training: the first checkpoint (model + Adam state) does not fit
        exp = full / "exp"
        status, stderr = run_in_process(train_bin.main, train_argv(base, exp))
        assert_clean_error(status, stderr, "No space left on device", "last.pt")
        assert not (exp / "ckpt" / "last.pt").exists()
        assert not list(exp.rglob(".*tmp*"))


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_failing_writes_are_one_line(base, tmp_path, monkeypatch):
    """An OSError(ENOSPC) from a write to an open handle names no file: the writers add it."""
    data = copy_data(base, tmp_path / "data")
    with monkeypatch.context() as patch:
        patch.setattr(fhvae.io.tables.kaldiio, "save_ark", _enospc)
        assert_fails_cleanly(tmp_path, extract_bin.main,
                             [str(base / "model.pt"), str(data), str(tmp_path / "out"),
                              "--device", "cpu"], "No space left on device", "z1.ark")
    with monkeypatch.context() as patch:
        patch.setattr(fhvae.io.atomic.os, "fsync", _enospc)
        assert_fails_cleanly(tmp_path, index_bin.main, [str(data)],
                             "No space left on device", "seg_index.npz")


def test_disk_full_mid_training_keeps_the_last_good_checkpoint(base, tmp_path, monkeypatch):
    """The second save of last.pt fails: one error line, the first one stays loadable."""
    saves = []
    real_fsync_file = fhvae.io.atomic.fsync_file

    def failing_second_checkpoint(path):
        if ".last.pt.tmp" in str(path):
            saves.append(path)
            if len(saves) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync_file(path)

    monkeypatch.setattr(fhvae.io.atomic, "fsync_file", failing_second_checkpoint)
    exp = tmp_path / "exp"
    status, stderr = run_in_process(train_bin.main, train_argv(base, exp))
    assert_clean_error(status, stderr, "No space left on device", "last.pt")
    assert load_checkpoint(exp / "ckpt" / "last.pt")["step"] == 2     # ckpt_every=2
    assert not list(exp.rglob(".*tmp*")) and not (exp / "final.pt").exists()


def test_unwritable_output_path_is_one_line(base, tmp_path):
    """An OSError that names its file (here: the output dir is a regular file)."""
    blocker = tmp_path / "out"
    blocker.write_text("not a directory\n")
    assert_fails_cleanly(tmp_path, extract_bin.main,
                         [str(base / "model.pt"), str(base / "data"), str(blocker / "latents"),
                          "--device", "cpu"], str(blocker))
