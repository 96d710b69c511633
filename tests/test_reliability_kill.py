"""Interruptions: `kill -9` of training and of extraction at a random (seeded) moment, then
the same command again, as `./run.sh --stage 3/4` would re-run it.

Training must resume from ckpt/last.pt (losing at most ckpt_every steps) and end with
exactly the parameters of an uninterrupted run; last.pt must be loadable at every kill.
Extraction must never leave an scp that points into a half-written ark, and the re-run
must produce complete tables."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldi_native_io as kni
import numpy as np
import pytest
import torch

from fhvae.checkpoint import load_checkpoint
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.io.datadir import read_kv
from fhvae.io.tables import read_scp
from fhvae.train import TrainConfig, train
from test_reliability_data import (ROOT, random_feats, save_tiny_model, write_feats,
                                   write_train_config)
from test_train_data import make_data_dir

CKPT_EVERY = 8
MAX_STEPS = 80


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"process ended (status {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (its own session)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


@pytest.fixture(scope="module")
def train_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("killtrain")
    index = SegmentIndex.build(make_data_dir(root / "train", num_spk=4, utts_per_spk=2,
                                             feat_dim=16), seg_len=20)
    index.save(root / "train.npz")
    compute_mvn(index.read_utt(u) for u in range(index.num_utts)).save(root / "mvn.npz")
    conf = write_train_config(root / "conf.yaml", max_steps=MAX_STEPS, ckpt_every=CKPT_EVERY,
                              log_every=1)
    return root, conf


def _train_cmd(root: Path, conf: Path, exp: Path) -> list[str]:
    return [sys.executable, "-m", "fhvae.bin.train", "--config", str(conf), "--train-index",
            str(root / "train.npz"), "--mvn", str(root / "mvn.npz"), "--num-threads", "1",
            str(exp)]


def _logged_steps(exp: Path) -> int:
    rows = (exp / "train_metrics.tsv").read_text().splitlines()[1:]
    return int(rows[-1].split("\t", 1)[0]) if rows else 0


def test_kill_9_during_training_then_rerun_equals_uninterrupted(train_inputs, tmp_path):
    root, conf = train_inputs
    cut = tmp_path / "cut"
    last = cut / "ckpt" / "last.pt"
    proc = subprocess.Popen(_train_cmd(root, conf, cut), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _wait_for(last.is_file, proc, "the first checkpoint")
    time.sleep(random.Random(6).uniform(0.0, 0.15))
    _kill_group(proc)
    saved = load_checkpoint(last)                  # never corrupt, whenever the kill came
    assert saved["step"] % CKPT_EVERY == 0 and 0 < saved["step"] < MAX_STEPS
    assert _logged_steps(cut) - saved["step"] <= CKPT_EVERY   # lost <= one interval

    done = subprocess.run(_train_cmd(root, conf, cut), cwd=ROOT, env=_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    resumed = int(re.search(r"resumed from \S+ at step (\d+)", done.stderr).group(1))
    assert resumed == saved["step"]
    # The uninterrupted reference run, in this process (same code, one thread as above).
    torch.set_num_threads(1)
    full = tmp_path / "full"
    train(TrainConfig.load(conf), SegmentIndex.load(root / "train.npz"), None,
          MVN.load(root / "mvn.npz"), full)

    for name in ("final.pt", "ckpt/last.pt"):
        a, b = load_checkpoint(full / name), load_checkpoint(cut / name)
        assert a["step"] == b["step"] == MAX_STEPS
        for key, value in a["model"].items():
            assert torch.equal(value, b["model"][key]), (name, key)
    rows = [[line.rsplit("\t", 1)[0] for line in (d / "train_metrics.tsv").read_text()
             .splitlines()] for d in (full, cut)]
    assert rows[0] == rows[1] and len(rows[0]) == MAX_STEPS + 1
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


def test_kill_9_during_extraction_then_rerun_gives_complete_tables(tmp_path):
    lengths = {f"s{i % 5}-u{i:03d}": 150 + (37 * i) % 120 for i in range(60)}
    data = write_feats(tmp_path / "data", random_feats(lengths))
    model = save_tiny_model(tmp_path / "model.pt")
    out = tmp_path / "latents"
    cmd = [sys.executable, "-m", "fhvae.bin.extract", "--device", "cpu", "--batch-size", "64",
           "--num-threads", "1", str(model), str(data), str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: any(p.stat().st_size > 0 for p in out.glob(".z1.ark.tmp*")), proc,
              "the first ark bytes")
    time.sleep(random.Random(4).uniform(0.0, 0.2))
    _kill_group(proc)
    assert not (out / "z1.scp").exists()
    for scp in out.glob("*.scp"):                  # a finished job's tables are complete
        assert _read_every_entry(scp)

    rerun = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob(".*tmp*"))
    for name in ("z1", "z2"):
        table = _read_every_entry(out / f"{name}.scp")
        assert {k: v.shape for k, v in table.items()} == {k: (n, 4) for k, n in lengths.items()}
        assert all(np.isfinite(v).all() for v in table.values())
    assert len(_read_every_entry(out / "svector.scp")) == len(lengths)
    assert len(_read_every_entry(out / "spk_svector.scp")) == 5
