"""Helpers for the reliability tests (no tests here): tiny inputs for every stage, running
an entry point the way a user does, and the "clean failure" checks they all share."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from fhvae.bin.cli import run_main
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.checkpoint import save_checkpoint
import helpers

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = dict(hidden=8, num_layers=1, z1_dim=4, z2_dim=4)


def run_cli(module: str, *args: str | os.PathLike, timeout: float = 120,
            cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`python -m <module> args...` as a user runs it (own process, repository on PYTHONPATH)."""
    return helpers.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd,
                       env=helpers.clean_env(OMP_NUM_THREADS="1"), timeout=timeout)


def run_in_process(main: Callable, argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of `run_main(main, argv)` without a new interpreter.

    An exception that escapes run_main is what a user would see as a traceback: it is
    returned as status -1 with the formatted traceback as stderr.
    """
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_main(main, argv)
        except SystemExit as done:
            return int(done.code or 0), err.getvalue()
        except BaseException:  # noqa: BLE001 - any escape is the failure we look for
            return -1, err.getvalue() + traceback.format_exc()
    return 0, err.getvalue()


def assert_clean_error(status: int, stderr: str, *fragments: str) -> str:
    """Exit 1, no traceback, exactly one ERROR line, the last one, holding every fragment."""
    assert "Traceback" not in stderr, stderr
    assert status == 1, (status, stderr)
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, stderr
    last = stderr.rstrip("\n").splitlines()[-1]
    assert last == errors[0] and last.startswith("ERROR ("), stderr
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under root (hidden ones included)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_feats(data: Path, feats: dict[str, np.ndarray], spk_of=lambda u: u.split("-")[0]
                ) -> Path:
    """A data dir holding feats.{ark,scp}, utt2num_frames, utt2spk (kaldiio writes, so
    also NaN/inf and odd shapes can be planted)."""
    import kaldiio

    data.mkdir(parents=True, exist_ok=True)
    keys = sorted(feats, key=str.encode)
    kaldiio.save_ark(str(data / "feats.ark"), {k: feats[k] for k in keys},
                     scp=str(data / "feats.scp"))
    (data / "utt2num_frames").write_text("".join(f"{k} {feats[k].shape[0]}\n" for k in keys))
    (data / "utt2spk").write_text("".join(f"{k} {spk_of(k)}\n" for k in keys))
    return data


def random_feats(lengths: dict[str, int], feat_dim: int = 80, seed: int = 0
                 ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {u: rng.normal(1.0, 2.0, size=(n, feat_dim)).astype(np.float32)
            for u, n in lengths.items()}


def save_tiny_model(path: Path, feat_dim: int = 80, seed: int = 0, **model) -> Path:
    """A valid (untrained) checkpoint as load_model expects it."""
    cfg = ModelConfig(feat_dim=feat_dim, num_seqs=4, **{**TINY_MODEL, **model})
    torch.manual_seed(seed)
    save_checkpoint(path, {
        "model_config": cfg.to_dict(), "model": FHVAE(cfg).state_dict(),
        "mvn_mean": torch.zeros(feat_dim), "mvn_std": torch.ones(feat_dim),
        "train_config": {}, "step": 0})
    return path


def write_train_config(path: Path, **overrides) -> Path:
    """A tiny CPU training configuration for the train CLI."""
    cfg = dict(model=dict(TINY_MODEL), seq_batch_size=4, batch_size=16, max_steps=12,
               dev_every=1000, log_every=2, ckpt_every=4, device="cpu", prefetch=True)
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path
