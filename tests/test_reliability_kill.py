"""Interruptions: `kill -9` of training and of extraction in mid-run, then the same command
again, as `./run.sh --stage 3/4` would re-run it.

Each kill waits for an observable event and is made at a point where the process cannot
have finished, whatever the machine's load: training runs with a step limit it will never
reach and is killed once its log shows a chosen step; extraction is killed while it waits
for the features of its last utterance (a pipe held shut until the kill).

Training must resume from ckpt/last.pt (losing at most ckpt_every steps) and end with
exactly the parameters of an uninterrupted run; last.pt must be loadable after the kill.
Extraction must never leave an scp that points into a half-written ark, and the re-run
must produce complete tables."""

from __future__ import annotations

import dataclasses
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import kaldi_native_io as kni
import numpy as np
import pytest
import torch

from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.io.tables import read_scp
from fhvae.io.text_table import read_kv
from fhvae.training.checkpoint import load_checkpoint
from fhvae.training.config import TrainConfig
from fhvae.training.loop import train
from helpers import clean_env, run, spawn, wait_for
from test_reliability_data import (ROOT, random_feats, save_tiny_model, write_feats,
                                   write_train_config)
from test_train_data import make_data_dir

CKPT_EVERY = 8
NEVER = 1_000_000          # the killed run's step limit: it cannot end on its own
WAIT_S = 100               # for the event before a kill (~5 s on 2 idle cores)
RERUN_S = 150              # the re-run (~5 s); both well within the 300 s per-test limit

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return clean_env(OMP_NUM_THREADS="1")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (its own session)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


@pytest.fixture(scope="module")
def train_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("killtrain")
    index = SegmentIndex.build(make_data_dir(root / "train", num_spk=4, utts_per_spk=2,
                                             feat_dim=16), seg_len=20)
    index.save(root / "train.npz")
    compute_mvn(index.read_utt(u) for u in range(index.num_utts)).save(root / "mvn.npz")
    conf = write_train_config(root / "conf.yaml", max_steps=NEVER, ckpt_every=CKPT_EVERY,
                              log_every=1)
    return root, conf


def _train_cmd(root: Path, conf: Path, exp: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "fhvae.bin.train", "--config", str(conf), "--train-index",
            str(root / "train.npz"), "--mvn", str(root / "mvn.npz"), "--num-threads", "1",
            *options, str(exp)]


def _logged_steps(exp: Path) -> int:
    rows = (exp / "train_metrics.tsv").read_text().splitlines()[1:]
    return int(rows[-1].split("\t", 1)[0]) if rows else 0


def test_kill_9_during_training_then_rerun_equals_uninterrupted(train_inputs, tmp_path):
    root, conf = train_inputs
    cut = tmp_path / "cut"
    last = cut / "ckpt" / "last.pt"
    kill_after = random.Random(6).randint(CKPT_EVERY + 1, 3 * CKPT_EVERY)   # any phase
    # spawn: whatever happens below, the never-ending run is killed when the test ends.
    with spawn(_train_cmd(root, conf, cut), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL) as proc:
        wait_for(lambda: last.is_file() and _logged_steps(cut) >= kill_after, proc,
                 f"step {kill_after} in the log", timeout=WAIT_S)
        _kill_group(proc)
    saved = load_checkpoint(last)                  # never corrupt, whenever the kill came
    assert saved["step"] % CKPT_EVERY == 0 and saved["step"] >= CKPT_EVERY
    assert _logged_steps(cut) - saved["step"] <= CKPT_EVERY   # lost <= one interval

    # The same command again (with a reachable limit): resumes where last.pt was written.
    max_steps = saved["step"] + 2 * CKPT_EVERY + 3
    done = run(_train_cmd(root, conf, cut, "--max-steps", str(max_steps)), cwd=ROOT,
               env=_env(), timeout=RERUN_S)
    assert done.returncode == 0, done.stderr
    resumed = int(re.search(r"resumed from \S+ at step (\d+)", done.stderr).group(1))
    assert resumed == saved["step"]
    # The uninterrupted reference run, in this process (same code, one thread as above).
    torch.set_num_threads(1)
    full = tmp_path / "full"
    cfg = dataclasses.replace(TrainConfig.load(conf), max_steps=max_steps)
    train(cfg, SegmentIndex.load(root / "train.npz"), None, MVN.load(root / "mvn.npz"), full)

    for name in ("final.pt", "ckpt/last.pt"):
        a, b = load_checkpoint(full / name), load_checkpoint(cut / name)
        assert a["step"] == b["step"] == max_steps
        for key, value in a["model"].items():
            assert torch.equal(value, b["model"][key]), (name, key)
    rows = [[line.rsplit("\t", 1)[0] for line in (d / "train_metrics.tsv").read_text()
             .splitlines()] for d in (full, cut)]
    assert rows[0] == rows[1] and len(rows[0]) == max_steps + 1
    assert not [p.name for p in cut.rglob(".*tmp*")]   # killed writers' temporaries are gone


def _read_every_entry(scp: Path) -> dict[str, np.ndarray]:
    """Every entry of an scp through Kaldi's own reader code (kaldi_native_io), checked
    against kaldiio (the reader of the next stage)."""
    reader = (kni.RandomAccessFloatVectorReader if "svector" in scp.name
              else kni.RandomAccessFloatMatrixReader)(f"scp:{scp}")
    table = {key: np.array(reader[key], copy=True) for key, _ in read_kv(scp)}
    for key, value in read_scp(scp):
        np.testing.assert_array_equal(value, table[key])
    return table


def _gate_last_utterance(data: Path, feats: dict[str, np.ndarray], gate: Path) -> None:
    """Make the last feats.scp entry a pipe, `cat <gate> <matrix> |`, that cannot produce
    its features while <gate> is a FIFO nobody writes to (cat blocks opening it)."""
    import kaldiio
    lines = (data / "feats.scp").read_text().splitlines()
    key = lines[-1].split()[0]
    kaldiio.save_mat(str(data / "last.mat"), feats[key])
    lines[-1] = f"{key} cat {gate} {data / 'last.mat'} |"
    (data / "feats.scp").write_text("\n".join(lines) + "\n")
    os.mkfifo(gate)


def test_kill_9_during_extraction_then_rerun_gives_complete_tables(tmp_path):
    lengths = {f"s{i % 5}-u{i:03d}": 150 + (37 * i) % 120 for i in range(60)}
    feats = random_feats(lengths)
    data = write_feats(tmp_path / "data", feats)
    gate = tmp_path / "gate"
    _gate_last_utterance(data, feats, gate)
    model = save_tiny_model(tmp_path / "model.pt")
    out = tmp_path / "latents"
    cmd = [sys.executable, "-m", "fhvae.bin.extract", "--device", "cpu", "--batch-size", "64",
           "--num-threads", "1", str(model), str(data), str(out)]
    # spawn: the extraction blocked on the gate is killed however the test ends.
    with spawn(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL) as proc:
        # 59 utterances' z1 is ~170 KiB: bytes reach the temporary ark before the gate.
        wait_for(lambda: any(p.stat().st_size > 0 for p in out.glob(".z1.ark.tmp*")), proc,
                 "the first ark bytes", timeout=WAIT_S)
        _kill_group(proc)
    assert not (out / "z1.scp").exists()
    for scp in out.glob("*.scp"):                  # a finished job's tables are complete
        assert _read_every_entry(scp)

    gate.unlink()
    gate.touch()                                   # open: the pipe now yields the features
    rerun = run(cmd, cwd=ROOT, env=_env(), timeout=RERUN_S)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob(".*tmp*"))
    for name in ("z1", "z2"):
        table = _read_every_entry(out / f"{name}.scp")
        assert {k: v.shape for k, v in table.items()} == {k: (n, 4) for k, n in lengths.items()}
        assert all(np.isfinite(v).all() for v in table.values())
    assert len(_read_every_entry(out / "svector.scp")) == len(lengths)
    assert len(_read_every_entry(out / "spk_svector.scp")) == 5
